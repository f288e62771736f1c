#!/usr/bin/env bash
# Benchmarks `nodectl local up`: the time from the command's start until it returns with every node
# answering SSH as root (that is when up returns), for a 2-node environment, median of RUNS.
#   warm: the root filesystem is in the cache (no network);
#   cold: an empty cache (a directory of its own), so `up` first builds the root filesystem with
#         mmdebstrap from this host's Debian mirror (network), COLD_RUNS times (default 1).
# Each run is a fresh environment (down between runs, not timed). Results: docs/benchmarks.md.
#
#   scripts/bench/local_up.sh [RUNS] [NODES]     (as root; default 3 and 2; COLD_RUNS=0 skips cold)
#
# Traffic goes only to the nodes this script boots (198.18.52.0/24).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RUNS=${1:-3}
NODES=${2:-2}
cd "$REPO"
NODECTL=${NODECTL:-$(scripts/build.sh dynamic | tail -n 1)}
export NODECTL_LOCAL_CACHE_DIR=${NODECTL_LOCAL_CACHE_DIR:-$REPO/build/testcache}
export NODECTL_LOCAL_STATE_DIR=${NODECTL_LOCAL_STATE_DIR:-$REPO/build/testcache/envs}
NAME=benchlocal
COLD=$(mktemp -d /tmp/nodectl-bench-cold.XXXXXX)
trap '"$NODECTL" local down $NAME >/dev/null 2>&1 || true; rm -rf --one-file-system "$COLD"' EXIT
median() {
  sort -n | awk '{ a[NR] = $1 } END { printf "median of %d: %.2f s (min %.2f, max %.2f)\n", NR, (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2), a[1], a[NR] }'
}
cold=()
for ((r = 1; r <= ${COLD_RUNS:-1}; r++)); do
  "$NODECTL" local down $NAME >/dev/null 2>&1
  rm -rf --one-file-system "${COLD:?}"/*
  s=$(date +%s.%N)
  NODECTL_LOCAL_CACHE_DIR=$COLD "$NODECTL" --log-level warn local up $NAME --nodes "$NODES" --subnet 198.18.52.0/24 >/dev/null
  e=$(date +%s.%N)
  NODECTL_LOCAL_CACHE_DIR=$COLD "$NODECTL" local status $NAME >/dev/null
  cold+=("$(echo "$e - $s" | bc)")
  echo "cold run $r: rootfs built, then local up of $NODES nodes, all answering SSH: ${cold[-1]} s"
done
"$NODECTL" local down $NAME >/dev/null 2>&1
[ ${#cold[@]} -eq 0 ] || printf '%s\n' "${cold[@]}" | median | sed 's/^/cold: /'
"$NODECTL" local rootfs >/dev/null    # the warm runs' cache
times=()
for ((r = 1; r <= RUNS; r++)); do
  "$NODECTL" local down $NAME >/dev/null 2>&1
  s=$(date +%s.%N)
  "$NODECTL" --log-level warn local up $NAME --nodes "$NODES" --subnet 198.18.52.0/24 >/dev/null
  e=$(date +%s.%N)
  "$NODECTL" local status $NAME >/dev/null   # every node running and answering SSH, or exit != 0
  t=$(echo "$e - $s" | bc)
  times+=("$t")
  echo "run $r: local up of $NODES nodes, all answering SSH: $t s"
done
s=$(date +%s.%N)
"$NODECTL" --log-level warn local up $NAME --nodes "$NODES" --subnet 198.18.52.0/24 >/dev/null
echo "re-run of up on the complete environment: $(echo "$(date +%s.%N) - $s" | bc) s"
s=$(date +%s.%N)
"$NODECTL" local down $NAME >/dev/null 2>&1
echo "down: $(echo "$(date +%s.%N) - $s" | bc) s"
printf '%s\n' "${times[@]}" | median | sed 's/^/warm: /'
