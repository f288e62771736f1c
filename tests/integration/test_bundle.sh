#!/usr/bin/env bash
# The offline bundle with the real apt: containerd's dependency closure is downloaded, indexed,
# read back by apt from a file: source, verified, and refused once one byte of a .deb changed.
# Needs apt with current package lists and a reachable Debian archive; no nodes.
source "$(dirname "$0")/lib.sh"

printf '[base]\ntimezone = "Etc/UTC"\n' >"$WORK/site.toml"
B=$WORK/b.tar

start=$(date +%s%N)
nodectl bundle create -p "$WORK/site.toml" --packages containerd --out "$B" >"$WORK/create.out" 2>"$WORK/create.err"
expect_rc "bundle create downloads containerd's closure with apt" 0 $?
echo "     bundle create took $(( ($(date +%s%N) - start) / 1000000 )) ms; $(grep -o 'apt download took.*' "$WORK/create.err")"
check "no .part file is left beside the bundle" test ! -e "$B.part"
contains "the summary counts the packages" "$WORK/create.out" '^  debs: [0-9]+ packages for [a-z]+ amd64 \(closure of containerd\)'
size=$(stat -c %s "$B" 2>/dev/null || echo 0)
echo "     bundle size: $size bytes ($(( size / 1000000 )) MB)"
check "the bundle is bigger than containerd alone (20 MB)" test "$size" -gt 20000000

# The layout, read with GNU tar: an independent reader.
tar -tf "$B" >"$WORK/list"
check "manifest.json is the first entry" test "$(head -n 1 "$WORK/list")" = manifest.json
contains "containerd's .deb" "$WORK/list" '^debs/containerd_[^/]+_amd64\.deb$'
contains "runc, a dependency" "$WORK/list" '^debs/runc_[^/]+\.deb$'
contains "libc6: the closure is resolved as if nothing were installed" "$WORK/list" '^debs/libc6_[^/]+\.deb$'
contains "the apt index" "$WORK/list" '^debs/Packages$'
contains "the profile" "$WORK/list" '^profile/site\.toml$'
check "the entries after the manifest are sorted" cmp -s <(tail -n +2 "$WORK/list") <(tail -n +2 "$WORK/list" | LC_ALL=C sort)
tar -xOf "$B" manifest.json >"$WORK/manifest.json"
check "the manifest lists exactly the other entries" cmp -s <(jq -r '.pieces[].path' "$WORK/manifest.json") <(tail -n +2 "$WORK/list")
check "the manifest's sizes and sha256 are those of the entries" bash -c '
  jq -r ".pieces[] | \"\(.sha256)  \(.path)\"" "$1" >"$2/sums" && mkdir -p "$2/tarx" && tar -xf "$3" -C "$2/tarx" &&
  cd "$2/tarx" && sha256sum --quiet -c "$2/sums"' _ "$WORK/manifest.json" "$WORK" "$B"
check "owner 0:0 and mtime 0 on every entry" bash -c '! tar -tvf "$1" | grep -v " 0/0 .* 1970-01-01 00:00 "' _ "$B"

# apt reads the bundle's index from a file: source, with this machine's apt state left alone.
nodectl bundle extract "$B" "$WORK/x" >"$WORK/extract.out" 2>&1
expect_rc "bundle extract" 0 $?
mkdir -p "$WORK/apt/lists/partial" "$WORK/apt/archives/partial"
: >"$WORK/apt/status"
echo "deb [trusted=yes] file:$WORK/x/debs ./" >"$WORK/apt/sources.list"
APT_OPTS=(-o "Dir::Etc::SourceList=$WORK/apt/sources.list" -o Dir::Etc::SourceParts=/nonexistent
  -o "Dir::State::Lists=$WORK/apt/lists" -o "Dir::State::status=$WORK/apt/status"
  -o "Dir::Cache::archives=$WORK/apt/archives" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=
  -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
apt-get "${APT_OPTS[@]}" update >"$WORK/update.out" 2>&1
expect_rc "apt-get update reads the bundle's index" 0 $?
apt-cache "${APT_OPTS[@]}" policy containerd >"$WORK/policy.out" 2>&1
contains_text "apt-cache policy shows containerd from the file: source" "$WORK/policy.out" "file:$WORK/x/debs ./ Packages"
apt-get "${APT_OPTS[@]}" install --simulate -y --no-install-recommends containerd >"$WORK/sim.out" 2>&1
expect_rc "apt-get install --simulate containerd resolves from the bundle alone" 0 $?
contains "the simulation installs containerd" "$WORK/sim.out" '^Inst containerd '
contains "and runc, from the same source" "$WORK/sim.out" '^Inst runc '
apt-get "${APT_OPTS[@]}" install --download-only -y --no-install-recommends containerd >"$WORK/get.out" 2>&1
expect_rc "apt fetches every .deb through the index (Size and SHA256 checked)" 0 $?
lacks "apt reports no hash mismatch" "$WORK/get.out" 'Hash Sum mismatch|Size mismatch'

# Verify, then one flipped byte inside containerd's .deb.
nodectl bundle verify "$B" >"$WORK/verify.out" 2>&1
expect_rc "bundle verify of the fresh bundle" 0 $?
contains "verify says intact" "$WORK/verify.out" ': intact '
nodectl --json bundle verify "$B" >"$WORK/verify.json" 2>&1
check "verify --json gives the manifest's pieces" test "$(jq '.pieces | length' "$WORK/verify.json")" = "$(( $(wc -l <"$WORK/list") - 1 ))"

deb=$(grep -m1 '^debs/containerd_' "$WORK/list")
block=$(tar -tvRf "$B" | awk -v e="$deb" '$NF == e { sub(":", "", $2); print $2 }')
offset=$(( (block + 1) * 512 + 100000 ))  # ustar: the data follows its 512-byte header
byte=$(dd if="$B" bs=1 skip="$offset" count=1 status=none | od -An -tu1 | tr -d ' ')
printf "\\$(printf '%03o' $(( byte ^ 0x5a )))" | dd of="$B" bs=1 seek="$offset" conv=notrunc status=none
nodectl bundle verify "$B" >"$WORK/bad.out" 2>&1
expect_rc "verify refuses a bundle with one changed byte" 8 $?
contains_text "the refusal names the entry" "$WORK/bad.out" "entry '$deb' does not match its sha256"
nodectl bundle extract "$B" "$WORK/y" >"$WORK/badx.out" 2>&1
expect_rc "extract refuses it too" 8 $?
check "and leaves no destination" test ! -e "$WORK/y"
check "nor a temporary dir beside it" bash -c '! ls -a "$1" | grep -q partial' _ "$WORK"
printf "\\$(printf '%03o' "$byte")" | dd of="$B" bs=1 seek="$offset" conv=notrunc status=none
nodectl bundle verify "$B" >"$WORK/restored.out" 2>&1
expect_rc "the same byte put back: intact again (the flip was what verify saw)" 0 $?

nodectl bundle verify "$WORK/absent.tar" >"$WORK/absent.out" 2>&1
expect_rc "a missing file is an error, not a damaged bundle" 1 $?
nodectl bundle create -p "$WORK/site.toml" --out "$WORK/c.tar" --packages x --no-packages >"$WORK/usage.out" 2>&1
expect_rc "--packages with --no-packages is a usage error" 2 $?
nodectl bundle --help >"$WORK/help.out" 2>&1
contains "bundle --help documents exit 8" "$WORK/help.out" '8 the file is not an intact bundle'
finish
