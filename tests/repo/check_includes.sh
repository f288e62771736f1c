#!/usr/bin/env bash
# The include direction: a file in src/ or include/ includes only from its own layer or a lower
# one. The layer order and the recorded exceptions are read from ARCHITECTURE.md ("Layers"), so
# the document and the check cannot drift apart:
#   include-layers: util nodectl config target host modules core actions cli main
#   include-exception: <file glob> -> <included header>   (why, and what removes it)
# A file's layer is its first directory under src/ (include/nodectl/ is "nodectl", src/main.cpp
# is "main"); an include "X/..." is in layer X. Usage: check_includes.sh [TREE] (default: this
# repository). Run by ctest (test "repo/include_layers").
set -euo pipefail
ROOT=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
cd "$ROOT"
doc=ARCHITECTURE.md
read -r -a layers < <(sed -n 's/^include-layers: *//p' "$doc")
if [ "${#layers[@]}" -lt 2 ]; then
  echo "check_includes: no 'include-layers:' line in $doc" >&2
  exit 2
fi
declare -A rank
for i in "${!layers[@]}"; do rank[${layers[$i]}]=$i; done
exceptions=()
while IFS= read -r line; do exceptions+=("$line"); done < <(sed -n 's/^include-exception: *//p' "$doc" | sed 's/ *(.*$//')

layer_of_file() {
  case $1 in
    include/nodectl/*) echo nodectl ;;
    src/main.cpp) echo main ;;
    src/*/*) local rest=${1#src/}; echo "${rest%%/*}" ;;
    *) echo "" ;;
  esac
}

excepted() {  # file header
  local e
  for e in "${exceptions[@]}"; do
    local glob=${e%% -> *} header=${e##* -> }
    # shellcheck disable=SC2053  # the glob is meant to match
    if [[ $1 == $glob && $2 == "$header" ]]; then return 0; fi
  done
  return 1
}

fail=0
checked=0
while IFS= read -r file; do
  own=$(layer_of_file "$file")
  if [ -z "$own" ] || [ -z "${rank[$own]+x}" ]; then
    echo "check_includes: $file is in no layer of $doc's include-layers line" >&2
    fail=1
    continue
  fi
  while IFS=: read -r lineno header; do
    dir=${header%%/*}
    [ -n "${rank[$dir]+x}" ] || continue  # a library header, or one beside the file
    checked=$((checked + 1))
    if [ "${rank[$dir]}" -gt "${rank[$own]}" ] && ! excepted "$file" "$header"; then
      echo "check_includes: $file:$lineno: $own/ includes $header from the higher layer $dir/" >&2
      fail=1
    fi
  done < <(grep -n -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$file" | sed -E 's/^([0-9]+):[^"]*"([^"]*)".*/\1:\2/' || true)
done < <(find src include -name '*.cpp' -o -name '*.hpp' -o -name '*.h' | sort)
if [ "$fail" = 0 ]; then
  echo "check_includes: ok ($checked includes follow ${layers[*]}; ${#exceptions[@]} recorded exceptions)"
fi
exit "$fail"
