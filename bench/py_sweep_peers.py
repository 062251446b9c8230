#!/usr/bin/env python3
"""Python peers of pm-bench-sweep: the same parameter sweep run through the
standard library's process pools, timed the way pm-bench-sweep times
pm_scatter through pm_gather.

Every row is a tuple of COLS floats; the model busy-waits WORK_US
microseconds on CLOCK_MONOTONIC (0: no wait) and returns its input, like
pm-bench-sweep's C model.  The wall time runs from handing the first row to
the pool until every result is back in a list in the parent; starting the
pool (and its workers, warmed up with a few no-op tasks) is not timed, as
pm_create_parallel_manager is not timed on the pm side.

  executor-submit  concurrent.futures.ProcessPoolExecutor(max_workers=W),
                   one submit() per row, then every future's result()
  pool-map         multiprocessing.Pool(W).map(model, rows, chunksize=C)
                   (C = 0: map's default, len(rows) / (4 W) rounded up)

Output, one line each on stdout (read by pm-bench-sweep; times in ns):
  INFO <key> <value>
  RESULT <kind> <rows> <wall_ns>
  ERROR <text>

Standard library only.  Example:
  python3 bench/py_sweep_peers.py pool-map --rows 10000 --work-us 1000
"""

import argparse
import concurrent.futures
import multiprocessing
import sys
import time

_work_ns = 0


def _init(work_ns):
    global _work_ns
    _work_ns = work_ns


def model(row):
    """Busy-waits _work_ns on CLOCK_MONOTONIC (uses a core, like a real
    model), then returns the row: the outputs are a copy of the inputs."""
    if _work_ns:
        end = time.monotonic_ns() + _work_ns
        while time.monotonic_ns() < end:
            pass
    return row


def _warm(_):
    time.sleep(0.01)  # long enough that every worker takes one
    return 0


def _default_chunksize(rows, workers):
    # What Pool.map does with chunksize=None (Lib/multiprocessing/pool.py).
    chunksize, extra = divmod(rows, workers * 4)
    return chunksize + 1 if extra else chunksize


def run_executor_submit(rows, workers, work_ns, context):
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_init, initargs=(work_ns,)
    ) as executor:
        list(executor.map(_warm, range(2 * workers)))
        t0 = time.monotonic_ns()
        futures = [executor.submit(model, row) for row in rows]
        results = [future.result() for future in futures]
        t1 = time.monotonic_ns()
    return results, t1 - t0, None


def run_pool_map(rows, workers, work_ns, context, chunksize):
    used = chunksize if chunksize > 0 else _default_chunksize(len(rows), workers)
    with context.Pool(workers, initializer=_init, initargs=(work_ns,)) as pool:
        pool.map(_warm, range(2 * workers), chunksize=1)
        t0 = time.monotonic_ns()
        results = pool.map(model, rows, chunksize=chunksize if chunksize > 0 else None)
        t1 = time.monotonic_ns()
    return results, t1 - t0, used


def main():
    parser = argparse.ArgumentParser(
        description="Python process-pool peers of pm-bench-sweep (see the module docstring)."
    )
    parser.add_argument("kind", choices=["executor-submit", "pool-map"])
    parser.add_argument("--rows", type=int, required=True, help="rows in the sweep")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--work-us", type=int, default=0,
                        help="busy-wait per row in microseconds (default 0: empty model)")
    parser.add_argument("--cols", type=int, default=2, help="parameters per row (default 2)")
    parser.add_argument("--chunksize", type=int, default=0,
                        help="pool-map chunksize (default 0: Pool.map's own default)")
    parser.add_argument("--start-method", default=None,
                        help="multiprocessing start method (default: Python's default)")
    args = parser.parse_args()
    if args.rows < 1 or args.workers < 1 or args.work_us < 0 or args.cols < 1:
        parser.error("--rows, --workers and --cols must be >= 1, --work-us >= 0")

    context = multiprocessing.get_context(args.start_method)
    print(f"INFO python {sys.version.split()[0]} {sys.executable}", flush=True)
    print(f"INFO start_method {context.get_start_method()}", flush=True)

    rows = [tuple(float(i) + 0.5 * k for k in range(args.cols)) for i in range(args.rows)]
    work_ns = args.work_us * 1000
    if args.kind == "executor-submit":
        results, wall_ns, chunksize = run_executor_submit(rows, args.workers, work_ns, context)
    else:
        results, wall_ns, chunksize = run_pool_map(
            rows, args.workers, work_ns, context, args.chunksize
        )
    if chunksize is not None:
        print(f"INFO chunksize {chunksize}", flush=True)
    if results != rows:
        print(f"ERROR {args.kind}: the results are not the rows sent", flush=True)
        return 1
    print(f"RESULT {args.kind} {args.rows} {wall_ns}", flush=True)
    if sys.stdout.isatty():
        seconds = wall_ns / 1e9
        line = f"# {args.kind}: {args.rows} rows on {args.workers} workers in {seconds:.3f} s"
        line += f", {args.rows / seconds:,.0f} rows/s"
        if work_ns:
            ideal = args.rows * work_ns / args.workers / 1e9
            line += f", efficiency {100 * ideal / seconds:.1f} % of ideal ({ideal:.3f} s)"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
