#!/usr/bin/env bash
# First boot on real booted Debian nodes (systemd as PID 1), through nodectl-firstboot.service:
#  node 1: `firstboot install`, config from cloud-init's path, a POWER CUT (the node's init is
#          SIGKILLed) in the middle of provisioning; after the node boots again the service resumes
#          the run (steps done before are "done (resumed)", not redone), `nodectl status` says done,
#          `nodectl check` passes; once only: a different config later changes nothing.
#  node 2: a trusted key is installed: an unsigned config, a bad signature, a malformed profile
#          a tampered bundle, a bundle or a source file the signed config does not pin are refused
#          with a clear status and change nothing; then a USB
#          stick image from `nodectl usb prepare` (loop device bound into the node) provisions the
#          node from its bundle with no network and gets the report written back; a second stick
#          plugged into the finished node is ignored.
#  node 1 again: `firstboot --force` with an ext4 stick labelled NODECTL whose report names are
#          links to /etc/shadow and /etc/passwd: refused (only FAT is mounted), nothing written.
# Also: `usb prepare --device` refusals against a real loop device, signatures made by openssl.
# This machine's kernel has no vfat driver: a FAT stick cannot be mounted, in the nodes either.
# nodectl then reads the stick with mtools (installed on node 2 before it goes offline), which is
# what the FAT end to end below exercises.
# NODECTL_FIRSTBOOT_CASES=node1 runs node 1's install, power cut, resume and check only, on one
# node of the release NODECTL_TEST_SUITE names, on subnet NODECTL_FIRSTBOOT_SUBNET
# (test_trixie_node.sh does so on Debian 13); the default, all, runs everything.
source "$(dirname "$0")/lib.sh"
CASES=${NODECTL_FIRSTBOOT_CASES:-all}
SUBNET=${NODECTL_FIRSTBOOT_SUBNET:-198.18.80}
case $CASES in
  all) NODES=2 ;;
  node1) NODES=1 ;;
  *) echo "NODECTL_FIRSTBOOT_CASES must be all or node1, got '$CASES'" >&2; exit 1 ;;
esac
GW=$SUBNET.1

node_binary
BIN=$NODE_BIN

LOOPS=()
fb_cleanup() {
  local rc=$? l
  nodes_down
  for l in "${LOOPS[@]}"; do losetup -d "$l" 2>/dev/null || true; done
  (exit $rc)
  cleanup
}
trap fb_cleanup EXIT

jqf() { jq -r "$1" "$2"; }
# The node's file, read through its overlay root from the host (works while the node is down).
root_of() { local v="NODECTL_TEST_ROOT_$1"; echo "${!v}"; }

if [ "$CASES" = all ]; then
# ------------------------------------------------------------------ host side: keys and signatures
openssl genpkey -algorithm ed25519 -out "$WORK/fleet.key" 2>/dev/null && chmod 600 "$WORK/fleet.key"
openssl pkey -in "$WORK/fleet.key" -pubout -out "$WORK/fleet.pub"
openssl genpkey -algorithm ed25519 -out "$WORK/other.key" 2>/dev/null

cat >"$WORK/p2.toml" <<EOF
# provisioned from a stick: no apt proxy, packages come from the bundle
[base]
timezone = "Europe/Paris"
packages = ["tree"]
[[base.files]]
path = "/etc/motd"
content = "provisioned from the stick\n"
EOF
nodectl firstboot sign --key "$WORK/fleet.key" "$WORK/p2.toml" >"$WORK/sign.out" 2>&1
expect_rc_out "firstboot sign writes p2.toml.sig" 0 $? "$WORK/sign.out"
check "the signature is 64 raw bytes" test "$(stat -c %s "$WORK/p2.toml.sig")" = 64
openssl pkeyutl -verify -pubin -inkey "$WORK/fleet.pub" -rawin -in "$WORK/p2.toml" -sigfile "$WORK/p2.toml.sig" >"$WORK/ossl.out" 2>&1
contains "openssl verifies nodectl's signature" "$WORK/ossl.out" 'Signature Verified Successfully'
# The other direction: operators may sign with openssl alone.
cp "$WORK/p2.toml" "$WORK/p2-openssl.toml"
openssl pkeyutl -sign -inkey "$WORK/fleet.key" -rawin -in "$WORK/p2-openssl.toml" -out "$WORK/p2-openssl.toml.sig"
check "openssl and nodectl make the same (deterministic Ed25519) signature" cmp -s "$WORK/p2.toml.sig" "$WORK/p2-openssl.toml.sig"

