#!/usr/bin/env bash
# sweep-cli-errors: bad pm-sweep invocations exit 2 with a helpful message,
# before any work (no results file appears).
#   test_pm_sweep_cli.sh PM_SWEEP PLUGIN
set -u
SWEEP=$1
PLUGIN=$2
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pm-sweep-cli.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
OUT=$WORK/out.csv
failures=0

# expect_error STATUS NEEDLE ARGS...: pm-sweep ARGS exits STATUS, says NEEDLE
# on stderr, and writes no results.
expect_error () {
    local want=$1 needle=$2
    shift 2
    local err status
    err=$(timeout 20 "$SWEEP" "$@" 2>&1 >/dev/null)
    status=$?
    if [ "$status" != "$want" ]; then
        echo "FAIL: pm-sweep $*: exit $status, expected $want; stderr: $err"
        failures=$((failures + 1))
    elif [[ "$err" != *"$needle"* ]]; then
        echo "FAIL: pm-sweep $*: stderr lacks '$needle': $err"
        failures=$((failures + 1))
    elif [ -e "$OUT" ]; then
        echo "FAIL: pm-sweep $*: wrote $OUT"
        failures=$((failures + 1))
        rm -f "$OUT"
    else
        echo "ok: exit $want: $err" | head -3
    fi
}

CMD=(--command 'echo y={x}')
expect_error 2 "linspace needs 3 arguments (start, stop, count)" \
    "${CMD[@]}" --param 'x=linspace(1,2)' -o "$OUT"
expect_error 2 "--param 'x=linspace(1,2)'" "${CMD[@]}" --param 'x=linspace(1,2)' -o "$OUT"
expect_error 2 "geomspace needs start > 0" "${CMD[@]}" --param 'x=geomspace(0,2,3)' -o "$OUT"
expect_error 2 "unknown kind 'linspcae'" "${CMD[@]}" --param 'x=linspcae(0,2,3)' -o "$OUT"
expect_error 2 "--connect needs -n N" "${CMD[@]}" --connect tcp://127.0.0.1:9 --param 'x=list(1)' -o "$OUT"
expect_error 2 "need --samples" "${CMD[@]}" --param 'x=uniform(0,1)' -o "$OUT"
expect_error 2 "cannot mix grid kinds" "${CMD[@]}" --param 'x=uniform(0,1)' \
    --param 'y=list(1,2)' --samples 4 -o "$OUT"
expect_error 2 "--samples is for random kinds" "${CMD[@]}" --param 'x=list(1,2)' --samples 4 -o "$OUT"
expect_error 2 "--samples needs a whole number" "${CMD[@]}" --param 'x=uniform(0,1)' --samples 0 -o "$OUT"
expect_error 2 "limit" "${CMD[@]}" --param 'x=linspace(0,1,100000)' --param 'y=linspace(0,1,100000)' -o "$OUT"
expect_error 2 "parameter 'x' is given twice" "${CMD[@]}" --param 'x=list(1)' --param 'x=list(2)' -o "$OUT"
expect_error 2 "no parameters" "${CMD[@]}" -o "$OUT"
expect_error 2 "no model" --param 'x=list(1)' -o "$OUT"
expect_error 2 "exclude each other" "${CMD[@]}" --model "$PLUGIN" --param 'x=list(1)' -o "$OUT"
expect_error 2 "no output file" "${CMD[@]}" --param 'x=list(1)'
expect_error 2 "unknown placeholder {feed}" --command 'sim {feed}' --param 'x=list(1)' -o "$OUT"
expect_error 2 "--outputs is for --command" --model "$PLUGIN" --outputs a --param 'x=list(1)' -o "$OUT"
expect_error 2 "--timeout is for --command" --model "$PLUGIN" --timeout 3 --param 'x=list(1)' -o "$OUT"
expect_error 2 "--arg is for --model" "${CMD[@]}" --arg a=1 --param 'x=list(1)' -o "$OUT"
expect_error 2 "--arg 'a': expected KEY=VALUE" --model "$PLUGIN" --arg a --param 'x=list(1)' -o "$OUT"
expect_error 2 "--timeout needs a number of seconds" "${CMD[@]}" --timeout -1 --param 'x=list(1)' -o "$OUT"
expect_error 2 "--timeout needs a number of seconds" "${CMD[@]}" --timeout 1s --param 'x=list(1)' -o "$OUT"
expect_error 2 "'x' is also a parameter" "${CMD[@]}" --outputs x,y --param 'x=list(1)' -o "$OUT"
expect_error 2 "'success' is the name of the CSV's status column" "${CMD[@]}" --outputs success --param 'x=list(1)' -o "$OUT"
expect_error 2 "named twice" "${CMD[@]}" --outputs y,y --param 'x=list(1)' -o "$OUT"
expect_error 2 "-n needs a number of ranks" "${CMD[@]}" -n 0 --param 'x=list(1)' -o "$OUT"
expect_error 2 "-n needs a number of ranks" "${CMD[@]}" -n four --param 'x=list(1)' -o "$OUT"
expect_error 2 "is not a backend" "${CMD[@]}" --backend Threads --param 'x=list(1)' -o "$OUT"
expect_error 2 "--schedule must be static or dynamic" "${CMD[@]}" --schedule fast --param 'x=list(1)' -o "$OUT"
expect_error 2 "--seed needs a whole number" "${CMD[@]}" --seed -3 --param 'x=uniform(0,1)' --samples 3 -o "$OUT"
expect_error 2 "--resume needs the dynamic schedule" "${CMD[@]}" --resume --schedule static --param 'x=list(1)' -o "$OUT"
expect_error 2 "unexpected argument 'stray'" "${CMD[@]}" --param 'x=list(1)' -o "$OUT" stray
expect_error 2 "Try 'pm-sweep --help'" "${CMD[@]}" --bogus --param 'x=list(1)' -o "$OUT"
expect_error 2 "directory '$WORK/nope'" "${CMD[@]}" --param 'x=list(1)' -o "$WORK/nope/out.csv"
expect_error 2 "is a directory" "${CMD[@]}" --param 'x=list(1)' -o "$WORK"
expect_error 2 "cannot load model" --model "$WORK/missing.so" --param 'x=list(1)' -o "$OUT"
expect_error 2 "no symbol other_abi_version" --model "$PLUGIN:other_" --param 'x=list(1)' -o "$OUT"

