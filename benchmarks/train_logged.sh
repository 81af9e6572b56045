#!/usr/bin/env bash
# One `zoo train` run for the results table (benchmarks/data_results.py), with a time limit and
# the machine's load recorded: RUNS/NAME/ is the run directory, RUNS/NAME.load holds `uptime` at
# the start and the end, RUNS/NAME.log the output and the CPU time (/usr/bin/time -v).
#   benchmarks/train_logged.sh NAME zoo-train-arguments...
#   e.g. benchmarks/train_logged.sh data13-lenet5-mnist-s0 lenet5 --dataset mnist --seed 0 ...
# Env: RUNS (default /work/runs), LIMIT_S (default 1800), ZOO (default: zoo).
set -uo pipefail
name=$1; shift
RUNS="${RUNS:-/work/runs}"
mkdir -p "$RUNS"
{ date -u +%H:%M:%S; uptime; } > "$RUNS/$name.load"
/usr/bin/time -v timeout "${LIMIT_S:-1800}" ${ZOO:-zoo} train "$@" --out "$RUNS/$name" \
    > "$RUNS/$name.log" 2>&1
status=$?
{ date -u +%H:%M:%S; uptime; } >> "$RUNS/$name.load"
grep -E "Elapsed|User time|System time|Maximum resident" "$RUNS/$name.log" | sed "s/^/$name: /"
exit $status