# ------------------------------------------------------------------ host side: usb prepare --device refusals
dd if=/dev/zero of="$WORK/dev.img" bs=1M count=40 status=none
DEVLOOP=$(losetup -f --show "$WORK/dev.img") && LOOPS+=("$DEVLOOP")
# (ext4: this machine's kernel has no vfat driver, so a FAT filesystem cannot be mounted here)
mkfs.ext4 -q -L OTHER "$DEVLOOP"
mkdir -p "$WORK/mnt"
mount "$DEVLOOP" "$WORK/mnt"
nodectl usb prepare --device "$DEVLOOP" -p "$WORK/p2.toml" --binary "$BIN" --yes >"$WORK/u1.out" 2>&1
expect_rc_out "usb prepare refuses a mounted device, even with --yes" 2 $? "$WORK/u1.out"
contains "the refusal says it is mounted" "$WORK/u1.out" 'is mounted'
umount "$WORK/mnt"
nodectl usb prepare --device "$DEVLOOP" -p "$WORK/p2.toml" --binary "$BIN" </dev/null >"$WORK/u2.out" 2>&1
expect_rc_out "usb prepare without --yes and no terminal refuses" 2 $? "$WORK/u2.out"
contains "it asks for --yes" "$WORK/u2.out" 'needs confirmation: pass --yes'
check "the device was not touched (still labelled OTHER)" test "$(blkid -s LABEL -o value "$DEVLOOP")" = OTHER
rootdev=$(findmnt -n -o SOURCE / | sed 's/\[.*//')
if [ -b "$rootdev" ]; then
  nodectl usb prepare --device "$rootdev" -p "$WORK/p2.toml" --binary "$BIN" --yes >"$WORK/u3.out" 2>&1
  expect_rc_out "usb prepare refuses the system disk ($rootdev)" 2 $? "$WORK/u3.out"
  contains "the refusal names the running system" "$WORK/u3.out" 'running system'
fi
nodectl usb prepare --device "$DEVLOOP" -p "$WORK/p2.toml" --binary "$BIN" --yes >"$WORK/u4.out" 2>&1
expect_rc_out "usb prepare --device --yes writes an unmounted device" 0 $? "$WORK/u4.out"
check "the device is now labelled NODECTL" test "$(blkid -s LABEL -o value "$DEVLOOP")" = NODECTL
losetup -d "$DEVLOOP"; LOOPS=()

# ------------------------------------------------------------------ bundles
export NODECTL_CACHE_DIR=$WORK/cache
nodectl bundle create -p "$WORK/p2.toml" --packages tree --out "$WORK/p2.bundle" >"$WORK/bc.out" 2>&1
expect_rc_out "bundle for the stick (tree)" 0 $? "$WORK/bc.out"
cp "$WORK/p2.bundle" "$WORK/tampered.bundle"
off=$(( $(grep -abo 'debs/tree_' "$WORK/tampered.bundle" | tail -n1 | cut -d: -f1) + 2000 ))
printf '\x5a' | dd of="$WORK/tampered.bundle" bs=1 seek="$off" conv=notrunc status=none

