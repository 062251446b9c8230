#!/usr/bin/env bash
# sweep-resume: a pm-sweep killed with SIGKILL (all its processes) is
# continued with the same command plus --resume: exit 0, the CSV equals an
# uninterrupted run's byte for byte, the journal is gone, and the rows that
# run after resuming are exactly those the journal did not hold (none redone,
# none lost).  Also: a journal refuses another sweep, and --resume cannot
# take the static schedule.
#   test_pm_sweep_resume.sh PM_SWEEP PLUGIN
set -u
SWEEP=$1
PLUGIN=$2
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pm-sweep-resume.XXXXXX")
GROUP=   # process group of a pm-sweep started by start_sweep, while it may live
cleanup () {
    [ -n "$GROUP" ] && kill -KILL -- "-$GROUP" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
failures=0
fail () {
    echo "FAIL: $*"
    failures=$((failures + 1))
}
now_ms () { date +%s%3N; }

# journal_rows FILE: its complete row lines (not the header, not a torn end).
journal_rows () {
    local n
    n=$(wc -l < "$1")
    echo $((n > 0 ? n - 1 : 0))
}
# journal_indexes FILE: the sorted indexes of its complete rows.
journal_indexes () {
    head -n "$(wc -l < "$1")" "$1" | tail -n +2 | grep -E '^[0-9]+,' | cut -d, -f1 | LC_ALL=C sort
}

# start_sweep NAME ARGS...: pm-sweep ARGS in a session of its own (the
# ranks it forks share its process group); sets PID (= the group's id).
start_sweep () {
    local name=$1
    shift
    rm -f "$WORK/$name.pid"
    setsid sh -c 'echo $$ > "$0"; exec "$@"' "$WORK/$name.pid" "$SWEEP" "$@" \
        2>"$WORK/$name.err" &
    local deadline=$(($(now_ms) + 10000))
    while [ ! -s "$WORK/$name.pid" ] && [ "$(now_ms)" -lt $deadline ]; do sleep 0.01; done
    PID=$(cat "$WORK/$name.pid" 2>/dev/null)
    GROUP=$PID
}

# kill_group_when JOURNAL MIN TOTAL: wait (at most 20 s) until JOURNAL holds
# at least MIN rows, then SIGKILL the whole group and wait until every
# process of it is gone.  Fails if the sweep ended first.
kill_group_when () {
    local journal=$1 min=$2 total=$3 deadline=$(($(now_ms) + 20000))
    while :; do
        if ! kill -0 "$PID" 2>/dev/null; then
            fail "the sweep ended before it could be killed: $(cat "$WORK"/*.err)"
            return 1
        fi
        if [ -f "$journal" ] && [ "$(journal_rows "$journal")" -ge "$min" ]; then
            break
        fi
        if [ "$(now_ms)" -ge $deadline ]; then
            fail "$journal did not reach $min rows in 20 s"
            return 1
        fi
        sleep 0.01
    done
    kill -KILL -- "-$GROUP"
    wait "$PID" 2>/dev/null
    deadline=$(($(now_ms) + 10000))
    while kill -0 -- "-$GROUP" 2>/dev/null; do
        if [ "$(now_ms)" -ge $deadline ]; then
            fail "process group $GROUP still alive 10 s after SIGKILL"
            return 1
        fi
        sleep 0.01
    done
    GROUP=
    local rows
    rows=$(journal_rows "$journal")
    if [ "$rows" -ge "$total" ]; then
        fail "the journal had every row ($rows) when the sweep was killed"
        return 1
    fi
    return 0
}

# expect_refusal NAME NEEDLE JOURNAL ARGS...: pm-sweep ARGS exits 2 saying
# NEEDLE, and leaves JOURNAL as it was.
expect_refusal () {
    local name=$1 needle=$2 journal=$3
    shift 3
    cp "$journal" "$WORK/journal.before"
    local err status
    err=$(timeout 30 "$SWEEP" "$@" 2>&1 >/dev/null)
    status=$?
    if [ $status != 2 ] || [[ "$err" != *"$needle"* ]]; then
        fail "$name: exit $status (expected 2), stderr lacks '$needle': $err"
    elif ! cmp -s "$journal" "$WORK/journal.before"; then
        fail "$name: the journal was changed"
    else
        echo "ok: $name: $err"
    fi
}

# check_resumed NAME OUT REFERENCE COUNTER DONE_LIST COUNT_BEFORE TOTAL ERRFILE:
# the checks after a resume that exited 0.
check_resumed () {
    local name=$1 out=$2 ref=$3 counter=$4 done_list=$5 before=$6 total=$7 err=$8
    if ! cmp -s "$out" "$ref"; then
        fail "$name: the CSV differs from an uninterrupted run's:"
        diff "$ref" "$out" | head -10
    fi
    [ -e "$out.journal" ] && fail "$name: the journal is still there"
    # Which rows ran after resuming: the counter's new lines.
    tail -n +$((before + 1)) "$counter" | LC_ALL=C sort > "$WORK/$name.ran"
    seq 0 $((total - 1)) | LC_ALL=C sort > "$WORK/all"
    comm -23 "$WORK/all" "$done_list" > "$WORK/$name.expected"
    if ! cmp -s "$WORK/$name.ran" "$WORK/$name.expected"; then
        fail "$name: the rows run after resuming are not those missing from the journal" \
             "($(wc -l < "$WORK/$name.ran") run, $(wc -l < "$WORK/$name.expected") missing;" \
             "run but not missing: $(comm -13 "$WORK/$name.expected" "$WORK/$name.ran" | head -5 | tr '\n' ' ');" \
             "missing but not run: $(comm -23 "$WORK/$name.expected" "$WORK/$name.ran" | head -5 | tr '\n' ' '))"
    fi
    if [[ "$(cat "$err")" == *Sanitizer* || "$(cat "$err")" == *"runtime error"* ]]; then
        fail "$name: a sanitizer spoke: $(cat "$err")"
    fi
    echo "ok: $name: $(wc -l < "$done_list") rows from the journal," \
         "$(wc -l < "$WORK/$name.ran") run after resuming; $(tail -1 "$err")"
}

# plugin_case NAME ROWS MIN_DONE BACKEND-ARGS...: a plugin sweep whose rows
# take 2 ms, killed once its journal holds MIN_DONE rows, then resumed.
plugin_case () {
    local name=$1 rows=$2 min=$3
    shift 3
    local backend=("$@")
    local out=$WORK/$name.csv counter=$WORK/$name.count
    local param=(--param "x=linspace(0, $((rows - 1)), $rows)")
    local model=(--model "$PLUGIN" --arg a=3 --arg b=-1 --arg spin_us=2000 --arg "counter=$counter")
    # The uninterrupted run: the same model without the test's instruments.
    if ! timeout 60 "$SWEEP" "${backend[@]}" --model "$PLUGIN" --arg a=3 --arg b=-1 \
         "${param[@]}" -o "$WORK/$name.ref.csv" 2>"$WORK/$name.ref.err"; then
        fail "$name: the uninterrupted run failed: $(cat "$WORK/$name.ref.err")"
        return
    fi
    start_sweep "$name" "${backend[@]}" "${model[@]}" "${param[@]}" -o "$out"
    # While it runs, its journal is locked: neither a second run nor a
    # --resume may touch it.
    local deadline=$(($(now_ms) + 20000))
    while [ ! -s "$out.journal" ] && [ "$(now_ms)" -lt $deadline ]; do sleep 0.01; done
    local err status
    for extra in "" --resume; do
        err=$(timeout 30 "$SWEEP" "${backend[@]}" "${model[@]}" "${param[@]}" -o "$out" $extra 2>&1)
        status=$?
        if [ $status != 2 ] || [[ "$err" != *"$out.journal is in use: a pm-sweep writing $out is running"* ]]; then
            fail "$name: a second run ${extra:-without --resume} while the first runs: exit $status: $err"
        else
            echo "ok: $name: a second run ${extra:-without --resume} while the first runs: $err"
        fi
    done
    kill_group_when "$out.journal" "$min" "$rows" || return
    [ -e "$out" ] && fail "$name: a killed sweep wrote $out"
    local journal=$out.journal

    # The journal belongs to this sweep only.
    expect_refusal "$name: no --resume" "with --resume to continue it" "$journal" \
        "${backend[@]}" "${model[@]}" "${param[@]}" -o "$out"
    expect_refusal "$name: other rows" "journal of another sweep: its parameter rows differ" \
        "$journal" "${backend[@]}" "${model[@]}" --param "x=linspace(1, $rows, $rows)" \
        -o "$out" --resume
    expect_refusal "$name: other row count" "journal of another sweep" "$journal" \
        "${backend[@]}" "${model[@]}" --param "x=linspace(0, $rows, $((rows + 1)))" \
        -o "$out" --resume
    expect_refusal "$name: other model" "journal of another sweep: its model differs" \
        "$journal" "${backend[@]}" "${model[@]}" --arg a=4 "${param[@]}" -o "$out" --resume
    expect_refusal "$name: static" "--resume needs the dynamic schedule" "$journal" \
        "${backend[@]}" --schedule static "${model[@]}" "${param[@]}" -o "$out" --resume

    # A line that is no row, and a torn last line (as if killed mid-write):
    # both ignored, with a warning.
    journal_indexes "$journal" > "$WORK/$name.done"
    printf 'not a row\n17,3' >> "$journal"
    local before
    before=$(wc -l < "$counter")
    err=$WORK/$name.resume.err
    timeout 60 "$SWEEP" "${backend[@]}" "${model[@]}" "${param[@]}" -o "$out" --resume 2>"$err"
    status=$?
    if [ $status != 0 ]; then
        fail "$name: --resume exited $status: $(cat "$err")"
        return
    fi
    grep -q "resuming from $journal: $(wc -l < "$WORK/$name.done") of $rows rows done" "$err" \
        || fail "$name: no 'resuming from' line: $(cat "$err")"
    grep -q "not a row of this sweep; ignored" "$err" || fail "$name: no warning for the bad line"
    grep -q "last line was cut short" "$err" || fail "$name: no warning for the torn line"
    check_resumed "$name" "$out" "$WORK/$name.ref.csv" "$counter" "$WORK/$name.done" \
        "$before" "$rows" "$err"
}

plugin_case processes 2000 200 -n 2
plugin_case serial 1000 150 --backend Serial
plugin_case threads 1000 150 --backend ConcurrentFutures -n 2

# A command whose outputs were discovered from row 0: the resumed sweep
# takes them from the journal and does not run row 0 again.  Serial, and
# the command itself SIGKILLs pm-sweep at row 300 (one row in flight: the
# killer), once.
ROWS=600
cat > "$WORK/row.sh" <<'SH'
#!/bin/sh
echo "$1" >> "$COUNTER"
if [ "$1" = 300 ] && [ -e "$TRIGGER" ]; then
    rm -f "$TRIGGER"
    kill -KILL "$(cat "$PIDFILE")"
    exit 1
fi
echo "y=$(($1 * 2))"
echo "z=$(($1 % 7))"
SH
chmod +x "$WORK/row.sh"
export COUNTER=$WORK/command.count TRIGGER=$WORK/trigger PIDFILE=$WORK/command.pid
CMD=(--backend Serial --command "$WORK/row.sh {x}" --param "x=linspace(0, $((ROWS - 1)), $ROWS)")
OUT=$WORK/command.csv
if timeout 60 "$SWEEP" "${CMD[@]}" -o "$WORK/command.ref.csv" 2>"$WORK/command.ref.err"; then
    : > "$COUNTER"
    touch "$TRIGGER"
    start_sweep command "${CMD[@]}" -o "$OUT"
    wait "$PID"
    status=$?
    GROUP=
    if [ $status != 137 ] || [ -e "$TRIGGER" ] || [ ! -f "$OUT.journal" ]; then
        fail "command: expected a SIGKILL at row 300 (exit $status): $(cat "$WORK/command.err")"
    else
        journal_indexes "$OUT.journal" > "$WORK/command.done"
        head -1 "$OUT.journal" | grep -q ' outputs=y,z ' \
            || fail "command: the journal's header lacks outputs=y,z: $(head -1 "$OUT.journal")"
        before=$(wc -l < "$COUNTER")
        if timeout 60 "$SWEEP" "${CMD[@]}" -o "$OUT" --resume 2>"$WORK/command.resume.err"; then
            check_resumed command "$OUT" "$WORK/command.ref.csv" "$COUNTER" \
                "$WORK/command.done" "$before" $ROWS "$WORK/command.resume.err"
        else
            fail "command: --resume failed: $(cat "$WORK/command.resume.err")"
        fi
    fi
else
    fail "command: the uninterrupted run failed: $(cat "$WORK/command.ref.err")"
fi

if [ $failures -ne 0 ]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "all good"
