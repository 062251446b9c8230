#!/usr/bin/env bash
# A real local Ray head for the RayIo tests (ctest fixture "ray"): loopback
# addresses, a small object store, the dashboard on (the Jobs REST API) and
# token authentication, so the Bearer path is exercised.
#
#   ray-head.sh start STATE_DIR RAY_BIN_DIR  start it; STATE_DIR/env holds the exports
#                                            the tests source (RAY_ADDRESS, PM_TEST_RAY_JOBS_URL,
#                                            RAY_AUTH_MODE, RAY_AUTH_TOKEN)
#   ray-head.sh stop STATE_DIR [RANK_DIR]    fail if a process started from RANK_DIR (a rank)
#                                            or a RankHost actor is still alive, then kill the
#                                            head and everything it started
#   ray-head.sh leftovers STATE_DIR RANK_DIR list such processes (exit 1 if there are any)
#
# "Ours" is told apart from anything else on the machine in two ways, and
# `ray stop` (machine-wide) is never used: the head starts in a session of its
# own, whose id is kept (Ray's daemons and agents stay in it), and every
# process it starts inherits PM_RAY_HEAD_MARK in its environment (workers and
# the ranks they start, which may leave the session; a process that rewrites
# its title can lose the mark, so both are needed).
set -uo pipefail
cmd=${1:-} state=${2:-}
[[ -n $cmd && -n $state ]] || { echo "usage: ray-head.sh start|stop|leftovers STATE_DIR ..." >&2; exit 2; }
fail () { echo "ray-head: FAIL: $*" >&2; exit 1; }

# stat_field PID N: field N (4 ppid, 6 session) of /proc/PID/stat; the
# command name in field 2 may hold spaces, so count from its closing ")".
stat_field () {
  local line fields
  read -r line 2>/dev/null <"/proc/$1/stat" || { echo 0; return; }
  read -r -a fields <<<"${line##*) }" # fields[0] is field 3, the state
  echo "${fields[$2 - 3]:-0}"
}

# pids of the live processes of our head: in its session, or with our mark in
# their environment (never this script or its callers)
marked () {
  local mark=$1 sid=$2 pid p
  local -A ours=()
  for ((p = BASHPID; p > 1; p = $(stat_field $p 4))); do
    ours[$p]=1
  done
  for pid in /proc/[0-9]*; do
    pid=${pid#/proc/}
    [[ -n ${ours[$pid]:-} ]] && continue
    if [[ -n $sid ]] && (($(stat_field "$pid" 6) == sid)); then
      echo "$pid"
    elif { tr '\0' '\n' <"/proc/$pid/environ"; } 2>/dev/null | grep -qx "PM_RAY_HEAD_MARK=$mark"; then
      echo "$pid"
    fi
  done
}

# marked processes that are ranks (their executable lies under RANK_DIR) or RankHost actors
leftovers () {
  local mark=$1 sid=$2 dir=$3 pid exe title found=1
  for pid in $(marked "$mark" "$sid"); do
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || continue
    title=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)
    if [[ $exe == "$dir"/* || $title == ray::RankHost* ]]; then
      echo "$pid $title"
      found=0
    fi
  done
  return $found
}

case $cmd in
start)
  bin=${3:?RAY_BIN_DIR}
  rm -rf "$state" && mkdir -p "$state" || fail "cannot create $state"
  [[ -x $bin/ray ]] || fail "no ray in $bin (scripts/install-ray.sh installs it)"
  # Ray puts unix sockets under its temp dir: keep the path short.
  tmp=$(mktemp -d /tmp/pmray.XXXXXX) || fail "mktemp"
  echo "$tmp" >"$state/tmp"
  mark=$(basename "$tmp")
  token=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
  # Free ports outside Ray's worker range (10002-19999), picked by the kernel.
  read -r dash client agent < <(python3 -c '
import socket
s = [socket.socket() for _ in range(3)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])') || fail "no free ports"
  export PM_RAY_HEAD_MARK=$mark RAY_AUTH_MODE=token RAY_AUTH_TOKEN=$token
  # setsid: the head gets a session of its own; bash records its id ($$).
  setsid bash -c 'echo $$ >"$0/sid" && exec "$@"' "$state" "$bin/ray" start --head --node-ip-address 127.0.0.1 --port 0 --num-cpus 8 \
    --object-store-memory 100000000 --disable-usage-stats --temp-dir "$tmp/ray" \
    --include-dashboard true --dashboard-host 127.0.0.1 --dashboard-port "$dash" \
    --ray-client-server-port "$client" --dashboard-agent-listen-port "$agent" \
    >"$state/start.log" 2>&1 </dev/null || { cat "$state/start.log"; fail "ray start"; }
  gcs=$(grep -o "ray start --address='[^']*'" "$state/start.log" | head -1 | sed "s/.*='\(.*\)'/\1/")
  [[ -n $gcs ]] || { cat "$state/start.log"; fail "no Ray address in ray start's output"; }
  {
    echo "export RAY_AUTH_MODE=token RAY_AUTH_TOKEN=$token"
    echo "export RAY_ADDRESS=127.0.0.1:${gcs##*:} PM_TEST_RAY_JOBS_URL=http://127.0.0.1:$dash"
  } >"$state/env"
  # The Jobs API answers a little after ray start returns.
  for _ in $(seq 300); do
    curl -sf -m 2 -H "Authorization: Bearer $token" "http://127.0.0.1:$dash/api/version" \
      >/dev/null && break
    sleep 0.1
  done
  curl -sf -m 2 -H "Authorization: Bearer $token" "http://127.0.0.1:$dash/api/version" \
    >/dev/null || fail "the Jobs API at http://127.0.0.1:$dash does not answer"
  echo "ray-head: up at 127.0.0.1:${gcs##*:}, Jobs API at http://127.0.0.1:$dash"
  ;;
stop)
  [[ -s $state/tmp ]] || exit 0 # never started
  tmp=$(cat "$state/tmp") mark=$(basename "$(cat "$state/tmp")") status=0
  sid=$(cat "$state/sid" 2>/dev/null)
  if [[ -n ${3:-} ]]; then
    # The tests are over: no rank and no actor of ours may still be running.
    for _ in $(seq 100); do leftovers "$mark" "$sid" "$3" >/dev/null || break; sleep 0.1; done
    if leftovers "$mark" "$sid" "$3" >"$state/leftovers"; then
      echo "ray-head: FAIL: left behind after the Ray tests:" >&2
      cat "$state/leftovers" >&2
      status=1
    fi
  fi
  for _ in $(seq 200); do
    pids=$(marked "$mark" "$sid")
    [[ -z $pids ]] && break
    kill -9 $pids 2>/dev/null
    sleep 0.1
  done
  [[ -z $(marked "$mark" "$sid") ]] || { status=1; echo "ray-head: FAIL: processes survive SIGKILL" >&2; }
  rm -rf "$tmp"
  exit $status
  ;;
leftovers)
  [[ -s $state/tmp ]] || fail "no head state in $state"
  leftovers "$(basename "$(cat "$state/tmp")")" "$(cat "$state/sid" 2>/dev/null)" "${3:?RANK_DIR}"
  ;;
*) fail "unknown command $cmd" ;;
esac
