# Shared helpers for the integration suites: assertions that count, and a fleet of real booted
# Debian nodes (scripts/testnodes.sh) that is always torn down, whatever happens.
# Each suite: `source lib.sh`, `nodes_up N SUBNET`, run cases, `finish`.
set -uo pipefail

SRC=${NODECTL_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
NODECTL=${NODECTL:-$SRC/build/nodectl}
DATA=$SRC/tests/integration/data
TESTNODES=$SRC/scripts/testnodes.sh
PASSED=0
FAILED=0
RUN=""
WORK=$(mktemp -d /tmp/nodectl-it.XXXXXX)

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

cleanup() {
  local rc=$?
  if [ -n "$RUN" ]; then "$TESTNODES" down "$RUN" >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# nodes_up N SUBNET: boots N nodes on SUBNET (e.g. 198.18.3) and loads their env.
nodes_up() {
  "$TESTNODES" rootfs >&2 || { echo "cannot build the node rootfs" >&2; exit 1; }
  local rc=0
  RUN=$("$TESTNODES" up "$1" --subnet "$2" --owner $$) || rc=$?
  if [ "$rc" -eq 3 ] && [[ $2 == 198.18.* ]]; then
    # Something else on this host holds the suite's subnet: its twin in 198.19/16 (no suite uses
    # those as node subnets). Suites that name addresses of their subnet only use unreachable ones.
    echo "nodes_up: $2.0/24 is in use here; using ${2/198.18./198.19.}.0/24" >&2
    rc=0
    RUN=$("$TESTNODES" up "$1" --subnet "${2/198.18./198.19.}" --owner $$) || rc=$?
  fi
  [ "$rc" -eq 0 ] || { echo "cannot boot test nodes" >&2; exit 1; }
  # shellcheck disable=SC1091
  source "$RUN/env"
  read -r -a ADDRS <<<"$NODECTL_TEST_ADDRS"
}
reload_env() { source "$RUN/env"; }

# free_port: a TCP port on 127.0.0.1 nothing listens on right now.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# node I CMD...: run a command on node I as root (with the test's own ssh, not nodectl).
node() { local i=$1; shift; "$TESTNODES" ssh "$RUN" "$i" "$@"; }

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

# write_hardening_profile FILE: every hardening group on, the run's key for the admin user, a 60 s
# rollback, apt through the run's proxy (the hardening suites' common profile).
write_hardening_profile() {
  cat >"$1" <<EOF
[base]
apt_proxy = "$NODECTL_TEST_APT_PROXY"

[harden]
rollback_seconds = 60

[harden.accounts]
admin_keys = ["$(cat "$NODECTL_TEST_KEY.pub")"]
EOF
}

# nodectl ARGS...: the binary under test, with the run's known_hosts.
nodectl() { "$NODECTL" "$@"; }

finish() {
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}
