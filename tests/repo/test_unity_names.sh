#!/usr/bin/env bash
# repo/unity_names: no private name is defined twice in one namespace (check_unity_names.py), and
# the check itself catches a planted clash and lets the same name in two namespaces pass.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TMP=$(mktemp -d /tmp/nodectl-unity-names.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
status=0
python3 "$HERE/check_unity_names.py" || status=1

mkdir -p "$TMP/clash" "$TMP/apart"
printf 'namespace nodectl::cli {\n\nnamespace {\n\nint fail(int e) {\n    return e;\n}\n\n} // namespace\n\n} // namespace nodectl::cli\n' >"$TMP/clash/a.cpp"
printf 'namespace nodectl::cli {\n\nnamespace {\n\nint fail(const char* e) {\n    return 1;\n}\n\n} // namespace\n\n} // namespace nodectl::cli\n' >"$TMP/clash/b.cpp"
out=$(python3 "$HERE/check_unity_names.py" "$TMP/clash")
if [ $? -ne 1 ] || ! grep -q "nodectl::cli::(anonymous)::fail is defined in a.cpp, b.cpp" <<<"$out"; then
  echo "FAIL: a planted clash was not reported: $out"; status=1
fi
cp "$TMP/clash/a.cpp" "$TMP/apart/a.cpp"
sed 's/nodectl::cli/nodectl::image/' "$TMP/clash/b.cpp" >"$TMP/apart/b.cpp"
if ! python3 "$HERE/check_unity_names.py" "$TMP/apart" >/dev/null; then
  echo "FAIL: the same name in two namespaces was reported"; status=1
fi
exit $status
