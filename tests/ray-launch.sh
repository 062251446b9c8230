#!/usr/bin/env bash
# RayIo against a real local Ray head (loopback only, small object store),
# started here and stopped at the end whatever happens: the conformance
# program with 2 and 4 ranks, the RO sweep (identical to Serial), a rank
# killed with SIGKILL, and no rank process left behind.
# usage: ray-launch.sh PYTHON PM_CONFORMANCE PM_SWEEP RO_MODEL PM_RUN
set -uo pipefail
python=$1 conf=$2 sweep=$3 model=$4 pmrun=$5
venv_bin=$(dirname "$python")
tmp=$(mktemp -d /tmp/pmray.XXXXXX) # short: Ray puts unix sockets under its temp dir
fail () { echo "ray-launch: FAIL: $*"; exit 1; }
cleanup () {
  "$venv_bin/ray" stop --force >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT
"$venv_bin/ray" start --head --node-ip-address 127.0.0.1 --port 0 --num-cpus 4 \
  --object-store-memory 100000000 --disable-usage-stats --temp-dir "$tmp/ray" \
  --include-dashboard false >"$tmp/start.log" 2>&1 || { cat "$tmp/start.log"; fail "ray start"; }
address=$(grep -o "ray start --address='[^']*'" "$tmp/start.log" | head -1 | sed "s/.*='\(.*\)'/\1/")
[[ -n $address ]] || { cat "$tmp/start.log"; fail "no Ray address in ray start's output"; }
address=127.0.0.1:${address##*:} # loopback only: the head was started on 127.0.0.1
export RAY_ADDRESS=$address PM_PYTHON=$python
for n in 2 4; do
  timeout 120 "$conf" RayIo "$n" >"$tmp/conf$n" 2>&1 || { cat "$tmp/conf$n"; fail "conformance RayIo $n"; }
  grep -q "(RayIo, $n ranks): PASS" "$tmp/conf$n" || { cat "$tmp/conf$n"; fail "conformance RayIo $n did not pass"; }
done
params=(--param 'feed_salinity=linspace(5,45,9)' --param 'recovery=linspace(0.3,0.7,5)')
"$sweep" --backend Serial -n 1 --model "$model" "${params[@]}" -o "$tmp/serial.csv" 2>/dev/null || fail "serial sweep"
timeout 120 "$sweep" --backend RayIo -n 3 --model "$model" "${params[@]}" -o "$tmp/ray.csv" \
  >"$tmp/sweep.out" 2>&1 || { cat "$tmp/sweep.out"; fail "RayIo sweep"; }
cmp -s "$tmp/serial.csv" "$tmp/ray.csv" || fail "RayIo sweep differs from Serial"
# without Ray's package, a clear refusal
PM_PYTHON=python3 "$conf" RayIo 2 >"$tmp/noray" 2>&1 && fail "RayIo ran without the ray package"
grep -q "pip install ray" "$tmp/noray" || { cat "$tmp/noray"; fail "no clear refusal without ray"; }
# pm-run --backend ray: every rank on Ray, pm-run's status is the first failure's
timeout 120 "$pmrun" -n 3 --backend ray -- "$conf" MultiProcessing 3 >"$tmp/pmrun.out" 2>&1 \
  || { cat "$tmp/pmrun.out"; fail "pm-run --backend ray of the conformance program"; }
timeout 60 "$pmrun" -n 2 --backend ray -- sh -c 'exit $((PM_RANK * 5))' >/dev/null 2>&1
status=$?
((status == 5)) || fail "pm-run --backend ray: exit $status, expected 5 (rank 1's)"
# nothing left behind: no rank process of ours
for _ in $(seq 100); do pgrep -f "$conf" >/dev/null || break; sleep 0.05; done
if pgrep -fa "$conf" | grep -v ray-launch.sh | grep -q .; then fail "rank processes left behind"; fi
echo "ray-launch: ok"
