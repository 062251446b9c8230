#!/usr/bin/env bash
# A rank that exits before it registers, with the coordinator in a pmd:
# pm-run tells pmd (RANK_LOST), so the other ranks fail at once instead of
# waiting for the join timeout (600 s here, so the 60 s deadline of the run
# tells the two apart).
# usage: PMD_ARGS='--join-timeout 600000' with-pmd.sh PMD -- lost-before-join.sh PM_RUN CONF [ray]
#        (ray: the ranks on Ray, pm-run --backend ray; RAY_ADDRESS and PM_PYTHON set)
set -uo pipefail
pmrun=$1 conf=$2 backend=()
[[ ${3:-} == ray ]] && backend=(--backend ray)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail () { echo "lost-before-join: FAIL: $*"; cat "$tmp/out"; exit 1; }
[[ -n ${PM_ENDPOINT:-} ]] || { echo "lost-before-join: needs a pmd (with-pmd.sh)"; exit 2; }
timeout 60 "$pmrun" -n 3 "${backend[@]}" -- \
  sh -c "[ \$PM_RANK = 2 ] && exit 3; exec $conf MultiProcessing 3" >"$tmp/out" 2>&1
status=$?
((status == 3)) || fail "pm-run exited $status, expected 3 (rank 2's status; 124: the others waited)"
grep -q "rank 2 of group .* exited with status 3" "$tmp/out" \
  || fail "the other ranks did not learn that rank 2 exited"
echo "lost-before-join: ok${3:+ ($3)}"
