#!/usr/bin/env bash
# A program started by a real mpirun must see that MPI wins, and, in a build
# without the MPI backend, fail clearly (PM_ENOTSUP, naming the MPI launch)
# on every rank instead of starting a backend of its own.
# usage: mpi-launch.sh PM_CONFORMANCE
set -euo pipefail
conformance=$1
command -v mpirun >/dev/null || { echo "mpi-launch: mpirun not found (openmpi-bin)"; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export TMPDIR=$tmp
set +e
timeout 60 mpirun -np 2 "$conformance" MultiProcessing 4 >"$tmp/out" 2>&1
status=$?
set -e
cat "$tmp/out"
if ((status == 0)); then
  echo "mpi-launch: FAIL: the program ran under mpirun although this build has no MPI backend"
  exit 1
fi
if ((status == 124)); then
  echo "mpi-launch: FAIL: timed out"
  exit 1
fi
count=$(grep -c "inside an MPI launch of 2 ranks" "$tmp/out" || true)
if ((count != 2)); then
  echo "mpi-launch: FAIL: expected both ranks to name the MPI launch, found $count"
  exit 1
fi
echo "mpi-launch: ok (both ranks refused clearly, mpirun exit $status)"
