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
# The plain run's build at -O1: code generation at -O2 was most of the compile time left after
# the precompiled headers (1335 s of CPU for the build), and -O1 takes about half of it. The
# --tsan run keeps -O2 (its tests are the unit cases, built optimised as a user builds them), and
# the --sanitize run is a Debug build (-O0): the suite runs at three optimisation levels.
plain_flags=(-DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DCMAKE_CXX_FLAGS_DEBUG="-g1")
flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
targets=(--target all)
# The soak (label `soak`, ten minutes) runs from scripts/soak.sh, not here.
labels=(-LE soak)
case "$mode" in
  "")
    lines_only=("${plain_flags[@]}")
    ;;
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
cmake -S . -B "$build" "${flags[@]}" "${lines_only[@]}" >/dev/null
cmake --build "$build" "${targets[@]}" -j"$(nproc)"
cd "$build"
ctest --output-on-failure -j"$(nproc)" --timeout 300 "${labels[@]}"
