#!/usr/bin/env bash
# Sets everything up on a fresh Debian 12 machine (as root) and runs the whole test suite:
# unit tests, then integration tests against real booted Debian nodes, real sshd and the
# static release binary. Prints ctest's summary; exits non-zero when anything fails.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
scripts/setup.sh
scripts/build.sh dynamic >/dev/null
NODECTL_STATIC_BIN=$(scripts/build.sh static) || { echo "test.sh: static build failed" >&2; exit 1; }
export NODECTL_STATIC_BIN
scripts/testnodes.sh rootfs
cd build
ctest --output-on-failure --timeout 900 "$@"
