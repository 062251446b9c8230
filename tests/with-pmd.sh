#!/usr/bin/env bash
# with-pmd.sh — run a command against a fresh standalone pmd.
#
# usage: with-pmd.sh PMD [--ranks N] [--] COMMAND [ARG...]
#
# Starts `PMD --bind tcp://127.0.0.1:* --ready-file F` (plus $PMD_ARGS),
# waits (with a deadline) for F, exports PM_ENDPOINT=<first line of F>, and
# runs COMMAND.  Any argument equal to or containing @PM_ENDPOINT@ has it
# replaced by the endpoint (e.g. `pm-run --endpoint @PM_ENDPOINT@`).
# With --ranks N it instead starts N separate copies of COMMAND ("several
# terminals"), each with PM_RANK=r PM_SIZE=N PM_GROUP=<unique> set by hand,
# and waits for all of them.  Finally it SIGTERMs pmd, which must exit 0
# within a deadline.  pmd is always killed on exit (trap).
#
# Exit status: the command's (first failing rank's) status, or 1 if pmd
# failed to start or did not exit cleanly.
set -u

if [ $# -lt 2 ]; then
  echo "usage: $0 PMD [--ranks N] [--] COMMAND [ARG...]" >&2
  exit 2
fi
pmd=$1; shift
ranks=0
if [ "${1:-}" = "--ranks" ]; then ranks=$2; shift 2; fi
if [ "${1:-}" = "--" ]; then shift; fi

READY_TIMEOUT_S=${PMD_READY_TIMEOUT_S:-15}
STOP_TIMEOUT_S=${PMD_STOP_TIMEOUT_S:-10}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/with-pmd.XXXXXX")
pmd_pid=
rank_pids=()
cleanup() {
  for p in "${rank_pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  if [ -n "$pmd_pid" ] && kill -0 "$pmd_pid" 2>/dev/null; then
    kill -KILL "$pmd_pid" 2>/dev/null
    wait "$pmd_pid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck disable=SC2086  # PMD_ARGS is a list of options on purpose
"$pmd" --bind 'tcp://127.0.0.1:*' --ready-file "$tmp/ready" ${PMD_ARGS:-} &
pmd_pid=$!

deadline=$((SECONDS + READY_TIMEOUT_S))
while [ ! -s "$tmp/ready" ]; do
  if ! kill -0 "$pmd_pid" 2>/dev/null; then
    wait "$pmd_pid"; st=$?
    echo "with-pmd: FAIL: pmd exited with status $st before writing its ready file" >&2
    pmd_pid=
    exit 1
  fi
  if [ $SECONDS -ge $deadline ]; then
    echo "with-pmd: FAIL: pmd wrote no ready file within ${READY_TIMEOUT_S}s" >&2
    exit 1
  fi
  sleep 0.02
done
endpoint=$(head -n 1 "$tmp/ready")
case "$endpoint" in
  tcp://127.0.0.1:[0-9]*) ;;
  *) echo "with-pmd: FAIL: ready file's first line is '$endpoint', expected tcp://127.0.0.1:PORT" >&2
     exit 1 ;;
esac
export PM_ENDPOINT=$endpoint
echo "with-pmd: pmd (pid $pmd_pid) ready at $PM_ENDPOINT"

args=()
for a in "$@"; do args+=("${a//@PM_ENDPOINT@/$endpoint}"); done

status=0
if [ "$ranks" -gt 0 ]; then
  export PM_GROUP="with-pmd-$$-$RANDOM"
  export PM_SIZE=$ranks
  for ((r = 0; r < ranks; r++)); do
    PM_RANK=$r "${args[@]}" &
    rank_pids+=($!)
  done
  for ((r = 0; r < ranks; r++)); do
    wait "${rank_pids[$r]}"; st=$?
    if [ $st -ne 0 ]; then
      echo "with-pmd: rank $r exited with status $st" >&2
      [ $status -eq 0 ] && status=$st
    fi
  done
  rank_pids=()
else
  "${args[@]}"; status=$?
fi

if ! kill -0 "$pmd_pid" 2>/dev/null; then
  wait "$pmd_pid"; st=$?
  echo "with-pmd: FAIL: pmd died during the run (status $st)" >&2
  pmd_pid=
  exit 1
fi
kill -TERM "$pmd_pid"
deadline=$((SECONDS + STOP_TIMEOUT_S))
while kill -0 "$pmd_pid" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$pmd_pid/stat" 2>/dev/null)" != Z ]; do
  if [ $SECONDS -ge $deadline ]; then
    echo "with-pmd: FAIL: pmd did not exit within ${STOP_TIMEOUT_S}s of SIGTERM" >&2
    exit 1
  fi
  sleep 0.02
done
wait "$pmd_pid"; st=$?
pmd_pid=
if [ $st -ne 0 ]; then
  echo "with-pmd: FAIL: pmd exited with status $st after SIGTERM, expected 0" >&2
  exit 1
fi
if [ $status -ne 0 ]; then
  echo "with-pmd: command failed with status $status" >&2
fi
exit $status
