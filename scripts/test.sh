#!/usr/bin/env bash
# Sets everything up on a fresh Debian 12 machine (as root) and runs the whole test suite:
# unit tests, then integration tests against real booted Debian nodes, real sshd and the
# static release binary. Prints ctest's summary; exits non-zero when anything fails.
# Prints one line per phase with its wall time to stderr ("test.sh: phase ..."), so a CI log
# shows where the time went.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
TMP=$(mktemp -d /tmp/nodectl-test.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# phase NAME START [DETAIL]: the line for a phase that began at $SECONDS = START.
phase() { echo "test.sh: phase $1: $(($SECONDS - $2)) s${3:+ ($3)}" >&2; }
# background NAME LOG COMMAND...: runs COMMAND in the background, its output to LOG and its own
# wall time to LOG.seconds; the caller waits for $! .
background() {
  local log=$2
  shift 2
  ( started=$SECONDS; status=0; "$@" >"$log" 2>&1 || status=$?
    echo $((SECONDS - started)) >"$log.seconds"; exit "$status" ) &
}
# await NAME PID LOG: waits for a background phase and prints its line: its own wall time, and how
# long the script waited for it once it had nothing else to do. Shows its log when it failed.
await() {
  local name=$1 pid=$2 log=$3 started=$SECONDS
  if ! wait "$pid"; then
    cat "$log" >&2
    echo "test.sh: $name failed" >&2
    exit 1
  fi
  phase "$name" "$((SECONDS - $(cat "$log.seconds")))" "in the background, waited for $((SECONDS - started)) s"
}

started=$SECONDS
scripts/setup.sh
phase setup "$started"

# Three things run side by side, so that the CPU is not idle while the network is waited on:
# - the minimal static libssh/libcurl/libarchive (cached in build/static-deps): downloads and
#   configure scripts, about one core;
# - the build of nodectl, the unit tests and the fuzz replays: both cores;
# - once nodectl itself is built, the node root filesystems (Debian 12 and 13), which the suites'
#   nodes boot from: `nodectl local rootfs`, mostly the network.
# The static binary is linked from the same build tree once the static libraries are there.
background "static deps" "$TMP/static-deps.log" scripts/build-static-deps.sh "$REPO/build/static-deps"
STATIC_DEPS_PID=$!

started=$SECONDS
scripts/build.sh dynamic nodectl >/dev/null
phase "build (nodectl)" "$started"
export NODECTL_LOCAL_CACHE_DIR=${NODECTL_TEST_CACHE:-$REPO/build/testcache}
background rootfs "$TMP/rootfs.log" \
  bash -c 'build/nodectl local rootfs --suite bookworm && build/nodectl local rootfs --suite trixie'
ROOTFS_PID=$!
started=$SECONDS
scripts/build.sh dynamic >/dev/null
phase "build (unit tests, fuzz replays, tools)" "$started"
await "static deps" "$STATIC_DEPS_PID" "$TMP/static-deps.log"
started=$SECONDS
NODECTL_STATIC_BIN=$(scripts/build.sh static) || { echo "test.sh: static build failed" >&2; exit 1; }
export NODECTL_STATIC_BIN
phase "build (static binary)" "$started"
await rootfs "$ROOTFS_PID" "$TMP/rootfs.log"

# The suites run side by side (tests/CMakeLists.txt says which must run alone):
# NODECTL_TEST_JOBS (default 3) sets how many; 1 runs them one after the other.
started=$SECONDS
status=0
(cd build && ctest --output-on-failure --timeout 2400 -j "${NODECTL_TEST_JOBS:-3}" "$@") || status=$?
phase tests "$started" "ctest exit status $status"
exit "$status"