# A signature binds the bundle only through the pin in the signed config (the bundle holds the
# profile it was made from, so the stick's config is a second file that names the bundle).
nodectl usb prepare --image "$WORK/unpinned.img" --size 64M -p "$WORK/p2.toml" --bundle "$WORK/p2.bundle" --binary "$BIN" >"$WORK/usb0.out" 2>&1
check "usb prepare refuses a signed profile that does not pin the bundle" test $? -ne 0
contains "... saying it pins no bundle" "$WORK/usb0.out" 'is signed and pins no bundle'
cp "$WORK/p2.toml" "$WORK/p2s.toml"
nodectl firstboot sign --key "$WORK/fleet.key" --bundle "$WORK/p2.bundle" "$WORK/p2s.toml" >"$WORK/sign2.out" 2>&1
expect_rc_out "firstboot sign --bundle pins the bundle and signs" 0 $? "$WORK/sign2.out"
nodectl bundle verify "$WORK/p2.bundle" >"$WORK/bv.out" 2>&1
P2_DIGEST=$(sed -n 's/^ *manifest sha256: \([0-9a-f]*\).*/\1/p' "$WORK/bv.out")
contains "the pin is the bundle's manifest sha256" "$WORK/p2s.toml" "^bundle_sha256 = \"$P2_DIGEST\"\$"
nodectl usb prepare --image "$WORK/stick.img" --size 64M -p "$WORK/p2s.toml" --bundle "$WORK/p2.bundle" --binary "$BIN" >"$WORK/usb.out" 2>&1
expect_rc_out "usb prepare --image (profile, signature, bundle, binary)" 0 $? "$WORK/usb.out"
check "the image is labelled NODECTL" test "$(blkid -s LABEL -o value "$WORK/stick.img")" = NODECTL
MTOOLS_SKIP_CHECK=1 mdir -i "$WORK/stick.img" -/ -b :: >"$WORK/mdir.out" 2>&1
for f in nodectl nodectl.toml nodectl.toml.sig README.txt bundle/p2.bundle; do
  contains "the stick holds $f" "$WORK/mdir.out" "^::/$f\$"
done
MTOOLS_SKIP_CHECK=1 mtype -i "$WORK/stick.img" ::nodectl.toml >"$WORK/stick-profile"
check "the stick's nodectl.toml is the signed file, byte for byte" cmp -s "$WORK/stick-profile" "$WORK/p2s.toml"

fi  # CASES = all

# ------------------------------------------------------------------ nodes
nodes_up $NODES $SUBNET
for i in $(seq $NODES); do put_nodectl $i; done
# mtools on node 2, for the FAT stick (see above); then no apt proxy is left on the node.
[ "$CASES" = node1 ] || node 2 "echo 'Acquire::http::Proxy \"$NODECTL_TEST_APT_PROXY\";' >/etc/apt/apt.conf.d/00test-proxy &&
         apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mtools >/dev/null &&
         rm /etc/apt/apt.conf.d/00test-proxy" >"$WORK/mtools.out" 2>&1 || { fail "node 2: installing mtools"; cat "$WORK/mtools.out"; }

# ---- node 1: install, not started, power cut while provisioning, resume, done, check
node 1 /root/nodectl firstboot install >"$WORK/i1.out" 2>&1
expect_rc_out "node1: firstboot install" 0 $? "$WORK/i1.out"
contains "node1: install enabled the unit" "$WORK/i1.out" 'enabled nodectl-firstboot.service'
check "node1: systemctl says enabled" test "$(node 1 systemctl is-enabled nodectl-firstboot.service)" = enabled
node 1 systemd-analyze verify /etc/systemd/system/nodectl-firstboot.service >"$WORK/verify.out" 2>&1
expect_rc_out "node1: systemd-analyze verify accepts the unit" 0 $? "$WORK/verify.out"
node 1 nodectl status >"$WORK/s0.out" 2>&1
expect_rc_out "node1: status before anything: not started" 12 $? "$WORK/s0.out"
contains "node1: status says not started" "$WORK/s0.out" '^firstboot: not started'

