#!/usr/bin/env bash
# scripts/deps.sh on a system without apt-get/dpkg names the packages and succeeds (so the build
# goes on and CMake names what is really missing), and MP_SKIP_DEPS=1 skips it. Runs it with a
# PATH that holds only the few tools it needs, none of apt's.
set -euo pipefail
deps="$1/scripts/deps.sh"
bin="$(mktemp -d)"
trap 'rm -rf "$bin"' EXIT
for tool in bash cat grep id; do ln -s "$(command -v "$tool")" "$bin/$tool"; done

# MP_SKIP_DEPS=0: whatever the caller's environment says (MP_SKIP_DEPS=1 bash scripts/test.sh).
out="$(MP_SKIP_DEPS=0 PATH="$bin" bash "$deps" 2>&1)" || { echo "FAILED: deps.sh without apt-get exited non-zero: $out"; exit 1; }
for word in "no apt-get" libboost1.81-dev catch2 cmake MP_SKIP_DEPS=1; do
  grep -qF -- "$word" <<<"$out" || { echo "FAILED: deps.sh without apt-get does not mention '$word': $out"; exit 1; }
done
out="$(MP_SKIP_DEPS=1 PATH="$bin" bash "$deps" 2>&1)"
grep -qF "MP_SKIP_DEPS=1" <<<"$out" || { echo "FAILED: MP_SKIP_DEPS=1 was not honoured: $out"; exit 1; }
echo "deps.sh: OK"
