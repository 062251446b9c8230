#!/usr/bin/env bash
# Runs a command against the Ray head of the ctest fixture "ray" (see
# ray-head.sh): its exports (RAY_ADDRESS, RAY_AUTH_MODE, RAY_AUTH_TOKEN,
# PM_TEST_RAY_JOBS_URL) are sourced first.  Fails clearly if the head is not up.
# usage: with-ray-head.sh STATE_DIR COMMAND ARGS...
set -euo pipefail
state=$1
shift
[[ -s $state/env ]] || { echo "with-ray-head: no Ray head state in $state (the ray-head-start test failed?)" >&2; exit 1; }
# shellcheck disable=SC1091
source "$state/env"
exec "$@"
