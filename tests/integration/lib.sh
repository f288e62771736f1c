# Shared helpers for the integration suites: assertions that count, and a fleet of real booted
# Debian nodes (`nodectl local`, scripts/lib/nodes.sh) that is always torn down, whatever
# happens.
# Each suite: `source lib.sh`, `nodes_up N SUBNET`, run cases, `finish`.
#   check DESC CMD... / pass / fail    one assertion each; finish prints the counts, fails on any FAIL
#   expect_rc[_out], contains[_text], lacks   exit codes and output files (see each below)
#   wait_until SECONDS DESC [!] CMD... polls CMD (output discarded) every WAIT_STEP s (0.2) until it
#                                      succeeds (with !: fails); after SECONDS says on stderr what it
#                                      waited for and returns 1. The one polling loop of the suites.
#   free_port / reachable HOST PORT    a free TCP port on 127.0.0.1 / a TCP connect within 4 s
#   node_binary, node_libs I, put_nodectl I   the nodectl a node runs (static, or dynamic plus its
#                                      libraries) and putting it there
#   write_inventory, use_site_profile, write_hardening_profile, serve_k3s_release,
#   k3s_admin_kubeconfig               inventories, profiles and stand-ins (see each below)
#   cleanup (the EXIT trap)            nodes down, $WORK removed; a suite's own trap calls it last
# Services (MariaDB, s3rver, awscli): lib_services.sh; containerd: lib_ctrd.sh; kill points:
# lib_kill_points.sh; a busybox OCI image: lib_oci.sh.
set -uo pipefail

