#!/usr/bin/env python3
"""Python Ray peers of pm-bench-ray: "the seed's way" of running ranks and a
parameter sweep on Ray (Ray actors, ray.util.ActorPool.map_unordered), timed
the way pm-bench-ray times pm's RayIo backend.

  join   --actors K   a fresh interpreter: import ray, ray.init, then K
                      actors (@ray.remote(num_cpus=1)) are created and each
                      answers one ping: ray.get([a.ping.remote() for a in
                      actors]).  Prints absolute CLOCK_MONOTONIC timestamps
                      (the driver knows when it spawned us, so it can time
                      the whole start, interpreter included) and the part
                      after ray.init.
  sweep  --actors K --rows R [--chunk C]
                      K actors, created and pinged before the clock starts;
                      then R rows of an empty model (it returns its input
                      row, like pm-bench-ray's C model) through
                      ActorPool(actors).map_unordered: one row per call
                      (C = 0), or chunks of C rows per call.  The wall time
                      runs from handing the first row to the pool until
                      every result is back in a list here; starting Ray and
                      the actors is not timed, as pm_create_parallel_manager
                      is not timed on the pm side.

Output, one line each on stdout (read by pm-bench-ray; times in ns):
  INFO <key> <value...>
  TIMES <start> <imported> <initialised> <ready>   (join; CLOCK_MONOTONIC)
  RESULT <kind> <count> <ns>   join: count = actors, ns = ready - initialised
                               sweep: count = rows, ns = the sweep's wall time
  ERROR <text>

The cluster is RAY_ADDRESS (else "auto"); this script never starts one.
Standard library + ray.  Example, with a head up and RAY_ADDRESS set:
  python3 bench/py_ray_peers.py sweep --actors 2 --rows 100000 --chunk 1000
"""

import time

T_START = time.monotonic_ns()  # before anything heavy is imported

import argparse  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402


class Peer:
    """One worker of the sweep: the empty model, per row or per chunk."""

    def ping(self):
        return os.getpid()

    @staticmethod
    def model(row):
        return row  # the outputs are a copy of the inputs

    def run(self, row):
        return self.model(row)

    def run_chunk(self, rows):
        return [self.model(row) for row in rows]


def say(line):
    print(line, flush=True)


def reachable(address):
    """False if nothing answers at the GCS address: ray.init would retry for minutes
    (the same check as ray/pm_ray_launcher.py)."""
    if "://" in address:
        return True  # ray:// (Ray Client): let ray.init judge
    try:
        from ray._private.services import canonicalize_bootstrap_address_or_die
        host, _, port = canonicalize_bootstrap_address_or_die(address).rpartition(":")
    except ConnectionError:
        return False
    except Exception:
        return True  # private API changed: cannot tell
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=3).close()
        return True
    except OSError:
        return False


def connect(ray):
    """ray.init on RAY_ADDRESS (or auto); False with an ERROR line if none answers."""
    address = os.environ.get("RAY_ADDRESS") or "auto"
    if not reachable(address):
        say(f"ERROR no Ray cluster answers at {address} (start one with ray start --head, "
            "set RAY_ADDRESS)")
        return False
    try:
        ray.init(address=address, logging_level=logging.WARNING)
    except (Exception, SystemExit) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        say(f"ERROR ray.init (address={address}): {first}")
        return False
    return True


def start_actors(ray, count):
    """count actors, each has answered one ping (so each has its own worker process)."""
    actor = ray.remote(num_cpus=1)(Peer)
    actors = [actor.remote() for _ in range(count)]
    pids = ray.get([a.ping.remote() for a in actors])
    return actors, pids


def stop_actors(ray, actors):
    for a in actors:
        try:
            ray.kill(a, no_restart=True)
        except Exception:
            pass


def run_join(ray, args, t_imported):
    if not connect(ray):
        return 1
    t_init = time.monotonic_ns()
    actors, pids = start_actors(ray, args.actors)
    t_ready = time.monotonic_ns()
    if len(set(pids)) != args.actors:
        say(f"ERROR {args.actors} actors answered from {len(set(pids))} processes")
        return 1
    say(f"TIMES {T_START} {t_imported} {t_init} {t_ready}")
    say(f"RESULT join {args.actors} {t_ready - t_init}")
    stop_actors(ray, actors)
    return 0


def run_sweep(ray, args):
    from ray.util import ActorPool

    if not connect(ray):
        return 1
    actors, _ = start_actors(ray, args.actors)
    rows = [tuple(float(i) + 0.5 * k for k in range(args.cols)) for i in range(args.rows)]
    pool = ActorPool(actors)
    if args.chunk > 0:
        chunks = [rows[i:i + args.chunk] for i in range(0, len(rows), args.chunk)]
        t0 = time.monotonic_ns()
        results = [row for chunk in pool.map_unordered(lambda a, v: a.run_chunk.remote(v), chunks)
                   for row in chunk]
        t1 = time.monotonic_ns()
        kind = "sweep-chunks"
    else:
        t0 = time.monotonic_ns()
        results = list(pool.map_unordered(lambda a, v: a.run.remote(v), rows))
        t1 = time.monotonic_ns()
        kind = "sweep-rows"
    stop_actors(ray, actors)
    # Unordered: every row back once, with its values (rows are distinct).
    if len(results) != len(rows) or sorted(results) != rows:
        say(f"ERROR {kind}: the results are not the rows sent")
        return 1
    say(f"RESULT {kind} {args.rows} {t1 - t0}")
    if sys.stdout.isatty():
        seconds = (t1 - t0) / 1e9
        say(f"# {kind}: {args.rows} rows on {args.actors} actors in {seconds:.3f} s, "
            f"{args.rows / seconds:,.0f} rows/s")
    return 0


def main():
    parser = argparse.ArgumentParser(
        description="Python Ray peers of pm-bench-ray (see the module docstring)."
    )
    parser.add_argument("kind", choices=["join", "sweep"])
    parser.add_argument("--actors", type=int, required=True, help="Ray actors to start")
    parser.add_argument("--rows", type=int, default=0, help="sweep: rows")
    parser.add_argument("--chunk", type=int, default=0,
                        help="sweep: rows per call (default 0: one row per call)")
    parser.add_argument("--cols", type=int, default=2, help="sweep: parameters per row (default 2)")
    args = parser.parse_args()
    if args.actors < 1 or args.cols < 1 or args.chunk < 0:
        parser.error("--actors and --cols must be >= 1, --chunk >= 0")
    if args.kind == "sweep" and args.rows < 1:
        parser.error("sweep needs --rows >= 1")

    say(f"INFO python {sys.version.split()[0]} {sys.executable}")
    try:
        import ray
    except Exception as e:
        say(f"ERROR import ray: {e} (pip install ray, or --python a Python that has it)")
        return 1
    t_imported = time.monotonic_ns()
    say(f"INFO ray {ray.__version__}")
    try:
        if args.kind == "join":
            return run_join(ray, args, t_imported)
        return run_sweep(ray, args)
    finally:
        try:
            ray.shutdown()
        except Exception:
            pass


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
