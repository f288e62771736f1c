#!/usr/bin/env bash
# The repository must stand alone: a clone elsewhere has nothing beside it. Fails when a test,
# script, source file, CI file or document refers to a directory outside the checkout (a sibling `shared`
# tree of design notes and data that some developer machines have), and when a file that the
# tests read from tests/data/ is missing. Run by ctest (test "repo/standalone").
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
self=tests/repo/check_standalone.sh
# Built from pieces so that this file does not match itself.
dots='\.\.'
pattern="${dots}/shared|(^|[^a-z_])shared/(testdata|k8s|anchors|notes|design\.md)"
fail=0
if hits=$(git ls-files --cached --others --exclude-standard -- src include tests scripts .ci README.md ARCHITECTURE.md docs CMakeLists.txt cmake \
            | grep -v -x -F "$self" | grep -v '^tests/data/' \
            | xargs -d '\n' grep -n -I -E "$pattern" 2>/dev/null); then
  echo "check_standalone: these lines refer to files outside the repository:" >&2
  echo "$hits" >&2
  fail=1
fi
# Every data directory under tests/data says where it came from.
for d in tests/data/*/; do
  [ -d "$d" ] || continue
  if ! ls "$d" | grep -q -E '^(NOTICE|README|PROVENANCE)'; then
    echo "check_standalone: $d has no NOTICE/README/PROVENANCE file (provenance and licence)" >&2
    fail=1
  fi
done
[ "$fail" = 0 ] && echo "check_standalone: ok (no reference outside the repository)"
exit "$fail"
