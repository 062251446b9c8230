#!/usr/bin/env bash
# RayIo against the real local Ray head of the ctest fixture "ray" (run
# through with-ray-head.sh, which exports RAY_ADDRESS, the token and
# PM_TEST_RAY_JOBS_URL).  PM_PYTHON names the Python that has ray.
#
#   ray-launch.sh conformance BIN_DIR            conformance on RayIo n=1,2,4 (and 3 with a
#                                                pmd), and one rank on Ray under pm-run -n 1
#   ray-launch.sh sweep BIN_DIR RO_MODEL         the RO sweep on RayIo n=1,2,4 == Serial
#   ray-launch.sh pm-run BIN_DIR                 pm-run --backend ray: results, exit status
#   ray-launch.sh kill BIN_DIR                   a rank SIGKILLed on Ray: reported as lost
#   ray-launch.sh jobs BIN_DIR                   through the Jobs REST API (pm-ray-job):
#                                                submit, status, stop, the Bearer token
#   ray-launch.sh no-ray BIN_DIR                 without the ray package: a clear refusal
#
# Every mode ends by checking that no rank process and no RankHost actor of
# the head whose state is in PM_RAY_STATE is left (ray-head.sh leftovers).
set -uo pipefail
mode=$1 bin=$2
shift 2
tests_dir=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail () { echo "ray-launch $mode: FAIL: $*"; exit 1; }
conf=$bin/pm-conformance pmrun=$bin/pm-run sweep=$bin/pm-sweep jobtool=$bin/pm-ray-job

# conformance_passes OUT BACKEND N: the conformance program's verdict line
conformance_passes () { grep -q "($2, $3 ranks): PASS" "$1"; }

# No rank (a process run from the build tree) and no actor of ours may
# outlive a run: they go within a few seconds of its end.
no_leftovers () {
  local state=$1
  for _ in $(seq 100); do
    bash "$tests_dir/ray-head.sh" leftovers "$state" "$(dirname "$bin")" >"$tmp/left" || return 0
    sleep 0.1
  done
  cat "$tmp/left"
  fail "rank processes or actors left behind: $2"
}

# early_exit_fails_fast [VAR=VALUE...]: rank 2 exits 3 before it joins; the
# launcher tells pm-run, which tells its coordinator, so ranks 0 and 1 fail
# at once instead of at the join timeout (600 s here: the run's 60 s
# deadline would catch it).
early_exit_fails_fast () {
  env "$@" PM_JOIN_TIMEOUT_MS=600000 timeout 60 "$pmrun" -n 3 --backend ray -- \
    sh -c "[ \$PM_RANK = 2 ] && exit 3; exec $conf MultiProcessing 3" >"$tmp/early" 2>&1
  local status=$?
  ((status == 3)) || { cat "$tmp/early"; fail "a rank exiting before it joined: pm-run exit $status, expected 3 ($*)"; }
  grep -q "failed: rank 2 of group .* exited with status 3" "$tmp/early" \
    || { cat "$tmp/early"; fail "the others did not learn of rank 2's exit from the launcher ($*)"; }
}

# hold_then SIGNAL [STATUS]: pm-run -n 2 --backend ray of ranks that wait;
# once both run, pm-run gets SIGNAL; it must exit with STATUS (if given),
# and the ranks must be gone soon after.
hold_then () {
  local hold="sleep 600.$$" pid status # recognisable by its arguments
  "$pmrun" -n 2 --backend ray -- sh -c "exec $hold" >"$tmp/hold" 2>&1 &
  pid=$!
  for _ in $(seq 600); do
    (($(pgrep -fc "^$hold\$") >= 2)) && break
    sleep 0.1
  done
  (($(pgrep -fc "^$hold\$") >= 2)) || { kill -9 $pid; cat "$tmp/hold"; fail "the 2 ranks never started"; }
  kill -"$1" $pid
  timeout 60 tail --pid=$pid -f /dev/null || { kill -9 $pid; fail "pm-run did not exit after SIG$1"; }
  { wait $pid; } 2>/dev/null
  status=$?
  [[ -z ${2:-} ]] || ((status == $2)) || { cat "$tmp/hold"; fail "pm-run after SIG$1: exit $status, expected $2"; }
  for _ in $(seq 300); do pgrep -f "^$hold\$" >/dev/null || break; sleep 0.1; done
  if pgrep -fa "^$hold\$"; then fail "ranks still running 30 s after pm-run got SIG$1"; fi
}

