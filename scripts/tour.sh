#!/usr/bin/env bash
# A guided tour: runs every example in order, each under a one-line heading taken from the
# `// tour:` line at the top of its source. Fails loudly, naming the example, if one fails.
#   usage: scripts/tour.sh <build-dir>      (build with MP_BUILD_EXAMPLES=ON, the default)
set -uo pipefail
if [ $# -ne 1 ]; then
  echo "usage: $0 <build-dir>" >&2
  exit 2
fi
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "$1" && pwd)" || { echo "tour: no build directory '$1'" >&2; exit 2; }

shopt -s nullglob
sources=("$root"/examples/*.cpp)
if [ ${#sources[@]} -eq 0 ]; then
  echo "tour: no examples in $root/examples" >&2
  exit 1
fi

for source in "${sources[@]}"; do
  name="$(basename "$source" .cpp)"
  title="$(sed -n 's|^// tour: *||p;q' "$source")"
  echo "== $name: ${title:-(no title)}"
  exe="$build/examples/$name"
  if [[ $name == mpi_* ]]; then
    # Over MPI ranks (built only where MPI is found): both launch modes, as a singleton that
    # spawns its ranks, then under mpirun (--oversubscribe: more ranks than this machine's cores).
    if [ ! -x "$exe" ]; then
      echo "tour: $name skipped: built only where MPI is found (Debian: openmpi-bin libopenmpi-dev)"
      continue
    fi
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1  # root in a container
    if ! timeout 60 "$exe" || ! timeout 60 mpirun --oversubscribe -n 3 "$exe"; then
      echo "tour: FAILED: $name (singleton, or under mpirun -n 3)" >&2
      exit 1
    fi
    continue
  fi
  if [ ! -x "$exe" ]; then
    echo "tour: FAILED: $name: $exe is missing; build $build first" >&2
    exit 1
  fi
  # Bounded, as the CTest tests are: a hung example fails the tour instead of stalling it.
  timeout 60 "$exe"
  rc=$?
  if [ $rc -ne 0 ]; then
    echo "tour: FAILED: $name exited with status $rc" >&2
    exit 1
  fi
done
echo "== tour: all ${#sources[@]} examples passed"
