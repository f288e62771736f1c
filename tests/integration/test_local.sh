#!/usr/bin/env bash
# nodectl local: environments of real booted nodes (systemd-nspawn, systemd as PID 1) made by the
# product itself, from the cached test rootfs (`nodectl local rootfs`, as every suite's nodes).
# Subnets 198.18.50.0/24 and 198.18.51.0/24.
#   dry run makes nothing; refusals (bad name, overlapping subnet); up of 2 nodes with limits;
#   status; ssh with exact known_hosts; apply through the written inventory; idempotent re-run;
#   3 nodes hardened with profiles/hardened.toml (AIDE off) through the written inventory (--var), checked
#   as the admin user, and nothing of them on this machine before `up` or after `down`;
#   a killed node brought back by up; up --profile --publish (127.0.0.1:PORT reaches node 1); down leaves no machine, bridge, veth, mount,
#   cgroup, process or state; down of an up killed half-way.
source "$(dirname "$0")/lib.sh"

ROOTFS=$(test_rootfs) || { echo "cannot build the node rootfs" >&2; exit 1; }
STATE=$NODECTL_LOCAL_STATE_DIR
A=itlocal
B=itlocal2
C=itlocal3
D=itlocal4

local_cleanup() {
  local rc=$?
  for e in $A $B $C $D; do "$NODECTL" local down $e >/dev/null 2>&1 || true; done
  nodes_down   # the apt proxy of the hardening case
  rm -rf "$WORK"
  exit $rc
}
trap local_cleanup EXIT

