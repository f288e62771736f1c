#!/usr/bin/env bash
# Benchmarks `nodectl image build` on the stack's recipes: cold and warm build times per image
# and for all, compressed sizes against the official Docker Hub images (figures from issue 5:
# nothing can be pulled here), and the manifest digests of two cold builds from two empty caches.
#
#   scripts/bench/image.sh [RECIPES_DIR] [RUNS]     (as root; default images/, 3 warm runs)
#
# "Cold" = an empty build cache; the .debs and apt lists are kept in their own cache
# ($NODECTL_BENCH_APT_CACHE, default ~/.cache/nodectl/image/apt) and downloaded once before
# timing, so the figures are build time, not this machine's link to the Debian archive.
# "Warm" = the same cache again, nothing changed: apt-get update + resolution + writing the layout.
# Extra arguments for the builds: NODECTL_BENCH_BUILD_ARGS (e.g. "--secret x=FILE").
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RECIPES=${1:-$REPO/images}
RUNS=${2:-3}
NODECTL=${NODECTL:-$REPO/build/nodectl}
APT_CACHE=${NODECTL_BENCH_APT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nodectl/image/apt}
WORK=$(mktemp -d /tmp/nodectl-bench-image.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
read -r -a EXTRA <<<"${NODECTL_BENCH_BUILD_ARGS:-}"
build() {  # build CACHE OUT NAME...|--all
  local cache=$1 out=$2; shift 2
  "$NODECTL" --json image build "$@" --recipes "$RECIPES" --cache "$cache" --apt-cache "$APT_CACHE" --out "$out" \
    "${EXTRA[@]}" 2>>"$WORK/log"
}
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc; }

echo "downloading the inputs once (not timed)..." >&2
build "$WORK/prefetch" "$WORK/prefetch-out" --all >/dev/null
rm -rf "$WORK/prefetch" "$WORK/prefetch-out"

names=$("$NODECTL" --json image check --recipes "$RECIPES" | jq -r '.[].name')

# Cold, all at once, twice (the reproducibility pair), then warm.
t0=$(now); build "$WORK/c1" "$WORK/o1" --all >"$WORK/cold1.json"; t1=$(now)
build "$WORK/c2" "$WORK/o2" --all >"$WORK/cold2.json"; t2=$(now)
cold_all_1=$(secs "$t0" "$t1"); cold_all_2=$(secs "$t1" "$t2")
warm_all=()
for _ in $(seq "$RUNS"); do
  t0=$(now); build "$WORK/c1" "$WORK/o3" --all >"$WORK/warm.json"; t1=$(now)
  warm_all+=("$(secs "$t0" "$t1")")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# Cold per image: an empty cache each time (an image's figure includes its base).
declare -A cold_one warm_one
for n in $names; do
  rm -rf "$WORK/c-$n"
  t0=$(now); build "$WORK/c-$n" "$WORK/o-$n" "$n" >/dev/null; t1=$(now)
  cold_one[$n]=$(secs "$t0" "$t1")
  t0=$(now); build "$WORK/c-$n" "$WORK/o-$n" "$n" >/dev/null; t1=$(now)
  warm_one[$n]=$(secs "$t0" "$t1")
  rm -rf "$WORK/c-$n" "$WORK/o-$n"
done

declare -A official=([redis]=43.6 [mysql-master]=106.5 [mysql-replica]=106.5 [varnish]=106.8)
declare -A official_name=([redis]="redis:7-bookworm" [mysql-master]="mariadb:10.11" [mysql-replica]="mariadb:10.11" [varnish]="varnish")
echo
echo "| image | cold build | warm rebuild | compressed size | official image | official size | ratio |"
echo "|---|---:|---:|---:|---|---:|---:|"
for n in $names; do
  size=$(jq -r --arg n "$n" '.[] | select(.name == $n) | .compressed_size' "$WORK/cold1.json")
  mb=$(echo "scale=1; $size / 1000000" | bc)
  off=${official[$n]:-}
  if [ -n "$off" ]; then
    ratio=$(echo "scale=2; $mb / $off" | bc)
    echo "| $n | ${cold_one[$n]%??????} s | ${warm_one[$n]%??????} s | $mb MB | ${official_name[$n]} | $off MB | $ratio |"
  else
    echo "| $n | ${cold_one[$n]%??????} s | ${warm_one[$n]%??????} s | $mb MB | - | - | - |"
  fi
done
echo "| all ($(echo $names | wc -w) images) | ${cold_all_1%??????} s / ${cold_all_2%??????} s | $(median "${warm_all[@]}" | cut -c1-5) s (median of $RUNS) | | | | |"
echo
echo "Reproducibility (manifest digests of two cold builds from two empty caches):"
echo
echo "| image | build 1 | build 2 | same |"
echo "|---|---|---|---|"
for n in $names; do
  d1=$(jq -r --arg n "$n" '.[] | select(.name == $n) | .manifest_digest' "$WORK/cold1.json")
  d2=$(jq -r --arg n "$n" '.[] | select(.name == $n) | .manifest_digest' "$WORK/cold2.json")
  echo "| $n | \`$d1\` | \`$d2\` | $([ "$d1" = "$d2" ] && echo yes || echo NO) |"
done
echo
echo "Shared base layer: $(jq -r '[.[].layers[0]] | unique | length' "$WORK/cold1.json") distinct first layer(s) over $(echo $names | wc -w) images; compressed bytes of all images' distinct layers: $(jq -r '[.[] | .layers[]] | unique | length' "$WORK/cold1.json") layers"
