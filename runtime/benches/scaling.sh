#!/usr/bin/env bash
# The commit path across core counts (issue 10): the load bench (one JS code
# action and none) under `taskset` on the first N cores, with conversations
# proportional to the cores (12 per core), on the embedded store with 1 part,
# the default (N/4) and N/2 parts. Server and generator share the N cores.
#
#   runtime/benches/scaling.sh LOAD_BENCH SANDBOT [CORES...]   (default: 2 4 8 16)
#
# LOAD_BENCH and SANDBOT are built binaries, so the run needs no Rust
# toolchain (a lent machine):
#   cargo build --release -p sandbot --bin sandbot
#   cargo bench -p sandbot --bench load --no-run   # prints the bench's path
#   strip both; SECONDS_PER_RUN (default 8) sets each phase's length.
set -euo pipefail
load=$(realpath "$1")
export SANDBOT_BIN=$(realpath "$2")
shift 2
cores=("$@")
[ ${#cores[@]} -gt 0 ] || cores=(2 4 8 16)
seconds=${SECONDS_PER_RUN:-8}
have=$(nproc)
for n in "${cores[@]}"; do
  if [ "$n" -gt "$have" ]; then
    echo "skipping $n cores: this machine has $have"
    continue
  fi
  default=$(( n / 4 > 1 ? n / 4 : 1 ))
  half=$(( n / 2 > 1 ? n / 2 : 1 ))
  for parts in $(printf '%s\n' 1 "$default" "$half" | sort -nu); do
    taskset -c "0-$((n - 1))" "$load" --conversations $((n * 12)) --seconds "$seconds" --parts "$parts" 2>&1 |
      grep 'messages/s' | sed "s/^/$n cores, $parts part(s): /"
  done
done
