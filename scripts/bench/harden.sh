#!/usr/bin/env bash
# Benchmarks hardening on real booted Debian 12 nodes: Lynis hardening index and ssh-audit
# before and after `nodectl apply -p profiles/hardened.toml`, and the wall time of a first apply,
# a no-change re-apply and a check, on 1 node and on 4 nodes. Results: docs/benchmarks.md.
#
#   scripts/bench/harden.sh [RUNS]      (as root; RUNS no-change runs per case, default 10)
#
# The nodes are booted with SYSTEMD_NSPAWN_API_VFS_WRITABLE=1 so that sysctl values can take
# effect (Lynis checks them). That changes the sysctl values of this machine's own kernel: run it
# on a throw-away machine only, or set NODECTL_BENCH_READONLY_SYSCTL=1 to leave /proc/sys alone
# (kernel.* values are then "not applicable" and Lynis scores them as not hardened). The values
# that can be are put back at exit.
# Traffic goes only to the nodes this script boots (198.18.23.0/24) and to loopback.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RUNS=${1:-10}
cd "$REPO"
source scripts/bench/harden_lib.sh
bench_start
if [ "${NODECTL_BENCH_READONLY_SYSCTL:-0}" = 1 ]; then
  nodes_up 5 198.18.23
else
  SYSTEMD_NSPAWN_API_VFS_WRITABLE=1 nodes_up 5 198.18.23
fi
OUT=$WORK/bench
mkdir -p "$OUT"

inventory "$OUT/root1.toml" root 1
inventory "$OUT/root4.toml" root 2 3 4 5
inventory "$OUT/admin1.toml" admin 1
inventory "$OUT/admin4.toml" admin 2 3 4 5
NC=(-p profiles/hardened.toml --known-hosts "$NODECTL_TEST_KNOWN_HOSTS" --log-level warn)

lynis_index() {  # lynis_index I TAG: runs Lynis on node I as root (before) or through admin (after)
  node_run "$1" "lynis audit system --quick --no-colors >/root/lynis-$2.out 2>&1; grep -E '^hardening_index=' /var/log/lynis-report.dat | cut -d= -f2" |
    tee "$OUT/lynis-$2.index"
  node_run "$1" "grep -E '^(suggestion|warning)\[\]' /var/log/lynis-report.dat | cut -d'|' -f1-2 | sort" >"$OUT/lynis-$2.suggestions"
}
node_run() {  # as root before hardening, as admin with sudo afterwards
  if node "$1" true 2>/dev/null; then node "$1" "$2"; else
    ssh -F /dev/null -i "$NODECTL_TEST_KEY" -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile="$NODECTL_TEST_KNOWN_HOSTS" \
      -o StrictHostKeyChecking=yes "admin@${ADDRS[$(($1-1))]}" "sudo -n sh -c $(printf '%q' "$2")"
  fi
}
audit_lines() { ssh-audit -n "$1" 2>&1 | grep -cE '\[(fail|warn)\]' || true; }

echo "# Lynis on the nodes, and a warm apt cache (every node's first apply then measures nodectl, not downloads)"
for i in 1 2 3 4 5; do
  node "$i" "printf 'Acquire::http::Proxy \"%s\";\n' $NODECTL_TEST_APT_PROXY >/etc/apt/apt.conf.d/01bench-proxy &&
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq lynis >/dev/null" &
done
wait
pkgs=$("$NODECTL" plan "${NC[@]}" -i "$OUT/root1.toml" 2>/dev/null | sed -n 's/^ *install //p' | head -n 1)
node 1 "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --download-only $pkgs >/dev/null && apt-get clean"

echo "# before"
lynis_before=$(lynis_index 1 before)
audit_before=$(audit_lines "${ADDRS[0]}")

echo "# first apply: 1 node, then 4 nodes (each a single run: a first apply happens once per node)"
/usr/bin/time -f %e -o "$OUT/first1.s" "$NODECTL" apply "${NC[@]}" -i "$OUT/root1.toml" >"$OUT/first1.out"
/usr/bin/time -f %e -o "$OUT/first4.s" "$NODECTL" apply "${NC[@]}" -i "$OUT/root4.toml" >"$OUT/first4.out"
grep -q "4 ok, 0 failed" "$OUT/first4.out" && grep -q "1 ok, 0 failed" "$OUT/first1.out"

echo "# no-change re-apply and check ($RUNS runs each)"
hyperfine -N --runs "$RUNS" --warmup 1 --export-json "$OUT/rerun.json" \
  -n "re-apply, 1 node" "$NODECTL apply ${NC[*]} -i $OUT/admin1.toml" \
  -n "re-apply, 4 nodes" "$NODECTL apply ${NC[*]} -i $OUT/admin4.toml" \
  -n "check, 1 node" "$NODECTL check ${NC[*]} -i $OUT/admin1.toml" \
  -n "check, 4 nodes" "$NODECTL check ${NC[*]} -i $OUT/admin4.toml" >/dev/null
"$NODECTL" apply "${NC[@]}" -i "$OUT/admin4.toml" | grep -q "0 changed"   # really no change

echo "# after"
lynis_after=$(lynis_index 1 after)
audit_after=$(audit_lines "${ADDRS[0]}")
"$NODECTL" check "${NC[@]}" -i "$OUT/admin1.toml" >"$OUT/check.out" || true

echo
echo "| measure | result |"
echo "|---|---|"
echo "| Lynis hardening index, node 1 | $lynis_before -> $lynis_after |"
echo "| ssh-audit [fail]+[warn] lines | $audit_before -> $audit_after |"
echo "| first apply, 1 node | $(cat "$OUT/first1.s") s |"
echo "| first apply, 4 nodes | $(cat "$OUT/first4.s") s |"
python3 - "$OUT/rerun.json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(f"| {r['command']} (median of {len(r['times'])}) | {r['median']:.2f} s (min {r['min']:.2f}, max {r['max']:.2f}) |")
PY
echo
echo "check summary: $(grep -E '^== ' "$OUT/check.out")"
echo "ssh-audit notes left:"; ssh-audit -n "${ADDRS[0]}" 2>&1 | grep -E '\[(fail|warn)\]' || true
echo "Lynis suggestions left:"; cat "$OUT/lynis-after.suggestions"
