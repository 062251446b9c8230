#!/usr/bin/env bash
# A rank SIGKILLed in a dynamic sweep under pm-run: the survivors finish the
# sweep although it lasts well past --abort-timeout, because pm-run counts
# that timeout from the last rows they finished, not from the loss.
# usage: sweep-abort.sh PM_RUN PM_SWEEP                 local ranks, embedded coordinator
#        with-pmd.sh PMD -- sweep-abort.sh PM_RUN PM_SWEEP
#                                                       local ranks against that pmd
#        with-pmd.sh PMD -- sweep-abort.sh PM_RUN PM_SWEEP PM_WORKER
#                                                       ranks on a pm-worker (pm-run --connect)
#        sweep-abort.sh PM_RUN PM_SWEEP ray              ranks on Ray (pm-run --backend ray;
#                                                       RAY_ADDRESS and PM_PYTHON set)
set -uo pipefail
pmrun=$1 sweep=$2 worker=${3:-}
abort_ms=1500 rows=120
tmp=$(mktemp -d)
pid= worker_pid=
trap '[[ -n $pid ]] && kill -9 $pid 2>/dev/null; [[ -n $worker_pid ]] && kill -9 $worker_pid 2>/dev/null; rm -rf "$tmp"' EXIT
fail () { echo "sweep-abort: FAIL: $*"; [[ -s $tmp/log ]] && cat "$tmp/log"; exit 1; }
now_ms () { echo $(($(date +%s%N) / 1000000)); }
mkdir "$tmp/rows"
where=()
if [[ $worker == ray ]]; then
  where=(--backend ray)
elif [[ -n $worker ]]; then
  [[ -n ${PM_ENDPOINT:-} ]] || fail "PM_WORKER needs a pmd (with-pmd.sh)"
  "$worker" --connect "$PM_ENDPOINT" --slots 3 2>"$tmp/worker.log" &
  worker_pid=$!
  where=(--connect "$PM_ENDPOINT")
  for _ in $(seq 200); do
    "$pmrun" -n 1 "${where[@]}" -- true 2>/dev/null && break
    sleep 0.1
  done
fi
# Each row marks that it ran, then takes 50 ms.
"$pmrun" -n 3 "${where[@]}" --abort-timeout $abort_ms -- "$sweep" --outputs y \
  --command "touch $tmp/rows/{x}; sleep 0.05; echo y={x}" \
  --param "x=linspace(0,$((rows - 1)),$rows)" -o "$tmp/out.csv" >"$tmp/log" 2>&1 &
pid=$!
for _ in $(seq 600); do
  (($(find "$tmp/rows" -type f | wc -l) >= 6)) && break
  sleep 0.05
done
victim= # rank 2: a pm-sweep with our rows directory in its arguments, PM_RANK=2
for p in $(pgrep -f "$tmp/rows"); do
  [[ $(readlink "/proc/$p/exe" 2>/dev/null) == "$(readlink -f "$sweep")" ]] || continue
  { tr '\0' '\n' <"/proc/$p/environ"; } 2>/dev/null | grep -qx PM_RANK=2 && victim=$p
done
[[ -n $victim ]] || fail "rank 2 of the sweep not found"
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
