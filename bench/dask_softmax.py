"""Softmax of a 2 GiB float32 Dask array on a cluster of 2 worker processes: fastsoftmax.dask
against SciPy and plain Dask, wall time and bytes read.

    python bench/dask_softmax.py [--rows 64] [--columns 8388608] [--chunk 1048576] [--repeat 3]
                                 [--scipy-dense] [--json results.json]

The array: ``da.random.default_rng(0).standard_normal((rows, columns), chunks=(rows, chunk),
dtype=float32)``, generated on the workers and persisted there before any timing (by default
64 x 8 Mi = 2 GiB, 8 chunks of 256 MiB along the softmax axis, axis 1). The cluster:
``LocalCluster(n_workers=2, threads_per_worker=1, processes=True)`` (Dask's workers run
fastsoftmax on one thread: their nannies set OMP_NUM_THREADS=1).

The methods, softmax along axis 1, each result reduced to its sum on the workers, so that one
number reaches the client (the same last step for every method; Dask fuses it into the task that
makes each chunk of the result, so no result chunk is ever stored):

- ``fastsoftmax.dask.softmax(x, axis=1)``: one tree reduction of normalizer states, one pass 2;
- ``scipy.special.softmax(x, axis=1)`` with ``SCIPY_ARRAY_API=1`` (set here before SciPy is
  imported): SciPy's array-API path, which builds the Dask expression max, exp(x - max), sum,
  divide. Without that variable SciPy converts the Dask array with ``np.asarray``: the whole array
  is computed and gathered into the client and the softmax runs there in NumPy.
  ``--scipy-dense`` times that too, once, in a child process (the variable is read at import)
  that takes the same persisted array from the cluster (``Client.publish_dataset``);
- plain Dask: ``e = da.exp(x - x.max(axis=1, keepdims=True)); e / e.sum(axis=1, keepdims=True)``.

Wall time: of ``result.sum().compute()``, the methods interleaved, ``--repeat`` rounds; the table
gives the median (and the fastest).

Bytes read, from the scheduler: a scheduler plugin sees every task that finishes and adds up the
sizes of its inputs, the results of other tasks that it took (``TaskState.nbytes``, which the
workers measure with ``dask.sizeof``), and of its own result. Those are the bytes that move
between tasks: written to a worker's memory, read back from it (or over the network). What a
task computes inside itself (Dask fuses blockwise steps, such as exp(x - max), into one task) is
not counted: it never leaves the task. The columns:

- ``x reads``: how many tasks took each chunk of x, the same for every chunk (the number of times
  the input is read);
- ``read (GiB)``: the inputs of all tasks: x, temporaries of x's size that the graph keeps
  (exp(x - max)), and the small ones (maxima, sums, states);
- ``written (GiB)``: the results of all tasks (x, persisted beforehand, excluded).

Memory: x (2 GiB) stays on the workers; plain Dask and SciPy also keep exp(x - max), another
2 GiB; ``--scipy-dense`` needs about 4 times x in the child process.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from typing import Any

os.environ.setdefault("SCIPY_ARRAY_API", "1")  # before SciPy is imported: its array-API path for Dask arrays

import dask
import dask.array as da
import fastsoftmax
import fastsoftmax.dask
import numpy as np
import scipy
import scipy.special
from dask.core import flatten
from distributed import Client, LocalCluster, wait
from distributed.diagnostics.plugin import SchedulerPlugin

GIB = 2**30
DATASET = "fastsoftmax-bench-x"


class Traffic(SchedulerPlugin):
    """Counts, for every task that finishes, the bytes of its inputs and its result, and which
    tasks read which keys."""

    name = "fastsoftmax-bench-traffic"

    def __init__(self) -> None:
        self.reset()

    async def start(self, scheduler: Any) -> None:
        self.scheduler = scheduler

    def reset(self) -> None:
        self.reads: Counter = Counter()
        self.read_bytes = 0
        self.written_bytes = 0

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        if (start, finish) != ("processing", "memory"):
            return
        task = self.scheduler.tasks[key]
        self.written_bytes += task.nbytes
        for dependency in task.dependencies:
            self.read_bytes += dependency.nbytes
            self.reads[dependency.key] += 1


def traffic(client: Client, reset: bool = False) -> dict[str, Any]:
    """The plugin's counts, then (reset=True) zeroed for the next computation."""

    def read(dask_scheduler: Any) -> dict[str, Any]:
        plugin = dask_scheduler.plugins[Traffic.name]
        counts = {"reads": dict(plugin.reads), "read_bytes": plugin.read_bytes, "written_bytes": plugin.written_bytes}
        if reset:
            plugin.reset()
        return counts

    return client.run_on_scheduler(read)


