#!/usr/bin/env python3
"""pm-ray: start ranks of a pm program as processes hosted by Ray actors (the RayIo backend).

    pm_ray_launcher.py --ranks 1..N-1 --size N --endpoint tcp://HOST:PORT --group G
                       [--address RAY_ADDRESS] [--cwd DIR] [--abort-timeout S]
                       [--exit-fd FD | --exit-lines] [--verbose] -- PROGRAM ARGS...

Rank 0 is the caller (the C program, which runs or reaches the coordinator). Each other rank
gets a {"CPU": 1} bundle of a SPREAD placement group and an actor in it; the actor runs
PROGRAM with PM_RANK/PM_SIZE/PM_GROUP/PM_ENDPOINT/PM_EXIT_ON_LOST=1 (and the launcher's other
PM_* variables, and those named in PM_RAY_ENV=A,B) and returns its exit status.
Exit status: 0 if every rank exited 0, else the first non-zero one to finish (128+signal for a
signal); 2 usage, 3 no ray or no cluster, 4 placement group not ready in 60 s, 130/143 on
SIGINT/SIGTERM, 129 when our parent (rank 0) went away. Standard library + ray only.
"""
import argparse
import os
import signal
import socket
import sys
import threading
import time

PG_TIMEOUT = 60.0
POLL = 0.5
EXIT_SIGNALS = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}
stop_code = None  # set by the signal handler; the wait loops poll it
RANK_IDENTITY = {"PM_RANK", "PM_SIZE", "PM_GROUP", "PM_ENDPOINT", "PM_RAY_JOBS_URL"}


def say(msg):
    print("pm-ray: " + msg, file=sys.stderr, flush=True)


def on_signal(signum, frame):
    global stop_code
    if stop_code is None:
        stop_code = EXIT_SIGNALS.get(signum, 128 + signum)


def watchdog(parent):
    """Stops the launcher when its parent (rank 0) goes away; forces the exit if the main thread
    does not get there within 10 s (e.g. stuck in ray.init): Ray then kills the job's actors."""
    global stop_code
    while os.getppid() == parent and stop_code is None:
        time.sleep(POLL)
    if stop_code is None:
        say("parent process exited: stopping the ranks")
        stop_code = 129
    time.sleep(10)
    os._exit(stop_code)


def reachable(address):
    """False if no Ray cluster answers at address: ray.init would retry for minutes."""
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


def report_exit(args, rank, status):
    """Tells the coordinator (through libpm or pm-run, or pm-ray-job) that a rank ended, so that
    one that failed before it registered does not leave the others waiting for the join
    timeout."""
    try:
        if args.exit_fd is not None:
            os.write(args.exit_fd, f"exit {rank} {status}\n".encode())
        elif args.exit_lines:
            print(f"PM_RAY_EXIT exit {rank} {status}", file=sys.stderr, flush=True)
    except OSError:
        pass  # the reader is gone: nobody to tell


def parse_ranks(text, size):
    ranks = []
    for part in text.split(","):
        lo, sep, hi = part.partition("..")
        ranks.extend(range(int(lo), int(hi) + 1) if sep else [int(lo)])
    if not ranks or len(set(ranks)) != len(ranks) or not all(0 <= r < size for r in ranks):
        raise ValueError(f"ranks {text!r} must be distinct ranks in 0..{size - 1}")
    return ranks


def parse_args(argv):
    p = argparse.ArgumentParser(prog="pm_ray_launcher.py", description=__doc__.split("\n")[0])
    p.add_argument("--ranks", required=True, help="ranks to start: A..B (inclusive) or A,B,C")
    p.add_argument("--size", required=True, type=int, help="total ranks, PM_SIZE")
    p.add_argument("--endpoint", required=True, help="coordinator endpoint, PM_ENDPOINT")
    p.add_argument("--group", required=True, help="group name, PM_GROUP")
    p.add_argument("--address", help="Ray address (default $RAY_ADDRESS, else auto)")
    p.add_argument("--cwd", default=os.getcwd(), help="ranks' working directory (default: ours)")
    p.add_argument("--abort-timeout", type=float, default=None, metavar="S",
                   help="after a rank fails, stop the others S seconds later (default: wait)")
    p.add_argument("--exit-fd", type=int, metavar="FD",
                   help='write "exit RANK STATUS" to FD as each rank ends (for the coordinator)')
    p.add_argument("--exit-lines", action="store_true",
                   help='print "PM_RAY_EXIT RANK STATUS" on stderr instead (pm-ray-job passes '
                        'them on from the job\'s log)')
    p.add_argument("--verbose", action="store_true", help="timings on stderr")
    p.add_argument("program", nargs=argparse.REMAINDER, help="-- PROGRAM ARGS...")
    a = p.parse_args(argv)
    if a.program[:1] == ["--"]:
        a.program = a.program[1:]
    if not a.program:
        p.error("no program given after --")
    if a.size < 1:
        p.error("--size must be at least 1")
    try:
        a.ranks = parse_ranks(a.ranks, a.size)
    except ValueError as e:
        p.error(str(e))
    return a


