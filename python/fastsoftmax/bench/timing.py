"""How a benchmark times its candidates: rotated buffers beyond the last-level cache, calibrated
samples, round-robin repeats, and the progress display."""

from __future__ import annotations

import argparse
import gc
import math
import statistics
import sys
import time
from dataclasses import dataclass

import numpy as np

from .candidates import Candidate, Runner

NORMAL_STD = 2.0
"""Default input: normal, mean 0, standard deviation 2 (variance 4)."""


UNIFORM_HALF_WIDTH = 1000.0
"""``--dist uniform`` input: uniform on [-UNIFORM_HALF_WIDTH, UNIFORM_HALF_WIDTH]."""


ROTATION_LLC_MULTIPLE = 3
"""The rotated buffers of one size hold more than this many last-level caches."""


MEMORY_FRACTION = 0.5
"""The rotated buffers of one size use at most this fraction of the available memory."""


CACHE_LINE_BYTES = 64


PROGRESS_DELAY_SECONDS = 3.0
"""The progress display appears only once a run has lasted this long."""


@dataclass
class Measurement:
    """Every sample of one candidate at one size, and what follows from them."""

    size: int
    candidate: Candidate
    calls_per_sample: int
    times: list[float]  # seconds per call, one sample per repeat
    ratio_to_bound: float | None = None  # median / the bound's median
    speedup_over_best_peer: float | None = None  # best peer's median / median (fastsoftmax only)
    ratio_to_fused: float | None = None  # median / softmax_topk's median at the same k (--topk)

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def buffer_pairs(elements: int, itemsize: int, llc_bytes: int, memory_bytes: int) -> int:
    """How many (input, output) pairs of `elements` items to rotate: enough to exceed
    ROTATION_LLC_MULTIPLE last-level caches, within MEMORY_FRACTION of memory_bytes; 0 if
    not even one pair fits."""
    pair_bytes = 2 * elements * itemsize
    wanted = ROTATION_LLC_MULTIPLE * llc_bytes // pair_bytes + 1
    return min(wanted, int(MEMORY_FRACTION * memory_bytes) // pair_bytes)


def aligned_arrays(count: int, shape: tuple[int, int], dtype: np.dtype) -> tuple[np.ndarray, list[np.ndarray]]:
    """One block holding `count` C-contiguous arrays of `shape`, each starting on a cache line:
    (the whole block, the arrays)."""
    elements = shape[0] * shape[1]
    line = CACHE_LINE_BYTES // dtype.itemsize
    stride = -(-elements // line) * line
    block = np.empty(count * stride + line, dtype)
    start = (-block.ctypes.data % CACHE_LINE_BYTES) // dtype.itemsize
    arrays = [block[start + k * stride : start + k * stride + elements].reshape(shape) for k in range(count)]
    return block, arrays


def make_buffers(
    pairs: int, shape: tuple[int, int], dtype: np.dtype, dist: str, rng: np.random.Generator
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """`pairs` random inputs (N(0, 4), or uniform on [-1000, 1000]) and as many outputs, all
    written once so that no call pays for first-touch page faults."""
    x_block, xs = aligned_arrays(pairs, shape, dtype)
    if dist == "normal":
        rng.standard_normal(out=x_block, dtype=dtype)
        x_block *= NORMAL_STD
    else:
        rng.random(out=x_block, dtype=dtype)
        x_block *= 2 * UNIFORM_HALF_WIDTH
        x_block -= UNIFORM_HALF_WIDTH
    y_block, ys = aligned_arrays(pairs, shape, dtype)
    y_block.fill(0)
    return xs, ys


class Rotation:
    """Buffer-pair indices handed out in a cycle shared by every candidate of one size, so each
    call gets the least recently used pair."""

    def __init__(self, pairs: int) -> None:
        self.pairs = pairs
        self.next = 0

    def take(self, count: int) -> list[int]:
        indices = [(self.next + k) % self.pairs for k in range(count)]
        self.next = (self.next + count) % self.pairs
        return indices


def time_sample(run: Runner, indices: list[int]) -> float:
    """Mean seconds per call of `run` over `indices` (garbage collection is off while measuring)."""
    start = time.perf_counter()
    for i in indices:
        run(i)
    return (time.perf_counter() - start) / len(indices)


def calibrate(run: Runner, rotation: Rotation, min_seconds: float) -> int:
    """Calls per sample for `run` such that a sample lasts at least `min_seconds`."""
    run(rotation.take(1)[0])  # warm-up: lazy initialisation, code and tables into cache
    calls = 1
    while True:
        per_call = time_sample(run, rotation.take(calls))
        if per_call * calls >= min_seconds:
            return calls
        calls = max(2 * calls, math.ceil(min_seconds / per_call))


class Progress:
    """Progress on stderr once a run outlasts PROGRESS_DELAY_SECONDS: a tqdm bar, or one rewritten
    line when tqdm is missing; nothing when stderr is not a terminal."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.start = time.monotonic()
        self.enabled = sys.stderr.isatty()
        self.bar = None
        if self.enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                return
            self.bar = tqdm(total=total, unit="sample", delay=PROGRESS_DELAY_SECONDS, leave=False, file=sys.stderr)

    def advance(self, label: str) -> None:
        """Count one sample taken; `label` says where the run is."""
        self.done += 1
        if self.bar is not None:
            self.bar.set_description(label, refresh=False)
            self.bar.update()
        elif self.enabled and time.monotonic() - self.start > PROGRESS_DELAY_SECONDS:
            sys.stderr.write(f"\r{self.done}/{self.total} samples: {label}\x1b[K")
            sys.stderr.flush()

    def write(self, text: str) -> None:
        """Print `text` on stdout without breaking the progress display (none shows before the delay)."""
        shown = self.enabled and time.monotonic() - self.start > PROGRESS_DELAY_SECONDS
        if shown and self.bar is not None:
            self.bar.write(text, file=sys.stdout)  # clears the bar, prints, redraws it
            return
        if shown:
            sys.stderr.write("\r\x1b[K")
        print(text, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled:
            sys.stderr.write("\r\x1b[K")


def measure_size(
    size: int, args: argparse.Namespace, candidates: list[Candidate], pairs: int, progress: Progress, label: str
) -> list[Measurement]:
    """Time every candidate on rows x size inputs: calibrate, then round-robin repeats (`label`
    names the size in the progress display)."""
    dtype = np.dtype(args.dtype)
    xs, ys = make_buffers(pairs, (args.rows, size), dtype, args.dist, np.random.default_rng(size))
    runners = [candidate.bind(xs, ys) for candidate in candidates]
    rotation = Rotation(pairs)
    gc.collect()
    gc.disable()
    try:
        calls = []
        for run in runners:
            calls.append(calibrate(run, rotation, args.min_sample_seconds))
            progress.advance(f"{label}, calibrating")
        times: list[list[float]] = [[] for _ in candidates]
        for repeat in range(args.repeats):
            for run, count, samples in zip(runners, calls, times, strict=True):
                samples.append(time_sample(run, rotation.take(count)))
                progress.advance(f"{label}, repeat {repeat + 1}/{args.repeats}")
    finally:
        gc.enable()
    return [Measurement(size, c, n, t) for c, n, t in zip(candidates, calls, times, strict=True)]