cat >"$WORK/p1.toml" <<EOF
[base]
apt_proxy = "$NODECTL_TEST_APT_PROXY"
timezone = "Europe/Berlin"
hosts_entries = ["$GW gateway"]
packages = ["nftables", "tree", "less"]
[[base.files]]
path = "/etc/motd"
content = "provisioned by nodectl firstboot\n"
EOF
node 1 "mkdir -p /etc/nodectl && cat >/etc/nodectl/profile.toml" <"$WORK/p1.toml"
R1=$(root_of 1)
node 1 nodectl firstboot --dry-run >"$WORK/dry.out" 2>&1
expect_rc_out "node1: firstboot --dry-run" 0 $? "$WORK/dry.out"
contains "node1: --dry-run names the config it found" "$WORK/dry.out" '^configuration: /etc/nodectl/profile.toml \(from cloud-init\)'
contains "node1: --dry-run shows the plan" "$WORK/dry.out" 'would change +packages'
# The kernel command line comes before cloud-init's file (nodes share this machine's kernel, so
# the command line is given as a file here).
node 1 "cp /etc/nodectl/profile.toml /root/cmdline.toml && echo 'BOOT_IMAGE=/vmlinuz ro nodectl.config=/root/cmdline.toml quiet' >/root/cmdline"
node 1 nodectl firstboot --dry-run --cmdline-file /root/cmdline >"$WORK/dry2.out" 2>&1
contains "node1: nodectl.config= on the kernel command line wins over cloud-init's file" "$WORK/dry2.out" '^configuration: /root/cmdline.toml \(from kernel command line\)'
node 1 "echo 'ro nodectl.config=/root/missing.toml' >/root/cmdline2"
node 1 nodectl firstboot --dry-run --cmdline-file /root/cmdline2 >"$WORK/dry3.out" 2>&1
expect_rc_out "node1: a command line naming a missing file is an error" 3 $? "$WORK/dry3.out"
contains "node1: ... which says so" "$WORK/dry3.out" 'nodectl.config=/root/missing.toml, which is not a file'
node 1 nodectl status >/dev/null 2>&1
expect_rc "node1: --dry-run wrote no status (still not started)" 12 $?
check "node1: --dry-run changed nothing (no journal, motd as before)" node 1 'test ! -e /var/lib/nodectl/journal.json && ! grep -q nodectl /etc/motd' 
node 1 systemctl start --no-block nodectl-firstboot.service
# Power cut once the first steps are journaled and the packages are being installed.
cut=0
WAIT_STEP=0.05 wait_until 30 "node1's journal to say base/hosts done" \
  grep -q '"base/hosts": "done"' "$R1/var/lib/nodectl/journal.json" && kill -KILL "$NODECTL_TEST_PID_1" && cut=1
check "node1: powered off in the middle of provisioning" test $cut = 1
sleep 1
jqf .state "$R1/var/lib/nodectl/firstboot.json" >"$WORK/cut.state"
contains "node1: the status left by the cut says running" "$WORK/cut.state" '^running$'
check "node1: not finished at the cut" test ! -e "$R1/var/lib/nodectl/firstboot.done"
check "node1: booted again after the power cut" node_start 1
node 1 nodectl status --wait --timeout 240 >"$WORK/s1.out" 2>&1
expect_rc_out "node1: after the reboot the service resumed and finished: status done" 0 $? "$WORK/s1.out"
cp "$R1/var/lib/nodectl/firstboot.json" "$WORK/fb1.json"
check "node1: two attempts recorded" test "$(jqf '.attempts | length' "$WORK/fb1.json")" -ge 2
check "node1: the first attempt never finished" test -z "$(jqf '.attempts[0].finished' "$WORK/fb1.json")"
check "node1: the last attempt resumed the interrupted run" test -n "$(jqf '.attempts[-1].resumed_run' "$WORK/fb1.json")"
jqf '.attempts[-1].steps[] | "\(.id) \(.result)"' "$WORK/fb1.json" >"$WORK/steps1"
contains "node1: apt proxy step not redone (done (resumed))" "$WORK/steps1" '^base/apt_proxy done \(resumed\)$'
contains "node1: hosts step not redone" "$WORK/steps1" '^base/hosts done \(resumed\)$'
contains "node1: the motd was written after the resume" "$WORK/steps1" '^base/file:/etc/motd changed$'
lacks "node1: nothing failed" "$WORK/steps1" 'failed|not run'
check "node1: firstboot.done written" test -s "$R1/var/lib/nodectl/firstboot.done"
node 1 journalctl -b -u nodectl-firstboot.service --no-pager >"$WORK/j1.out" 2>&1
contains "node1: the journal shows the resume" "$WORK/j1.out" 'resuming interrupted run'
contains "node1: the journal says which config was used" "$WORK/j1.out" 'configuration: /etc/nodectl/profile.toml \(from cloud-init\)'
node 1 nodectl check --local -p /etc/nodectl/profile.toml >"$WORK/c1.out" 2>&1
expect_rc_out "node1: nodectl check passes for the profile" 0 $? "$WORK/c1.out"
check "node1: packages installed" node 1 'dpkg-query -W -f="\${Status}\n" nftables tree less | grep -c "install ok installed" | grep -qx 3'

