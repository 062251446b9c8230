#!/usr/bin/env bash
# pmctl kill: a signal to the ranks of a launch on pm-workers (pm-run
# --connect), through pmd; its pm-run exits with their status, and nothing
# is left.  Refusals: an unknown group (exit 1), a bad signal (exit 2).
# usage: with-pmd.sh PMD -- pmctl-kill.sh PM_WORKER PM_RUN PMCTL
set -uo pipefail
worker=$1 pmrun=$2 pmctl=$3
ep=${PM_ENDPOINT:?run under with-pmd.sh}
tmp=$(mktemp -d)
hold="sleep 600.$$" # the ranks: recognisable by their arguments
worker_pid= pmrun_pid=
cleanup () {
  [[ -n $pmrun_pid ]] && kill -9 "$pmrun_pid" 2>/dev/null
  [[ -n $worker_pid ]] && kill -9 "$worker_pid" 2>/dev/null
  pkill -9 -f "^$hold\$" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
fail () { echo "pmctl-kill: FAIL: $*"; exit 1; }
"$worker" --connect "$ep" --slots 2 2>"$tmp/worker.log" &
worker_pid=$!
for _ in $(seq 200); do "$pmrun" -n 1 --connect "$ep" -- true 2>/dev/null && break; sleep 0.1; done
"$pmrun" -n 2 --connect "$ep" --group killme -- sh -c "exec $hold" >"$tmp/pmrun" 2>&1 &
pmrun_pid=$!
for _ in $(seq 300); do (($(pgrep -fc "^$hold\$") >= 2)) && break; sleep 0.1; done
(($(pgrep -fc "^$hold\$") >= 2)) || fail "the 2 ranks never started"
"$pmctl" kill killme --signal TERM >"$tmp/kill" 2>&1 || { cat "$tmp/kill"; fail "pmctl kill"; }
grep -q "group 'killme': signal 15 sent to 2 rank(s) on 1 worker(s)" "$tmp/kill" \
  || { cat "$tmp/kill"; fail "pmctl kill did not say what it did"; }
timeout 30 tail --pid=$pmrun_pid -f /dev/null || fail "pm-run did not end after pmctl kill"
wait $pmrun_pid
status=$? pmrun_pid=
((status == 143)) || { cat "$tmp/pmrun"; fail "pm-run exited $status, expected 143 (SIGTERM)"; }
for _ in $(seq 100); do pgrep -f "^$hold\$" >/dev/null || break; sleep 0.1; done
pgrep -fa "^$hold\$" && fail "ranks left after pmctl kill"
"$pmctl" kill nosuch >"$tmp/nosuch" 2>&1
status=$?
((status == 1)) || fail "pmctl kill of an unknown group: exit $status, expected 1"
grep -q "no launch of that group" "$tmp/nosuch" || { cat "$tmp/nosuch"; fail "no clear refusal"; }
"$pmctl" kill killme --signal BOGUS >/dev/null 2>&1
status=$?
((status == 2)) || fail "pmctl kill --signal BOGUS: exit $status, expected 2"
kill -TERM $worker_pid
timeout 10 tail --pid=$worker_pid -f /dev/null || fail "pm-worker did not stop on SIGTERM"
worker_pid=
echo "pmctl-kill: ok"