def methods(x: Any) -> dict[str, Any]:
    """Each method's lazy softmax of x along axis 1, reduced to its sum."""
    e = da.exp(x - x.max(axis=1, keepdims=True))
    return {
        "fastsoftmax.dask.softmax": fastsoftmax.dask.softmax(x, axis=1).sum(),
        "scipy.special.softmax (array API)": scipy.special.softmax(x, axis=1).sum(),
        "plain Dask exp(x - max) / sum": (e / e.sum(axis=1, keepdims=True)).sum(),
    }


def scipy_dense_child(address: str) -> None:
    """In a process without SCIPY_ARRAY_API: SciPy's default path on the persisted x; prints
    seconds and the sum as JSON."""
    with Client(address) as client:
        x = client.get_dataset(DATASET)
        start = time.perf_counter()
        total = float(scipy.special.softmax(x, axis=1).sum())
        print(json.dumps({"seconds": time.perf_counter() - start, "sum": total, "type": "numpy"}))


def time_scipy_dense(address: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "SCIPY_ARRAY_API"}
    child = subprocess.run([sys.executable, __file__, "--child-scipy-dense", address], env=env, check=True,
                           capture_output=True, text=True)
    return json.loads(child.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--columns", type=int, default=8_388_608)
    parser.add_argument("--chunk", type=int, default=1_048_576, help="chunk length along the softmax axis")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds of every method")
    parser.add_argument("--scipy-dense", action="store_true",
                        help="also time SciPy without SCIPY_ARRAY_API (gathers x into a child process)")
    parser.add_argument("--json", help="write every measurement to this file")
    parser.add_argument("--child-scipy-dense", metavar="ADDRESS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_scipy_dense:
        return scipy_dense_child(args.child_scipy_dense)

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as client:
        client.register_plugin(Traffic())
        x = da.random.default_rng(0).standard_normal(
            (args.rows, args.columns), chunks=(args.rows, args.chunk), dtype=np.float32).persist()
        wait(x)
        client.publish_dataset(**{DATASET: x})
        x_keys = set(flatten(x.__dask_keys__()))
        traffic(client, reset=True)
        print(f"x: {x.shape} float32, {x.nbytes / GIB:.2f} GiB in {x.npartitions} chunks of {x.chunksize}; "
              f"fastsoftmax {fastsoftmax.__version__}, Dask {dask.__version__}, SciPy {scipy.__version__}, "
              f"NumPy {np.__version__}", flush=True)

        results: dict[str, dict[str, Any]] = {}
        lazy = methods(x)
        for name, total in lazy.items():  # a first, untimed run of each: the traffic, and a check
            value = float(total.compute())
            counts = traffic(client, reset=True)
            reads = sorted({counts["reads"].get(k, 0) for k in x_keys})
            results[name] = {"sum": value, "x_reads": reads, "read_bytes": counts["read_bytes"],
                             "written_bytes": counts["written_bytes"], "seconds": []}
            if abs(value - args.rows) > 1e-3 * args.rows:
                raise SystemExit(f"{name}: the softmax sums to {value}, not {args.rows}")
        for _ in range(args.repeat):
            for name, total in lazy.items():
                start = time.perf_counter()
                total.compute()
                results[name]["seconds"].append(time.perf_counter() - start)
        traffic(client, reset=True)
        if args.scipy_dense:
            dense = time_scipy_dense(cluster.scheduler_address)
            results["scipy.special.softmax (SCIPY_ARRAY_API unset: densified)"] = {
                "sum": dense["sum"], "x_reads": [1], "read_bytes": None, "written_bytes": None,
                "seconds": [dense["seconds"]]}

    print()
    print(f"softmax along axis 1 of {args.rows} x {args.columns} float32 ({x.nbytes / GIB:.2f} GiB, chunks of "
          f"{args.rows} x {args.chunk}) on 2 worker processes x 1 thread; median of {args.repeat} (fastest)")
    print()
    print("| method | wall s | x fastsoftmax | x reads | read (GiB) | written (GiB) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    reference = statistics.median(results["fastsoftmax.dask.softmax"]["seconds"])
    for name, r in results.items():
        median = statistics.median(r["seconds"])
        fastest = f" ({min(r['seconds']):.2f})" if len(r["seconds"]) > 1 else ""
        reads = "/".join(map(str, r["x_reads"]))
        read = "-" if r["read_bytes"] is None else f"{r['read_bytes'] / GIB:.2f}"
        written = "-" if r["written_bytes"] is None else f"{r['written_bytes'] / GIB:.2f}"
        if r["read_bytes"] is None:
            reads += " (gathered to the client)"
        print(f"| {name} | {median:.2f}{fastest} | {median / reference:.2f} | {reads} | {read} | {written} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"shape": [args.rows, args.columns], "chunk": args.chunk, "results": results}, f, indent=1)
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
