#!/usr/bin/env bash
# Benchmarks `nodectl local up`: the time from the command's start until it returns with every node
# answering SSH as root (that is when up returns), for a 2-node environment, warm rootfs cache (the
# test rootfs, so no network), median of RUNS. Each run is a fresh environment (down between runs,
# not timed). Results: docs/benchmarks.md.
#
#   scripts/bench/local_up.sh [RUNS] [NODES]     (as root; default 3 and 2)
#
# Traffic goes only to the nodes this script boots (198.18.52.0/24).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RUNS=${1:-3}
NODES=${2:-2}
cd "$REPO"
NODECTL=${NODECTL:-$(scripts/build.sh dynamic | tail -n 1)}
scripts/testnodes.sh rootfs >&2
ROOTFS=$REPO/build/testcache/rootfs-bookworm
NAME=benchlocal
trap '"$NODECTL" local down $NAME >/dev/null 2>&1 || true' EXIT
times=()
for ((r = 1; r <= RUNS; r++)); do
  "$NODECTL" local down $NAME >/dev/null 2>&1
  s=$(date +%s.%N)
  "$NODECTL" --log-level warn local up $NAME --nodes "$NODES" --subnet 198.18.52.0/24 --rootfs "$ROOTFS" >/dev/null
  e=$(date +%s.%N)
  "$NODECTL" local status $NAME >/dev/null   # every node running and answering SSH, or exit != 0
  t=$(echo "$e - $s" | bc)
  times+=("$t")
  echo "run $r: local up of $NODES nodes, all answering SSH: $t s"
done
s=$(date +%s.%N)
"$NODECTL" --log-level warn local up $NAME --nodes "$NODES" --subnet 198.18.52.0/24 --rootfs "$ROOTFS" >/dev/null
echo "re-run of up on the complete environment: $(echo "$(date +%s.%N) - $s" | bc) s"
s=$(date +%s.%N)
"$NODECTL" local down $NAME >/dev/null 2>&1
echo "down: $(echo "$(date +%s.%N) - $s" | bc) s"
printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END { printf "median of %d: %.2f s (min %.2f, max %.2f)\n", NR, (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2), a[1], a[NR] }'