state=${PM_RAY_STATE:-}
case $mode in
conformance)
  for n in 2 4; do
    timeout 120 "$conf" RayIo "$n" >"$tmp/conf$n" 2>&1 || { cat "$tmp/conf$n"; fail "conformance RayIo $n"; }
    conformance_passes "$tmp/conf$n" RayIo "$n" || { cat "$tmp/conf$n"; fail "conformance RayIo $n did not pass"; }
  done
  # with the coordinator in a standalone pmd (PM_ENDPOINT) instead of rank 0
  timeout 120 bash "$tests_dir/with-pmd.sh" "$bin/pmd" -- "$conf" RayIo 3 >"$tmp/pmd" 2>&1 \
    || { cat "$tmp/pmd"; fail "conformance RayIo 3 against a pmd"; }
  conformance_passes "$tmp/pmd" RayIo 3 || { cat "$tmp/pmd"; fail "conformance RayIo 3 against a pmd did not pass"; }
  # n=1 is serial whatever the keyword (DESIGN §2): the caller alone
  timeout 60 "$conf" RayIo 1 >"$tmp/conf1" 2>&1 || { cat "$tmp/conf1"; fail "conformance RayIo 1"; }
  conformance_passes "$tmp/conf1" Serial 1 || { cat "$tmp/conf1"; fail "conformance RayIo 1 did not pass"; }
  # ... and one rank that really runs on Ray: pm-run -n 1 --backend ray
  timeout 120 "$pmrun" -n 1 --backend ray -- "$conf" MultiProcessing 1 >"$tmp/one" 2>&1 \
    || { cat "$tmp/one"; fail "pm-run -n 1 --backend ray"; }
  grep -q "pm-rank-0 pid=" "$tmp/one" || { cat "$tmp/one"; fail "the rank did not run on a Ray actor"; }
  grep -q "ranks (pm-run)\|1 ranks): PASS" "$tmp/one" || { cat "$tmp/one"; fail "one rank on Ray did not pass"; }
  ;;
sweep)
  model=$1
  params=(--param 'feed_salinity=linspace(5,45,9)' --param 'recovery=linspace(0.3,0.7,5)')
  "$sweep" --backend Serial -n 1 --model "$model" "${params[@]}" -o "$tmp/serial.csv" 2>/dev/null \
    || fail "serial sweep"
  for n in 1 2 4; do
    timeout 120 "$sweep" --backend RayIo -n "$n" --model "$model" "${params[@]}" -o "$tmp/ray$n.csv" \
      >"$tmp/sweep$n.out" 2>&1 || { cat "$tmp/sweep$n.out"; fail "RayIo sweep n=$n"; }
    cmp -s "$tmp/serial.csv" "$tmp/ray$n.csv" || fail "RayIo sweep n=$n differs from Serial"
  done
  ;;
pm-run)
  timeout 120 "$pmrun" -n 3 --backend ray -- "$conf" MultiProcessing 3 >"$tmp/pmrun.out" 2>&1 \
    || { cat "$tmp/pmrun.out"; fail "pm-run --backend ray of the conformance program"; }
  grep -q "PASS" "$tmp/pmrun.out" || { cat "$tmp/pmrun.out"; fail "no PASS from the ranks"; }
  # the ranks see our PM_* variables and those PM_RAY_ENV names, not the rest
  PM_X_TEST=pm MY_TEST_VAR=mine OTHER_TEST_VAR=other PM_RAY_ENV=MY_TEST_VAR timeout 60 \
    "$pmrun" -n 2 --backend ray -- sh -c 'echo "env:$PM_X_TEST:$MY_TEST_VAR:$OTHER_TEST_VAR:"' \
    >"$tmp/env" 2>&1 || { cat "$tmp/env"; fail "pm-run --backend ray of sh"; }
  (($(grep -c "env:pm:mine::" "$tmp/env") == 2)) || { cat "$tmp/env"; fail "the ranks' environment"; }
  # pm-run's status is the first failing rank's
  timeout 60 "$pmrun" -n 2 --backend ray -- sh -c 'exit $((PM_RANK * 5))' >/dev/null 2>&1
  status=$?
  ((status == 5)) || fail "pm-run --backend ray: exit $status, expected 5 (rank 1's)"
  # after a rank fails, the others are stopped --abort-timeout later, as pm-run does locally
  hold="sleep 600.$$"
  timeout 60 "$pmrun" -n 3 --backend ray --abort-timeout 500 -- \
    sh -c "[ \$PM_RANK = 1 ] && exit 3; exec $hold" >"$tmp/abort" 2>&1
  status=$?
  ((status == 3)) || { cat "$tmp/abort"; fail "pm-run --abort-timeout on Ray: exit $status, expected 3"; }
  grep -q "PM4001 terminating 2 remaining rank(s)" "$tmp/abort" \
    || { cat "$tmp/abort"; fail "pm-run did not say why it stopped the ranks"; }
  for _ in $(seq 300); do pgrep -f "^$hold\$" >/dev/null || break; sleep 0.1; done
  if pgrep -fa "^$hold\$"; then fail "ranks still running after the abort timeout"; fi
  early_exit_fails_fast
  # the coordinator dies (pm-run SIGKILLed): the launcher follows its parent,
  # and the actors and the ranks go with it
  hold_then KILL
  ;;
