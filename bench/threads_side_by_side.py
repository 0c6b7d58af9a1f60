"""Threads and axes: fastsoftmax at 1 and 2 threads against PyTorch and ONNX Runtime at 2 threads,
on warm buffers (the same input and output every call), candidates interleaved. Reports the
median over samples of each sample's mean call time, and the fastest single call: on a shared
VM the two differ where a thread is sometimes descheduled.

    OMP_WAIT_POLICY=PASSIVE python bench/threads_side_by_side.py

The policy keeps PyTorch's OpenMP threads from spinning between its calls, which would otherwise
steal the CPUs the next candidate is timed on. Needs torch, onnx and onnxruntime.
"""

from __future__ import annotations

import statistics
import time

import fastsoftmax
import numpy as np
import torch
from peers import onnx_softmax

THREADS = 2
CASES = [  # (name, shape, axis)
    ("64 x 128256, axis -1", (64, 128256), -1),
    ("1 x 1M, axis -1", (1, 1 << 20), -1),
    ("1 x 16M, axis -1", (1, 1 << 24), -1),
    ("4096 x 4096, axis -1", (4096, 4096), -1),
    ("4096 x 4096, axis 0", (4096, 4096), 0),
]


def sample(call, min_seconds: float = 0.02) -> list[float]:
    """Seconds of each call of a sample of calls lasting at least min_seconds."""
    times: list[float] = []
    while sum(times) < min_seconds:
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    torch.set_num_threads(THREADS)
    rng = np.random.default_rng(0)
    for name, shape, axis in CASES:
        x = rng.normal(0, 2, shape).astype(np.float32)
        y = np.empty_like(x)
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        candidates = {
            "fastsoftmax 1 thread": lambda: fastsoftmax.softmax(x, axis, out=y, num_threads=1),
            f"fastsoftmax {THREADS} threads": lambda: fastsoftmax.softmax(x, axis, out=y, num_threads=THREADS),
            f"torch {THREADS} threads": lambda: torch.softmax(tx, axis, out=ty),
            f"onnxruntime {THREADS} threads": onnx_softmax(x, y, axis, THREADS),
        }
        samples: dict[str, list[list[float]]] = {k: [] for k in candidates}
        for _ in range(9):
            for k, call in candidates.items():
                samples[k].append(sample(call))
        medians = {k: statistics.median(statistics.fmean(s) for s in v) for k, v in samples.items()}
        fastest = {k: min(min(s) for s in v) for k, v in samples.items()}
        ours = f"fastsoftmax {THREADS} threads"
        print(f"{name}: median ms (ratio to {ours}), fastest ms (ratio)")
        for k in candidates:
            print(
                f"  {k:28s} {medians[k] * 1e3:8.3f} ({medians[k] / medians[ours]:4.2f})"
                f"  {fastest[k] * 1e3:8.3f} ({fastest[k] / fastest[ours]:4.2f})"
            )


if __name__ == "__main__":
    main()
