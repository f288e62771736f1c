#!/usr/bin/env bash
# Builds nodectl. Usage: scripts/build.sh [dynamic [TARGET]|static|sanitize]
#   dynamic   (default) build/nodectl and the unit tests, linked against Debian's shared libraries;
#             with TARGET only that CMake target (e.g. nodectl)
#   static    build/static/nodectl: one fully static x86_64 binary (rebuilds libssh, libcurl and
#             libarchive from Debian source packages first, cached in build/static-deps). The same
#             build tree as dynamic: the objects both builds share are compiled once.
#   sanitize  build/asan/: address + undefined behaviour sanitizers, with the unit tests
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
kind=${1:-dynamic}
jobs=$(nproc)
case "$kind" in
  dynamic)
    cmake -S "$REPO" -B "$REPO/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$REPO/build" -j "$jobs" ${2:+--target "$2"}
    echo "$REPO/build/nodectl"
    ;;
  static)
    "$REPO/scripts/build-static-deps.sh" "$REPO/build/static-deps" >&2
    cmake -S "$REPO" -B "$REPO/build" -DCMAKE_BUILD_TYPE=Release -DNODECTL_STATIC_DEPS="$REPO/build/static-deps" >/dev/null
    # glibc warns that getaddrinfo/getpwnam need its NSS modules at run time: expected for a static
    # binary, and harmless on the glibc systems nodectl targets (see docs/development.md, "Static binary").
    set +e
    cmake --build "$REPO/build" -j "$jobs" --target nodectl_static 2>&1 |
      grep -v "statically linked applications requires at runtime\|in function \`" >&2
    status=${PIPESTATUS[0]}
    set -e
    [ "$status" -eq 0 ] || { echo "build.sh: the static build failed" >&2; exit 1; }
    test -x "$REPO/build/static/nodectl"
    echo "$REPO/build/static/nodectl"
    ;;
  sanitize)
    cmake -S "$REPO" -B "$REPO/build/asan" -DCMAKE_BUILD_TYPE=Debug -DNODECTL_SANITIZE=address,undefined >/dev/null
    cmake --build "$REPO/build/asan" -j "$jobs"
    echo "$REPO/build/asan/nodectl"
    ;;
  *) echo "usage: $0 [dynamic|static|sanitize]" >&2; exit 2 ;;
esac
