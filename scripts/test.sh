#!/usr/bin/env bash
# Builds and runs the test suite (README: Testing).
#   scripts/test.sh             everything but the soak, in build/test
#   scripts/test.sh --sanitize  the same under AddressSanitizer + UBSan, in build/asan, without the
#                               labels `compile` and `consumer` (compiler checks and other builds:
#                               the plain run has done them, a sanitizer adds nothing to them)
#   scripts/test.sh --tsan      the tests labelled `tsan` under ThreadSanitizer, in build/tsan
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}
case "$mode" in
  "" | --sanitize | --tsan) ;;
  *)
    echo "usage: scripts/test.sh [--sanitize | --tsan]" >&2
    exit 2
    ;;
esac
bash scripts/deps.sh
build=build/test
flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
targets=(--target all)
# The soak (label `soak`, ten minutes) runs from scripts/soak.sh, not here.
labels=(-LE soak)
case "$mode" in
  --sanitize)
    build=build/asan
    # The benchmarks are not run here: the plain build has compiled them.
    flags=(-DCMAKE_BUILD_TYPE=Debug -DMP_SANITIZE=ON -DMP_BUILD_BENCHMARKS=OFF)
    labels=(-LE 'soak|compile|consumer')
    ;;
  --tsan)
    build=build/tsan
    flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DMP_SANITIZE=thread -DMP_BUILD_EXAMPLES=OFF -DMP_BUILD_BENCHMARKS=OFF)
    targets=(--target tsan_tests)
    labels=(-L tsan)
    ;;
esac
cmake -S . -B "$build" "${flags[@]}" >/dev/null
cmake --build "$build" "${targets[@]}" -j"$(nproc)"
cd "$build"
ctest --output-on-failure -j"$(nproc)" --timeout 300 "${labels[@]}"