# Once only: another config later changes nothing, by the unit or by hand.
printf '[[base.files]]\npath = "/etc/motd"\ncontent = "ROGUE\\n"\n' >"$WORK/rogue.toml"
node 1 "cat >/etc/nodectl/profile.toml" <"$WORK/rogue.toml"
node 1 systemctl restart nodectl-firstboot.service
check "node1: the unit does not start again (ConditionPathExists)" \
  test "$(node 1 systemctl show -p ConditionResult --value nodectl-firstboot.service)" = no
node 1 nodectl firstboot >"$WORK/again.out" 2>&1
expect_rc_out "node1: firstboot by hand on a finished machine" 0 $? "$WORK/again.out"
contains "node1: it says provisioned already" "$WORK/again.out" 'provisioned already'
check "node1: the motd is still the profile's" test "$(node 1 cat /etc/motd)" = "provisioned by nodectl firstboot"
node 1 nodectl status --json >"$WORK/s1j.out"
expect_rc "node1: status --json exit code done" 0 $?
contains "node1: status --json state" "$WORK/s1j.out" '"state": "done"'

if [ "$CASES" = node1 ]; then finish; exit; fi

# ---- node 1: --force with an ext4 stick: refused (only FAT is mounted), and its report link to
# /etc/shadow is never written through
mkdir -p "$WORK/ext4stick"
printf '[[base.files]]\npath = "/etc/motd"\ncontent = "from the ext4 stick\\n"\n' >"$WORK/ext4stick/nodectl.toml"
ln -s /etc/shadow "$WORK/ext4stick/nodectl-report.txt"
ln -s /etc/passwd "$WORK/ext4stick/firstboot.json"
mkfs.ext4 -q -L NODECTL -d "$WORK/ext4stick" "$WORK/ext4.img" 16M >/dev/null
EXT4=$(losetup -f --show "$WORK/ext4.img") && LOOPS+=("$EXT4")
kill -KILL "$NODECTL_TEST_PID_1"; sleep 1
check "node1: booted again with the ext4 stick bound in" node_start 1 --bind "$EXT4"
shadow_before=$(node 1 sha256sum /etc/shadow /etc/passwd)
node 1 "rm -f /etc/nodectl/profile.toml; nodectl firstboot --force" >"$WORK/force.out" 2>&1
expect_rc_out "node1: firstboot --force with an ext4 stick labelled NODECTL is refused" 3 $? "$WORK/force.out"
contains "node1: ... because only FAT sticks are read" "$WORK/force.out" 'holds a filesystem of type ext4; only FAT \(vfat\) sticks are read'
check "node1: /etc/shadow and /etc/passwd untouched (the stick's links were not followed)" \
  test "$(node 1 sha256sum /etc/shadow /etc/passwd)" = "$shadow_before"
check "node1: the ext4 stick was not mounted" test -z "$(node 1 findmnt -n /run/nodectl/stick)"
check "node1: the motd is still the profile's" test "$(node 1 cat /etc/motd)" = "provisioned by nodectl firstboot"