class RankHost:
    """A Ray actor hosting one rank process. Its output goes to the actor's stdout/stderr,
    which Ray forwards to the driver (this launcher)."""

    def __init__(self, rank):
        self.rank = rank

    def __repr__(self):  # Ray's log prefix: "(pm-rank-2 pid=...)"
        return f"pm-rank-{self.rank}"

    def run(self, argv, cwd, extra_env):
        import ctypes
        import subprocess

        def die_with_actor():  # the child gets SIGKILL when this actor process dies
            try:
                ctypes.CDLL(None, use_errno=True).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
            except Exception:
                pass

        env = dict(os.environ, **extra_env)
        try:
            child = subprocess.Popen(argv, cwd=cwd, env=env, preexec_fn=die_with_actor)
        except OSError as e:
            print(f"pm-ray: rank {self.rank}: cannot start {argv[0]}: {e}", file=sys.stderr,
                  flush=True)
            return 127
        return child.wait()


def main(argv):
    args = parse_args(argv)
    t0 = time.monotonic()
    for s in EXIT_SIGNALS:
        signal.signal(s, on_signal)
    threading.Thread(target=watchdog, args=(os.getppid(),), daemon=True).start()
    # Before importing ray: forward every line (no "[repeated Nx]" dedup), no ANSI colours.
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("RAY_COLOR_PREFIX", "0")
    try:
        import logging
        import ray
        from ray.util.placement_group import placement_group, remove_placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy
    except Exception as e:
        say(f"cannot import ray ({e}): install it with pip install ray")
        return 3
    address = args.address or os.environ.get("RAY_ADDRESS") or "auto"
    try:
        if not reachable(address):
            raise ConnectionError("nothing answers there")
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=True)
    except (Exception, SystemExit) as e:  # ray.init's SIGTERM handler raises SystemExit
        if stop_code is not None or isinstance(e, SystemExit):
            return stop_code or 143
        say(f"no Ray cluster at {address}: start one with ray start --head ({e})")
        return 3
    for s in EXIT_SIGNALS:  # ray.init installs its own SIGTERM handler: take it back
        signal.signal(s, on_signal)
    t_init = time.monotonic()

    pg, actors = None, []
    try:
        pg = placement_group([{"CPU": 1} for _ in args.ranks], strategy="SPREAD")
        deadline = time.monotonic() + PG_TIMEOUT
        while not pg.wait(timeout_seconds=POLL):
            if stop_code is not None:
                return stop_code
            if time.monotonic() > deadline:
                say(f"placement group of {len(args.ranks)} CPU bundle(s) not ready after "
                    f"{PG_TIMEOUT:.0f} s: the cluster has too few free CPUs (see ray status)")
                return 4
        t_pg = time.monotonic()

        Host = ray.remote(RankHost)
        pending = {}
        # The ranks see our PM_* settings (log level, timeouts, ...) and the variables named
        # in PM_RAY_ENV (as mpirun -x); the actors' own environment is the Ray worker's.
        extra = {name.strip() for name in os.environ.get("PM_RAY_ENV", "").split(",")}
        forwarded = {k: v for k, v in os.environ.items()
                     if (k.startswith("PM_") or k in extra) and k not in RANK_IDENTITY}
        for i, rank in enumerate(args.ranks):
            env = dict(forwarded, PM_RANK=str(rank), PM_SIZE=str(args.size),
                       PM_GROUP=args.group, PM_ENDPOINT=args.endpoint, PM_EXIT_ON_LOST="1")
            strategy = PlacementGroupSchedulingStrategy(placement_group=pg,
                                                        placement_group_bundle_index=i)
            actor = Host.options(num_cpus=1, max_restarts=0, max_task_retries=0,
                                 scheduling_strategy=strategy).remote(rank)
            actors.append(actor)
            pending[actor.run.remote(args.program, args.cwd, env)] = rank

        code, abort_at = 0, None
        while pending:
            if abort_at is not None and time.monotonic() > abort_at:
                say(f"a rank failed (status {code}): stopping the {len(pending)} rank(s) still "
                    f"running after the abort timeout of {args.abort_timeout:g} s")
                return code
            done, _ = ray.wait(list(pending), num_returns=1, timeout=POLL)
            for ref in done:
                rank = pending.pop(ref)
                try:
                    status = ray.get(ref)
                except Exception as e:  # actor died (node lost, OOM kill, ...)
                    say(f"rank {rank}: actor failed: {str(e).splitlines()[0]}")
                    status = 1
                if status < 0:
                    status = 128 - status
                report_exit(args, rank, status)
                if status and not code:
                    code = status
                    if args.abort_timeout is not None:
                        abort_at = time.monotonic() + args.abort_timeout
            if stop_code is not None:
                return stop_code
        if args.verbose:
            say(f"ray.init {t_init - t0:.2f} s, placement group {t_pg - t_init:.2f} s, "
                f"total {time.monotonic() - t0:.2f} s")
        time.sleep(0.3)  # let Ray's log monitor forward the ranks' last lines
        return code
    finally:
        for actor in actors:
            try:
                ray.kill(actor, no_restart=True)
            except Exception:
                pass
        if pg is not None:
            try:
                remove_placement_group(pg)
            except Exception:
                pass
        try:
            ray.shutdown()
        except Exception:
            pass


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # Ray is shut down; skipping the teardown saves ~0.5 s after a ray.kill
