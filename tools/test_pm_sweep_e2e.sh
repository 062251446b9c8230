#!/usr/bin/env bash
# sweep-end-to-end: pm-sweep on every backend gives the same CSV, byte for
# byte, with a plugin and with a command; failed rows are NaN rows, never a
# failed sweep.  Every run uses --schedule SCHEDULE (static or dynamic).
#   test_pm_sweep_e2e.sh SCHEDULE PM_SWEEP PLUGIN PM_RUN PMD
set -u
SCHEDULE=$1
SWEEP_BIN=$2
PLUGIN=$3
PMRUN=$4
PMD=$5
# pm-sweep with the schedule under test (a function so pm-run can run it too).
SWEEP=$(mktemp "${TMPDIR:-/tmp}/pm-sweep-e2e-wrapper.XXXXXX")
printf '#!/bin/sh\nexec "%s" --schedule %s "$@"\n' "$SWEEP_BIN" "$SCHEDULE" > "$SWEEP"
chmod +x "$SWEEP"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pm-sweep-e2e.XXXXXX")
pmd_pid=
cleanup () {
    if [ -n "$pmd_pid" ]; then
        kill -TERM "$pmd_pid" 2>/dev/null
        wait "$pmd_pid" 2>/dev/null
    fi
    rm -rf "$WORK" "$SWEEP"
}
trap cleanup EXIT
failures=0
fail () {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# y = 2x + 1, z = x^2; the row with x < 0 fails.
cat > "$WORK/expected.csv" <<'CSV'
x,y,z,success
0,1,0,1
-1,nan,nan,0
1,3,1,1
2,5,4,1
3,7,9,1
4.5,10,20.25,1
CSV
PARAM=(--param 'x=list(0, -1, 1, 2, 3, 4.5)')
MODEL=(--model "$PLUGIN" --arg a=2 --arg b=1)
# The same model as a command; awk's %.17g is C's.
COMMAND=(--command "awk 'BEGIN { if ({x} < 0) exit 1; printf \"y=%.17g\\nz=%.17g\\n\", 2 * {x} + 1, {x} * {x} }'")

# run NAME EXPECTED_CSV PM-SWEEP-ARGS...: exit 0, the CSV as expected, a summary line.
run () {
    local name=$1 expected=$2
    shift 2
    local out="$WORK/$name.csv" err status
    err=$(timeout 90 "$@" -o "$out" 2>&1)
    status=$?
    if [ $status != 0 ]; then
        fail "$name: exit $status: $err"
        return
    fi
    if ! cmp -s "$out" "$expected"; then
        fail "$name: CSV differs from $expected:"
        diff "$expected" "$out" | head -20
        return
    fi
    if [[ "$err" == *Sanitizer* || "$err" == *"runtime error"* || "$err" == *PM3301* \
          || "$err" == *PM3302* || "$err" == *PM4003* ]]; then
        fail "$name: a rank failed or a sanitizer spoke: $err"
        return
    fi
    if [[ "$err" != *"rows, "*" failed, "*" rows/s -> $out"* ]]; then
        fail "$name: no summary line: $err"
        return
    fi
    if compgen -G "$WORK/.$name.csv.tmp.*" >/dev/null; then
        fail "$name: a temporary file was left behind"
        return
    fi
    if [ -e "$out.journal" ]; then
        fail "$name: the journal $out.journal was left behind"
        return
    fi
    echo "ok: $name: $(echo "$err" | tail -1)"
}

E=$WORK/expected.csv
run plugin-serial "$E" "$SWEEP" --backend Serial "${MODEL[@]}" "${PARAM[@]}"
run plugin-threads "$E" "$SWEEP" --backend ConcurrentFutures -n 3 "${MODEL[@]}" "${PARAM[@]}"
run plugin-processes "$E" "$SWEEP" --backend MultiProcessing -n 3 "${MODEL[@]}" "${PARAM[@]}"
run plugin-more-ranks-than-rows "$E" "$SWEEP" -n 8 "${MODEL[@]}" "${PARAM[@]}"
run plugin-pm-run "$E" "$PMRUN" -n 3 -- "$SWEEP" "${MODEL[@]}" "${PARAM[@]}"
run command-serial "$E" "$SWEEP" --backend Serial "${COMMAND[@]}" "${PARAM[@]}"
run command-threads "$E" "$SWEEP" --backend concurrent.futures -n 2 "${COMMAND[@]}" "${PARAM[@]}"
run command-processes "$E" "$SWEEP" -n 3 "${COMMAND[@]}" "${PARAM[@]}"
run command-processes-outputs "$E" "$SWEEP" -n 3 --outputs y,z "${COMMAND[@]}" "${PARAM[@]}"
run command-pm-run "$E" "$PMRUN" -n 2 -- "$SWEEP" "${COMMAND[@]}" "${PARAM[@]}"

# A standalone pmd: ranks forked here register with it (--endpoint).
"$PMD" --bind 'tcp://127.0.0.1:*' --ready-file "$WORK/pmd.ready" >"$WORK/pmd.log" 2>&1 &
pmd_pid=$!
for _ in $(seq 100); do [ -s "$WORK/pmd.ready" ] && break; sleep 0.1; done
if [ -s "$WORK/pmd.ready" ]; then
    EP=$(head -1 "$WORK/pmd.ready")
    run plugin-pmd "$E" "$SWEEP" --endpoint "$EP" -n 3 "${MODEL[@]}" "${PARAM[@]}"
    run command-pmd "$E" "$SWEEP" --endpoint "$EP" -n 2 "${COMMAND[@]}" "${PARAM[@]}"
else
    fail "pmd did not start: $(cat "$WORK/pmd.log")"
fi

# Heterogeneous and failing commands: outputs NaN-padded, rows time out,
# --outputs chooses and orders the columns.
cat > "$WORK/hetero.csv" <<'CSV'
k,b,a,success
1,nan,1,1
2,20,2,1
3,nan,nan,0
4,nan,nan,0
CSV
run command-heterogeneous "$WORK/hetero.csv" "$SWEEP" -n 2 --timeout 0.5 --outputs b,a \
    --command 'case {k} in 1) echo a=1;; 2) echo "{\"b\": 20, \"a\": 2, \"c\": 5}";; 3) sleep 10;; 4) exit 7;; esac' \
    --param 'k=list(1,2,3,4)'

# Random spaces: the same seed gives the same rows on every backend.
RANDOM_SPACE=(--param 'u=uniform(0, 1)' --param 'v=lhs(10, 20)' --param 'w=normal(0, 1)' --samples 50 --seed 11)
if timeout 60 "$SWEEP" --backend Serial --model "$PLUGIN" "${RANDOM_SPACE[@]}" -o "$WORK/random.csv" 2>/dev/null; then
    run random-processes "$WORK/random.csv" "$SWEEP" -n 3 --model "$PLUGIN" "${RANDOM_SPACE[@]}"
    run random-pm-run "$WORK/random.csv" "$PMRUN" -n 2 -- "$SWEEP" --model "$PLUGIN" "${RANDOM_SPACE[@]}"
    rows=$(($(wc -l < "$WORK/random.csv") - 1))
    [ "$rows" = 50 ] || fail "random: $rows rows, expected 50"
    head -1 "$WORK/random.csv" | grep -qx 'u,v,w,y,z,success' || fail "random: header $(head -1 "$WORK/random.csv")"
else
    fail "random-serial failed"
fi

# The discovery run fails: exit 1, no file (and no journal).
err=$(timeout 30 "$SWEEP" -n 2 --command 'exit 3' --param 'x=list(1,2)' -o "$WORK/none.csv" 2>&1)
status=$?
if [ $status != 1 ] || [[ "$err" != *"cannot discover the command's outputs"* ]] || [ -e "$WORK/none.csv" ] \
   || [ -e "$WORK/none.csv.journal" ]; then
    fail "discovery failure: exit $status: $err"
else
    echo "ok: discovery failure: $err"
fi

if [ $failures -ne 0 ]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "all good"
