#!/bin/sh
# Hand test of pm_ray_launcher.py against a running local Ray head (RAY_ADDRESS=auto):
#   .venv/bin/ray start --head --node-ip-address 127.0.0.1 --num-cpus 4 --disable-usage-stats
#   sh ray/test_launcher.sh            # from the repo root
#   .venv/bin/ray stop --force
# The no-Ray case (exit 3) is tested with a bogus address, so it runs with the head up too.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
L="$PY ray/pm_ray_launcher.py --size 3 --endpoint tcp://127.0.0.1:5555 --group t"
MARK=pmraytest$$
RANKS="^$PY /tmp/$MARK.py"  # the rank processes (not the launcher, whose argv has it too)
echo "import time; time.sleep(300)" > /tmp/$MARK.py
SLEEPER="$PY /tmp/$MARK.py"
fails=0
check() { if [ "$2" = "$3" ]; then echo "ok   $1"; else echo "FAIL $1: got $2, want $3"; fails=$((fails + 1)); fi; }
gone() {  # waits up to $1 s for no process matching $MARK; prints the seconds it took
    i=0
    while pgrep -f "$RANKS" >/dev/null && [ $i -lt $(($1 * 10)) ]; do sleep 0.1; i=$((i + 1)); done
    pgrep -f "$RANKS" >/dev/null && echo left || echo "$((i / 10)).$((i % 10))"
}
up() {  # waits until $1 rank processes run
    i=0
    while [ "$(pgrep -fc "$RANKS")" -lt "$1" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
    echo "  $(pgrep -fc "$RANKS") rank process(es) up after $((i / 10)).$((i % 10)) s"
}
export RAY_ADDRESS=${RAY_ADDRESS:-auto}

out=$($L --ranks 1..2 -- sh -c 'echo "rank $PM_RANK of $PM_SIZE"' 2>&1); rc=$?
check "all ranks exit 0 -> 0" $rc 0
check "output of both ranks forwarded" "$(echo "$out" | grep -c 'rank [12] of 3')" 2

$L --ranks 1..2 -- sh -c '[ "$PM_RANK" = 2 ] && exit 3; exit 0'; check "rank 2 exits 3 -> 3" $? 3
$L --ranks 1..2 -- sh -c 'kill -9 $$'; check "ranks killed by SIGKILL -> 137" $? 137
$L --ranks 1..2 -- /nonexistent/program 2>/dev/null; check "missing program -> 127" $? 127

for sig in TERM INT; do
    $L --ranks 1..2 -- $SLEEPER & pid=$!
    up 2
    t0=$(date +%s%N); kill -$sig $pid; wait $pid; rc=$?
    echo "  launcher exited $((($(date +%s%N) - t0) / 1000000)) ms after SIG$sig"
    [ $sig = TERM ] && want=143 || want=130
    check "SIGTERM/SIGINT launcher -> $want" $rc $want
    check "no rank left after SIG$sig (took $(gone 10) s)" "$(pgrep -fc "$RANKS")" 0
done

# the launcher's parent (rank 0) dies: the launcher notices within 0.5 s and cleans up
sh -c "$L --ranks 1..2 -- $SLEEPER & echo \$! > /tmp/$MARK.pid; wait" & parent=$!
up 2
kill -9 $parent
t=$(gone 10)
check "no rank left after the parent was killed (took $t s)" "$(pgrep -fc "$RANKS")" 0
alive() { ps -o stat= -p "$1" | grep -qv Z; }  # an orphan stays a zombie until init reaps it
i=0; while alive "$(cat /tmp/$MARK.pid)" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
alive "$(cat /tmp/$MARK.pid)"
check "launcher exited after its parent (took $((i / 10)).$((i % 10)) s more)" $? 1
rm -f /tmp/$MARK.pid

# the launcher itself is SIGKILLed: Ray kills the job's actors, PDEATHSIG kills the ranks
$L --ranks 1..2 -- $SLEEPER & pid=$!
up 2
kill -9 $pid; wait $pid 2>/dev/null
t=$(gone 30)
check "no rank left after the launcher was SIGKILLed (took $t s)" "$(pgrep -fc "$RANKS")" 0

err=$($L --address 127.0.0.1:1 --ranks 1..2 -- true 2>&1); rc=$?
check "no Ray cluster -> 3" $rc 3
echo "  $err" | cut -c1-160
err=$(PYTHON=/usr/bin/python3 /usr/bin/python3 ray/pm_ray_launcher.py --size 2 --endpoint x --group g --ranks 1 -- true 2>&1); rc=$?
check "no ray module -> 3" $rc 3
echo "  $err"
$L --ranks 1..9 -- true 2>/dev/null; check "bad --ranks -> 2" $? 2

rm -f /tmp/$MARK.py
[ $fails = 0 ] && echo "all passed" || echo "$fails failed"
[ $fails = 0 ]
