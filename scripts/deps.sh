#!/usr/bin/env bash
# Installs what building, testing and benchmarking need, from Debian's packages, if missing.
#   MP_SKIP_DEPS=1     skips this step (your own toolchain, a container that has everything).
# On a system without apt-get and dpkg (Fedora, Arch, macOS with a Linux VM, ...) it says what is
# needed and goes on: if something is really missing, CMake's own message names it next.
set -euo pipefail
# clang: the CTest check that the examples build with Clang too (label clang);
# pkg-config: the consumer test of the installed multiprocessing.pc; libssl-dev: libcrypto's HMACs
# (Listener/Client authentication); python3: the benchmarks' Python side and the Listener tests
# that talk to Python's multiprocessing.connection; python3-numpy: the shared_memory tests that
# read a segment with numpy from Python and the reverse, and the shm_sum_1gib benchmark's Python
# side (Debian's numpy is for /usr/bin/python3, which those use).
# openmpi-bin libopenmpi-dev: the "mpi" context (mpi.hpp), its tests, example and benchmark;
# python3-mpi4py: mpi4py.futures, the Python side of that benchmark.
packages=(g++ clang cmake make pkg-config libboost1.81-dev libssl-dev catch2 libbenchmark-dev python3 python3-numpy gnuplot-nox
          openmpi-bin libopenmpi-dev python3-mpi4py)

if [ "${MP_SKIP_DEPS:-0}" = "1" ]; then
  echo "== deps.sh: MP_SKIP_DEPS=1: not installing anything"
  exit 0
fi
if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  cat >&2 <<MSG
== deps.sh: no apt-get/dpkg here, so nothing is installed. Install these yourself (Debian names;
   elsewhere: a C++20 compiler such as GCC 12+, Clang (optional), CMake 3.25+, make, pkg-config,
   the Boost headers 1.81+, OpenSSL 1.1.1+ (libcrypto's headers), Catch2 2.13+ or 3, Google Benchmark, Python 3 with numpy, gnuplot):
     ${packages[*]}
   then run again; set MP_SKIP_DEPS=1 to skip this step. Going on with what is installed.
MSG
  exit 0
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "== installing: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