# ---- node 2: signature required; refusals change nothing
scp_pub() { node 2 "cat >/root/fleet.pub" <"$WORK/fleet.pub"; }
scp_pub
node 2 /root/nodectl firstboot install --trust /root/fleet.pub >"$WORK/i2.out" 2>&1
expect_rc_out "node2: firstboot install --trust" 0 $? "$WORK/i2.out"
node 2 "mkdir -p /etc/nodectl && cat >/etc/nodectl/profile.toml" <"$WORK/p2.toml"
motd_before=$(node 2 sha256sum /etc/motd 2>/dev/null)
refused() {  # refused NAME PATTERN: firstboot exits 3, says why, status failed, nothing changed
  node 2 nodectl firstboot "${@:3}" >"$WORK/r.out" 2>&1
  expect_rc_out "node2: $1 is refused" 3 $? "$WORK/r.out"
  contains "node2: $1: the console says why" "$WORK/r.out" "$2"
  contains "node2: $1: and that nothing changed" "$WORK/r.out" 'nothing was changed'
  node 2 nodectl status >"$WORK/rs.out" 2>&1
  expect_rc_out "node2: $1: status failed" 11 $? "$WORK/rs.out"
  jqf .error "$(root_of 2)/var/lib/nodectl/firstboot.json" >"$WORK/rerr"
  contains "node2: $1: the status holds the error" "$WORK/rerr" "$2"
  check "node2: $1: no step ran (no journal)" node 2 test ! -e /var/lib/nodectl/journal.json
  check "node2: $1: motd unchanged" test "$(node 2 sha256sum /etc/motd 2>/dev/null)" = "$motd_before"
}
node 2 "mv /etc/nodectl/profile.toml /root/p2.toml"
refused "no config anywhere" 'no configuration found: .*no filesystem labelled NODECTL.*no /etc/nodectl/profile.toml'
node 2 "mv /root/p2.toml /etc/nodectl/profile.toml"
refused "an unsigned config" 'a signed config is required'
openssl pkeyutl -sign -inkey "$WORK/other.key" -rawin -in "$WORK/p2.toml" -out "$WORK/bad.sig"
node 2 "cat >/etc/nodectl/profile.toml.sig" <"$WORK/bad.sig"
refused "a config signed by another key" 'signature does not match'
printf '[base]\ntimezone = "Europe/Paris"\npackages = "tree"\n' >"$WORK/bad.toml"
# `firstboot sign` refuses a malformed profile itself, so this one is signed with openssl (same bytes).
openssl pkeyutl -sign -inkey "$WORK/fleet.key" -rawin -in "$WORK/bad.toml" -out "$WORK/bad.toml.sig"
node 2 "cat >/etc/nodectl/profile.toml" <"$WORK/bad.toml"
node 2 "cat >/etc/nodectl/profile.toml.sig" <"$WORK/bad.toml.sig"
refused "a malformed (signed) profile" 'profile.toml:3:[0-9]+'
# The config is read once: the signature is checked over the very bytes that are parsed. A file
# lease held from this host (the node's root is an overlay mounted here) lets the first open of the
# config read the signed bytes, and renames another, unsigned config over it before any later open.
# The signed one pins a bundle that is not there, so it is refused; the other would provision.
cat >"$WORK/swap_on_open.py" <<'PY'
import fcntl, os, signal, sys, time
F_SETLEASE, F_GETLEASE = 1024, 1025  # linux/fcntl.h
path, new, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
signal.signal(signal.SIGIO, signal.SIG_IGN)  # a breaking lease signals its holder
fd = os.open(path, os.O_RDONLY)
fcntl.fcntl(fd, F_SETLEASE, fcntl.F_WRLCK)
print("leased", flush=True)
end = time.time() + timeout
while time.time() < end:
    if fcntl.fcntl(fd, F_GETLEASE) != fcntl.F_WRLCK:  # somebody opens it: swap, then let the open go on
        os.rename(new, path)
        fcntl.fcntl(fd, F_SETLEASE, fcntl.F_UNLCK)
        print("swapped", flush=True)
        sys.exit(0)
    time.sleep(0.001)
