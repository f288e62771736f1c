#!/usr/bin/env bash
# testnodes.sh - throw-away Debian machines (12 by default) for nodectl's integration tests.
#
# Usage (as root):
#   testnodes.sh rootfs                     build the cached node root filesystem (once)
#   NODECTL_TEST_SUITE=trixie testnodes.sh rootfs|up ...
#                                           nodes of another Debian release: bookworm (default),
#                                           trixie or bullseye; one cached rootfs per release
#   testnodes.sh up N [--subnet 198.18.X] [--owner PID]   boot N nodes, print the run dir
#     --owner: the run belongs to process PID (a test script). A later `up` on the same subnet
#     tears the run down once that process is gone (a suite killed by ctest's timeout cannot run
#     its own clean-up). Runs without an owner are never taken over.
#     Exits 3 when the subnet is in use by something else.
#   testnodes.sh down RUN                   stop everything of a run, remove the run dir
#   testnodes.sh ssh RUN I [cmd...]         ssh as root into node I (1-based)
#   testnodes.sh start RUN I                boot node I again after it was killed / powered off
#   SYSTEMD_NSPAWN_API_VFS_WRITABLE=1 testnodes.sh up ...   nodes may change sysctl values (of the
#                                           one shared kernel: throw-away machines only)
#   NODECTL_TEST_NSPAWN_ARGS="--bind=/dev/loop5" testnodes.sh start RUN I
#                                           extra systemd-nspawn arguments for the nodes this call
#                                           boots (e.g. a loop device as a USB stick); unset: none
#
# Design
# ------
# * Root filesystem. `rootfs` builds a minimal Debian of release $NODECTL_TEST_SUITE (default
#   bookworm; mmdebstrap, minbase + systemd, sshd, iproute2, sudo, tzdata) into
#   ${NODECTL_TEST_CACHE:-<repo>/build/testcache}/rootfs-<release>. Releases other than bookworm
#   are fetched from the first Debian mirror of the host's apt sources (default deb.debian.org).
#   It is built in a temp dir and renamed into place, so a killed build never leaves half a
#   rootfs. It holds nothing secret or per-node: no ssh host keys, no authorized_keys.
#   After the build it is never written again: every node runs on an overlayfs whose lower
#   layer is the cached rootfs and whose upper/work dirs live in the run dir.
# * Run dir. `up` creates RUN=$(mktemp -d /tmp/nodectl-nodes.XXXXXX). Everything a run
#   creates (bridge name, pids, mounts, keys, logs) is recorded there *before* it is
#   created, so `down RUN` can clean up any half-finished state and can be run twice.
#   RUN/env is a shell-sourceable summary for tests.
# * Network. A per-run bridge nbr<id> holds <subnet>.1/24 on the host. Nodes are booted with
#   systemd-nspawn --network-bridge (host side vb-<machine>, node side host0). The node
#   address <subnet>.(1+i)/24 is set by systemd-networkd inside the node from a .network
#   file in its overlay, so it comes back by itself when a node reboots. Nodes get no
#   default route and no DNS server: they can reach the host's bridge address and each
#   other, nothing else (the host does not forward anyway).
# * apt. Nodes cannot reach Debian's archive themselves. An apt-cacher-ng instance with its
#   own config dir in RUN listens on <subnet>.1:3142. Its cache lives in the cache dir
#   (shared between runs, guarded by a lock; a concurrent run falls back to a per-run
#   cache). The node side proxy config is deliberately NOT written: nodectl writes it.
# * ssh. Per run, a client key RUN/id_ed25519 (its public half is root's authorized_keys in
#   every node) and per node fresh ed25519 + rsa host keys, from which RUN/known_hosts is
#   written, so tests can use StrictHostKeyChecking=yes.
# * Processes. Each node is run by a small supervisor (`testnodes.sh _supervise RUN I`,
#   detached with setsid) that starts systemd-nspawn and records its pid and the pid of the
#   node's init (PID 1 inside). Like systemd-nspawn@.service it boots the node again when
#   the node reboots (nspawn exit status 133). A node that is killed (e.g.
#   `kill -9 $NODECTL_TEST_PID_1`) or powered off stays down until `start RUN I`.
#   Whenever a node (re)starts, RUN/env is rewritten with the new pid.
#   Pid files hold "PID STARTTIME" so a recycled pid is never signalled.
set -euo pipefail