SRC=${NODECTL_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
NODECTL=${NODECTL:-$SRC/build/nodectl}
DATA=$SRC/tests/integration/data
PASSED=0
FAILED=0
WORK=$(mktemp -d /tmp/nodectl-it.XXXXXX)
# shellcheck source=../../scripts/lib/nodes.sh
source "$SRC/scripts/lib/nodes.sh"

pass() { PASSED=$((PASSED + 1)); echo "ok   - $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL - $*"; }

# check DESCRIPTION COMMAND...: passes when the command succeeds.
check() { local d=$1; shift; if "$@"; then pass "$d"; else fail "$d"; fi; }
# expect_rc DESCRIPTION WANT ACTUAL
expect_rc() { if [ "$3" = "$2" ]; then pass "$1 (exit $3)"; else fail "$1: exit $3, wanted $2"; fi; }
# expect_rc_out DESCRIPTION WANT ACTUAL OUTPUT_FILE: as expect_rc, showing the output on failure
expect_rc_out() {
  if [ "$3" = "$2" ]; then pass "$1 (exit $3)"; else fail "$1: exit $3, wanted $2:"; sed 's/^/      | /' "$4" | tail -25; fi
}
# contains DESCRIPTION FILE PATTERN (extended regex)
contains() {
  if grep -Eq -- "$3" "$2"; then pass "$1"; else fail "$1: /$3/ not in $2:"; sed 's/^/      | /' "$2" | head -40; fi
}
# contains_text DESCRIPTION FILE TEXT (fixed string)
contains_text() {
  if grep -Fq -- "$3" "$2"; then pass "$1"; else fail "$1: '$3' not in $2:"; sed 's/^/      | /' "$2" | head -40; fi
}
lacks() {
  if grep -Eq -- "$3" "$2"; then fail "$1: /$3/ found in $2:"; grep -En -- "$3" "$2" | head -5 | sed 's/^/      | /'; else pass "$1"; fi
}

# wait_until SECONDS DESCRIPTION [!] COMMAND...: true once COMMAND succeeds (with `!`: once it
# fails), polled every WAIT_STEP seconds (default 0.2; a race that needs it sets a shorter one) for
# at most SECONDS of wall time; on timeout it says what it waited for (stderr) and returns 1.
wait_until() {
  local secs=$1 what=$2 want=0 end
  shift 2
  [ "$1" = "!" ] && { want=1; shift; }
  end=$((${EPOCHREALTIME//[!0-9]/} + secs * 1000000))
  while true; do
    "$@" >/dev/null 2>&1
    [ $(($? != 0)) = "$want" ] && return 0
    if [ "${EPOCHREALTIME//[!0-9]/}" -ge "$end" ]; then
      echo "# gave up after $secs s waiting for $what" >&2
      return 1
    fi
    sleep "${WAIT_STEP:-0.2}"
  done
}

cleanup() {
  local rc=$?
  nodes_down
  [ -n "$RELEASE_PID" ] && kill "$RELEASE_PID" 2>/dev/null
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# serve_k3s_release: no k3s binary can be had here, so a release-shaped directory for
# K3S_VERSION whose "k3s" is a stand-in that only fails, served on loopback by
# data/release_server.py. Sets REL, PORT, WANT_SHA (the stand-in's sha256) and K3S_FROM_TEST_RELEASE
# (the [k3s] lines that take the stable channel from it); the server stops with the suite.
K3S_VERSION=v1.30.6+k3s1
RELEASE_PID=""
serve_k3s_release() {
  REL=$WORK/release
  mkdir -p "$REL/$K3S_VERSION"
  printf '#!/bin/sh\necho "stand-in for k3s in nodectl tests: not a k3s binary" >&2\nexit 1\n' >"$REL/$K3S_VERSION/k3s"
  (cd "$REL/$K3S_VERSION" && sha256sum k3s >sha256sum-amd64.txt)
  WANT_SHA=$(sha256sum "$REL/$K3S_VERSION/k3s" | cut -d' ' -f1)
  coproc RS { exec python3 "$DATA/release_server.py" --root "$REL" --channel "stable=$K3S_VERSION"; }
  RELEASE_PID=$RS_PID
  read -r PORT <&"${RS[0]}"
  K3S_FROM_TEST_RELEASE="channel = \"stable\"
release_url = \"http://127.0.0.1:$PORT/releases/download\"
channel_url = \"http://127.0.0.1:$PORT/channels\"
allow_insecure_http = true  # the test release server is plain http on loopback"
}

# k3s_admin_kubeconfig OUT: what a k3s server writes as its admin kubeconfig (k3s itself cannot
# run here): k3s's layout, a real CA ($WORK/ca.crt, .key) and a client certificate it signed
# ($WORK/admin.crt, .key), server https://127.0.0.1:6443, everything named "default".
k3s_admin_kubeconfig() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=k3s-server-ca" -keyout "$WORK/ca.key" -out "$WORK/ca.crt" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj "/O=system:masters/CN=system:admin" -keyout "$WORK/admin.key" -out "$WORK/admin.csr" 2>/dev/null
  openssl x509 -req -in "$WORK/admin.csr" -CA "$WORK/ca.crt" -CAkey "$WORK/ca.key" -CAcreateserial -days 2 \
    -out "$WORK/admin.crt" 2>/dev/null
  cat >"$1" <<YAML
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: $(base64 -w0 "$WORK/ca.crt")
    server: https://127.0.0.1:6443
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {}
users:
- name: default
  user:
    client-certificate-data: $(base64 -w0 "$WORK/admin.crt")
    client-key-data: $(base64 -w0 "$WORK/admin.key")
YAML
}

# free_port: a TCP port on 127.0.0.1 nothing listens on right now.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# reachable HOST PORT: a TCP connection to HOST:PORT is accepted within 4 s.
reachable() { timeout 4 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null; }

# inventory FILE [extra host lines]: an inventory of all nodes with the run's key.
write_inventory() {
  local file=$1 i=1
  {
    echo "[defaults]"
    echo "identity = \"$NODECTL_TEST_KEY\""
    for a in "${ADDRS[@]}"; do
      printf '\n[[hosts]]\nname = "node%d"\naddress = "%s"\nvars = { idx = "%d", apt_proxy = "%s" }\n' \
        "$i" "$a" "$i" "$NODECTL_TEST_APT_PROXY"
      i=$((i + 1))
    done
  } >"$file"
}

# use_site_profile: the full test profile and an inventory of all nodes in $WORK; sets INV and KH.
use_site_profile() {
  INV=$WORK/inventory.toml
  write_inventory "$INV"
  cp "$DATA/site.toml" "$DATA/uploaded.conf" "$WORK/"
  KH=(--known-hosts "$NODECTL_TEST_KNOWN_HOSTS")
}

# write_hardening_profile FILE [with-aide]: every hardening group on (AIDE only with `with-aide`),
# the run's key for the admin user, a 60 s rollback, apt through the run's proxy (the hardening
# suites' common profile).
write_hardening_profile() {
  cat >"$1" <<EOF
[base]
apt_proxy = "$NODECTL_TEST_APT_PROXY"

[harden]
rollback_seconds = 60

[harden.accounts]
admin_keys = ["$(cat "$NODECTL_TEST_KEY.pub")"]
EOF
  # AIDE's package alone costs about 90 s of CPU per node (aide-common's postinst registers 220
  # files with ucf, one by one): only the suites that test it (test_harden, test_trixie) install it.
  [ "${2:-}" = with-aide ] || printf '\n[harden.services]\naide = false\n' >>"$1"
}

# site_backup NAME [BACKUP_LINES] [TARGET_LINES]: prints a [backup] table that keeps a node's
# /srv/site in /var/backups/nodectl on the node itself (target "local"); BACKUP_LINES go into
# [backup], TARGET_LINES into the target.
site_backup() {
  printf '[backup]\nname = "%s"\n' "$1"
  [ -z "${2:-}" ] || printf '%s\n' "$2"
  printf '[[backup.files]]\npath = "/srv/site"\n'
  printf '[[backup.targets]]\nname = "local"\npath = "/var/backups/nodectl"\nmin_free_mib = 1\n'
  [ -z "${3:-}" ] || printf '%s\n' "$3"
}

# harden_only GROUP [HARDEN_LINES] [GROUP_LINES]: prints a [harden] table in which only GROUP
# (ssh accounts kernel firewall services filesystem) is on; HARDEN_LINES go into [harden] (for
# example "rollback_seconds = 40"), GROUP_LINES into [harden.GROUP].
harden_only() {
  local only=$1 top=${2:-} own=${3:-} group
  printf '[harden]\n'
  [ -z "$top" ] || printf '%s\n' "$top"
  for group in ssh accounts kernel firewall services filesystem; do
    if [ "$group" != "$only" ]; then
      printf '[harden.%s]\nenabled = false\n' "$group"
    elif [ -n "$own" ]; then
      printf '[harden.%s]\n%s\n' "$group" "$own"
    fi
  done
}

# node_binary: the nodectl the nodes run, NODE_BIN: the static release binary ($NODECTL_STATIC_BIN,
# default build/static/nodectl) or, when there is none, $NODECTL stripped, whose shared libraries
# (NODE_LIBS, Debian's packages) node_libs or put_nodectl then install on the node first
# (NODE_NEEDS_LIBS=1).
NODE_LIBS="libssh-4 libcurl4 libarchive13 libyaml-cpp0.7"
node_binary() {
  NODE_BIN=${NODECTL_STATIC_BIN:-$SRC/build/static/nodectl}
  NODE_NEEDS_LIBS=0
  if [ ! -x "$NODE_BIN" ]; then
    echo "note: no static binary ($NODE_BIN); using $NODECTL and installing its shared libraries on the nodes"
    strip -o "$WORK/nodectl" "$NODECTL" && NODE_BIN=$WORK/nodectl
    NODE_NEEDS_LIBS=1
  fi
}

# node_libs I: when NODE_BIN needs them, its shared libraries on node I (through the apt proxy,
# which is removed again).
node_libs() {
  [ "$NODE_NEEDS_LIBS" = 1 ] || return 0
  node "$1" "echo 'Acquire::http::Proxy \"$NODECTL_TEST_APT_PROXY\";' >/etc/apt/apt.conf.d/00test-proxy &&
           apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
           $NODE_LIBS >/dev/null && rm /etc/apt/apt.conf.d/00test-proxy" \
    >"$WORK/libs$1.out" 2>&1 || { fail "node $1: installing the dynamic binary's libraries"; cat "$WORK/libs$1.out"; }
}

# put_nodectl I: NODE_BIN (node_binary) as /root/nodectl on node I, after its libraries (node_libs).
put_nodectl() {
  node_libs "$1"
  node "$1" "cat >/root/nodectl && chmod 755 /root/nodectl" <"$NODE_BIN"
}

# nodectl ARGS...: the binary under test, with the run's known_hosts.
nodectl() { "$NODECTL" "$@"; }

finish() {
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}
