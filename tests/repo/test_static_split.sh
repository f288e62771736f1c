#!/usr/bin/env bash
# build/nodectl and the static release binary share the objects of every source that includes no
# libssh/libcurl/libarchive header (cmake/library_sources.cmake). The check that runs before the
# static link (cmake/check_static_build.cmake) must refuse, with a message that says why:
#   - a project header that includes one of those headers (it would reach shared objects),
#   - a source that includes one but was configured as shared,
#   - a missing static archive;
# and pass on a consistent tree. Runs the check on small trees in a temp dir: no compiler needed.
# Run by ctest (test "repo/static_split").
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TMP=$(mktemp -d /tmp/nodectl-static-split.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
fails=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

# A tree: src/a.cpp includes libssh, src/b.cpp nothing of the three; one archive that exists.
tree=$TMP/tree
mkdir -p "$tree/src/x" "$tree/include/nodectl"
printf '#include <libssh/libssh.h>\n' >"$tree/src/a.cpp"
printf '#include "x/b.hpp"\n#include <string>\n' >"$tree/src/b.cpp"
printf '#pragma once\n#include <openssl/evp.h>\n' >"$tree/src/x/b.hpp"
printf '#pragma once\n' >"$tree/include/nodectl/c.hpp"
touch "$TMP/libssh.a"

# check LIBRARY_SOURCES ARCHIVES: runs the check, its output in $TMP/out; its exit status.
check() {
  cmake -DSOURCE_DIR="$tree" "-DLIBRARY_SOURCES=$1" "-DARCHIVES=$2" \
    -P "$REPO/cmake/check_static_build.cmake" >"$TMP/out" 2>&1
}
flat() { tr -s ' \n' ' ' <"$TMP/out"; }  # CMake wraps its messages
expect_refusal() {  # expect_refusal WHAT PATTERN LIBRARY_SOURCES ARCHIVES
  if check "$3" "$4"; then
    bad "$1: the check passed"
  elif flat | grep -q -- "$2"; then
    ok "$1: refused ($(flat | grep -o -- "$2"))"
  else
    bad "$1: refused without saying why:"; cat "$TMP/out" >&2
  fi
}

if check "$tree/src/a.cpp" "$TMP/libssh.a"; then ok "a consistent tree passes"; else bad "a consistent tree was refused:"; cat "$TMP/out" >&2; fi
expect_refusal "a missing archive" "libcurl.a is missing" "$tree/src/a.cpp" "$TMP/libssh.a;$TMP/libcurl.a"
printf '#include <curl/curl.h>\n' >>"$tree/src/b.cpp"
expect_refusal "a source that now includes curl" "src/b.cpp now include(s) a libssh/libcurl/libarchive header" "$tree/src/a.cpp" "$TMP/libssh.a"
printf '#include "x/b.hpp"\n' >"$tree/src/b.cpp"
printf '  #  include "archive.h"\n' >>"$tree/src/x/b.hpp"
expect_refusal "a project header that includes libarchive" "b.hpp: [^:]*: include the headers of libssh, libcurl and libarchive only from .cpp files" "$tree/src/a.cpp" "$TMP/libssh.a"
printf '#pragma once\n' >"$tree/src/x/b.hpp"
printf '#include <archive_entry.h>\n' >"$tree/include/nodectl/c.hpp"
expect_refusal "a public header that includes libarchive" "c.hpp: [^:]*: include the headers of libssh, libcurl and libarchive only from .cpp files" "$tree/src/a.cpp" "$TMP/libssh.a"
printf '#pragma once\n' >"$tree/include/nodectl/c.hpp"
# A header named *_curl.hpp may include libcurl's; a source that includes it is a library source.
printf '#pragma once\n#include <curl/curl.h>\n' >"$tree/src/x/engine_curl.hpp"
printf '#include "x/engine_curl.hpp"\n' >"$tree/src/d.cpp"
if check "$tree/src/a.cpp;$tree/src/d.cpp" "$TMP/libssh.a"; then ok "a header named *_curl.hpp may include libcurl's"; else bad "*_curl.hpp was refused:"; cat "$TMP/out" >&2; fi
expect_refusal "a source that includes a *_curl.hpp header but was configured as shared" "src/d.cpp now include(s) a libssh/libcurl/libarchive header" "$tree/src/a.cpp" "$TMP/libssh.a"
printf '#pragma once\n#include "x/engine_curl.hpp"\n' >"$tree/src/x/b.hpp"
expect_refusal "a header not named *_curl.hpp that includes one that is" "b.hpp: [^:]*: include the headers of libssh, libcurl and libarchive only from .cpp files" "$tree/src/a.cpp;$tree/src/d.cpp" "$TMP/libssh.a"

# The real tree: the split CMake made is the one the check finds (what the build relies on).
mapfile -t real < <(grep -rlE '^[[:space:]]*#[[:space:]]*include[[:space:]]*([<"](libssh/|curl/|archive\.h|archive_entry\.h)|"[^"]*_(curl|ssh|archive)\.hpp")' "$REPO/src" --include='*.cpp' | sort)
tree=$REPO
if [ "${#real[@]}" -gt 0 ] && check "$(IFS=';'; echo "${real[*]}")" ""; then
  ok "this repository: ${#real[@]} sources include the libraries' headers, no header but one named *_curl.hpp, *_ssh.hpp or *_archive.hpp does"
else
  bad "this repository does not pass the check:"; cat "$TMP/out" >&2
fi
[ "$fails" -eq 0 ] || { echo "test_static_split: $fails failed" >&2; exit 1; }
echo "test_static_split: all passed"
