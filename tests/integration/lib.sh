# Shared helpers for the integration suites: assertions that count, and a fleet of real booted
# Debian nodes (`nodectl local`, scripts/lib/nodes.sh) that is always torn down, whatever
# happens.
# Each suite: `source lib.sh`, `nodes_up N SUBNET`, run cases, `finish`.
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

cleanup() {
  local rc=$?
  nodes_down
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free_port: a TCP port on 127.0.0.1 nothing listens on right now.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

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