kill)
  # Rank 2 SIGKILLs itself while the others enter an allreduce: they get
  # PM_EPEERLOST (the caller's rank 0 and rank 1 on its actor) ...
  export PM_FAILURE_OUTDIR=$tmp/outcomes # the ranks on Ray write their outcomes here too
  mkdir -p "$PM_FAILURE_OUTDIR"
  PM_FAILURE_MAX_MS=8000 timeout 120 "$bin/pm-failure" kill RayIo 3 >"$tmp/kill" 2>&1 \
    || { cat "$tmp/kill"; fail "pm-failure kill RayIo 3"; }
  grep -q "PASS" "$tmp/kill" || { cat "$tmp/kill"; fail "the kill scenario did not pass"; }
  # ... and under pm-run every rank is on Ray: pm-run exits 137, the victim's status
  unset PM_FAILURE_OUTDIR
  PM_FAILURE_MAX_MS=8000 timeout 120 "$bin/pm-failure" --pm-run "$pmrun" kill 3 --backend ray \
    >"$tmp/kill-pmrun" 2>&1 || { cat "$tmp/kill-pmrun"; fail "pm-failure kill under pm-run --backend ray"; }
  # Rank 2 dies before it registers (PM_FAULT=join:2): the launcher's word reaches the
  # coordinator (rank 0's embedded one, or a pmd through rank 0's heartbeat thread), so
  # the others fail at once, not at the join timeout (600 s: the 60 s deadline tells).
  for where in embedded pmd; do
    run=(env PM_FAULT=join:2 PM_JOIN_TIMEOUT_MS=600000 timeout 60 "$conf" RayIo 3)
    [[ $where == pmd ]] && run=(env "PMD_ARGS=--join-timeout 600000" bash "$tests_dir/with-pmd.sh" "$bin/pmd" -- "${run[@]}")
    "${run[@]}" >"$tmp/early-$where" 2>&1
    status=$?
    ((status != 0 && status != 124)) || { cat "$tmp/early-$where"; fail "RayIo with rank 2 dead before joining ($where): exit $status"; }
    grep -q "rank 2 of group .* exited with status 3 (its launcher says)" "$tmp/early-$where" \
      || { cat "$tmp/early-$where"; fail "the others did not learn of rank 2's exit ($where)"; }
  done
  ;;