SELF=$(readlink -f "${BASH_SOURCE[0]}")
REPO=$(cd "$(dirname "$SELF")/.." && pwd)
CACHE=${NODECTL_TEST_CACHE:-$REPO/build/testcache}
SUITE=${NODECTL_TEST_SUITE:-bookworm}
case $SUITE in
  bookworm | trixie | bullseye) ;;
  *) echo "testnodes: error: NODECTL_TEST_SUITE must be bookworm, trixie or bullseye, got '$SUITE'" >&2; exit 1 ;;
esac
ROOTFS=$CACHE/rootfs-$SUITE
PACKAGES=systemd,systemd-sysv,dbus,openssh-server,iproute2,sudo,tzdata
BOOT_TIMEOUT=${NODECTL_TEST_BOOT_TIMEOUT:-60}   # seconds until all nodes answer ssh
STOP_TIMEOUT=10                                 # seconds of clean shutdown before SIGKILL
ACNG_PORT=3142

log() { echo "testnodes: $*" >&2; }
die() { log "error: $*"; exit 1; }

need_root() { [ "$(id -u)" -eq 0 ] || die "must run as root"; }

need_tools() {
  local t missing=()
  for t in "$@"; do command -v "$t" >/dev/null || missing+=("$t"); done
  [ ${#missing[@]} -eq 0 ] || die "missing tools: ${missing[*]} (run scripts/setup.sh)"
}

# ---------------------------------------------------------------- process helpers

# Start time (clock ticks since boot) of a pid; identifies it together with the pid.
proc_start() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }                 # drop "pid (comm) ", comm may contain spaces
  local fields
  read -r -a fields <<<"$stat"
  echo "${fields[19]}"              # field 22 of the full line
}

# Write "PID STARTTIME" to a pid file.
write_pidfile() { echo "$1 $(proc_start "$1" || echo 0)" >"$2"; }

# Print the pid in a pid file if that very process is still alive.
live_pid() {
  local pid start
  [ -s "$1" ] || return 1
  read -r pid start <"$1" || return 1
  [ -n "$pid" ] && [ "$(proc_start "$pid" 2>/dev/null)" = "$start" ] || return 1
  echo "$pid"
}

# Print the pid of the container init below an nspawn process: the descendant whose
# innermost pid (last NSpid field) is 1.
find_init_pid() {
  local child
  for child in $(pgrep -P "$1" || true); do
    if awk '/^NSpid:/ { exit !(NF > 2 && $NF == 1) }' "/proc/$child/status" 2>/dev/null; then
      echo "$child"; return 0
    fi
    find_init_pid "$child" && return 0
  done
  return 1
}

# ---------------------------------------------------------------- run dir helpers

valid_subnet() {
  [[ $1 =~ ^198\.1[89]\.([0-9]{1,3})$ ]] && [ "${BASH_REMATCH[1]}" -le 255 ]
}

check_run() {
  [ -n "${RUN:-}" ] || die "no run dir given"
  [ -f "$RUN/.testnodes" ] || die "$RUN is not a testnodes run dir"
}

