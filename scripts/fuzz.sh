#!/usr/bin/env bash
# Fuzzes nodectl's readers of outside input (tests/fuzz/fuzz_*.cpp) with libFuzzer, AddressSanitizer
# and UndefinedBehaviorSanitizer, built with Debian's clang in build/fuzz-clang.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]    each target for SECONDS (default 60); default all
#
# Each target starts from its corpus (tests/fuzz/corpus/TARGET) and adds what it finds to a work
# corpus in build/fuzz-clang/work/TARGET (not the repository's). A crash, a leak, a timeout (over
# 10 s for one input) or an input using over 2 GiB stops that target; the input is written to
# build/fuzz-clang/crashes/TARGET/ and the script exits 1 after the other targets ran. Copy such
# an input into tests/fuzz/corpus/TARGET/ with the fix, so every build's ctest replays it.
# Run as root on Debian 12 or 13 (installs clang and libFuzzer with apt when missing).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECONDS_PER_TARGET=${1:-60}
shift || true
case $SECONDS_PER_TARGET in '' | *[!0-9]*) echo "fuzz.sh: SECONDS must be a number, got '$SECONDS_PER_TARGET'" >&2; exit 2 ;; esac

"$REPO/scripts/setup.sh" >/dev/null
if ! command -v clang++ >/dev/null || ! compgen -G "/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a" >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends clang "libclang-rt-$(clang --version 2>/dev/null | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -n1)-dev" >/dev/null 2>&1 ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends clang libclang-rt-dev >/dev/null
fi

B=$REPO/build/fuzz-clang
FLAGS="-fsanitize=fuzzer-no-link -fno-sanitize-recover=undefined"
cmake -S "$REPO" -B "$B" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNODECTL_FUZZ=ON -DNODECTL_SANITIZE=address,undefined \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_FLAGS="$FLAGS" -DCMAKE_CXX_FLAGS="$FLAGS" >/dev/null
mapfile -t ALL < <(sed -n 's/^set(NODECTL_FUZZ_TARGETS \(.*\))$/\1/p' "$REPO/tests/fuzz/CMakeLists.txt" | tr ' ' '\n')
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL[@]}")
cmake --build "$B" -j "$(nproc)" --target "${TARGETS[@]/#/fuzz_}" >/dev/null

failed=()
for t in "${TARGETS[@]}"; do
  mkdir -p "$B/work/$t" "$B/crashes/$t"
  echo "fuzz.sh: $t for ${SECONDS_PER_TARGET}s"
  if ! (cd "$B/crashes/$t" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    "$B/fuzz/fuzz_$t" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 -max_len=1048576 \
    -print_final_stats=1 "$B/work/$t" "$REPO/tests/fuzz/corpus/$t" >"$B/work/$t.log" 2>&1); then
    failed+=("$t")
    tail -n 40 "$B/work/$t.log" >&2
  fi
  grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "$B/work/$t.log" | sed "s/^/  /" || true
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: found crashes in: ${failed[*]} (inputs in $B/crashes/)" >&2
  exit 1
fi
echo "fuzz.sh: no crash in ${#TARGETS[@]} target(s), ${SECONDS_PER_TARGET}s each"
