#!/usr/bin/env bash
# sweep-hdf5: pm-sweep's HDF5 output (-o FILE.h5, --hdf5 FILE) holds the
# same table as its CSV: CHECK (test_pm_sweep_hdf5_check.c) reads the
# datasets and attributes back with libhdf5 and compares every value bit for
# bit with the CSV's (NaN on failed rows).  Also: no temporary file or
# journal is left, -o FILE.h5 writes no CSV, a resumed sweep writes the same
# HDF5 file, and the option errors exit 2 before any work.
#   test_pm_sweep_hdf5.sh PM_SWEEP PLUGIN CHECK
set -u
SWEEP=$1
PLUGIN=$2
CHECK=$3
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pm-sweep-hdf5.XXXXXX")
GROUP=
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
CMD='awk '"'"'BEGIN { if ({x} < 0) exit 1; printf "y=%.17g\nz=%.17g\n", 2 * {x} + 1, {x} * {x} }'"'"

# sweep NAME ARGS...: pm-sweep ARGS exits 0 with a summary, no sanitizer
# report, and leaves no temporary file or journal in $WORK.
sweep () {
    local name=$1 err status
    shift
    err=$(timeout 90 "$SWEEP" "$@" 2>&1)
    status=$?
    if [ $status != 0 ]; then
        fail "$name: exit $status: $err"
        return 1
    fi
    if [[ "$err" == *Sanitizer* || "$err" == *"runtime error"* || "$err" == *HDF5-DIAG* ]]; then
        fail "$name: a sanitizer or HDF5 spoke: $err"
        return 1
    fi
    if [[ "$err" != *" rows"*" failed, "*" rows/s -> "* ]]; then
        fail "$name: no summary line: $err"
        return 1
    fi
    if compgen -G "$WORK/.*.tmp.*" >/dev/null || compgen -G "$WORK/*.journal" >/dev/null; then
        fail "$name: a temporary file or journal was left behind: $(ls -A "$WORK")"
        return 1
    fi
    echo "ok: $name: $(echo "$err" | tail -1)"
}

# check NAME H5 CSV NINPUTS [KIND MODEL]: CHECK agrees.
check () {
    local name=$1 out
    shift
    if out=$("$CHECK" "$@" 2>&1); then
        echo "ok: $name: $out"
    else
        fail "$name: $out"
    fi
}

# Both files from one run, per backend; the CSV is the one every backend writes.
if sweep plugin-serial --backend Serial "${MODEL[@]}" "${PARAM[@]}" -o "$WORK/a.csv" --hdf5 "$WORK/a.h5"; then
    cmp -s "$WORK/a.csv" "$WORK/expected.csv" || fail "plugin-serial: the CSV differs: $(diff "$WORK/expected.csv" "$WORK/a.csv")"
    check plugin-serial "$WORK/a.h5" "$WORK/a.csv" 1 plugin "$PLUGIN"
fi
if sweep plugin-threads --backend ConcurrentFutures -n 3 "${MODEL[@]}" "${PARAM[@]}" -o "$WORK/t.csv" --hdf5 "$WORK/t.hdf5"; then
    check plugin-threads "$WORK/t.hdf5" "$WORK/expected.csv" 1 plugin "$PLUGIN"
fi
# -o FILE.h5: HDF5 only (no CSV); the journal was FILE.h5.journal.
if sweep plugin-processes-h5-only -n 3 "${MODEL[@]}" "${PARAM[@]}" -o "$WORK/p.h5"; then
    check plugin-processes-h5-only "$WORK/p.h5" "$WORK/expected.csv" 1 plugin "$PLUGIN"
    [ "$(ls "$WORK" | grep -c '^p\.')" = 1 ] || fail "-o p.h5 wrote other files: $(ls "$WORK")"
fi
if sweep command-processes -n 2 --outputs y,z --command "$CMD" "${PARAM[@]}" -o "$WORK/c.csv" --hdf5 "$WORK/c.h5"; then
    cmp -s "$WORK/c.csv" "$WORK/expected.csv" || fail "command-processes: the CSV differs"
    check command-processes "$WORK/c.h5" "$WORK/c.csv" 1 command "$CMD"
fi
# Discovered outputs, NaN padding on successful rows, a timed-out row.
HET='case {k} in 1) echo a=1;; 2) echo "{\"b\": 20, \"a\": 2}";; 3) sleep 10;; 4) exit 7;; esac'
if sweep command-heterogeneous -n 2 --timeout 0.5 --outputs b,a --command "$HET" --param 'k=list(1,2,3,4)' \
        -o "$WORK/h.csv" --hdf5 "$WORK/h.h5"; then
    check command-heterogeneous "$WORK/h.h5" "$WORK/h.csv" 1 command "$HET"
fi
# Random doubles (every bit counts), three inputs, an existing file replaced.
RANDOM_SPACE=(--param 'u=uniform(-1e300, 1e300)' --param 'v=lhs(1e-300, 2e-300)' --param 'w=normal(0, 1)' --samples 500 --seed 7)
echo old > "$WORK/r.h5"
if sweep random-processes -n 3 --model "$PLUGIN" "${RANDOM_SPACE[@]}" -o "$WORK/r.csv" --hdf5 "$WORK/r.h5"; then
    check random-processes "$WORK/r.h5" "$WORK/r.csv" 3 plugin "$PLUGIN"
fi

