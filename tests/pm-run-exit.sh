#!/usr/bin/env bash
# pm-run-exit.sh PM_RUN — pm-run's environment for the ranks and its exit
# status, with plain shell ranks (no libpm in the ranks):
#   - every rank gets PM_RANK (0..N-1, each once), PM_SIZE=N, and one
#     PM_ENDPOINT and PM_GROUP shared by all ranks;
#   - all ranks exit 0 → 0;  rank 1 exits 7 → 7;  rank 2 dies of SIGTERM →
#     143 (128 + signal);  --endpoint EP is passed on as PM_ENDPOINT.
set -u
pmrun=$1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pm-run-exit.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { # name expected actual
  if [ "$2" != "$3" ]; then echo "FAIL: $1: expected $2, got $3"; fail=1; else echo "ok: $1 ($3)"; fi
}

# 1. environment of the ranks
"$pmrun" -n 4 -- sh -c 'echo "$PM_RANK $PM_SIZE $PM_ENDPOINT $PM_GROUP" > "$0/rank-$PM_RANK"' "$tmp"
check "exit status when every rank exits 0" 0 $?
for r in 0 1 2 3; do
  if [ ! -s "$tmp/rank-$r" ]; then echo "FAIL: rank $r did not run (or had no PM_RANK=$r)"; fail=1; fi
done
if [ $fail -eq 0 ]; then
  check "PM_RANK values" "0 1 2 3" "$(cut -d' ' -f1 "$tmp"/rank-* | sort -n | xargs)"
  check "PM_SIZE values" "4" "$(cut -d' ' -f2 "$tmp"/rank-* | sort -u | xargs)"
  check "distinct PM_ENDPOINT values" 1 "$(cut -d' ' -f3 "$tmp"/rank-* | sort -u | wc -l)"
  check "distinct PM_GROUP values" 1 "$(cut -d' ' -f4 "$tmp"/rank-* | sort -u | wc -l)"
  ep=$(cut -d' ' -f3 "$tmp/rank-0")
  [ -n "$ep" ] || { echo "FAIL: empty PM_ENDPOINT"; fail=1; }
  [ -n "$(cut -d' ' -f4 "$tmp/rank-0")" ] || { echo "FAIL: empty PM_GROUP"; fail=1; }
fi

# 2. exit status of the first failing rank
"$pmrun" -n 3 -- sh -c 'if [ "$PM_RANK" = 1 ]; then exit 7; fi; exit 0'
check "exit status when rank 1 exits 7" 7 $?
"$pmrun" -n 3 -- sh -c 'if [ "$PM_RANK" = 2 ]; then kill -TERM $$; fi; exit 0'
check "exit status when rank 2 dies of SIGTERM" 143 $?

# 3. --endpoint is what the ranks get
rm -f "$tmp"/rank-*
"$pmrun" -n 2 --endpoint tcp://127.0.0.1:1 -- sh -c 'echo "$PM_ENDPOINT" > "$0/rank-$PM_RANK"' "$tmp"
check "exit status with --endpoint" 0 $?
check "PM_ENDPOINT with --endpoint" "tcp://127.0.0.1:1" "$(cat "$tmp"/rank-* 2>/dev/null | sort -u | xargs)"

exit $fail
