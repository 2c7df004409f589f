#!/usr/bin/env bash
# Builds and runs the whole test suite. `scripts/test.sh --sanitize` does it under ASan + UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
build=build/test
flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
if [ "${1:-}" = "--sanitize" ]; then
  build=build/asan
  flags=(-DCMAKE_BUILD_TYPE=Debug -DMP_SANITIZE=ON)
fi
cmake -S . -B "$build" "${flags[@]}" >/dev/null
cmake --build "$build" -j"$(nproc)"
cd "$build"
# The soak (label `soak`, ten minutes) runs from scripts/soak.sh, not here.
ctest --output-on-failure -j"$(nproc)" --timeout 300 -LE soak
