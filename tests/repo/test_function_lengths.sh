#!/usr/bin/env bash
# repo/function_lengths: no function over 100 lines in src/ and tests/ (the key table aside), and
# the check itself finds a planted 101-line function and passes a 100-line one.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TMP=$(mktemp -d /tmp/nodectl-function-lengths.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
status=0
python3 "$HERE/check_function_lengths.py" || status=1

# body LINES: a function whose braces span LINES lines, with a brace in a string to be ignored.
body() {
  echo 'int f(int x) {'
  echo '    const char* s = "}";'
  for _ in $(seq $(($1 - 3))); do echo '    x += 1;'; done
  echo '}'
}
mkdir -p "$TMP/long" "$TMP/ok"
body 101 >"$TMP/long/a.cpp"
body 100 >"$TMP/ok/a.cpp"
out=$(python3 "$HERE/check_function_lengths.py" "$TMP/long")
if [ $? -ne 1 ] || ! grep -q "a.cpp:1: a function of 101 lines" <<<"$out"; then
  echo "FAIL: a planted 101-line function was not reported: $out"; status=1
fi
if ! python3 "$HERE/check_function_lengths.py" "$TMP/ok" >/dev/null; then
  echo "FAIL: a 100-line function was reported"; status=1
fi
exit $status
