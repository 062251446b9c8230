#!/usr/bin/env bash
# A rank whose dynamic pm_scatter fails locally (PM_FAULT=sweep_work:1) must
# hand its chunks back: root's sweep completes with every row, equal to a
# Serial run, instead of waiting for rows nobody will do.
# usage: sweep-handback.sh PM_SWEEP PLUGIN
set -uo pipefail
sweep=$1 plugin=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
params=(--param 'a=linspace(0,1,50)' --param 'b=list(1,2,3)')
"$sweep" --backend Serial -n 1 --model "$plugin" "${params[@]}" -o "$tmp/serial.csv" 2>/dev/null \
  || { echo "sweep-handback: FAIL: serial reference failed"; exit 1; }
PM_FAULT=sweep_work:1 timeout 50 "$sweep" --backend MultiProcessing -n 3 --model "$plugin" \
  "${params[@]}" -o "$tmp/faulty.csv" 2>"$tmp/err"
status=$?
((status != 124)) || { echo "sweep-handback: FAIL: hung"; exit 1; }
cmp -s "$tmp/serial.csv" "$tmp/faulty.csv" \
  || { cat "$tmp/err"; echo "sweep-handback: FAIL: CSV differs from Serial (pm-sweep exit $status)"; exit 1; }
echo "sweep-handback: ok (pm-sweep exit $status; rank 1 handed its rows back)"
