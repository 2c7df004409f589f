#!/usr/bin/env bash
# The main job: installs what is missing, builds the examples and benchmarks in Release
# (build/release), runs the examples tour, then a short benchmark against Python's
# multiprocessing and raw C++. Fails loudly, naming the step, if any step fails.
#   usage: scripts/run.sh
# The whole test suite is scripts/test.sh; the long benchmark is `python3 benchmarks/run.py`.
set -euo pipefail
cd "$(dirname "$0")/.."

build=build/release
step="start"
trap 'rc=$?; echo "run.sh: FAILED at step: $step (exit status $rc)" >&2; exit $rc' ERR

step="install dependencies (scripts/deps.sh)"
echo "== $step"
bash scripts/deps.sh

step="configure $build (Release, examples and benchmarks)"
echo "== $step"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release \
  -DMP_BUILD_TESTS=OFF -DMP_BUILD_EXAMPLES=ON -DMP_BUILD_BENCHMARKS=ON >/dev/null

step="build $build"
echo "== $step"
cmake --build "$build" -j"$(nproc)"

step="examples tour (scripts/tour.sh)"
echo "== $step"
bash scripts/tour.sh "$build"

step="short benchmark (benchmarks/run.py --short)"
echo "== $step"
python3 benchmarks/run.py --short "$build"

trap - ERR
echo "== run.sh: done: build, tour and short benchmark all passed"