sys.exit(1)
PY
printf '[[base.files]]\npath = "/etc/motd"\ncontent = "signed\\n"\n[firstboot]\nbundle_sha256 = "%s"\n' \
  "$(printf '%064d' 0 | tr 0 a)" >"$WORK/once.toml"
openssl pkeyutl -sign -inkey "$WORK/fleet.key" -rawin -in "$WORK/once.toml" -out "$WORK/once.toml.sig"
node 2 "cat >/etc/nodectl/profile.toml" <"$WORK/once.toml"
node 2 "cat >/etc/nodectl/profile.toml.sig" <"$WORK/once.toml.sig"
printf '[[base.files]]\npath = "/etc/motd"\ncontent = "from a second read\\n"\n' | node 2 "cat >/etc/nodectl/second.toml"
python3 "$WORK/swap_on_open.py" "$(root_of 2)/etc/nodectl/profile.toml" "$(root_of 2)/etc/nodectl/second.toml" 60 \
  >"$WORK/swap.out" 2>&1 &
swapper=$!
wait_until 5 "the swapper to lease the profile" grep -q leased "$WORK/swap.out"
refused "a config whose second read would differ" 'pins the bundle'
wait $swapper
contains "... the config was swapped right after its first open" "$WORK/swap.out" '^swapped$'
node 2 rm -f /etc/nodectl/second.toml
# A reusable signed config that pins no bundle, with a bundle the attacker chose: refused.
node 2 "cat >/etc/nodectl/profile.toml" <"$WORK/p2.toml"
node 2 "cat >/etc/nodectl/profile.toml.sig" <"$WORK/p2.toml.sig"
node 2 "cat >/root/any.bundle" <"$WORK/p2.bundle"
refused "a signed config with a bundle it does not pin" 'bundle /root/any.bundle is refused: the signed config pins no bundle' --bundle /root/any.bundle
# A [[base.files]] source beside a signed config that does not pin it: refused.
printf '[[base.files]]\npath = "/etc/motd"\nsource = "motd.txt"\n' >"$WORK/src.toml"
echo "the operator's motd" >"$WORK/motd.txt"
nodectl firstboot sign --key "$WORK/fleet.key" "$WORK/src.toml" >"$WORK/sign3.out" 2>&1
check "firstboot sign refuses a source file without its sha256" test $? -ne 0
contains "... and prints the pin to add" "$WORK/sign3.out" 'add sha256 = "[0-9a-f]{64}"'
openssl pkeyutl -sign -inkey "$WORK/fleet.key" -rawin -in "$WORK/src.toml" -out "$WORK/src.toml.sig"
node 2 "cat >/etc/nodectl/profile.toml" <"$WORK/src.toml"
node 2 "cat >/etc/nodectl/profile.toml.sig" <"$WORK/src.toml.sig"
node 2 "echo owned >/etc/nodectl/motd.txt"
refused "a signed config with an unpinned source file" 'has no sha256 pin'
node 2 "cat >/etc/nodectl/profile.toml" <"$WORK/p2s.toml"
node 2 "cat >/etc/nodectl/profile.toml.sig" <"$WORK/p2s.toml.sig"
node 2 "cat >/root/tampered.bundle" <"$WORK/tampered.bundle"
refused "a tampered bundle" 'bundle /root/tampered.bundle is refused' --bundle /root/tampered.bundle
node 2 rm -f /etc/nodectl/profile.toml /etc/nodectl/profile.toml.sig /etc/nodectl/motd.txt /root/tampered.bundle /root/any.bundle

