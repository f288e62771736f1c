#!/usr/bin/env bash
# The no-change re-apply of profiles/hardened.toml side by side with dev-sec's no-change re-run
# (issue 20): nodectl on 1 node and on 8 nodes at once, dev-sec's Ansible collection on 1 node,
# all identical Debian 12 nodes booted together. Results: docs/benchmarks.md ("No-change re-apply
# against dev-sec").
#
#   scripts/bench/harden_reapply.sh DEVSEC_TARBALL PLAY [ROUNDS] [RUNS]     (as root)
#
# DEVSEC_TARBALL and PLAY as for harden_devsec.sh (unpacked into a temporary directory, never
# copied into this repository). Ten nodes on 198.18.25.0/24: node 1 (nodectl alone), nodes 2-9
# (nodectl, the eight), node 10 (dev-sec). Each is converged once first (not timed). Then ROUNDS
# rounds (default 5), each with RUNS (default 2) no-change `nodectl apply` on node 1, RUNS on
# nodes 2-9 and one no-change dev-sec run on node 10, so that a change in this machine's load
# (other jobs) reaches all three cases alike. Each run records its wall time, the CPU time of
# nodectl (or ansible-playbook and its ssh clients), the CPU time of the nodes' own processes
# (everything in their pid namespaces: sshd, sudo, the probes, journald), and the load average.
# NODECTL_BASELINE=PATH adds the same nodectl runs with another build (main's, say) to each round;
# its config sets' activation scripts must be this build's (the activation stamp records them, so
# two builds that differ there would each re-activate what the other activated).
#
# The nodes get a writable /proc/sys (dev-sec's sysctl role fails without one), as in
# harden_devsec.sh: this machine's kernel values change while it runs, and those that can be are
# put back at exit. The nodes share that kernel, so its kernel.* and fs.* values are one for all
# of them: the one both tools set differently (fs.protected_fifos, nodectl 2, dev-sec 1) is given
# nodectl's value on dev-sec's side too (its own `sysctl_overwrite`), or every run of each would
# undo the other's and none would be a no-change run.
# Traffic goes only to the nodes (198.18.25.0/24) and to loopback.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
[ $# -ge 2 ] || { echo "usage: $0 DEVSEC_TARBALL PLAY [ROUNDS] [RUNS]" >&2; exit 2; }
TARBALL=$(realpath "$1")
PLAY_SRC=$(realpath "$2")
ROUNDS=${3:-5}
RUNS=${4:-2}
BASELINE=${NODECTL_BASELINE:+$(realpath "$NODECTL_BASELINE")}
cd "$REPO"
source scripts/bench/harden_lib.sh
bench_start
devsec_setup "$TARBALL" "$PLAY_SRC"
SYSTEMD_NSPAWN_API_VFS_WRITABLE=1 nodes_up 10 198.18.25
for i in $(seq 1 10); do
  node "$i" "systemctl stop apt-daily.timer apt-daily-upgrade.timer apt-daily.service apt-daily-upgrade.service"
done
inventory "$WORK/root.toml" root 1 2 3 4 5 6 7 8 9
inventory "$WORK/one.toml" admin 1
inventory "$WORK/eight.toml" admin 2 3 4 5 6 7 8 9
NC=(-p profiles/hardened.toml --known-hosts "$NODECTL_TEST_KNOWN_HOSTS")
pids() { local i; for i in "$@"; do v=NODECTL_TEST_PID_$i; echo "${!v}"; done; }
ONE=$(pids 1)
EIGHT=$(pids 2 3 4 5 6 7 8 9)
DEVSEC=$(pids 10)

echo "# converging: nodectl on nodes 1-9, dev-sec on node 10 (not timed)"
# Nine first applies at once load two cores heavily (dpkg, AIDE, 4096-bit host keys): a node that
# fails (its change rolled back) is converged by a second run, and the first failure is shown.
if ! "$NODECTL" apply "${NC[@]}" -i "$WORK/root.toml" --log-level info >"$WORK/first.out" 2>&1; then
  grep -E 'ERROR|error|failed' "$WORK/first.out" | grep -vE '^ {4,}' | tail -20 >&2
  echo "# converging again, as admin (the nodes that succeeded no longer let root in)" >&2
  inventory "$WORK/admin.toml" admin 1 2 3 4 5 6 7 8 9
  "$NODECTL" apply "${NC[@]}" -i "$WORK/admin.toml" >"$WORK/first.out" 2>&1 || { tail -40 "$WORK/first.out" >&2; exit 1; }
fi
devsec_node 10
DEVSEC_ARGS=(-e '{"sysctl_overwrite": {"fs.protected_fifos": 2}}')
devsec_run "$WORK/devsec-first.log" "${DEVSEC_ARGS[@]}"

# nodes_cpu PID...: CPU seconds used so far by every process in the pid namespaces of these inits
# (user + system, reaped children included).
nodes_cpu() {
  python3 - "$@" <<'PY'
import os, sys
want = {os.readlink(f"/proc/{p}/ns/pid") for p in sys.argv[1:]}
ticks = 0
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        if os.readlink(f"/proc/{pid}/ns/pid") in want:
            stat = open(f"/proc/{pid}/stat").read()
            ticks += sum(int(x) for x in stat[stat.rindex(")") + 2:].split()[11:15])
    except OSError:
        pass
print(ticks / os.sysconf("SC_CLK_TCK"))
PY
}
# timed CASE PIDS CMD...: one run of CMD; appends "CASE wall controller_cpu nodes_cpu load" to $WORK/times.
timed() {
  local case=$1 pids=$2 before after t
  shift 2
  before=$(nodes_cpu $pids)
  t=$(now)
  /usr/bin/time -f '%U %S' -o "$WORK/cpu" "$@" >"$WORK/run.out" 2>&1 || { tail -40 "$WORK/run.out" >&2; exit 1; }
  t=$(seconds_since "$t")
  after=$(nodes_cpu $pids)
  echo "$case $t $(awk '{print $1 + $2}' "$WORK/cpu") $(python3 -c "print(round($after - $before, 2))") $(cut -d' ' -f1 /proc/loadavg)" >>"$WORK/times"
}
# nodectl_run CASE NODECTL INVENTORY PIDS: a timed no-change apply, checked to be one.
nodectl_run() {
  timed "$1" "$4" "$2" apply "${NC[@]}" -i "$3" --log-level warn
  grep -q ", 0 changed$" "$WORK/run.out" || { cat "$WORK/run.out" >&2; echo "$1: not a no-change run" >&2; exit 1; }
}

PER_ROUND=$((RUNS * 2 + 1))   # lines of $WORK/times per round
if [ -n "$BASELINE" ]; then PER_ROUND=$((RUNS * 4 + 1)); fi
echo "# warm-up (not counted)"
"$NODECTL" apply "${NC[@]}" -i "$WORK/one.toml" --log-level warn >/dev/null
"$NODECTL" apply "${NC[@]}" -i "$WORK/eight.toml" --log-level warn >/dev/null
: >"$WORK/times"
for r in $(seq 1 "$ROUNDS"); do
  for k in $(seq 1 "$RUNS"); do
    nodectl_run "nodectl,1" "$NODECTL" "$WORK/one.toml" "$ONE"
    nodectl_run "nodectl,8" "$NODECTL" "$WORK/eight.toml" "$EIGHT"
    if [ -n "$BASELINE" ]; then
      nodectl_run "baseline,1" "$BASELINE" "$WORK/one.toml" "$ONE"
      nodectl_run "baseline,8" "$BASELINE" "$WORK/eight.toml" "$EIGHT"
    fi
  done
  timed "dev-sec,1" "$DEVSEC" "${DEVSEC_PLAY[@]}" "${DEVSEC_ARGS[@]}"
  grep -E '^node10 +:' "$WORK/run.out" | sed 's/^/  dev-sec recap: /'
  echo "round $r:"; tail -n "$PER_ROUND" "$WORK/times" | sed 's/^/  /' 
done

python3 - "$WORK/times" <<'PY'
import collections, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    case, wall, ctl, nodes, load = line.split()
    rows[case].append((float(wall), float(ctl), float(nodes), float(load)))
names = {"nodectl,1": "nodectl apply, 1 node", "nodectl,8": "nodectl apply, 8 nodes at once",
         "baseline,1": "nodectl apply before this change (baseline build), 1 node",
         "baseline,8": "nodectl apply before this change (baseline build), 8 nodes",
         "dev-sec,1": "dev-sec os_hardening + ssh_hardening, 1 node"}
print("\n| no-change run | runs | median wall | min | max | controller CPU | nodes' CPU | load avg |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
med = {}
for case in names:
    if case not in rows:
        continue
    r = rows[case]
    col = lambda i: statistics.median(x[i] for x in r)
    med[case] = col(0)
    print(f"| {names[case]} | {len(r)} | {col(0):.2f} s | {min(x[0] for x in r):.2f} s | {max(x[0] for x in r):.2f} s "
          f"| {col(1):.2f} s | {col(2):.2f} s | {min(x[3] for x in r):.1f}-{max(x[3] for x in r):.1f} |")
d, one, eight = med["dev-sec,1"], med["nodectl,1"], med["nodectl,8"]
print(f"\ndev-sec / nodectl on 1 node: {d / one:.0f}x (goal: 60x, i.e. nodectl <= {d / 60:.2f} s)")
print(f"nodectl on 8 nodes: {eight:.2f} s (goal: <= 2 s)")
PY
