# Booted Debian nodes for the integration suites, the demo and the benchmarks, made with
# `nodectl local` (the product's own way to make nodes, so every suite exercises it), plus what
# only they need: an apt proxy on the bridge (the nodes reach nothing else), the init pid of a node
# (to cut its power) and the removal of a stale environment.
# Sourced with SRC (the repository), NODECTL (the binary) and WORK (a temporary directory) set;
# tests/integration/lib.sh does it for the suites.
#
# Environments are named after their subnet (198.18.3 -> it-18-3) and live in their own state
# root, $NODECTL_LOCAL_STATE_DIR (default build/testcache/envs), so they never mix with a user's
# environments in /var/lib/nodectl/local. The root filesystems are nodectl local's own cache in
# $NODECTL_LOCAL_CACHE_DIR (default build/testcache), one per Debian release.

TEST_CACHE=${NODECTL_TEST_CACHE:-$SRC/build/testcache}
export NODECTL_LOCAL_CACHE_DIR=${NODECTL_LOCAL_CACHE_DIR:-$TEST_CACHE}
export NODECTL_LOCAL_STATE_DIR=${NODECTL_LOCAL_STATE_DIR:-$TEST_CACHE/envs}
ENV_NAME=""       # the suite's environment, once nodes_up made it
ENV_NODES=0
ENV_SUBNET=""
ACNG_PORT=3142
ACNG_PID=""

