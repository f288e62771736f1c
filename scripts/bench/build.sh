#!/usr/bin/env bash
# The build phase of scripts/test.sh, one way against another: `scripts/build.sh dynamic` then
# `scripts/build.sh static`, each tree exported with `git archive` into a fresh directory (a clean
# build dir), run under `nice -n 10`, the two back to back, RUNS times. The static dependencies
# are not rebuilt: build/static-deps (scripts/build-static-deps.sh) is copied into each tree.
# Prints wall and CPU (user + system) seconds per step and the machine's load average over the
# run (the CPU seconds hardly depend on what else runs; the wall seconds do). docs/benchmarks.md.
#
#   scripts/bench/build.sh OLD_REF [NEW_REF] [RUNS]    (NEW_REF defaults to HEAD, RUNS to 1)
#   DEMO=1 scripts/bench/build.sh OLD_REF [NEW_REF] [RUNS]
# DEMO=1 times only what the README's first command (scripts/demo.sh) builds, `build.sh dynamic
# nodectl`, from the clean tree: the issue-20 figure for a newcomer's first build. It needs no
# static dependencies.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OLD_REF=${1:?usage: $0 OLD_REF [NEW_REF] [RUNS]}
NEW_REF=${2:-HEAD}
RUNS=${3:-1}
DEPS=$REPO/build/static-deps
DEMO=${DEMO:-0}
[ "$DEMO" = 1 ] || [ -f "$DEPS/lib/libssh.a" ] || { echo "$0: no $DEPS: run scripts/build-static-deps.sh first" >&2; exit 1; }
WORK=$(mktemp -d /tmp/nodectl-bench-build.XXXXXX)
LOAD_PID=
cleanup() { [ -z "$LOAD_PID" ] || kill "$LOAD_PID" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

# The 1-minute load average every 10 s, for the whole run.
( while sleep 10; do cut -d' ' -f1 /proc/loadavg; done ) >"$WORK/load" &
LOAD_PID=$!

# timed LABEL COMMAND...: runs COMMAND niced; prints "LABEL wall W cpu C" (seconds).
timed() {
  local label=$1
  shift
  /usr/bin/time -f "%e %U %S" -o "$WORK/time" nice -n 10 "$@" >"$WORK/out.log" 2>&1 ||
    { tail -n 30 "$WORK/out.log" >&2; echo "$0: $label failed" >&2; exit 1; }
  read -r wall user sys <"$WORK/time"
  printf '%-28s wall %6.0f s   cpu %6.0f s\n' "$label" "$wall" "$(echo "$user + $sys" | bc)"
}

for run in $(seq 1 "$RUNS"); do
  for way in new old; do
    ref=$NEW_REF
    [ "$way" = new ] || ref=$OLD_REF
    tree=$WORK/$way
    rm -rf "$tree"
    mkdir -p "$tree/build/static-deps"
    git -C "$REPO" archive "$ref" | tar -x -C "$tree"
    echo "run $run, $way ($ref = $(git -C "$REPO" rev-parse --short "$ref")), load $(cut -d' ' -f1-3 /proc/loadavg)"
    if [ "$DEMO" = 1 ]; then
      timed "  build.sh dynamic nodectl" "$tree/scripts/build.sh" dynamic nodectl
      ls -l "$tree/build/nodectl" | awk '{print "  binary: " $5 " bytes"}'
    else
      cp -a "$DEPS"/{include,lib,.stamp,.static-deps-prefix} "$tree/build/static-deps/"
      timed "  build.sh dynamic" "$tree/scripts/build.sh" dynamic
      timed "  build.sh static" "$tree/scripts/build.sh" static
    fi
    rm -rf "$tree"
  done
done
echo "load average (1 min) over the run: min $(sort -n "$WORK/load" | head -n 1)," \
  "median $(sort -n "$WORK/load" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')," \
  "max $(sort -n "$WORK/load" | tail -n 1) ($(wc -l <"$WORK/load") samples, $(nproc) cores)"
