#!/usr/bin/env bash
# A rank SIGKILLed in a dynamic sweep under pm-run: the survivors finish the
# sweep although it lasts well past --abort-timeout, because pm-run counts
# that timeout from the last rows they finished, not from the loss.
# usage: sweep-abort.sh PM_RUN PM_SWEEP
set -uo pipefail
pmrun=$1 sweep=$2
abort_ms=1500 rows=120
tmp=$(mktemp -d)
pid=
trap '[[ -n $pid ]] && kill -9 $pid 2>/dev/null; rm -rf "$tmp"' EXIT
fail () { echo "sweep-abort: FAIL: $*"; [[ -s $tmp/log ]] && cat "$tmp/log"; exit 1; }
now_ms () { echo $(($(date +%s%N) / 1000000)); }
mkdir "$tmp/rows"
# Each row marks that it ran, then takes 50 ms.
"$pmrun" -n 3 --abort-timeout $abort_ms -- "$sweep" --outputs y \
  --command "touch $tmp/rows/{x}; sleep 0.05; echo y={x}" \
  --param "x=linspace(0,$((rows - 1)),$rows)" -o "$tmp/out.csv" >"$tmp/log" 2>&1 &
pid=$!
for _ in $(seq 600); do
  (($(find "$tmp/rows" -type f | wc -l) >= 6)) && break
  sleep 0.05
done
victim=
for p in $(pgrep -P $pid); do
  { tr '\0' '\n' <"/proc/$p/environ"; } 2>/dev/null | grep -qx PM_RANK=2 && victim=$p
done
[[ -n $victim ]] || fail "rank 2 of pm-run not found"
kill -9 "$victim"
killed_at=$(now_ms)
timeout 60 tail --pid=$pid -f /dev/null || fail "pm-run did not finish within 60 s"
wait $pid
status=$? ended_at=$(now_ms)
pid=
((status == 137)) || fail "pm-run exited $status, expected 137 (the killed rank's status)"
# The premise: the survivors worked on for longer than the abort timeout.
((ended_at - killed_at > abort_ms)) \
  || fail "the sweep ended $((ended_at - killed_at)) ms after the kill: too short to show anything"
# Every row is there, once, right.
awk -F, -v rows=$rows 'NR > 1 { if ($1 != $2 || $3 != 1 || seen[$1]++) bad++; n++ }
  END { exit !(n == rows && !bad) }' "$tmp/out.csv" \
  || { head "$tmp/out.csv"; fail "the CSV does not hold every row once with y = x"; }
echo "sweep-abort: ok ($rows rows, survivors ran $((ended_at - killed_at)) ms after the kill)"
