#!/usr/bin/env bash
# The long attack on the arena (label `soak`): the kill-anywhere rounds of tests/test_crash.cpp
# and the pool maps with random kills, for about ten minutes, printing the arena's use, the RSS,
# the open descriptors and the live rows of the process table every ten rounds. Each run must
# pass, and the figures must end flat.
#   bash scripts/soak.sh [minutes]
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-10}
build=build/test
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target test_crash -j"$(nproc)" >/dev/null
end=$(( $(date +%s) + minutes * 60 ))
run=0
printf '%-5s %-10s %s\n' run seconds result
while [ "$(date +%s)" -lt "$end" ]; do
  run=$((run + 1))
  start=$(date +%s)
  MP_CRASH_REPORT=1 MP_CRASH_ROUNDS=100 "$build/tests/test_crash" "the arena survives*","pool maps whose results*" 2>&1 |
    grep -E "^arena:|passed|failed"
  printf '%-5s %-10s\n' "$run" "$(( $(date +%s) - start ))"
done