node_dir()  { echo "$RUN/nodes/$1"; }
node_name() { cat "$RUN/nodes/$1/name"; }
node_addr() { echo "$(cat "$RUN/subnet").$((1 + $1))"; }
node_indexes() {
  local d
  for d in "$RUN"/nodes/*/; do
    if [ -d "$d" ]; then basename "$d"; fi
  done | sort -n
}

# ssh as root into node I: ssh_node I [ssh args / command...]
ssh_node() {
  local i=$1; shift
  ssh -F /dev/null -i "$RUN/id_ed25519" -o IdentitiesOnly=yes -o BatchMode=yes \
    -o UserKnownHostsFile="$RUN/known_hosts" -o GlobalKnownHostsFile=/dev/null \
    -o StrictHostKeyChecking=yes -o ConnectTimeout=3 -o LogLevel=ERROR \
    "root@$(node_addr "$i")" "$@"
}

# (Re)write RUN/env from the files in RUN. Called by `up` and by supervisors.
write_env() {
  local subnet i names=() addrs=() pids=() roots=()
  subnet=$(cat "$RUN/subnet")
  for i in $(node_indexes); do
    names+=("$(node_name "$i")")
    addrs+=("$(node_addr "$i")")
    pids+=("NODECTL_TEST_PID_$i=$(live_pid "$RUN/nodes/$i/init.pid" || true)")
    roots+=("NODECTL_TEST_ROOT_$i=$RUN/nodes/$i/root")
  done
  (
    flock 8
    {
      echo "NODECTL_TEST_RUN=$RUN"
      echo "NODECTL_TEST_KEY=$RUN/id_ed25519"
      echo "NODECTL_TEST_KNOWN_HOSTS=$RUN/known_hosts"
      echo "NODECTL_TEST_NODES=\"${names[*]}\""
      echo "NODECTL_TEST_ADDRS=\"${addrs[*]}\""
      echo "NODECTL_TEST_GATEWAY=$subnet.1"
      echo "NODECTL_TEST_APT_PROXY=http://$subnet.1:$ACNG_PORT"
      printf '%s\n' "${pids[@]}" "${roots[@]}"
    } >"$RUN/env.tmp"
    mv -f "$RUN/env.tmp" "$RUN/env"
  ) 8>"$RUN/.env.lock"
}

# ---------------------------------------------------------------- rootfs

# The host's Debian archive URI: the first URIs: (deb822) or deb line (one-line format) of its
# apt sources that is not the security archive; deb.debian.org when there is none.
host_debian_mirror() {
  local uri
  uri=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
    awk '$1 == "URIs:" { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }')
  [ -n "$uri" ] || uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { if ($i !~ /security/) print $i; break } }' | head -n1)
  echo "${uri:-http://deb.debian.org/debian}"
}

cmd_rootfs() {
  need_root
  need_tools mmdebstrap flock
  mkdir -p "$CACHE"
  # One builder per release at a time (bookworm's lock keeps its old name).
  if [ "$SUITE" = bookworm ]; then exec 7>"$CACHE/rootfs.lock"; else exec 7>"$ROOTFS.lock"; fi
  flock 7
  if [ -d "$ROOTFS" ]; then
    log "rootfs present: $ROOTFS"
    return 0
  fi
  # Leftovers of killed builds (we hold the lock, so nobody is using them).
  local old m
  for old in "$ROOTFS".tmp.*; do
    [ -d "$old" ] || continue
    log "removing leftover partial build $old"
    for m in $(findmnt -rn -o TARGET | grep -F "$old/" | sort -r); do umount -l "$m" || true; done
    rm -rf --one-file-system "$old"
  done

  local tmp start=$SECONDS mirror=()
  tmp=$(mktemp -d "$ROOTFS.tmp.XXXXXX")
  log "building $SUITE rootfs in $tmp (mmdebstrap)"
  # bookworm is built exactly as it always was (mmdebstrap picks the mirror); other releases
  # from the host's own Debian mirror, named explicitly.
  [ "$SUITE" = bookworm ] || mirror=("$(host_debian_mirror)")
  mmdebstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$tmp" ${mirror[@]+"${mirror[@]}"} >&2

  # Debian 13 installs keep their apt sources in deb822 form (sources.list.d/debian.sources).
  if [ "$SUITE" = trixie ] && [ -s "$tmp/etc/apt/sources.list" ]; then
    printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "${mirror[0]}" "$SUITE" >"$tmp/etc/apt/sources.list.d/debian.sources"
    rm -f "$tmp/etc/apt/sources.list"
  fi

  # ssh: host keys are generated per run; only the keys we supply are used.
  rm -f "$tmp"/etc/ssh/ssh_host_*
  cat >"$tmp/etc/ssh/sshd_config.d/nodectl-test.conf" <<'EOF'
# testnodes.sh: host keys are written per node at `up` time.
HostKey /etc/ssh/ssh_host_ed25519_key
HostKey /etc/ssh/ssh_host_rsa_key
PermitRootLogin prohibit-password
PasswordAuthentication no
EOF
  # sshd and networkd (node address, see `up`) start at boot.
  systemctl --root="$tmp" enable ssh.service systemd-networkd.service >&2
  # Per-node values are written at `up` time; keep the image neutral.
  : >"$tmp/etc/machine-id"
  printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$tmp/etc/hosts"
  rm -f "$tmp/etc/resolv.conf"

  mv -T "$tmp" "$ROOTFS"
  log "rootfs built in $((SECONDS - start)) s: $ROOTFS"
}

# ---------------------------------------------------------------- up

# nspawn refuses to run when /run/systemd/nspawn is not on a tmpfs (no systemd on the host).
ensure_nspawn_tmpfs() {
  mkdir -p /run/systemd/nspawn
  if [ "$(findmnt -n -o FSTYPE --mountpoint /run/systemd/nspawn || true)" != tmpfs ]; then
    mount -t tmpfs -o mode=0755 tmpfs /run/systemd/nspawn
  fi
}

start_acng() {
  local subnet=$1 acng=$RUN/acng cache lockfd
  mkdir -p "$acng/log"
  cp -a /etc/apt-cacher-ng "$acng/conf"
  # The package's default Debian mirror list does not resolve here.
  echo "http://deb.debian.org/debian/" >"$acng/conf/backends_debian"

  # The shared cache may be used by one apt-cacher-ng at a time: the lock is inherited
  # by the daemon and held as long as it runs. A concurrent run gets a private cache.
  mkdir -p "$CACHE"
  exec {lockfd}>"$CACHE/apt-cacher-ng.lock"
  if flock -n "$lockfd"; then
    cache=$CACHE/apt-cacher-ng
  else
    log "shared apt cache busy (another run); using a private cache"
    cache=$acng/cache
  fi
  mkdir -p "$cache"
  cat >"$acng/conf/zzz_nodectl_test.conf" <<EOF
CacheDir: $cache
LogDir: $acng/log
Port: $ACNG_PORT
BindAddress: $subnet.1
PidFile: $acng/acng.pid
SocketPath: $acng/socket
ForeGround: 1
EOF
  setsid apt-cacher-ng -c "$acng/conf" </dev/null >>"$acng/out.log" 2>&1 9>&- &
  local pid=$!
  exec {lockfd}>&-
  write_pidfile "$pid" "$RUN/acng.pid"

  local deadline=$((SECONDS + 10))
  until (exec 3<>"/dev/tcp/$subnet.1/$ACNG_PORT") 2>/dev/null; do
    live_pid "$RUN/acng.pid" >/dev/null || { cat "$acng/out.log" "$acng"/log/*.err >&2 2>/dev/null || true; die "apt-cacher-ng exited"; }
    [ $SECONDS -lt $deadline ] || die "apt-cacher-ng does not listen on $subnet.1:$ACNG_PORT"
    sleep 0.2
  done
}

# Create node I's overlay and write its per-node files (keys, address, names).
prepare_node() {
  local i=$1 n=$2 id=$3 subnet=$4 d name addr root j
  d=$(node_dir "$i")
  name=n$id-$i
  addr=$subnet.$((1 + i))
  root=$d/root
  mkdir -p "$d/upper" "$d/work" "$root" "$d/hostkeys"
  echo "$name" >"$d/name"
  mount -t overlay overlay -o "lowerdir=$ROOTFS,upperdir=$d/upper,workdir=$d/work" "$root"

  ssh-keygen -q -t ed25519 -N '' -C "root@$name" -f "$d/hostkeys/ssh_host_ed25519_key"
  ssh-keygen -q -t rsa -b 3072 -N '' -C "root@$name" -f "$d/hostkeys/ssh_host_rsa_key"
  install -m 600 "$d"/hostkeys/ssh_host_*_key "$root/etc/ssh/"
  install -m 644 "$d"/hostkeys/ssh_host_*_key.pub "$root/etc/ssh/"
  local t
  for t in ed25519 rsa; do
    echo "$addr $(cut -d' ' -f1,2 "$d/hostkeys/ssh_host_${t}_key.pub")" >>"$RUN/known_hosts"
  done

  install -d -m 700 "$root/root/.ssh"
  install -m 600 "$RUN/id_ed25519.pub" "$root/root/.ssh/authorized_keys"

  mkdir -p "$root/etc/systemd/network"
  cat >"$root/etc/systemd/network/10-nodectl-test.network" <<EOF
# testnodes.sh: static test address, no default route (nodes only reach $subnet.0/24).
[Match]
Name=host0

[Network]
Address=$addr/24
DHCP=no
LinkLocalAddressing=no
IPv6AcceptRA=no
EOF
  echo "$name" >"$root/etc/hostname"
  tr -d '-' </proc/sys/kernel/random/uuid >"$root/etc/machine-id"
  {
    printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n'
    for ((j = 1; j <= n; j++)); do printf '%s\tn%s-%s\n' "$subnet.$((1 + j))" "$id" "$j"; done
  } >"$root/etc/hosts"
  echo "# testnodes.sh: no DNS in test nodes" >"$root/etc/resolv.conf"
}

# Start node I's supervisor (detached) unless it is running.
start_node() {
  local i=$1 name
  name=$(node_name "$i")
  if live_pid "$RUN/nodes/$i/supervisor.pid" >/dev/null; then
    log "node $i ($name) is already running"
    return 0
  fi
  rm -f "$RUN/nodes/$i/init.pid" "$RUN/nodes/$i/nspawn.pid"
  setsid "$SELF" _supervise "$RUN" "$i" </dev/null >>"$RUN/$name.log" 2>&1 9>&- &
  write_pidfile "$!" "$RUN/nodes/$i/supervisor.pid"
}

# Wait until every given node answers ssh (bounded by BOOT_TIMEOUT).
wait_nodes() {
  local deadline=$((SECONDS + BOOT_TIMEOUT)) i pending=("$@") left name
  while [ ${#pending[@]} -gt 0 ]; do
    left=()
    for i in "${pending[@]}"; do
      name=$(node_name "$i")
      if ! live_pid "$RUN/nodes/$i/supervisor.pid" >/dev/null; then
        tail -n 30 "$RUN/$name.log" >&2 || true
        die "node $i ($name) stopped while booting, see $RUN/$name.log"
      fi
      if ssh_node "$i" true </dev/null 2>/dev/null; then
        log "node $i ($name, $(node_addr "$i")) is up after $((SECONDS - deadline + BOOT_TIMEOUT)) s"
      else
        left+=("$i")
      fi
    done
    pending=(${left[@]+"${left[@]}"})
    [ ${#pending[@]} -eq 0 ] && break
    if [ $SECONDS -ge $deadline ]; then
      for i in "${pending[@]}"; do tail -n 30 "$RUN/$(node_name "$i").log" >&2 || true; done
      die "nodes ${pending[*]} do not answer ssh after $BOOT_TIMEOUT s"
    fi
    sleep 0.5
  done
}

up_failed() {
  local rc=$?
  trap - EXIT INT TERM
  exec 2>&9    # the trap may run inside a function call whose stderr goes to /dev/null
  log "up failed (exit $rc), tearing down $RUN"
  (cmd_down "$RUN") >&2 || log "teardown of $RUN failed, clean up by hand"
  exit $((rc == 0 ? 1 : rc))
}

cmd_up() {
  local n="" subnet=198.18.0 owner=""
  while [ $# -gt 0 ]; do
    case $1 in
      --subnet) [ $# -ge 2 ] || die "--subnet needs a value"; subnet=$2; shift 2 ;;
      --subnet=*) subnet=${1#*=}; shift ;;
      --owner) [ $# -ge 2 ] || die "--owner needs a value"; owner=$2; shift 2 ;;
      -*) die "unknown option $1" ;;
      *) [ -z "$n" ] || die "unexpected argument $1"; n=$1; shift ;;
    esac
  done
  if ! [[ $n =~ ^[0-9]+$ ]] || [ "$n" -lt 1 ] || [ "$n" -gt 250 ]; then
    die "usage: up N [--subnet 198.18.X] (1 <= N <= 250)"
  fi
  valid_subnet "$subnet" || die "subnet must be 198.18.X or 198.19.X, got '$subnet'"
  need_root
  need_tools systemd-nspawn apt-cacher-ng ssh ssh-keygen ip setsid flock findmnt pgrep
  [ -d "$ROOTFS" ] || (cmd_rootfs) >&2   # subshell: its lock fd must not leak into daemons
  ensure_nspawn_tmpfs

  # Checking the subnet and claiming it (bridge address) is one step for concurrent `up`s.
  exec 6>"$CACHE/up.lock"
  flock 6
  if subnet_in_use "$subnet"; then reclaim_stale_run "$subnet"; fi
  if subnet_in_use "$subnet"; then
    log "error: subnet $subnet.0/24 is in use on this host (another run?); pass --subnet 198.18.X"
    exit 3
  fi

  local start=$SECONDS id bridge i
  exec 9>&2    # our stderr, for up_failed; daemons are started with 9>&- (see start_*)
  RUN=$(mktemp -d /tmp/nodectl-nodes.XXXXXX)
  touch "$RUN/.testnodes"
  if [ -n "$owner" ]; then
    [[ $owner =~ ^[0-9]+$ ]] && [ -d "/proc/$owner" ] || die "--owner $owner: no such process"
    write_pidfile "$owner" "$RUN/owner"
  fi
  trap up_failed EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  echo "$subnet" >"$RUN/subnet"

  while :; do   # run id: names the bridge and the machines, must not collide
    id=$(od -An -N2 -tx1 /dev/urandom | tr -d ' \n')
    ! ip link show "nbr$id" >/dev/null 2>&1 && break
  done
  bridge=nbr$id
  echo "$id" >"$RUN/id"

  ssh-keygen -q -t ed25519 -N '' -C "nodectl-test@$id" -f "$RUN/id_ed25519"
  : >"$RUN/known_hosts"

  echo "$bridge" >"$RUN/bridge"     # recorded first, so down removes it whatever happens
  ip link add "$bridge" type bridge
  echo 1 >"/proc/sys/net/ipv6/conf/$bridge/disable_ipv6" 2>/dev/null || true
  ip addr add "$subnet.1/24" dev "$bridge"
  ip link set "$bridge" up
  exec 6>&-    # subnet claimed; release the lock before any daemon could inherit it

  start_acng "$subnet"

  for ((i = 1; i <= n; i++)); do prepare_node "$i" "$n" "$id" "$subnet"; done
  for ((i = 1; i <= n; i++)); do start_node "$i"; done
  wait_nodes $(seq 1 "$n")
  write_env

  trap - EXIT INT TERM
  log "$n node(s) up in $((SECONDS - start)) s; source $RUN/env"
  echo "$RUN"
}

# ---------------------------------------------------------------- supervisor (internal)

cmd_supervise() {
  RUN=$1
  local i=$2 d name bridge rc nspawn init t
  d=$(node_dir "$i")
  name=$(node_name "$i")
  bridge=$(cat "$RUN/bridge")
  while :; do
    echo "=== testnodes: booting $name ($(date -Is))"
    rm -f "$d/init.pid"
    systemd-nspawn -b -q -D "$d/root" --machine="$name" --register=no --keep-unit \
      --network-bridge="$bridge" --console=read-only --resolv-conf=off --timezone=off \
      --link-journal=no ${NODECTL_TEST_NSPAWN_ARGS:-} </dev/null &
    nspawn=$!
    write_pidfile "$nspawn" "$d/nspawn.pid"
    for ((t = 0; t < 100; t++)); do   # up to 10 s for the container's init to appear
      if init=$(find_init_pid "$nspawn"); then
        write_pidfile "$init" "$d/init.pid"
        # With a writable /sys (SYSTEMD_NSPAWN_API_VFS_WRITABLE=1) networkd waits for a udev the
        # node does not have and never configures host0: set the address from outside instead.
        if [ -n "${SYSTEMD_NSPAWN_API_VFS_WRITABLE:-}" ]; then
          (for _ in $(seq 1 100); do
             if nsenter -t "$init" -n ip link show host0 >/dev/null 2>&1; then
               nsenter -t "$init" -n ip addr replace "$(node_addr "$i")/24" dev host0
               nsenter -t "$init" -n ip link set host0 up
               break
             fi
             sleep 0.1
           done) || true
        fi
        write_env || true
        break
      fi
      kill -0 "$nspawn" 2>/dev/null || break
      sleep 0.1
    done
    rc=0
    wait "$nspawn" || rc=$?
    echo "=== testnodes: $name stopped, systemd-nspawn exit status $rc ($(date -Is))"
    rm -f "$d/nspawn.pid" "$d/init.pid"
    if [ -e "$RUN/stopping" ] || [ "$rc" -ne 133 ]; then break; fi   # 133: the node rebooted
  done
  rm -f "$d/supervisor.pid"
  if [ ! -e "$RUN/stopping" ]; then write_env || true; fi
}

# ---------------------------------------------------------------- start (after a kill)

cmd_start() {
  RUN=${1:-}; local i=${2:-}
  check_run
  need_root
  [ -f "$RUN/nodes/$i/name" ] || die "no node '$i' in $RUN"
  [ ! -e "$RUN/stopping" ] || die "$RUN is being torn down"
  start_node "$i"
  wait_nodes "$i"
  write_env
}

# ---------------------------------------------------------------- stale runs

subnet_in_use() {
  ip -4 -o addr show | grep -qF " $1.1/" || ip -4 route show | grep -q "^${1//./\\.}\\.0/24 "
}

# A run on SUBNET whose owner process is gone is torn down (the suite that owned it was
# killed before its clean-up ran). A run without an owner file, or whose owner lives, stays.
reclaim_stale_run() {
  local subnet=$1 dir
  for dir in /tmp/nodectl-nodes.??????; do
    [ -f "$dir/.testnodes" ] && [ -f "$dir/owner" ] && [ ! -L "$dir" ] || continue
    [ "$(cat "$dir/subnet" 2>/dev/null)" = "$subnet" ] || continue
    if live_pid "$dir/owner" >/dev/null; then continue; fi
    log "subnet $subnet.0/24: run $dir outlived its owner (pid $(cut -d' ' -f1 "$dir/owner")); tearing it down"
    ( cmd_down "$dir" ) >&2 || log "tearing down $dir failed"
  done
}

# ---------------------------------------------------------------- down

cmd_down() {
  RUN=${1:-}
  [ -n "$RUN" ] || die "usage: down RUN"
  RUN=${RUN%/}
  if [ ! -d "$RUN" ]; then
    log "$RUN does not exist, nothing to do"
    return 0
  fi
  RUN=$(realpath "$RUN")            # mount targets below are matched as absolute paths
  # Only ever remove what `up` created.
  [ -f "$RUN/.testnodes" ] || [[ $RUN == /tmp/nodectl-nodes.?????? ]] ||
    die "$RUN is not a testnodes run dir, refusing"
  need_root
  touch "$RUN/stopping"             # supervisors must not boot nodes again

  # Clean poweroff: SIGTERM makes nspawn halt the node's systemd. Bounded, then SIGKILL.
  local i pid busy deadline=$((SECONDS + STOP_TIMEOUT)) f
  while :; do
    busy=0
    for i in $(node_indexes); do
      if pid=$(live_pid "$RUN/nodes/$i/nspawn.pid"); then
        kill -TERM "$pid" 2>/dev/null || true
        busy=1
      fi
      live_pid "$RUN/nodes/$i/supervisor.pid" >/dev/null && busy=1
    done
    [ $busy -eq 0 ] && break
    if [ $SECONDS -ge $deadline ]; then
      log "nodes did not stop within $STOP_TIMEOUT s, killing them"
      for i in $(node_indexes); do
        for f in supervisor nspawn init; do
          if pid=$(live_pid "$RUN/nodes/$i/$f.pid"); then kill -KILL "$pid" 2>/dev/null || true; fi
        done
      done
      sleep 0.5
      break
    fi
    sleep 0.3
  done

  if pid=$(live_pid "$RUN/acng.pid"); then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi

  # Unmount the overlays (and anything else below RUN), deepest first.
  local m
  for m in $(findmnt -rn -o TARGET | grep -F "$RUN/" | sort -r); do
    umount "$m" 2>/dev/null || { log "umount $m failed, detaching lazily"; umount -l "$m" || true; }
  done

  # veths vanish with the nodes' network namespaces; remove stragglers, then the bridge.
  for i in $(node_indexes); do
    f=vb-$(node_name "$i" 2>/dev/null || echo none)
    ip link show "$f" >/dev/null 2>&1 && { ip link del "$f" || true; }
  done
  if [ -s "$RUN/bridge" ]; then
    f=$(cat "$RUN/bridge")
    ip link show "$f" >/dev/null 2>&1 && { ip link del "$f" || true; }
  fi

  if findmnt -rn -o TARGET | grep -qF "$RUN/"; then
    die "mounts below $RUN remain, not removing it"
  fi
  rm -rf --one-file-system "$RUN"
  log "run $RUN is down"
}

# ---------------------------------------------------------------- ssh

cmd_ssh() {
  RUN=${1:-}; local i=${2:-}
  check_run
  [ -f "$RUN/nodes/$i/name" ] || die "no node '$i' in $RUN"
  shift 2
  ssh_node "$i" "$@"
}

usage() { sed -n '2,12p' "$SELF" | sed 's/^# \{0,1\}//' >&2; exit 2; }

main() {
  local cmd=${1:-}
  [ $# -gt 0 ] && shift
  case $cmd in
    rootfs) cmd_rootfs ;;
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    ssh) cmd_ssh "$@" ;;
    start) cmd_start "$@" ;;
    _supervise) cmd_supervise "$@" ;;
    *) usage ;;
  esac
}

main "$@"