# The journal next to the output (OUT.journal): in the way without
# --resume, refused when it is another sweep's or no journal at all; and
# left as it was.
J=$OUT.journal
HEADER_OTHER='pm-sweep-journal 1 rows=1 inputs=x outputs=- params=0000000000000000 model=0000000000000000'
expect_journal_error () {
    local content=$1
    shift
    printf '%b' "$content" > "$J"
    expect_error "$@"
    if [ "$(cat "$J")" != "$(printf '%b' "$content")" ]; then
        echo "FAIL: pm-sweep ${*:3}: changed $J"
        failures=$((failures + 1))
    fi
    rm -f "$J"
}
expect_journal_error "$HEADER_OTHER\n0,1,1\n" 2 "$J exists: a sweep writing $OUT was interrupted. Run the same command with --resume" \
    "${CMD[@]}" --param 'x=list(1)' -o "$OUT"
expect_journal_error "" 2 "with --resume to continue it, or delete $J" "${CMD[@]}" --param 'x=list(1)' -o "$OUT"
expect_journal_error "$HEADER_OTHER\n0,1,1\n" 2 "is the journal of another sweep: its parameter rows differ" \
    "${CMD[@]}" --param 'x=list(1)' -o "$OUT" --resume
expect_journal_error "${HEADER_OTHER/rows=1/rows=2}\n" 2 "journal of another sweep: it is of a sweep of 2 rows, this one has 1" \
    "${CMD[@]}" --param 'x=list(1)' -o "$OUT" --resume
expect_journal_error "${HEADER_OTHER/inputs=x/inputs=u}\n" 2 "journal of another sweep: its parameters are u, this sweep's are x" \
    "${CMD[@]}" --param 'x=list(1)' -o "$OUT" --resume
expect_journal_error "x,y,success\n1,2,1\n" 2 "is not a pm-sweep journal" \
    "${CMD[@]}" --param 'x=list(1)' -o "$OUT" --resume
expect_journal_error "${HEADER_OTHER/ 1 / 7 }\n" 2 "a journal of version 7; this pm-sweep reads version 1" \
    "${CMD[@]}" --param 'x=list(1)' -o "$OUT" --resume
mkdir "$J"
expect_error 2 "$J is in the way" "${CMD[@]}" --param 'x=list(1)' -o "$OUT"
rmdir "$J"

# --resume without a journal runs the whole sweep, and says so.
err=$(timeout 30 "$SWEEP" --backend Serial "${CMD[@]}" --param 'x=list(1,2)' -o "$OUT" --resume 2>&1)
status=$?
if [ $status != 0 ] || [[ "$err" != *"there is no journal $J: running the whole sweep"* ]] \
   || [ "$(cat "$OUT" 2>/dev/null)" != $'x,y,success\n1,1,1\n2,2,1' ] || [ -e "$J" ]; then
    echo "FAIL: --resume without a journal: exit $status: $err; $(cat "$OUT" 2>/dev/null)"
    failures=$((failures + 1))
else
    echo "ok: --resume without a journal: $err" | head -3
fi
rm -f "$OUT"

# Help and version go to stdout and exit 0.
help=$("$SWEEP" --help)
for word in --backend --np --connect --schedule --model --arg --command --outputs --timeout \
            --param --samples --seed --output --log-level --resume --help --version \
            linspace geomspace list uniform normal lhs "progress line" "rank 0's own rows" \
            "FILE.journal" "--resume with --schedule static"; do
    if [[ "$help" != *"$word"* ]]; then
        echo "FAIL: --help does not mention $word"
        failures=$((failures + 1))
    fi
done
version=$("$SWEEP" --version)
if [[ "$version" != "pm-sweep (pm) "* ]]; then
    echo "FAIL: --version said '$version'"
    failures=$((failures + 1))
fi

# A runtime error is exit 1: the plugin's build fails on every rank.
err=$(timeout 60 "$SWEEP" --backend Serial --model "$PLUGIN" --arg fail_build=1 \
      --param 'x=list(1)' -o "$OUT" 2>&1)
status=$?
if [ $status != 1 ] || [[ "$err" != *"asked to fail"* ]] || [ -e "$OUT" ] || [ -e "$OUT.journal" ]; then
    echo "FAIL: a failing build: exit $status (expected 1): $err"
    failures=$((failures + 1))
fi

# Under pm-run only rank 0 reports a usage error (all ranks exit 2).
err=$(PM_RANK=1 PM_SIZE=2 timeout 20 "$SWEEP" "${CMD[@]}" --param 'x=linspace(1,2)' -o "$OUT" 2>&1)
status=$?
if [ $status != 2 ] || [ -n "$err" ]; then
    echo "FAIL: rank 1 with bad arguments: exit $status, said '$err'"
    failures=$((failures + 1))
fi

if [ $failures -ne 0 ]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "all good"