# "PID STARTTIME" of a process: identifies it even after its pid is reused.
proc_id() { local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1; s=${s##*) }; set -- $s; echo "$1 ${20}"; }

# The node root filesystem of the suite's release ($NODECTL_TEST_SUITE: bookworm, trixie, bullseye) (nodectl local's cache; built once).
test_rootfs() { "$NODECTL" local rootfs --suite "${NODECTL_TEST_SUITE:-bookworm}"; }

# A stale environment NAME (its suite was killed before it could clean up, e.g. by ctest's
# timeout) is removed; one whose owner still runs is left alone (returns 1).
reclaim_env() {
  local name=$1 owner=$TEST_CACHE/owners/$1
  [ -d "$NODECTL_LOCAL_STATE_DIR/$name" ] || return 0
  if [ -s "$owner" ] && [ "$(proc_id "$(cut -d' ' -f1 "$owner")" 2>/dev/null)" = "$(cat "$owner")" ]; then
    return 1
  fi
  echo "nodes_up: environment $name outlived its suite; removing it" >&2
  "$NODECTL" local down "$name" >&2
}

# nodes_up N SUBNET: boots N nodes on SUBNET.0/24 (e.g. 198.18.3) and sets the suite's variables:
# ADDRS, NODECTL_TEST_KEY, NODECTL_TEST_KNOWN_HOSTS, NODECTL_TEST_GATEWAY, NODECTL_TEST_APT_PROXY
# (an apt-cacher-ng on the bridge: nodes reach nothing else), NODECTL_TEST_PID_I (node I's init,
# to cut its power) and NODECTL_TEST_ROOT_I (its root filesystem, readable from this machine).
# Nodes are named it-18-3-1, ... . When something else on this machine holds the subnet, the
# suite's twin in 198.19/16 is used (no suite uses those); suites that name addresses of their
# subnet only use unreachable ones.
nodes_up() {
  local n=$1 net name rc=1
  test_rootfs >"$WORK/rootfs.path" || { echo "cannot build the node rootfs" >&2; exit 1; }
  mkdir -p "$TEST_CACHE/owners"
  for net in "$2" "${2/198.18./198.19.}"; do
    name=it-${net#198.}
    name=${name//./-}
    reclaim_env "$name" || { echo "nodes_up: $name belongs to a running suite" >&2; continue; }
    proc_id $$ >"$TEST_CACHE/owners/$name"
    ENV_NAME=$name ENV_NODES=$n ENV_SUBNET=$net
    rc=0
    local_up >"$WORK/local-up.log" 2>&1 || rc=$?
    [ "$rc" -eq 0 ] && break
    if grep -q "overlaps" "$WORK/local-up.log" && [ "$net" = "$2" ]; then
      rm -f "$TEST_CACHE/owners/$name"
      echo "nodes_up: $net.0/24 is in use here; using ${net/198.18./198.19.}.0/24" >&2
      continue
    fi
    break
  done
  if [ "$rc" -ne 0 ]; then
    sed 's/^/  | /' "$WORK/local-up.log" >&2
    echo "cannot boot test nodes" >&2
    exit 1
  fi
  local dir=$NODECTL_LOCAL_STATE_DIR/$ENV_NAME i
  NODECTL_TEST_KEY=$dir/id_ed25519
  NODECTL_TEST_KNOWN_HOSTS=$dir/known_hosts
  NODECTL_TEST_GATEWAY=$ENV_SUBNET.1
  NODECTL_TEST_APT_PROXY=http://$ENV_SUBNET.1:$ACNG_PORT
  ADDRS=()
  for ((i = 1; i <= n; i++)); do
    ADDRS+=("$ENV_SUBNET.$((1 + i))")
    printf -v "NODECTL_TEST_ROOT_$i" '%s' "$dir/nodes/$i/root"
  done
  start_acng
  reload_env
}

# `nodectl local up` of the suite's environment (again: boots the nodes that are not running).
# Extra arguments go to `up` (--bind DEV). With SYSTEMD_NSPAWN_API_VFS_WRITABLE=1 networkd waits
# for a udev the node does not have and never configures host0: the address is set from outside.
local_up() {
  local args=("$ENV_NAME" --nodes "$ENV_NODES" --subnet "$ENV_SUBNET.0/24" --suite "${NODECTL_TEST_SUITE:-bookworm}" --boot-timeout 180 "$@")
  if [ -z "${SYSTEMD_NSPAWN_API_VFS_WRITABLE:-}" ]; then
    "$NODECTL" local up "${args[@]}"
    return
  fi
  "$NODECTL" local up "${args[@]}" &
  local up=$! i pid done_=() deadline=$((SECONDS + 180))
  while kill -0 "$up" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
    for ((i = 1; i <= ENV_NODES; i++)); do
      [ -n "${done_[$i]:-}" ] && continue
      pid=$(node_init_pid "$i") || continue
      if nsenter -t "$pid" -n ip link show host0 >/dev/null 2>&1; then
        nsenter -t "$pid" -n ip addr replace "$ENV_SUBNET.$((1 + i))/24" dev host0 &&
          nsenter -t "$pid" -n ip link set host0 up && done_[$i]=1
      fi
    done
    sleep 0.2
  done
  wait "$up"
}

# The pid (on this machine) of node I's init: the child of its systemd-nspawn whose innermost pid
# is 1.
node_init_pid() {
  local root=$NODECTL_LOCAL_STATE_DIR/$ENV_NAME/nodes/$1/root nspawn child
  for nspawn in $(pgrep -x systemd-nspawn); do
    tr '\0' '\n' <"/proc/$nspawn/cmdline" 2>/dev/null | grep -qxF -- "--directory=$root" || continue
    for child in $(pgrep -P "$nspawn"); do
      if awk '/^NSpid:/ { exit !(NF > 2 && $NF == 1) }' "/proc/$child/status" 2>/dev/null; then
        echo "$child"
        return 0
      fi
    done
  done
  return 1
}

# Reads the nodes' init pids again (after a node was booted again).
reload_env() {
  local i
  for ((i = 1; i <= ENV_NODES; i++)); do
    printf -v "NODECTL_TEST_PID_$i" '%s' "$(node_init_pid "$i" || true)"
  done
}

# node_start I [--bind SOURCE]...: boots node I again after its power was cut (kill -KILL of its
# init), with the given devices bound in, and waits until it answers SSH.
node_start() {
  local i=$1 t
  shift
  # Its systemd-nspawn must have gone first, or `up` would take the node for running.
  for ((t = 0; t < 300; t++)); do
    pgrep -x systemd-nspawn | while read -r p; do tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null; done |
      grep -qxF -- "--directory=$NODECTL_LOCAL_STATE_DIR/$ENV_NAME/nodes/$i/root" || break
    sleep 0.1
  done
  local_up "$@" >"$WORK/local-up.log" 2>&1 || { sed 's/^/  | /' "$WORK/local-up.log" >&2; return 1; }
  reload_env
}

# node I CMD...: runs a command on node I as root (the test's own ssh, not nodectl).
node() {
  local i=$1
  shift
  ssh -F /dev/null -i "$NODECTL_TEST_KEY" -o IdentitiesOnly=yes -o BatchMode=yes \
    -o UserKnownHostsFile="$NODECTL_TEST_KNOWN_HOSTS" -o GlobalKnownHostsFile=/dev/null \
    -o StrictHostKeyChecking=yes -o ConnectTimeout=3 -o LogLevel=ERROR "root@${ADDRS[$((i - 1))]}" "$@"
}

# An apt-cacher-ng on the bridge address: the nodes' only way to Debian's archive (nodectl writes
# the nodes' proxy setting from [base] apt_proxy). Its cache is shared between runs, one
# apt-cacher-ng at a time (the lock is held as long as the daemon runs); a concurrent suite gets a
# private cache.
start_acng() {
  local acng=$WORK/acng cache lockfd
  mkdir -p "$acng/log"
  cp -a /etc/apt-cacher-ng "$acng/conf"
  echo "http://deb.debian.org/debian/" >"$acng/conf/backends_debian"   # the package's list does not resolve here
  exec {lockfd}>"$TEST_CACHE/apt-cacher-ng.lock"
  if flock -n "$lockfd"; then
    cache=$TEST_CACHE/apt-cacher-ng
  else
    echo "nodes_up: the shared apt cache is busy (another suite); using a private one" >&2
    cache=$acng/cache
  fi
  mkdir -p "$cache"
  cat >"$acng/conf/zzz_nodectl_test.conf" <<EOF
CacheDir: $cache
LogDir: $acng/log
Port: $ACNG_PORT
BindAddress: $NODECTL_TEST_GATEWAY
PidFile: $acng/acng.pid
SocketPath: $acng/socket
ForeGround: 1
EOF
  setsid apt-cacher-ng -c "$acng/conf" </dev/null >>"$acng/out.log" 2>&1 &
  ACNG_PID=$!
  exec {lockfd}>&-
  local deadline=$((SECONDS + 10))
  until (exec 3<>"/dev/tcp/$NODECTL_TEST_GATEWAY/$ACNG_PORT") 2>/dev/null; do
    if ! kill -0 "$ACNG_PID" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
      cat "$acng/out.log" "$acng"/log/*.err >&2 2>/dev/null
      echo "apt-cacher-ng does not listen on $NODECTL_TEST_GATEWAY:$ACNG_PORT" >&2
      exit 1
    fi
    sleep 0.2
  done
}

# Removes the suite's environment and stops its apt proxy (the EXIT trap; safe to call twice).
nodes_down() {
  if [ -n "$ACNG_PID" ]; then
    kill -TERM "$ACNG_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$ACNG_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$ACNG_PID" 2>/dev/null || true
    ACNG_PID=""
  fi
  if [ -n "$ENV_NAME" ]; then
    "$NODECTL" local down "$ENV_NAME" >/dev/null 2>&1 || "$NODECTL" local down "$ENV_NAME" >&2
    rm -f "$TEST_CACHE/owners/$ENV_NAME"
    ENV_NAME=""
  fi
  true
}