jobs)
  url=${PM_TEST_RAY_JOBS_URL:?the fixture exports PM_TEST_RAY_JOBS_URL}
  [[ -x $jobtool ]] || fail "$jobtool is not built (libcurl missing?)"
  # RayIo with the launcher submitted as a job: same results
  PM_RAY_JOBS_URL=$url timeout 120 "$conf" RayIo 3 >"$tmp/conf" 2>&1 \
    || { cat "$tmp/conf"; fail "conformance RayIo 3 through the Jobs API"; }
  conformance_passes "$tmp/conf" RayIo 3 || { cat "$tmp/conf"; fail "conformance through the Jobs API did not pass"; }
  # pm-run --backend ray through the Jobs API: the ranks' output comes back
  # from the job's logs, and the job's exit status is pm-run's
  PM_RAY_JOBS_URL=$url timeout 120 "$pmrun" -n 2 --backend ray -- \
    sh -c 'echo "rank $PM_RANK of $PM_SIZE"; exit $((PM_RANK * 6))' >"$tmp/exit" 2>&1
  status=$?
  ((status == 6)) || { cat "$tmp/exit"; fail "pm-run through the Jobs API: exit $status, expected 6 (rank 1's)"; }
  grep -q "(pm-rank-1 pid=[0-9]*) rank 1 of 2" "$tmp/exit" \
    || { cat "$tmp/exit"; fail "rank 1's output did not come back from the job's logs"; }
  # the same environment through the Jobs API
  PM_RAY_JOBS_URL=$url PM_X_TEST=pm MY_TEST_VAR=mine OTHER_TEST_VAR=other PM_RAY_ENV=MY_TEST_VAR \
    timeout 60 "$pmrun" -n 2 --backend ray -- sh -c 'echo "env:$PM_X_TEST:$MY_TEST_VAR:$OTHER_TEST_VAR:"' \
    >"$tmp/env" 2>&1 || { cat "$tmp/env"; fail "pm-run --backend ray of sh through the Jobs API"; }
  (($(grep -c "env:pm:mine::" "$tmp/env") == 2)) || { cat "$tmp/env"; fail "the ranks' environment through the Jobs API"; }
  early_exit_fails_fast PM_RAY_JOBS_URL="$url"
  # the entrypoint's output, exactly: Ray's own log lines left out, even an
  # unfinished last line kept (Ray may write its "Running entrypoint" after it)
  for _ in 1 2 3; do
    out=$("$jobtool" --address "$url" run -- sh -c 'echo early; printf "last"') \
      || fail "pm-ray-job run of echo"
    [[ $out == $'early\nlast' ]] || fail "pm-ray-job run printed '$out', not the job's output"
  done
  # the tool itself: submit, status, logs, stop
  id=pm-test-$$-$RANDOM
  "$jobtool" --address "$url" submit --id "$id" -- sh -c 'echo started; exec sleep 600' >"$tmp/id" \
    || fail "pm-ray-job submit"
  [[ $(cat "$tmp/id") == "$id" ]] || fail "pm-ray-job submit printed '$(cat "$tmp/id")', not $id"
  for _ in $(seq 300); do
    "$jobtool" --address "$url" logs "$id" 2>/dev/null | grep -q '^started$' && break
    sleep 0.1
  done
  "$jobtool" --address "$url" status "$id" | grep -q '^RUNNING' || fail "the job is not RUNNING"
  "$jobtool" --address "$url" stop "$id" | grep -q '^stopped$' || fail "pm-ray-job stop"
  for _ in $(seq 300); do
    "$jobtool" --address "$url" status "$id" | grep -q '^STOPPED' && break
    sleep 0.1
  done
  "$jobtool" --address "$url" status "$id" | grep -q '^STOPPED' || fail "the job did not stop"
  # a signal to pm-run stops the job, and with it the ranks on the actors;
  # so does pm-run's death (pm-ray-job's parent)
  PM_RAY_JOBS_URL=$url hold_then TERM 143
  PM_RAY_JOBS_URL=$url hold_then KILL
  no_leftovers "$state" "after the job was stopped"
  # the Bearer token: without it the cluster refuses, and says how to give it
  env -u RAY_AUTH_TOKEN -u RAY_AUTH_TOKEN_PATH -u RAY_AUTH_MODE "$jobtool" --address "$url" \
    status "$id" >"$tmp/notoken" 2>&1 && fail "the Jobs API answered without the token"
  grep -q "HTTP 401.*RAY_AUTH_TOKEN" "$tmp/notoken" || { cat "$tmp/notoken"; fail "no clear refusal without the token"; }
  RAY_AUTH_TOKEN=wrong "$jobtool" --address "$url" status "$id" >"$tmp/badtoken" 2>&1 \
    && fail "the Jobs API answered with a wrong token"
  grep -q "HTTP 40[13].*not the cluster's" "$tmp/badtoken" || { cat "$tmp/badtoken"; fail "no clear refusal of a wrong token"; }
  # no dashboard there: a clear error, exit 3 (as the launcher without a cluster)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$jobtool" --address "http://127.0.0.1:$port" run -- true >"$tmp/nodash" 2>&1
  status=$?
  ((status == 3)) || { cat "$tmp/nodash"; fail "pm-ray-job run with no dashboard: exit $status, expected 3"; }
  grep -q "no Ray Jobs API answers" "$tmp/nodash" || { cat "$tmp/nodash"; fail "no clear error without a dashboard"; }
  ;;
no-ray)
  PM_PYTHON=python3 "$conf" RayIo 2 >"$tmp/noray" 2>&1 && fail "RayIo ran without the ray package"
  grep -q "pip install ray" "$tmp/noray" || { cat "$tmp/noray"; fail "no clear refusal without ray"; }
  "$pmrun" -n 2 --backend ray -- true >"$tmp/noray-pmrun" 2>&1 <<<"" && fail "pm-run --backend ray ran without ray"
  grep -q "pip install ray" "$tmp/noray-pmrun" || { cat "$tmp/noray-pmrun"; fail "pm-run: no clear refusal"; }
  echo "ray-launch $mode: ok"
  exit 0
  ;;
*)
  echo "usage: ray-launch.sh conformance|sweep|pm-run|kill|jobs|no-ray BIN_DIR ..." >&2
  exit 2
  ;;
esac
[[ -n $state ]] && no_leftovers "$state" "after $mode"
echo "ray-launch $mode: ok"
