#!/usr/bin/env bash
# repeat.sh N COMMAND [ARG...] — run COMMAND N times; stop at the first
# failure and exit with its status.  For races that show up in a few % of
# runs (e.g. a rank dying while the coordinator handles its exit).
set -u
n=$1; shift
for ((i = 1; i <= n; i++)); do
  "$@"; st=$?
  if [ $st -ne 0 ]; then
    echo "repeat: run $i of $n failed with status $st: $*" >&2
    exit $st
  fi
done
echo "repeat: $n of $n runs passed"