# h5dump (hdf5-tools), when here, sees the layout.
if command -v h5dump >/dev/null; then
    layout=$(h5dump -H "$WORK/a.h5" 2>&1)
    before=$failures
    for want in 'DATASET "inputs"' 'DATASET "outputs"' 'DATASET "success"' 'DATASET "input_names"' \
                'DATASET "output_names"' 'ATTRIBUTE "rows"' 'ATTRIBUTE "model"' 'ATTRIBUTE "model_kind"' \
                'H5T_IEEE_F64LE' 'H5T_STD_U8LE' '( 6, 2 )' '( 6, 1 )'; do
        [[ "$layout" == *"$want"* ]] || fail "h5dump -H a.h5 shows no $want"
    done
    if [ $failures = $before ]; then echo "ok: h5dump -H sees the layout"; else echo "$layout"; fi
else
    echo "skip: h5dump (hdf5-tools) is not installed"
fi

# --resume with -o FILE.h5: a sweep killed with SIGKILL, then resumed,
# writes the file an uninterrupted run writes.
ROWS=400
RESUME=(--backend Serial --model "$PLUGIN" --arg spin_us=3000 --param "x=linspace(-10, 389, $ROWS)")
if sweep resume-reference --backend Serial --model "$PLUGIN" --param "x=linspace(-10, 389, $ROWS)" -o "$WORK/ref.csv"; then
    rm -f "$WORK/res.pid"
    setsid sh -c 'echo $$ > "$0"; exec "$@"' "$WORK/res.pid" "$SWEEP" "${RESUME[@]}" -o "$WORK/res.h5" \
        2>"$WORK/res.err" &
    deadline=$(($(now_ms) + 10000))
    while [ ! -s "$WORK/res.pid" ] && [ "$(now_ms)" -lt $deadline ]; do sleep 0.01; done
    PID=$(cat "$WORK/res.pid")
    GROUP=$PID
    deadline=$(($(now_ms) + 20000))
    while kill -0 "$PID" 2>/dev/null && [ "$(now_ms)" -lt $deadline ]; do
        [ -f "$WORK/res.h5.journal" ] && [ "$(wc -l < "$WORK/res.h5.journal")" -ge 60 ] && break
        sleep 0.01
    done
    kill -KILL -- "-$GROUP" 2>/dev/null
    wait "$PID" 2>/dev/null
    GROUP=
    if [ -e "$WORK/res.h5" ] || [ ! -f "$WORK/res.h5.journal" ]; then
        fail "resume: the killed sweep left res.h5 or no journal: $(ls -A "$WORK"; cat "$WORK/res.err")"
    else
        err=$(timeout 90 "$SWEEP" "${RESUME[@]}" -o "$WORK/res.h5" --resume 2>&1)
        status=$?
        if [ $status != 0 ] || [[ "$err" != *"resuming from"* ]] || [ -e "$WORK/res.h5.journal" ] \
           || [[ "$err" == *Sanitizer* || "$err" == *HDF5-DIAG* ]]; then
            fail "resume: exit $status: $err"
        else
            check resume-h5 "$WORK/res.h5" "$WORK/ref.csv" 1 plugin "$PLUGIN"
        fi
    fi
fi

# The HDF5 write fails (a file size limit the small CSV and journal fit in,
# the HDF5 file does not): exit 1 with the reason, no temporary file, no
# HDF5 file, the journal kept; --resume then writes both files.
err=$(trap '' XFSZ; ulimit -f 4; timeout 60 "$SWEEP" --backend Serial "${MODEL[@]}" "${PARAM[@]}" \
      -o "$WORK/f.csv" --hdf5 "$WORK/f.h5" 2>&1)
status=$?
if [ $status != 1 ] || [[ "$err" != *"cannot write '$WORK/.f.h5.tmp."*"File too large"* ]] \
   || [ -e "$WORK/f.h5" ] || compgen -G "$WORK/.f.*" >/dev/null || [ ! -f "$WORK/f.csv.journal" ] \
   || [[ "$err" == *Sanitizer* || "$err" == *HDF5-DIAG* ]]; then
    fail "hdf5-write-fails: exit $status, expected 1, no f.h5, no temporary file, the journal: $err; $(ls -A "$WORK")"
else
    echo "ok: hdf5-write-fails: $err"
    if sweep hdf5-write-fails-resume --backend Serial "${MODEL[@]}" "${PARAM[@]}" -o "$WORK/f.csv" --hdf5 "$WORK/f.h5" --resume; then
        cmp -s "$WORK/f.csv" "$WORK/expected.csv" || fail "hdf5-write-fails-resume: the CSV differs"
        check hdf5-write-fails-resume "$WORK/f.h5" "$WORK/expected.csv" 1 plugin "$PLUGIN"
    fi
fi

# Option errors: exit 2 with the message, nothing written.
# expect_usage NAME MESSAGE ARGS...
expect_usage () {
    local name=$1 message=$2 err status
    shift 2
    err=$(timeout 30 "$SWEEP" --backend Serial "${MODEL[@]}" "${PARAM[@]}" "$@" 2>&1)
    status=$?
    if [ $status != 2 ] || [[ "$err" != *"$message"* ]]; then
        fail "$name: exit $status, expected 2 with '$message': $err"
    elif compgen -G "$WORK/bad*" >/dev/null; then
        fail "$name: files were written: $(ls "$WORK")"
    else
        echo "ok: $name: $err"
    fi
}
expect_usage h5-twice "is already an HDF5 file" -o "$WORK/bad.h5" --hdf5 "$WORK/bad2.h5"
expect_usage same-file "are the same file" -o "$WORK/bad.csv" --hdf5 "$WORK/bad.csv"
expect_usage hdf5-no-dir "--hdf5: cannot write" -o "$WORK/bad.csv" --hdf5 "$WORK/nodir/bad.h5"
expect_usage h5-no-dir "-o: cannot write" -o "$WORK/nodir/bad.h5"

if [ $failures -ne 0 ]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "all good"
