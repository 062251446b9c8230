#!/usr/bin/env bash
# pmd's bounds on groups: with --max-groups 1, a second group is refused
# with a clear error while the first exists, and admitted once it is gone.
# usage: pmd-limits.sh PMD PM_CONFORMANCE
set -uo pipefail
pmd=$1 conf=$2
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
fail () { echo "pmd-limits: FAIL: $*"; exit 1; }
"$pmd" --bind 'tcp://127.0.0.1:*' --ready-file "$tmp/ready" --max-groups 1 --join-timeout 60000 \
  --log-level info 2>"$tmp/pmd.log" & pids+=($!); pmd_pid=$!
for _ in $(seq 200); do [[ -s $tmp/ready ]] && break; sleep 0.05; done
[[ -s $tmp/ready ]] || fail "pmd did not start"
export PM_ENDPOINT=$(head -1 "$tmp/ready")
# group a: rank 0 of 2 joins and waits for rank 1 in its first collective
PM_GROUP=a PM_RANK=0 PM_SIZE=2 "$conf" pm-run 2 quick >"$tmp/a.out" 2>&1 & pids+=($!); a=$!
for _ in $(seq 200); do grep -q "group 'a' created" "$tmp/pmd.log" && break; sleep 0.05; done
grep -q "group 'a' created" "$tmp/pmd.log" || fail "group a did not register"
# group b is refused, clearly
PM_GROUP=b PM_RANK=0 PM_SIZE=1 timeout 20 "$conf" pm-run 1 quick >"$tmp/b.out" 2>&1 && fail "group b was admitted"
grep -q "the coordinator is full" "$tmp/b.out" || { cat "$tmp/b.out"; fail "no clear refusal"; }
# rank 1 completes group a; once a is gone, b is admitted
PM_GROUP=a PM_RANK=1 PM_SIZE=2 timeout 60 "$conf" pm-run 2 quick >"$tmp/a1.out" 2>&1 || { cat "$tmp/a1.out"; fail "group a rank 1"; }
wait "$a" || { cat "$tmp/a.out"; fail "group a rank 0"; }
PM_GROUP=b PM_RANK=0 PM_SIZE=1 timeout 20 "$conf" pm-run 1 quick >"$tmp/b.out" 2>&1 || { cat "$tmp/b.out"; fail "group b after a ended"; }
kill -TERM "$pmd_pid"; wait "$pmd_pid" || fail "pmd did not exit 0"
echo "pmd-limits: ok"
