#!/usr/bin/env bash
# Sets everything up on a fresh Debian 12 machine (as root) and runs the whole test suite:
# unit tests, then integration tests against real booted Debian nodes, real sshd and the
# static release binary. Prints ctest's summary; exits non-zero when anything fails.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
scripts/setup.sh
# The node root filesystems (Debian 12 and 13) are fetched while the binaries compile: one waits
# on the network, the other on the CPU.
ROOTFS_LOG=$(mktemp /tmp/nodectl-rootfs.XXXXXX.log)
(scripts/testnodes.sh rootfs && NODECTL_TEST_SUITE=trixie scripts/testnodes.sh rootfs) >"$ROOTFS_LOG" 2>&1 &
ROOTFS_PID=$!
scripts/build.sh dynamic >/dev/null
NODECTL_STATIC_BIN=$(scripts/build.sh static) || { echo "test.sh: static build failed" >&2; exit 1; }
export NODECTL_STATIC_BIN
if ! wait "$ROOTFS_PID"; then
  cat "$ROOTFS_LOG" >&2
  echo "test.sh: building the test nodes' root filesystems failed" >&2
  exit 1
fi
rm -f "$ROOTFS_LOG"
# The suites run side by side (tests/CMakeLists.txt says which must run alone):
# NODECTL_TEST_JOBS (default 3) sets how many; 1 runs them one after the other.
cd build
ctest --output-on-failure --timeout 2400 -j "${NODECTL_TEST_JOBS:-3}" "$@"
