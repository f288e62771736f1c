#!/usr/bin/env bash
# A first hardening apply, side by side with dev-sec's Ansible hardening collection, on identical
# fresh Debian 12 nodes, one after the other in each round (never two at once). Results:
# docs/benchmarks.md ("First hardening apply against dev-sec").
#
#   scripts/bench/harden_devsec.sh DEVSEC_TARBALL PLAY [ROUNDS]     (as root; ROUNDS default 3)
#
# DEVSEC_TARBALL is the dev-sec `devsec.hardening` collection as a tarball of
# ansible_collections/devsec/hardening (Apache-2.0, github.com/dev-sec/ansible-collection-hardening),
# PLAY the playbook to run with it (os_hardening + ssh_hardening). Neither is part of this
# repository; it is unpacked into a temporary directory and never copied here.
#
# Each round boots three fresh nodes from the same root filesystem and times, on one node each:
#   nodectl, full      profiles/hardened.toml as shipped (more than dev-sec does: nftables
#                      firewall, auditd, fail2ban, unattended-upgrades, AppArmor, AIDE);
#   nodectl, same scope  the same profile with what dev-sec's play does not install or manage
#                      turned off (firewall, auditd, fail2ban, unattended-upgrades, AppArmor, AIDE);
#   dev-sec            ansible-playbook PLAY, root over SSH, pipelining on.
# Ansible needs python3-apt on its node, and ssh_hardening every Debian host key type: both before
# the clock starts. apt goes through the
# same apt-cacher-ng for all three (warmed by a first round that is not counted, unless WARMUP=0).
# The nodes are booted with SYSTEMD_NSPAWN_API_VFS_WRITABLE=1, as the dev-sec figures were measured:
# dev-sec's sysctl role reloads its whole file and fails on the first key a read-only /proc/sys
# refuses (fs.protected_hardlinks, kernel.randomize_va_space, ...). A node shares this machine's
# kernel, so **this changes the kernel sysctl values of the machine the benchmark runs on**: run
# it on a throw-away machine (as scripts/bench/harden.sh). Those that can be are put back at exit.
# Traffic goes only to the nodes this script boots (198.18.24.0/24) and to loopback.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
[ $# -ge 2 ] || { echo "usage: $0 DEVSEC_TARBALL PLAY [ROUNDS]" >&2; exit 2; }
TARBALL=$(realpath "$1")
PLAY_SRC=$(realpath "$2")
ROUNDS=${3:-3}
cd "$REPO"
source scripts/bench/harden_lib.sh
bench_start
devsec_setup "$TARBALL" "$PLAY_SRC"

printf 'extends = "%s"\n\n[harden.firewall]\nenabled = false\n\n[harden.services]\nauditd = false\nfail2ban = false\nunattended_upgrades = false\napparmor = false\naide = false\n' \
  "$REPO/profiles/hardened.toml" >"$WORK/same-scope.toml"

# round N: fresh nodes, the three runs one after the other; prints "nodectl-full same-scope devsec".
round() {
  trap nodes_down EXIT  # a round runs in a subshell: its nodes and apt proxy go with it, even on failure
  SYSTEMD_NSPAWN_API_VFS_WRITABLE=1 nodes_up 3 198.18.24
  for i in 1 2 3; do node "$i" "systemctl stop apt-daily.timer apt-daily-upgrade.timer apt-daily.service apt-daily-upgrade.service"; done
  local t full scope devsec
  inventory "$WORK/inv1.toml" root 1
  t=$(now)
  "$NODECTL" apply -p profiles/hardened.toml -i "$WORK/inv1.toml" --known-hosts "$NODECTL_TEST_KNOWN_HOSTS" \
    --log-level warn >"$WORK/full-$1.log" 2>&1 || { cat "$WORK/full-$1.log" >&2; exit 1; }
  full=$(seconds_since "$t")
  inventory "$WORK/inv2.toml" root 2
  t=$(now)
  "$NODECTL" apply -p "$WORK/same-scope.toml" -i "$WORK/inv2.toml" --known-hosts "$NODECTL_TEST_KNOWN_HOSTS" \
    --log-level warn >"$WORK/scope-$1.log" 2>&1 || { cat "$WORK/scope-$1.log" >&2; exit 1; }
  scope=$(seconds_since "$t")
  devsec_node 3
  t=$(now)
  devsec_run "$WORK/devsec-$1.log" || exit 1
  devsec=$(seconds_since "$t")
  nodes_down
  echo "$full $scope $devsec"
}

if [ "${WARMUP:-1}" = 1 ]; then
  echo "# warm-up round (fills the apt cache; not counted; WARMUP=0 skips it when the cache is warm)"
  (round 0) >/dev/null  # a subshell, as the counted rounds: its EXIT trap is its own
fi
: >"$WORK/rounds"
for r in $(seq 1 "$ROUNDS"); do
  line=$(round "$r")
  echo "round $r: nodectl full $(cut -d' ' -f1 <<<"$line") s, nodectl same scope $(cut -d' ' -f2 <<<"$line") s, dev-sec $(cut -d' ' -f3 <<<"$line") s"
  echo "$line" >>"$WORK/rounds"
done
python3 - "$WORK/rounds" <<'PY'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
full, scope, devsec = (statistics.median(c) for c in zip(*rows))
print("\n| first apply on a fresh Debian 12 node | median | min | max |\n|---|---:|---:|---:|")
for name, i in (("nodectl, profiles/hardened.toml (full)", 0), ("nodectl, same scope as dev-sec's play", 1), ("dev-sec os_hardening + ssh_hardening", 2)):
    col = [r[i] for r in rows]
    print(f"| {name} | {statistics.median(col):.1f} s | {min(col):.1f} s | {max(col):.1f} s |")
print(f"\nnodectl / dev-sec (medians, {len(rows)} rounds): full {full / devsec:.2f}, same scope {scope / devsec:.2f}")
PY
