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
# -g1 (line tables, enough for backtraces and the sanitizers' reports) where the build type's
# default is -g: full debug information took 40% of the compile time (test_pool.cpp: 79 s of CPU
# at -O2 -g, 44 s at -O2 -g1), and the build is most of this script's 15 minutes.
lines_only=(-DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DCMAKE_CXX_FLAGS_DEBUG="-g1")
flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
targets=(--target all)
# The soak (label `soak`, ten minutes) runs from scripts/soak.sh, not here.
labels=(-LE soak)
case "$mode" in
  "")
    # The benchmarks are not built here: the main job (scripts/run.sh) builds and runs them in
    # Release. This script must stay under 15 minutes from a clean clone on a 2-core machine,
    # and the build is most of it. (-O1 for the rest was tried: GCC 12 then gives a false
    # -Wmaybe-uninitialized in std::variant<RLock, Lock>, which -Werror makes a failed build.)
    flags+=(-DMP_BUILD_BENCHMARKS=OFF)
    ;;
  --sanitize)
    build=build/asan
    # No benchmarks here either (see above).
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
cmake -S . -B "$build" "${flags[@]}" "${lines_only[@]}" >/dev/null
cmake --build "$build" "${targets[@]}" -j"$(nproc)"
cd "$build"
ctest --output-on-failure -j"$(nproc)" --timeout 300 "${labels[@]}"
