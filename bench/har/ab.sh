#!/usr/bin/env bash
# A/B timing of two or more keywatch binaries on one HAR: runs `har sanitize` on one core,
# alternating the binaries run by run so that a shared machine's slow and fast moments fall
# on all of them alike, then prints each binary's best and median wall time.
#
# Usage: bench/har/ab.sh RUNS INPUT.har BINARY...
# Example: bench/har/ab.sh 7 bench/corpus/har/session-200mb.har /tmp/kw-before target/release/keywatch
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 RUNS INPUT.har BINARY..." >&2; exit 2; }
runs=$1; input=$2; shift 2
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for i in $(seq "$runs"); do
  n=0
  for bin in "$@"; do
    n=$((n + 1))
    start=$(date +%s%N)
    taskset -c 0 "$bin" har sanitize "$input" -o "$scratch/out.har" > /dev/null 2>&1 \
      || { echo "$bin failed on $input" >&2; exit 1; }
    end=$(date +%s%N)
    echo $(((end - start) / 1000000)) >> "$scratch/times.$n"
  done
done
n=0
for bin in "$@"; do
  n=$((n + 1))
  sort -n "$scratch/times.$n" | awk -v bin="$bin" '{t[NR] = $1}
    END {printf "%s: best %.2f s, median %.2f s over %d runs\n", bin, t[1] / 1000, t[int((NR + 1) / 2)] / 1000, NR}'
done
