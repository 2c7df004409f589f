#!/usr/bin/env bash
# run.sh [--expect REGEX]... EXPECT SECONDS COMMAND...: runs COMMAND (an mpirun, or a singleton that spawns ranks) in
# its own process group, bounded by SECONDS, and checks its exit status (EXPECT: 0, nonzero or
# any), then that nothing it started is left: no process of its group, no orted, no process
# running one of the binaries named on the command line (within 10 s: Open MPI reaps at its pace);
# and that its output matches each REGEX (grep -E).
set -u
patterns=()
while [ "$1" = --expect ]; do patterns+=("$2"); shift 2; done
expect=$1 seconds=$2
shift 2
out=$(mktemp)
trap 'rm -f "$out"' EXIT
start=$(date +%s.%N)
setsid "$@" > >(tee "$out") 2>&1 &
pid=$!
status=0
# The binaries this run starts (absolute paths among the arguments).
binaries=()
for a in "$@"; do [ -x "$a" ] && [ -f "$a" ] && binaries+=("$a"); done
if ! timeout "$seconds" tail --pid="$pid" -f /dev/null; then
  echo "run.sh: FAILED: the command did not end within ${seconds} s: killing its process group and its ranks"
  kill -KILL -- "-$pid" 2>/dev/null
  # mpirun puts each rank in a process group of its own: they are found by their binary.
  for b in "${binaries[@]}"; do
    for p in $(pgrep -f -- "$b"); do
      [ "$p" = $$ ] || grep -qF run.sh "/proc/$p/cmdline" 2>/dev/null || kill -KILL "$p" 2>/dev/null
    done
  done
  wait "$pid"
  exit 1
fi
wait "$pid" || status=$?
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
echo "run.sh: exit status $status after ${elapsed} s"
case $expect in
  0) [ "$status" -eq 0 ] || { echo "run.sh: FAILED: expected exit status 0"; exit 1; } ;;
  nonzero) [ "$status" -ne 0 ] || { echo "run.sh: FAILED: expected a non-zero exit status"; exit 1; } ;;
esac
for p in "${patterns[@]}"; do
  grep -Eq -- "$p" "$out" || { echo "run.sh: FAILED: the output does not match: $p"; exit 1; }
done
for _ in $(seq 100); do
  snapshot=$(ps -eo pid=,pgid=,stat=,args=)  # taken alone: no filter of ours is in it
  left=$(echo "$snapshot" | awk -v g="$pid" '$2 == g && $3 !~ /^Z/')
  for b in "${binaries[@]}"; do
    more=$(echo "$snapshot" | awk '$3 !~ /^Z/' | grep -F -- "$b" | grep -v 'run\.sh')
    [ -n "$more" ] && left="$left"$'\n'"$more"
  done
  left=$(echo "$left" | sed '/^$/d')
  [ -z "$left" ] && { echo "run.sh: OK"; exit 0; }
  sleep 0.1
done
echo "run.sh: FAILED: left behind:"
echo "$left"
exit 1
