#!/usr/bin/env bash
# The RO example swept on every backend gives the same CSV, byte for byte:
# Serial, ConcurrentFutures and MultiProcessing with n = 1..4, pm-run, a
# standalone pmd, and the command form (ro-sim) on MultiProcessing.
# usage: test_ro_sweep.sh PM_SWEEP PM_RUN PMD RO_MODEL RO_SIM
set -uo pipefail
sweep=$1 pmrun=$2 pmd=$3 model=$4 rosim=$5
tmp=$(mktemp -d)
pmd_pid=
trap '[[ -n $pmd_pid ]] && kill -9 $pmd_pid 2>/dev/null; rm -rf "$tmp"' EXIT
fail () { echo "test_ro_sweep: FAIL: $*"; exit 1; }
params=(--param 'feed_salinity=linspace(5,45,9)' --param 'recovery=linspace(0.3,0.7,5)')
run () { # run NAME ARGS...: one sweep into $tmp/NAME.csv, compared with Serial
  local name=$1; shift
  timeout 60 "$@" -o "$tmp/$name.csv" >/dev/null 2>"$tmp/$name.err" \
    || { cat "$tmp/$name.err"; fail "$name: sweep failed"; }
  [[ $name == serial ]] || cmp -s "$tmp/serial.csv" "$tmp/$name.csv" \
    || { diff "$tmp/serial.csv" "$tmp/$name.csv" | head -4; fail "$name: CSV differs from Serial"; }
}
run serial "$sweep" --backend Serial -n 1 --model "$model" "${params[@]}"
[[ $(wc -l <"$tmp/serial.csv") -eq 46 ]] || fail "expected 45 rows and a header"
grep -q ',0$' "$tmp/serial.csv" || fail "expected some infeasible rows (success 0)"
for n in 1 2 3 4; do
  run "threads-$n" "$sweep" --backend ConcurrentFutures -n "$n" --model "$model" "${params[@]}"
  run "processes-$n" "$sweep" --backend MultiProcessing -n "$n" --model "$model" "${params[@]}"
done
run processes-static-3 "$sweep" --backend MultiProcessing -n 3 --schedule static --model "$model" "${params[@]}"
run pm-run-3 "$pmrun" -n 3 -- "$sweep" --model "$model" "${params[@]}"
run command-2 "$sweep" --backend MultiProcessing -n 2 \
  --command "$rosim --feed {feed_salinity} --recovery {recovery}" "${params[@]}"
"$pmd" --bind 'tcp://127.0.0.1:*' --ready-file "$tmp/ready" --log-level warn 2>"$tmp/pmd.log" & pmd_pid=$!
for _ in $(seq 200); do [[ -s $tmp/ready ]] && break; sleep 0.05; done
[[ -s $tmp/ready ]] || fail "pmd did not start"
run pmd-processes-4 "$sweep" --endpoint "$(head -1 "$tmp/ready")" -n 4 --model "$model" "${params[@]}"
kill -TERM "$pmd_pid"; wait "$pmd_pid" || fail "pmd did not exit 0"; pmd_pid=
echo "test_ro_sweep: ok (14 runs, identical CSVs)"
