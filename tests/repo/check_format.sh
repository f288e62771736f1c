#!/usr/bin/env bash
# The C++ tree is as clang-format formats it with the repository's .clang-format. Versions format
# differently, so the check runs with clang-format 14 (Debian 12's) and is skipped (exit 77) with
# any other. Format the tree with: clang-format -i $(git ls-files '*.cpp' '*.hpp')
# Run by ctest (test "repo/format").
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
if ! command -v clang-format >/dev/null; then
  echo "check_format: no clang-format (scripts/setup.sh installs it); skipped" >&2
  exit 77
fi
version=$(clang-format --version | sed -n 's/.*clang-format version \([0-9]*\)\..*/\1/p')
if [ "$version" != 14 ]; then
  echo "check_format: clang-format $version formats differently from 14, which the tree follows; skipped" >&2
  exit 77
fi
mapfile -t files < <(find src include tests -name '*.cpp' -o -name '*.hpp' | grep -v '^tests/fuzz/corpus/' | sort)
bad=0
for f in "${files[@]}"; do
  if ! clang-format --style=file "$f" | cmp -s - "$f"; then
    echo "check_format: $f is not formatted (clang-format -i $f; the difference:)"
    clang-format --style=file "$f" | diff -u "$f" - | head -n 20 || true
    bad=$((bad + 1))
  fi
done
if [ "$bad" -gt 0 ]; then
  echo "check_format: $bad of ${#files[@]} files not formatted" >&2
  exit 1
fi
echo "check_format: ok (${#files[@]} files)"