# ---- node 2: the stick, bound into the node as a block device; no network needed
check "node2: no default route (offline)" test -z "$(node 2 ip -4 route show default)"
STICK=$(losetup -f --show "$WORK/stick.img") && LOOPS+=("$STICK")
kill -KILL "$NODECTL_TEST_PID_2"; sleep 1
check "node2: booted again with the stick bound in" node_start 2 --bind "$STICK"
node 2 nodectl status --wait --timeout 240 >"$WORK/s2.out" 2>&1
expect_rc_out "node2: booted with the stick: provisioned, status done" 0 $? "$WORK/s2.out"
R2=$(root_of 2)
cp "$R2/var/lib/nodectl/firstboot.json" "$WORK/fb2.json"
check "node2: the source was the USB stick" test "$(jqf .source "$WORK/fb2.json")" = "USB stick"
contains "node2: the status names the stick's device" <(jqf .config "$WORK/fb2.json") "^LABEL=NODECTL \\($STICK\\):nodectl.toml$"
contains "node2: the signature was verified" <(jqf .signature "$WORK/fb2.json") '^verified with /etc/nodectl/firstboot-trust.pub$'
contains "node2: the bundle came from the stick" <(jqf .bundle "$WORK/fb2.json") 'bundle/p2.bundle$'
node 2 journalctl -b -u nodectl-firstboot.service --no-pager >"$WORK/j2.out" 2>&1
contains "node2: the kernel cannot mount FAT here: the stick was read with mtools" "$WORK/j2.out" 'reading it with mtools'
check "node2: tree installed from the bundle" node 2 'dpkg-query -W -f="\${Status}" tree | grep -q "install ok installed"'
check "node2: the motd from the stick's profile" test "$(node 2 cat /etc/motd)" = "provisioned from the stick"
check "node2: the stick is unmounted afterwards" test -z "$(node 2 findmnt -n /run/nodectl/stick)"
MTOOLS_SKIP_CHECK=1 mtype -i "$WORK/stick.img" ::nodectl-report.txt >"$WORK/report.txt" 2>&1
contains "node2: the report was written back to the stick" "$WORK/report.txt" '^state: +done$'
contains "node2: the report lists the steps" "$WORK/report.txt" 'changed +bundle packages on the node'
MTOOLS_SKIP_CHECK=1 mtype -i "$WORK/stick.img" ::firstboot.json >"$WORK/stick-status.json" 2>&1
check "node2: firstboot.json on the stick too" test "$(jqf .state "$WORK/stick-status.json")" = done
MTOOLS_SKIP_CHECK=1 mtype -i "$WORK/stick.img" ::nodectl.toml | node 2 "cat >/root/p2.toml"
node 2 nodectl check --local -p /root/p2.toml >"$WORK/c2.out" 2>&1
expect_rc_out "node2: nodectl check passes for the stick's profile" 0 $? "$WORK/c2.out"

# A second stick (signed, different profile) plugged into the finished machine: ignored.
printf '[[base.files]]\npath = "/etc/motd"\ncontent = "ROGUE\\n"\n' >"$WORK/rogue2.toml"
nodectl firstboot sign --key "$WORK/fleet.key" "$WORK/rogue2.toml" >/dev/null
nodectl usb prepare --image "$WORK/stick2.img" --size 40M -p "$WORK/rogue2.toml" --binary "$BIN" >"$WORK/usb2.out" 2>&1
expect_rc_out "a second stick image" 0 $? "$WORK/usb2.out"
STICK2=$(losetup -f --show "$WORK/stick2.img") && LOOPS+=("$STICK2")
kill -KILL "$NODECTL_TEST_PID_2"; sleep 1
check "node2: booted again with the second stick bound in" node_start 2 --bind "$STICK2"
check "node2: the unit did not run with the second stick" \
  test "$(node 2 systemctl show -p ConditionResult --value nodectl-firstboot.service)" = no
node 2 nodectl firstboot >"$WORK/again2.out" 2>&1
expect_rc_out "node2: firstboot by hand with the second stick present" 0 $? "$WORK/again2.out"
contains "node2: says provisioned already" "$WORK/again2.out" 'provisioned already'
check "node2: the second stick was not even mounted" test -z "$(node 2 findmnt -n /run/nodectl/stick)"
check "node2: the motd is unchanged" test "$(node 2 cat /etc/motd)" = "provisioned from the stick"
MTOOLS_SKIP_CHECK=1 mdir -i "$WORK/stick2.img" -/ -b :: >"$WORK/mdir2.out" 2>&1
lacks "node2: no report written to the second stick" "$WORK/mdir2.out" 'nodectl-report'

finish