bridge_of() { "$NODECTL" --json local status "$1" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["bridge"])'; }
# leftovers NAME BRIDGE: prints anything of environment NAME still on this host
leftovers() {
  local name=$1 br=$2
  [ -e "$STATE/$name" ] && echo "state dir $STATE/$name"
  ip link show "$br" >/dev/null 2>&1 && echo "bridge $br"
  ip -o link show | grep -E "vb-$name-" | sed 's/^/veth /'
  findmnt -rn -o TARGET | grep -F "$STATE/$name/" | sed 's/^/mount /'
  pgrep -af -- "--machine=$name-[0-9]" | sed 's/^/process /'
  ls -d /sys/fs/cgroup/*/nodectl-local/"$name"-* /sys/fs/cgroup/nodectl-local/"$name"-* 2>/dev/null | sed 's/^/cgroup /'
  true
}

# ---------------------------------------------------------------- dry run and refusals
"$NODECTL" local up $A --nodes 2 --subnet 198.18.50.0/24 --rootfs "$ROOTFS" --dry-run >"$WORK/plan" 2>&1
expect_rc_out "up --dry-run" 0 $? "$WORK/plan"
contains "the plan names the nodes and their addresses" "$WORK/plan" "$A-2 198\.18\.50\.3"
contains "the plan names the bridge" "$WORK/plan" "bridge +nlbr-[0-9a-f]{10} 198\.18\.50\.1/24"
check "--dry-run made nothing" test ! -e "$STATE/$A"

"$NODECTL" local up Bad_Name --subnet 198.18.50.0/24 --rootfs "$ROOTFS" >"$WORK/out" 2>&1
expect_rc_out "a bad name is refused" 2 $? "$WORK/out"
"$NODECTL" local up $A --subnet 198.18.50.7/24 --rootfs "$ROOTFS" >"$WORK/out" 2>&1
expect_rc_out "a subnet with host bits is refused" 2 $? "$WORK/out"
contains "the refusal names the network" "$WORK/out" "198\.18\.50\.0/24"

# ---------------------------------------------------------------- up
start=$(date +%s.%N)
"$NODECTL" local up $A --nodes 2 --subnet 198.18.50.0/24 --rootfs "$ROOTFS" --memory 512M --cpus 1 >"$WORK/up" 2>&1
expect_rc_out "up of 2 nodes" 0 $? "$WORK/up"
echo "     (up took $(echo "$(date +%s.%N) - $start" | bc) s)"
contains "up lists the nodes" "$WORK/up" "$A-1 +198\.18\.50\.2"
BR=$(bridge_of $A)
check "the bridge exists and holds 198.18.50.1/24" bash -c "ip -4 -o addr show dev '$BR' | grep -q ' 198.18.50.1/24 '"
check "the state dir is 0700" test "$(stat -c %a "$STATE/$A")" = 700
check "the private key is 0600" test "$(stat -c %a "$STATE/$A/id_ed25519")" = 600

"$NODECTL" local status $A >"$WORK/status" 2>&1
expect_rc_out "status" 0 $? "$WORK/status"
contains "status: node 1 running, ssh ok" "$WORK/status" "^$A-1 +198\.18\.50\.2 +running +ssh ok"
contains "status: node 2 running, ssh ok" "$WORK/status" "^$A-2 +198\.18\.50\.3 +running +ssh ok"

"$NODECTL" local list >"$WORK/list" 2>&1
contains "list shows the environment" "$WORK/list" "^$A +2 node\(s\), 2 running +198\.18\.50\.0/24"

out=$("$NODECTL" local ssh $A 2 hostname 2>&1)
check "ssh runs a command on node 2 (strict host key checking)" test "$out" = "$A-2"
out=$("$NODECTL" local ssh $A cat /proc/1/comm 2>&1)
check "systemd is PID 1 on node 1" test "$out" = "systemd"
out=$("$NODECTL" local ssh $A 1 "timeout 60 systemctl is-system-running --wait" 2>&1)
check "node 1 boots to running or degraded ($out)" bash -c "[ '$out' = running ] || [ '$out' = degraded ]"
check "known_hosts holds exactly the keys nodectl made, one per node" \
  bash -c "[ \$(wc -l <'$STATE/$A/known_hosts') = 2 ] && grep -qF \"\$(cut -d' ' -f1,2 '$STATE/$A/nodes/2/ssh_host_ed25519_key.pub')\" '$STATE/$A/known_hosts'"
out=$("$NODECTL" local ssh $A 2 cat /etc/ssh/ssh_host_ed25519_key.pub 2>&1 | cut -d' ' -f1,2)
check "the node serves the host key nodectl made" test "$out" = "$(cut -d' ' -f1,2 "$STATE/$A/nodes/2/ssh_host_ed25519_key.pub")"

# Limits: the node's processes run in a cgroup with the limits (systemd-run properties when systemd
# runs the host; our own cgroups here otherwise).
if [ -d /run/systemd/system ]; then
  check "MemoryMax of node 1's unit" test "$(systemctl show -p MemoryMax --value nodectl-local-$A-1.service)" = 536870912
  check "CPUQuota of node 1's unit" test "$(systemctl show -p CPUQuotaPerSecUSec --value nodectl-local-$A-1.service)" = 1s
elif [ -e /sys/fs/cgroup/cgroup.controllers ]; then
  check "memory.max of node 1" test "$(cat /sys/fs/cgroup/nodectl-local/$A-1/memory.max)" = 536870912
  check "cpu.max of node 1" test "$(cat /sys/fs/cgroup/nodectl-local/$A-1/cpu.max)" = "100000 100000"
else
  check "memory limit of node 1" test "$(cat /sys/fs/cgroup/memory/nodectl-local/$A-1/memory.limit_in_bytes)" = 536870912
  check "cpu quota of node 1" test "$(cat /sys/fs/cgroup/cpu/nodectl-local/$A-1/cpu.cfs_quota_us)" = 100000
  pid=$(pgrep -f -- "--machine=$A-1 " | head -n1)
  check "node 1's systemd-nspawn runs in its memory cgroup" \
    bash -c "grep -q ':memory:/nodectl-local/$A-1\$' /proc/$pid/cgroup"
fi

# ---------------------------------------------------------------- apply through the inventory
INV=$("$NODECTL" local inventory $A)
check "inventory is a file in the state dir" test "$INV" = "$STATE/$A/inventory.toml" -a -f "$INV"
check "the inventory names the environment's known_hosts" python3 -c '
import sys, tomllib
inv = tomllib.load(open(sys.argv[1], "rb"))
assert inv["defaults"]["known_hosts"] == sys.argv[2], inv["defaults"]' "$INV" "$STATE/$A/known_hosts"
# No --known-hosts: the inventory's file is what the host keys are checked against (HOME has none).
mkdir -p "$WORK/emptyhome"
HOME=$WORK/emptyhome "$NODECTL" apply -p "$DATA/motd.toml" -i "$INV" >"$WORK/apply" 2>&1
expect_rc_out "apply -p motd.toml -i \$(nodectl local inventory), nothing else" 0 $? "$WORK/apply"
out=$("$NODECTL" local ssh $A 2 cat /etc/motd 2>&1)
check "the profile's file is on node 2" test "$out" = "Hello from $A-2."

# ---------------------------------------------------------------- idempotent re-run
pids_before=$(pgrep -f -- "--machine=$A-" | sort | tr '\n' ' ')
mtime_before=$(stat -c %Y "$STATE/$A/known_hosts")
sleep 1
start=$(date +%s.%N)
"$NODECTL" local up $A --nodes 2 --subnet 198.18.50.0/24 --rootfs "$ROOTFS" --memory 512M --cpus 1 >"$WORK/up2" 2>&1
expect_rc_out "re-run of up" 0 $? "$WORK/up2"
echo "     (re-run took $(echo "$(date +%s.%N) - $start" | bc) s)"
check "re-run restarted no node" test "$(pgrep -f -- "--machine=$A-" | sort | tr '\n' ' ')" = "$pids_before"
lacks "re-run booted nothing" "$WORK/up2" "booting"
"$NODECTL" local up $A --nodes 3 --subnet 198.18.50.0/24 --rootfs "$ROOTFS" >"$WORK/out" 2>&1
expect_rc_out "up with other settings is refused" 2 $? "$WORK/out"
contains "the refusal says to run down first" "$WORK/out" "local down $A"

# A second environment may not take an overlapping subnet.
"$NODECTL" local up $B --subnet 198.18.50.0/25 --rootfs "$ROOTFS" >"$WORK/out" 2>&1
expect_rc_out "an overlapping subnet is refused" 2 $? "$WORK/out"
contains "the refusal names what it overlaps" "$WORK/out" "overlaps 198\.18\.50\.0/24"
check "the refused environment left no state" test ! -e "$STATE/$B"

# A killed node (its systemd, PID 1 in the node, gets SIGKILL): up brings it back, with what was
# written on it kept (nodectl writes its per-node files once), and with --bind for this boot.
"$NODECTL" local ssh $A 2 'echo "198.18.50.99 from-the-profile" >>/etc/hosts;' >/dev/null 2>&1
mkdir -p "$WORK/shared" && echo "from this machine" >"$WORK/shared/note"
nspawn=$(pgrep -f -- "--machine=$A-2 " | head -n1)
kill -KILL $(pgrep -P "$nspawn") 2>/dev/null
wait_until 5 "node 2's nspawn ($nspawn) to exit" ! kill -0 "$nspawn"
"$NODECTL" local status $A >"$WORK/status" 2>&1
expect_rc_out "status with node 2 killed" 4 $? "$WORK/status"
contains "status: node 2 stopped" "$WORK/status" "^$A-2 .* stopped"
"$NODECTL" local up $A --nodes 2 --subnet 198.18.50.0/24 --rootfs "$ROOTFS" --memory 512M --cpus 1 --bind "relative" >"$WORK/out" 2>&1
expect_rc_out "--bind of a relative path is refused" 2 $? "$WORK/out"
"$NODECTL" local up $A --nodes 2 --subnet 198.18.50.0/24 --rootfs "$ROOTFS" --memory 512M --cpus 1 \
  --bind "$WORK/shared:/mnt/shared" >"$WORK/up3" 2>&1
expect_rc_out "up after a node was killed" 0 $? "$WORK/up3"
out=$("$NODECTL" local ssh $A 2 cat /etc/motd 2>&1)
check "node 2 is back with its files" test "$out" = "Hello from $A-2."
"$NODECTL" local ssh $A 2 cat /etc/hosts >"$WORK/hosts2" 2>&1
contains "  ... and /etc/hosts as the node left it (not written again)" "$WORK/hosts2" "from-the-profile"
out=$("$NODECTL" local ssh $A 2 cat /mnt/shared/note 2>&1)
check "  ... with the --bind of this boot" test "$out" = "from this machine"
out=$("$NODECTL" local ssh $A 1 'test -e /mnt/shared/note && echo bound || echo not-bound' 2>&1)
check "  ... which the running node 1 did not get" test "$out" = "not-bound"

# ---------------------------------------------------------------- up --profile --publish
PB=$(free_port)
"$NODECTL" local up $B --subnet 198.18.51.0/24 --rootfs "$ROOTFS" --publish "$PB:22" --publish "127.0.0.1:$PB:80" >"$WORK/out" 2>&1
expect_rc_out "two --publish on one host port are refused" 2 $? "$WORK/out"
"$NODECTL" local up $B --nodes 1 --subnet 198.18.51.0/24 --rootfs "$ROOTFS" -p "$DATA/motd.toml" --publish "127.0.0.1:$PB:22" >"$WORK/upb" 2>&1
expect_rc_out "up --profile --publish" 0 $? "$WORK/upb"
out=$("$NODECTL" local ssh $B cat /etc/motd 2>&1)
check "up --profile applied the profile" test "$out" = "Hello from $B-1."
BRB=$(bridge_of $B)
contains "up names the published port" "$WORK/upb" "127\.0\.0\.1:$PB -> $B-1:22"
# What answers on 127.0.0.1:PB is node 1's sshd: its host key is the one nodectl made for $B-1.
ssh-keyscan -T 5 -t ed25519 -p "$PB" 127.0.0.1 2>/dev/null | awk '{print $2, $3}' >"$WORK/scanned"
node_key=$(awk '$1 == "198.18.51.2" && $2 == "ssh-ed25519" {print $2, $3}' "$STATE/$B/known_hosts")
check "127.0.0.1:$PB reaches $B-1's sshd (its host key)" test -n "$node_key" -a "$(cat "$WORK/scanned")" = "$node_key"
"$NODECTL" local up $B --nodes 1 --subnet 198.18.51.0/24 --rootfs "$ROOTFS" --publish "127.0.0.1:$PB:22" >"$WORK/upb2" 2>&1
expect_rc_out "re-run of up --publish" 0 $? "$WORK/upb2"
check "the re-run kept one proxy" test "$(pgrep -fc -- "systemd-socket-(activate|proxyd) .*198\.18\.51\.2:22$")" = 1

# ---------------------------------------------------------------- down
"$NODECTL" local down $A >"$WORK/down" 2>&1
expect_rc_out "down" 0 $? "$WORK/down"
leftovers $A "$BR" >"$WORK/left"
check "down left nothing of $A behind" test ! -s "$WORK/left"
[ -s "$WORK/left" ] && sed 's/^/      | /' "$WORK/left"
"$NODECTL" local status $B >/dev/null 2>&1
expect_rc "the other environment still runs" 0 $?
"$NODECTL" local down $B >"$WORK/down" 2>&1
expect_rc_out "down of the second environment" 0 $? "$WORK/down"
leftovers $B "$BRB" >"$WORK/left"
check "down left nothing of $B behind" test ! -s "$WORK/left"
check "down stopped the proxy of the published port" bash -c "! pgrep -f -- 'systemd-socket-(activate|proxyd) .*198\.18\.51\.2:22\$' && [ -z \"\$(ss -Hltn 'sport = :$PB')\" ]"
"$NODECTL" local down $A >"$WORK/down" 2>&1
expect_rc_out "down again: nothing to do" 0 $? "$WORK/down"

# ---------------------------------------------------------------- 3 nodes hardened through the inventory
# Nothing of it on this machine before (other suites may run beside this one: only what is
# this environment's is looked at), and nothing after `down`.
leftovers $D "$(python3 -c 'import hashlib,sys; print("nlbr-" + hashlib.sha256(sys.argv[1].encode()).hexdigest()[:10])' $D)" >"$WORK/before"
check "nothing of $D on this machine before up" test ! -s "$WORK/before"
"$NODECTL" local up $D --nodes 3 --subnet 198.18.54.0/24 --rootfs "$ROOTFS" --var "apt_proxy=http://198.18.54.1:3142" \
  --var role=local-test >"$WORK/upd" 2>&1
expect_rc_out "up of 3 nodes with --var" 0 $? "$WORK/upd"
# The admin user's key is the environment's own (known only once it exists): a re-run replaces the vars.
"$NODECTL" local up $D --nodes 3 --subnet 198.18.54.0/24 --rootfs "$ROOTFS" --var "apt_proxy=http://198.18.54.1:3142" \
  --var role=local-test --var "admin_key=$(cat "$STATE/$D/id_ed25519.pub")" >"$WORK/upd2" 2>&1
expect_rc_out "up again with one more --var" 0 $? "$WORK/upd2"
INVD=$("$NODECTL" local inventory $D)
check "the inventory gives every node the vars" test "$(grep -c 'ssh-ed25519' "$INVD")" = 3
NODECTL_TEST_GATEWAY=198.18.54.1 start_acng
# profiles/hardened.toml as shipped, but for AIDE (about 90 s of CPU per node for its package;
# test_harden covers it).
printf 'extends = "%s"\n\n[harden.services]\naide = false\n' "$SRC/profiles/hardened.toml" >"$WORK/hardened.toml"
HOME=$WORK/emptyhome "$NODECTL" apply -p "$WORK/hardened.toml" -i "$INVD" >"$WORK/applyd" 2>&1
expect_rc_out "apply -p profiles/hardened.toml (AIDE off) -i \$(nodectl local inventory) on 3 nodes" 0 $? "$WORK/applyd"
# Root's login is off now: the same inventory as the admin user (sudo without a password).
sed 's/^user = .*/user = "admin"\nsudo = "nopasswd"/' "$INVD" >"$WORK/admin-inventory.toml"
sed -i "s|^identity = .*|identity = \"$STATE/$D/id_ed25519\"|; s|^known_hosts = .*|known_hosts = \"$STATE/$D/known_hosts\"|" "$WORK/admin-inventory.toml"
"$NODECTL" check -p "$WORK/hardened.toml" -i "$WORK/admin-inventory.toml" >"$WORK/checkd" 2>&1
expect_rc_out "  ... all 3 pass check as the admin user" 0 $? "$WORK/checkd"
check "  ... with no failed control on any" test "$(grep -Ec ': [0-9]+ passed, 0 failed' "$WORK/checkd")" = 3
BRD=$(bridge_of $D)
"$NODECTL" local down $D >"$WORK/downd" 2>&1
expect_rc_out "down of the hardened environment" 0 $? "$WORK/downd"
leftovers $D "$BRD" >"$WORK/after"
check "  ... leaves nothing of it: state, bridge, veths, mounts, processes, cgroups" test ! -s "$WORK/after"
[ -s "$WORK/after" ] && sed 's/^/      | /' "$WORK/after"

# ---------------------------------------------------------------- an up killed half-way
"$NODECTL" local up $C --nodes 2 --subnet 198.18.51.0/24 --rootfs "$ROOTFS" >"$WORK/upc" 2>&1 &
upc=$!
WAIT_STEP=0.1 wait_until 10 "the up to start node 2" pgrep -f -- "--machine=$C-2 "
kill -KILL $upc 2>/dev/null; wait $upc 2>/dev/null
check "the killed up left an environment to clean" test -e "$STATE/$C/env.json"
BRC=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["bridge"])' "$STATE/$C/env.json")
"$NODECTL" local down $C >"$WORK/down" 2>&1
expect_rc_out "down of a half-made environment" 0 $? "$WORK/down"
leftovers $C "$BRC" >"$WORK/left"
check "down left nothing of the half-made $C behind" test ! -s "$WORK/left"
[ -s "$WORK/left" ] && sed 's/^/      | /' "$WORK/left"

finish
