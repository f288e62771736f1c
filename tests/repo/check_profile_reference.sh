#!/usr/bin/env bash
# docs/profile-reference.md is generated from the key table: fails when it differs from what
# `nodectl profile keys --markdown` prints now (a key added, renamed or documented anew without
# regenerating it). Regenerate with:  build/nodectl profile keys --markdown > docs/profile-reference.md
# Usage: check_profile_reference.sh NODECTL
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
NODECTL=${1:?usage: check_profile_reference.sh NODECTL}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$NODECTL" profile keys --markdown >"$out"
# The table has keys of every section; a reference without them is not the generated file.
for needed in '## Profile keys' '## Inventory keys' '### harden' '### backup' '`hosts[].address`'; do
  grep -q -F -- "$needed" "$out" || { echo "check_profile_reference: the generated text lacks $needed" >&2; exit 1; }
done
if ! diff -u "$REPO/docs/profile-reference.md" "$out"; then
  echo "check_profile_reference: docs/profile-reference.md is out of date; regenerate it with" >&2
  echo "  build/nodectl profile keys --markdown > docs/profile-reference.md" >&2
  exit 1
fi
echo "check_profile_reference: ok ($(grep -c '^| `' "$out") keys)"
