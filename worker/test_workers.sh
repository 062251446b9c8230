#!/usr/bin/env bash
# pmd + two pm-workers on loopback: placement across workers, streamed
# output, refusal when slots run out, a SIGKILLed worker mid-run (its ranks
# die with it, pm-run fails and stops the rest), clean SIGTERM of workers
# and pmd, and no process left behind.  Every wait has a deadline.
# Also: a sweep through the workers gives the Serial run's CSV, and a
# worker SIGKILLed mid-sweep still leaves a complete, exact CSV.
# usage: test_workers.sh PMD PM_WORKER PM_RUN PM_DEMO PM_SWEEP SLOW_PLUGIN RO_MODEL
set -uo pipefail
pmd=$1 worker=$2 pmrun=$3 demo=$4 sweep=$5 plugin=$6 ro_model=$7
tmp=$(mktemp -d)
pids=()
cleanup () {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  pkill -9 -f "$tmp/marker" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
fail () { echo "test_workers: FAIL: $*"; exit 1; }
wait_for () { # wait_for SECONDS COMMAND...: poll a condition with a deadline
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do ((SECONDS < deadline)) || return 1; sleep 0.05; done
}

"$pmd" --bind 'tcp://127.0.0.1:*' --ready-file "$tmp/ready" --heartbeat-timeout 1500 \
  --log-level warn 2>"$tmp/pmd.log" & pids+=($!); pmd_pid=$!
wait_for 20 test -s "$tmp/ready" || fail "pmd did not start"
ep=$(head -1 "$tmp/ready")
"$worker" --connect "$ep" --slots 2 --log-level info 2>"$tmp/w1.log" & pids+=($!); w1=$!
"$worker" --connect "$ep" --slots 2 --log-level info 2>"$tmp/w2.log" & pids+=($!); w2=$!
wait_for 20 grep -q PM6007 "$tmp/w1.log" || fail "worker 1 did not register"
wait_for 20 grep -q PM6007 "$tmp/w2.log" || fail "worker 2 did not register"

# 1. four ranks over two workers: the demo's output comes back through pmd
timeout 60 "$pmrun" -n 4 --connect "$ep" -- "$demo" >"$tmp/out" 2>"$tmp/err" \
  || { cat "$tmp/out" "$tmp/err"; fail "pm-run --connect of pm-demo failed"; }
grep -q "backend pm-run with 4 rank(s)" "$tmp/out" || fail "no streamed output"
grep -q "pm-demo: ok" "$tmp/out" || fail "pm-demo did not finish"
grep -q "started rank" "$tmp/w1.log" && grep -q "started rank" "$tmp/w2.log" \
  || fail "ranks were not spread over both workers"

# 2. more ranks than slots: refused, clearly
if timeout 30 "$pmrun" -n 5 --connect "$ep" -- "$demo" >/dev/null 2>"$tmp/err"; then
  fail "5 ranks on 4 slots were accepted"
fi
grep -q "not enough slots" "$tmp/err" || fail "no clear refusal: $(cat "$tmp/err")"

# 3a. the RO example swept over both workers: the same CSV as a Serial run
ro=(--param 'feed_salinity=linspace(5,45,9)' --param 'recovery=linspace(0.3,0.7,5)')
"$sweep" --backend Serial -n 1 --model "$ro_model" "${ro[@]}" -o "$tmp/ro-serial.csv" 2>/dev/null \
  || fail "serial RO sweep failed"
timeout 60 "$pmrun" -n 4 --connect "$ep" -- "$sweep" --model "$ro_model" "${ro[@]}" \
  -o "$tmp/ro-workers.csv" >/dev/null 2>"$tmp/err" || { cat "$tmp/err"; fail "RO sweep over workers failed"; }
cmp -s "$tmp/ro-serial.csv" "$tmp/ro-workers.csv" || fail "RO sweep over workers differs from Serial"
# the same through pm-sweep --connect (it hands itself to pm-run --connect)
timeout 60 "$sweep" --connect "$ep" -n 3 --model "$ro_model" "${ro[@]}" -o "$tmp/ro-connect.csv" \
  >/dev/null 2>"$tmp/err" || { cat "$tmp/err"; fail "pm-sweep --connect failed"; }
cmp -s "$tmp/ro-serial.csv" "$tmp/ro-connect.csv" || fail "pm-sweep --connect differs from Serial"
params=(--param 'x=linspace(0,999,1000)')
"$sweep" --backend Serial -n 1 --model "$plugin" "${params[@]}" -o "$tmp/serial.csv" 2>/dev/null \
  || fail "serial reference sweep failed"

# 3b. a worker SIGKILLed mid-sweep: its rows are redone, the CSV is complete and exact.
# The worker that does not host rank 0 (the root, which gathers) is the one killed.
timeout 90 "$pmrun" -n 4 --group sweepkill --abort-timeout 30000 --connect "$ep" -- "$sweep" \
  --model "$plugin" --arg us=3000 "${params[@]}" -o "$tmp/killed.csv" >/dev/null 2>"$tmp/err" & run=$!
wait_for 30 bash -c "[[ \$(cat '$tmp/w1.log' '$tmp/w2.log' | grep -c \"of group 'sweepkill'\") -ge 4 ]]" \
  || fail "sweep ranks did not start"
if grep -q "rank 0/4 of group 'sweepkill'" "$tmp/w2.log"; then victim=$w1 victim_log=w1; else victim=$w2 victim_log=w2; fi
# Kill once the sweep is under way: root journals finished rows.
wait_for 60 bash -c "[[ -f '$tmp/killed.csv.journal' && \$(wc -l <'$tmp/killed.csv.journal') -ge 20 ]]" \
  || fail "the sweep did not start"
kill -9 "$victim"
wait "$run"
cmp -s "$tmp/serial.csv" "$tmp/killed.csv" || { diff "$tmp/serial.csv" "$tmp/killed.csv" | head -5; cat "$tmp/err"; fail "CSV after losing a worker differs from Serial"; }
"$worker" --connect "$ep" --slots 2 --log-level info 2>"$tmp/$victim_log.log" & pids+=($!)
if [[ $victim_log == w1 ]]; then w1=$!; else w2=$!; fi
wait_for 20 grep -q PM6007 "$tmp/$victim_log.log" || fail "the killed worker did not come back"

# 3c. SIGKILL a worker mid-run: pm-run fails, the other ranks are stopped
ln -sf "$(command -v sleep)" "$tmp/marker"
timeout 60 "$pmrun" -n 4 --abort-timeout 1000 --connect "$ep" -- "$tmp/marker" 60 \
  >/dev/null 2>"$tmp/err" & run=$!
wait_for 20 bash -c "[[ \$(pgrep -f '$tmp/marke[r]' | wc -l) -ge 4 ]]" || fail "ranks did not start"
kill -9 "$w1"
wait "$run"; status=$?
((status != 0 && status != 124)) || fail "pm-run exit $status after a worker was killed"
grep -q "lost with its pm-worker" "$tmp/err" || fail "pm-run did not name the lost worker: $(cat "$tmp/err")"
wait_for 20 bash -c "! pgrep -f '$tmp/marke[r]' >/dev/null" || fail "ranks left behind"

# 4. pmd restarts at the same endpoint: the worker registers again, ranks run
kill -TERM "$pmd_pid"; wait "$pmd_pid" || fail "pmd did not exit 0 on SIGTERM"
"$pmd" --bind "$ep" --heartbeat-timeout 1500 --log-level warn 2>>"$tmp/pmd.log" & pids+=($!); pmd_pid=$!
wait_for 30 bash -c "[[ \$(grep -c PM6007 '$tmp/w2.log') -ge 2 ]]" || fail "worker 2 did not register again"
timeout 30 "$pmrun" -n 2 --connect "$ep" -- "$demo" >"$tmp/out" 2>"$tmp/err" \
  || { cat "$tmp/err"; fail "pm-run after the pmd restart failed"; }

# 5. clean stop: SIGTERM the live worker and pmd; both exit 0
kill -TERM "$w2"; wait "$w2" || fail "pm-worker did not exit 0 on SIGTERM"
kill -TERM "$pmd_pid"; wait "$pmd_pid" || fail "pmd did not exit 0 on SIGTERM"
echo "test_workers: ok"
