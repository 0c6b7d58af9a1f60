"""``python -m fastsoftmax bench`` (or ``fastsoftmax-bench``): time fastsoftmax against its peers.

Candidates
----------
- fastsoftmax: every algorithm on every ISA this CPU has, through the public API,
  ``softmax(x, algorithm=..., isa=..., out=y, num_threads=--threads)``.
- Peers, each only when importable (else listed as skipped): NumPy (the textbook formula
  ``e = exp(x - max); e / sum(e)``, written with ``out=`` so it allocates nothing), SciPy
  (``scipy.special.softmax``, which allocates its result), PyTorch (``torch.softmax(x, -1,
  out=y)`` on the CPU, ``torch.set_num_threads(--threads)``) and ONNX Runtime (a one-node
  Softmax model, opset 13, CPUExecutionProvider, ``intra_op_num_threads = --threads``, run
  through an IOBinding that writes into ``y``). ``--log`` times the log-softmax of each.
- A bound: ``_core.read_twice_write_once`` on the best ISA reads x twice and writes y once with
  trivial arithmetic, the least memory traffic of two_pass and online, measured in the same run
  (float32 only).

``--topk K[,K...]`` times the fused top-k instead, on 64 rows of 128256 (an LLM vocabulary)
unless ``--rows`` and ``--sizes`` say otherwise, for each K:
- ``fastsoftmax.softmax_topk(x, K, num_threads=--threads)`` (one pass, results sorted);
- softmax + argpartition: ``fastsoftmax.softmax(x, out=y, num_threads=--threads)``, then
  ``np.argpartition(y, -K)[:, -K:]`` and a ``np.take_along_axis`` gather of the values (the
  selection on one thread, results not sorted);
- PyTorch, when importable: ``torch.topk(torch.softmax(x, -1, out=y), K)`` (sorted),
  ``torch.set_num_threads(--threads)``.
The table gives each one's time and its ratio to softmax_topk's (how many times faster the fused
call is).

Timing method
-------------
- Input: ``rows x size`` arrays of N(0, 4) values (mean 0, variance 4, standard deviation 2), or
  uniform on [-1000, 1000] with ``--dist uniform``.
- Buffers: each size gets enough (input, output) pairs, each starting on a cache line, to hold
  more than 3x the last-level cache (capped at half the available memory), and consecutive calls
  take consecutive pairs, round the cycle, whichever candidate makes them. So every call starts
  with its input and output out of cache (untouched for 3 LLCs' worth of other data), and sizes
  beyond the cache are timed at memory speed rather than from a cache warmed by the last call.
- Calibration: per size and candidate, one warm-up call, then the number of calls per sample is
  raised until a sample lasts at least 5 ms (2 ms with ``--quick``).
- Repeats: each repeat takes one sample of every candidate in turn (round-robin, so a drift of the
  machine's speed touches all candidates alike rather than the last ones). A sample is the mean
  time per call over its calls, with garbage collection off (as ``timeit`` does); the table shows
  the median over repeats and the JSON file keeps every sample.
- Times include each API's per-call Python overhead (a few microseconds), which dominates rows of
  a few thousand elements.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import fastsoftmax
from fastsoftmax import _core

DEFAULT_SIZES = (1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000, 3_000_000, 10_000_000, 30_000_000)
"""Row lengths of the default sweep: the papers' 1-3-10 steps, well past the last-level cache."""
QUICK_SIZES = (1_000, 100_000, 1_000_000, 10_000_000)
"""Row lengths of ``--quick``: one per regime (L1/L2, L2/L3, L3, memory)."""
DEFAULT_REPEATS = 11
QUICK_REPEATS = 5
MIN_SAMPLE_SECONDS = 0.005
"""A sample repeats calls until it lasts this long, so timer resolution and jitter stay small."""
QUICK_MIN_SAMPLE_SECONDS = 0.002

NORMAL_STD = 2.0
"""Default input: normal, mean 0, standard deviation 2 (variance 4)."""
UNIFORM_HALF_WIDTH = 1000.0
"""``--dist uniform`` input: uniform on [-UNIFORM_HALF_WIDTH, UNIFORM_HALF_WIDTH]."""

TRAFFIC_PASSES = 3
"""Passes over a row counted for GB/s: read x twice, write y once (two_pass and online)."""
ROTATION_LLC_MULTIPLE = 3
"""The rotated buffers of one size hold more than this many last-level caches."""
FALLBACK_LLC_BYTES = 32 << 20
"""Last-level cache size assumed when sysfs does not say."""
MEMORY_FRACTION = 0.5
"""The rotated buffers of one size use at most this fraction of the available memory."""
CACHE_LINE_BYTES = 64

TOPK_ROWS = 64
TOPK_SIZE = 128_256
"""Default shape of --topk: a batch of 64 rows of logits over Llama 3's vocabulary."""
TOPK_TRAFFIC_PASSES = 1
"""Passes over a row counted for GB/s with --topk: read x once (softmax_topk)."""

BOUND = "bound (read 2x, write 1x)"
ONNX_OPSET = 13
ONNX_IR_VERSION = 9
"""Written into the model because onnx stamps its newest IR version, which an older onnxruntime rejects."""

PROGRESS_DELAY_SECONDS = 3.0
"""The progress display appears only once a run has lasted this long."""
ISA_LINESTYLES = {"scalar": ":", "avx2": "--", "avx512": "-"}
PLOT_DPI = 120

Runner = Callable[[int], object]
"""One call of a candidate on buffer pair i."""


@dataclass(frozen=True)
class Candidate:
    """Something timed: a fastsoftmax algorithm on one ISA, a peer, or the bound."""

    name: str
    kind: str  # "fastsoftmax", "peer" or "bound"
    bind: Callable[[list[np.ndarray], list[np.ndarray]], Runner]  # (inputs, outputs) -> runner
    version: str  # of the library that computes it
    algorithm: str | None = None
    isa: str | None = None
    k: int | None = None  # results per row (--topk candidates)


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


# ---- the machine ------------------------------------------------------------------------------


def parse_cache_size(text: str) -> int:
    """Bytes in a sysfs cache size such as "32768K" or "1M"."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip()
    if text[-1:].upper() in units:
        return int(text[:-1]) * units[text[-1].upper()]
    return int(text)


def cpu_caches() -> list[dict[str, Any]]:
    """The caches of cpu0 as sysfs describes them: level, type ("Data", "Unified", ...), bytes."""
    caches = []
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            level = int((index / "level").read_text())
            kind = (index / "type").read_text().strip()
            size = parse_cache_size((index / "size").read_text())
        except (OSError, ValueError):
            continue
        caches.append({"level": level, "type": kind, "size_bytes": size})
    return caches


def last_level_cache_bytes(caches: list[dict[str, Any]]) -> int:
    """The level-3 cache size, else FALLBACK_LLC_BYTES."""
    level3 = [cache["size_bytes"] for cache in caches if cache["level"] == 3]
    return max(level3) if level3 else FALLBACK_LLC_BYTES


def cpu_model() -> str:
    """The 'model name' of /proc/cpuinfo, else what the platform module knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def available_memory_bytes() -> int:
    """MemAvailable of /proc/meminfo, else the free physical memory."""
    try:
        with open("/proc/meminfo", encoding="utf-8") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


# ---- candidates -------------------------------------------------------------------------------


def fastsoftmax_candidate(algorithm: str, isa: str, log: bool, threads: int) -> Candidate:
    """fastsoftmax's public softmax (or log_softmax) with a forced algorithm, ISA and thread count."""
    function = fastsoftmax.log_softmax if log else fastsoftmax.softmax

    def bind(xs: list[np.ndarray], ys: list[np.ndarray]) -> Runner:
        return lambda i: function(xs[i], algorithm=algorithm, isa=isa, out=ys[i], num_threads=threads)

    return Candidate(f"fastsoftmax {isa} {algorithm}", "fastsoftmax", bind, fastsoftmax.__version__, algorithm, isa)


def numpy_softmax(x: np.ndarray, y: np.ndarray) -> None:
    """y = exp(x - max) / sum, in three NumPy passes writing into y."""
    np.subtract(x, x.max(axis=-1, keepdims=True), out=y)
    np.exp(y, out=y)
    y /= y.sum(axis=-1, keepdims=True)


def numpy_log_softmax(x: np.ndarray, y: np.ndarray) -> None:
    """y = x - max - log(sum(exp(x - max))), in NumPy passes writing into y."""
    shift = x.max(axis=-1, keepdims=True)
    np.subtract(x, shift, out=y)
    np.exp(y, out=y)
    shift += np.log(y.sum(axis=-1, keepdims=True))
    np.subtract(x, shift, out=y)


def numpy_candidate(log: bool, dtype: np.dtype, threads: int) -> Candidate:
    """NumPy's ufuncs: any dtype, one thread (the arguments match the other peers' factories)."""
    function = numpy_log_softmax if log else numpy_softmax
    return Candidate("numpy", "peer", lambda xs, ys: lambda i: function(xs[i], ys[i]), np.__version__)


def scipy_candidate(log: bool, dtype: np.dtype, threads: int) -> Candidate:
    """scipy.special.softmax / log_softmax: one thread, a new result array per call."""
    import scipy
    import scipy.special

    function = scipy.special.log_softmax if log else scipy.special.softmax
    return Candidate("scipy", "peer", lambda xs, ys: lambda i: function(xs[i], axis=-1), scipy.__version__)


def torch_candidate(log: bool, dtype: np.dtype, threads: int) -> Candidate:
    """torch.softmax / log_softmax on the CPU, writing into y (out=), with `threads` threads."""
    import torch

    torch.set_num_threads(threads)
    function = torch.log_softmax if log else torch.softmax

    def bind(xs: list[np.ndarray], ys: list[np.ndarray]) -> Runner:
        # Tensors sharing the NumPy buffers, made once so calls do not pay for the wrapping.
        txs = [torch.from_numpy(x) for x in xs]
        tys = [torch.from_numpy(y) for y in ys]
        return lambda i: function(txs[i], -1, out=tys[i])

    return Candidate("torch", "peer", bind, torch.__version__)


def onnxruntime_candidate(log: bool, dtype: np.dtype, threads: int) -> Candidate:
    """ONNX Runtime's Softmax / LogSoftmax operator (a one-node model), `threads` intra-op threads."""
    import onnx
    import onnxruntime
    from onnx import helper

    op = "LogSoftmax" if log else "Softmax"
    element_type = helper.np_dtype_to_tensor_dtype(dtype)
    dims = ["rows", "size"]  # symbolic: one model serves every size
    graph = helper.make_graph(
        [helper.make_node(op, ["x"], ["y"], axis=-1)],
        op,
        [helper.make_tensor_value_info("x", element_type, dims)],
        [helper.make_tensor_value_info("y", element_type, dims)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)])
    model.ir_version = ONNX_IR_VERSION
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    # Its idle pool threads would otherwise spin after each run and take the CPUs of whatever
    # candidate runs next (fastsoftmax's and PyTorch's sleep when idle, see OMP_WAIT_POLICY).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])

    def bind(xs: list[np.ndarray], ys: list[np.ndarray]) -> Runner:
        # One IOBinding per pair, made once: calls then neither copy nor allocate.
        bindings = []
        for x, y in zip(xs, ys, strict=True):
            binding = session.io_binding()
            binding.bind_cpu_input("x", x)
            binding.bind_output("y", "cpu", 0, y.dtype, y.shape, y.ctypes.data)
            bindings.append(binding)
        return lambda i: session.run_with_iobinding(bindings[i])

    return Candidate("onnxruntime", "peer", bind, f"{onnxruntime.__version__} (onnx {onnx.__version__})")


PEER_FACTORIES: dict[str, Callable[[bool, np.dtype, int], Candidate]] = {
    "numpy": numpy_candidate,
    "scipy": scipy_candidate,
    "torch": torch_candidate,
    "onnxruntime": onnxruntime_candidate,
}


def bound_candidate() -> Candidate:
    """``_core.read_twice_write_once`` on the best ISA (float32 only)."""
    isa = fastsoftmax.available_isas()[-1]

    def bind(xs: list[np.ndarray], ys: list[np.ndarray]) -> Runner:
        return lambda i: _core.read_twice_write_once(xs[i], ys[i], isa)

    return Candidate(BOUND, "bound", bind, fastsoftmax.__version__, isa=isa)


def make_candidates(args: argparse.Namespace) -> tuple[list[Candidate], dict[str, str]]:
    """The candidates to time, and {name: why} for those skipped."""
    dtype = np.dtype(args.dtype)
    candidates = [
        fastsoftmax_candidate(algorithm, isa, args.log, args.threads)
        for isa in args.isa
        for algorithm in args.algorithms
    ]
    skipped = {}
    for name, factory in PEER_FACTORIES.items():
        try:
            candidates.append(factory(args.log, dtype, args.threads))
        except ImportError:
            skipped[name] = "not installed"
    if dtype == np.float32:
        candidates.append(bound_candidate())
    else:
        skipped[BOUND] = "float32 only"
    return candidates, skipped


def topk_fused_candidate(k: int, threads: int) -> Candidate:
    """fastsoftmax.softmax_topk: softmax and top-k in one pass, `threads` threads."""

    def bind(xs: list[np.ndarray], ys: list[np.ndarray]) -> Runner:
        return lambda i: fastsoftmax.softmax_topk(xs[i], k, num_threads=threads)

    return Candidate("fastsoftmax softmax_topk", "fastsoftmax", bind, fastsoftmax.__version__, k=k)


def softmax_argpartition(x: np.ndarray, y: np.ndarray, k: int, threads: int) -> tuple[np.ndarray, np.ndarray]:
    """The k largest probabilities of each row and their indices, in no particular order: the
    softmax into y, then NumPy's selection."""
    fastsoftmax.softmax(x, out=y, num_threads=threads)
    # The k largest sit at the end after partitioning at -k; partitioning -y instead would copy y.
    indices = np.argpartition(y, -k, axis=-1)[:, -k:]
    return np.take_along_axis(y, indices, axis=-1), indices


def topk_argpartition_candidate(k: int, threads: int) -> Candidate:
    """fastsoftmax.softmax (`threads` threads) then np.argpartition (one thread)."""

    def bind(xs: list[np.ndarray], ys: list[np.ndarray]) -> Runner:
        return lambda i: softmax_argpartition(xs[i], ys[i], k, threads)

    return Candidate("softmax + argpartition", "peer", bind, np.__version__, k=k)


def topk_torch_candidate(k: int, threads: int) -> Candidate:
    """torch.softmax into y, then torch.topk, on the CPU with `threads` threads."""
    import torch

    torch.set_num_threads(threads)

    def bind(xs: list[np.ndarray], ys: list[np.ndarray]) -> Runner:
        txs = [torch.from_numpy(x) for x in xs]
        tys = [torch.from_numpy(y) for y in ys]
        return lambda i: torch.topk(torch.softmax(txs[i], -1, out=tys[i]), k)

    return Candidate("torch softmax + topk", "peer", bind, torch.__version__, k=k)


TOPK_PEER_FACTORIES: dict[str, Callable[[int, int], Candidate]] = {
    "softmax + argpartition": topk_argpartition_candidate,
    "torch softmax + topk": topk_torch_candidate,
}


def make_topk_candidates(args: argparse.Namespace) -> tuple[list[Candidate], dict[str, str]]:
    """The --topk candidates, each K in turn, and {name: why} for those skipped."""
    candidates = []
    skipped = {}
    for k in args.topk:
        candidates.append(topk_fused_candidate(k, args.threads))
        for name, factory in TOPK_PEER_FACTORIES.items():
            try:
                candidates.append(factory(k, args.threads))
            except ImportError:
                skipped[name] = "not installed"
    return candidates, skipped


# ---- timing -----------------------------------------------------------------------------------


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
    size: int, args: argparse.Namespace, candidates: list[Candidate], pairs: int, progress: Progress
) -> list[Measurement]:
    """Time every candidate on rows x size inputs: calibrate, then round-robin repeats."""
    dtype = np.dtype(args.dtype)
    xs, ys = make_buffers(pairs, (args.rows, size), dtype, args.dist, np.random.default_rng(size))
    runners = [candidate.bind(xs, ys) for candidate in candidates]
    rotation = Rotation(pairs)
    label = f"size {format_size(size)}"
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


def summarize(measurements: list[Measurement]) -> None:
    """Fill in the ratios to the bound and the speedups over the best peer (of one size)."""
    bound = [m.median for m in measurements if m.candidate.kind == "bound"]
    peers = [m.median for m in measurements if m.candidate.kind == "peer"]
    for m in measurements:
        if bound:
            m.ratio_to_bound = m.median / bound[0]
        if peers and m.candidate.kind == "fastsoftmax":
            m.speedup_over_best_peer = min(peers) / m.median


def summarize_topk(measurements: list[Measurement]) -> None:
    """Fill in each --topk candidate's ratio to softmax_topk at the same k (of one size)."""
    fused = {m.candidate.k: m.median for m in measurements if m.candidate.kind == "fastsoftmax"}
    for m in measurements:
        m.ratio_to_fused = m.median / fused[m.candidate.k]


# ---- reports ----------------------------------------------------------------------------------


def format_size(size: int) -> str:
    """1000 -> "1e3", 30000000 -> "3e7"; other sizes as plain integers."""
    exponent = len(str(size)) - 1
    mantissa, rest = divmod(size, 10**exponent)
    return f"{mantissa}e{exponent}" if rest == 0 and exponent > 0 else str(size)


def function_name(args: argparse.Namespace) -> str:
    """The fastsoftmax function that the run times."""
    if args.topk:
        return "softmax_topk"
    return "log_softmax" if args.log else "softmax"


def bytes_per_element(args: argparse.Namespace) -> int:
    """Bytes counted per element for GB/s, whatever the candidate: the least traffic of the function
    timed, two reads and one write for softmax (two_pass and online), one read for softmax_topk."""
    passes = TOPK_TRAFFIC_PASSES if args.topk else TRAFFIC_PASSES
    return passes * np.dtype(args.dtype).itemsize


def header(args: argparse.Namespace, machine: dict[str, Any], skipped: dict[str, str]) -> str:
    """What is measured, on what, and how to read the tables."""
    function = function_name(args)
    dist = "N(0, 4) (std 2)" if args.dist == "normal" else f"uniform [-{UNIFORM_HALF_WIDTH:g}, {UNIFORM_HALF_WIDTH:g}]"
    if args.topk:
        function += f" (k {','.join(str(k) for k in args.topk)})"
        threads = f"threads: {args.threads} (--threads) for fastsoftmax and torch; np.argpartition uses one"
        legend = (
            "results: softmax_topk and torch sorted, argpartition not; "
            "x softmax_topk: time / softmax_topk time (> 1: the fused call is that many times faster)"
        )
    else:
        threads = f"threads: {args.threads} (--threads) for fastsoftmax, torch and onnxruntime; NumPy and SciPy use one"
        legend = (
            f"GB/s: {bytes_per_element(args)} bytes per element for every candidate ({args.dtype} read 2x + "
            "written 1x, the traffic of two_pass and online); x bound: time / bound time; "
            "vs best peer: best peer time / time (> 1: fastsoftmax faster)"
        )
    lines = [
        (
            f"fastsoftmax {fastsoftmax.__version__} benchmark: {function}, {args.dtype}, "
            f"{args.rows} row(s) x size per call, input {dist}"
        ),
        (
            f"CPU: {machine['cpu_model']} ({machine['logical_cpus']} logical CPUs), last-level cache "
            f"{machine['llc_bytes'] >> 20} MiB, ISAs: {', '.join(machine['available_isas'])}"
        ),
        threads,
        (
            f"each value: median of {args.repeats} repeats of a sample of calls lasting >= "
            f"{args.min_sample_seconds * 1e3:g} ms; candidates interleaved; inputs and outputs rotated over "
            f"> {ROTATION_LLC_MULTIPLE}x the last-level cache"
        ),
        legend,
    ]
    lines += [f"skipped: {name} ({why})" for name, why in skipped.items()]
    return "\n".join(lines)


def size_title(record: dict[str, Any]) -> str:
    """The line above the table of one size, from any of its measurement records."""
    return (
        f"\nsize {format_size(record['size'])} ({record['rows']} x {record['size']} elements, "
        f"{record['buffer_pairs']} buffer pairs)"
    )


def size_table(records: list[dict[str, Any]]) -> str:
    """The table of one size, from its measurement records: one line per candidate."""
    name_width = max(len(record["candidate"]) for record in records)
    lines = [
        size_title(records[0]),
        f"  {'candidate':{name_width}}  {'ns/elem':>9}  {'GB/s':>7}  {'x bound':>7}  {'vs best peer':>12}",
    ]
    for record in records:
        ratio = record["ratio_to_bound"]
        speedup = record["speedup_over_best_peer"]
        lines.append(
            f"  {record['candidate']:{name_width}}  {record['ns_per_element']:9.3f}  {record['gb_per_s']:7.2f}  "
            + (f"{ratio:7.2f}" if ratio is not None else f"{'-':>7}")
            + (f"  {f'x{speedup:.2f}':>12}" if speedup is not None else "")
        )
    return "\n".join(lines)


def topk_table(records: list[dict[str, Any]]) -> str:
    """The --topk table of one size, from its measurement records: one line per k and candidate."""
    name_width = max(len(record["candidate"]) for record in records)
    k_width = max(len(str(record["k"])) for record in records)
    lines = [
        size_title(records[0]),
        f"  {'k':>{k_width}}  {'candidate':{name_width}}  {'ms/call':>9}  {'x softmax_topk':>14}",
    ]
    for record in records:
        lines.append(
            f"  {record['k']:{k_width}}  {record['candidate']:{name_width}}  {record['median_s'] * 1e3:9.3f}  "
            f"{record['ratio_to_fused']:14.2f}"
        )
    return "\n".join(lines)


def measurement_record(m: Measurement, rows: int, pairs: int, element_bytes: int) -> dict[str, Any]:
    """One entry of the JSON file's "measurements"."""
    elements = rows * m.size
    return {
        "size": m.size,
        "rows": rows,
        "elements": elements,
        "candidate": m.candidate.name,
        "kind": m.candidate.kind,
        "algorithm": m.candidate.algorithm,
        "isa": m.candidate.isa,
        "k": m.candidate.k,
        "buffer_pairs": pairs,
        "calls_per_sample": m.calls_per_sample,
        "times_s": m.times,
        "median_s": m.median,
        "ns_per_element": m.median * 1e9 / elements,
        "gb_per_s": element_bytes * elements / m.median / 1e9,
        "ratio_to_bound": m.ratio_to_bound,
        "speedup_over_best_peer": m.speedup_over_best_peer,
        "ratio_to_fused": m.ratio_to_fused,
    }


def plot(path: str, title: str, element_bytes: int, records: list[dict[str, Any]]) -> None:
    """Effective GB/s against row length (log x axis), one line per candidate."""
    import matplotlib

    matplotlib.use("Agg")  # files only: never a window
    import matplotlib.pyplot as plt

    algorithms = list(fastsoftmax.ALGORITHMS)
    colors = plt.get_cmap("tab10").colors
    fig, ax = plt.subplots(figsize=(11, 6.5))
    names = list(dict.fromkeys(record["candidate"] for record in records))
    for name in names:
        points = [record for record in records if record["candidate"] == name]
        kind = points[0]["kind"]
        if kind == "fastsoftmax":
            style = {
                "color": colors[algorithms.index(points[0]["algorithm"])],
                "linestyle": ISA_LINESTYLES[points[0]["isa"]],
                "marker": ".",
            }
        elif kind == "peer":
            style = {
                "color": colors[len(algorithms) + list(PEER_FACTORIES).index(name)],
                "linestyle": "-.",
                "marker": "s",
            }
        else:
            style = {"color": "black", "linewidth": 2.5, "marker": "o"}
        ax.plot([p["size"] for p in points], [p["gb_per_s"] for p in points], label=name, **style)
    ax.set_xscale("log")
    ax.set_xlabel("elements per row")
    ax.set_ylabel(f"effective GB/s ({element_bytes} bytes per element / median time)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.savefig(path, dpi=PLOT_DPI, bbox_inches="tight")
    plt.close(fig)


# ---- command line -----------------------------------------------------------------------------


def parse_sizes(text: str) -> list[int]:
    """ "1e3,3000,1e6" -> [1000, 3000, 1000000]."""
    sizes = []
    for item in text.split(","):
        try:
            value = float(item)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{item!r} is not a number (write sizes as 1000 or 1e3)") from None
        if not value.is_integer() or value < 1:
            raise argparse.ArgumentTypeError(f"{item!r} is not a positive whole number")
        sizes.append(int(value))
    return sizes


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def parse_topk(text: str) -> list[int]:
    """ "1,5,50" -> [1, 5, 50] (repeats dropped)."""
    return list(dict.fromkeys(positive_int(item) for item in text.split(",")))


def parse_algorithms(text: str) -> list[str]:
    """A comma list of names from fastsoftmax.ALGORITHMS (repeats dropped)."""
    names = list(dict.fromkeys(text.split(",")))
    for name in names:
        if name not in fastsoftmax.ALGORITHMS:
            raise argparse.ArgumentTypeError(
                f"unknown algorithm {name!r}; choose from {', '.join(fastsoftmax.ALGORITHMS)}"
            )
    return names


def parse_isas(text: str) -> list[str]:
    """A comma list of ISAs this CPU has (fastsoftmax.available_isas()), repeats dropped."""
    names = list(dict.fromkeys(text.split(",")))
    available = fastsoftmax.available_isas()
    for name in names:
        if name not in fastsoftmax.ISAS[1:]:
            raise argparse.ArgumentTypeError(f"unknown isa {name!r}; choose from {', '.join(available)}")
        if name not in available:
            raise argparse.ArgumentTypeError(f"isa {name!r} is not available here; choose from {', '.join(available)}")
    return names


EPILOG = """\
--threads sets the threads of fastsoftmax (num_threads=) and of the peers that have them
(torch.set_num_threads, onnxruntime intra_op_num_threads; NumPy and SciPy use one).

Input: N(0, 4) values (mean 0, standard deviation 2), or uniform on [-1000, 1000] with --dist uniform.
Timing: inputs and outputs rotate over more than 3x the last-level cache, so each call starts cold;
candidates are interleaved round-robin within each repeat; the table shows medians, --json every
sample. GB/s counts 3 x itemsize bytes per element (read twice, write once) for every candidate.
--quick takes well under a minute, the default sweep a few times longer (float64, whose kernels
are far slower, much longer: narrow it with --sizes or --isa).

--topk K[,K...] times, for each K, fastsoftmax.softmax_topk(x, K) (fused: one pass, the softmax
never written) against fastsoftmax.softmax(x, out=y) followed by np.argpartition(y, -K)[:, -K:]
and a np.take_along_axis gather (values and indices, not sorted), and against
torch.topk(torch.softmax(x, -1, out=y), K), on 64 rows x 128256 (an LLM vocabulary) unless
--rows and --sizes say otherwise. The table gives ms per call and x softmax_topk, each
candidate's time over the fused call's; --quick keeps the shape; the GB/s of --json count
1 x itemsize bytes per element (x read once).
"""


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the benchmark's options to `parser` (that of fastsoftmax-bench, or the bench subcommand)."""
    parser.description = (
        "Time every fastsoftmax algorithm and ISA against NumPy, SciPy, PyTorch and ONNX Runtime; "
        "with --topk, the fused softmax_topk against a softmax followed by a top-k."
    )
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sizes = ",".join(format_size(size) for size in DEFAULT_SIZES)
    quick = ",".join(format_size(size) for size in QUICK_SIZES)
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a run of under a minute: sizes {quick} (--topk: its shape), {QUICK_REPEATS} repeats, shorter samples",
    )
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        help=f"row lengths, comma-separated (default {sizes}; {TOPK_SIZE} with --topk)",
    )
    parser.add_argument(
        "--rows", type=positive_int, help=f"rows per call: shape rows x size (default 1; {TOPK_ROWS} with --topk)"
    )
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="default float32")
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=1,
        help="threads for fastsoftmax, torch and onnxruntime (default 1)",
    )
    parser.add_argument(
        "--algorithms",
        type=parse_algorithms,
        help=f"comma list (default {','.join(fastsoftmax.ALGORITHMS[1:])}); not with --topk",
    )
    parser.add_argument(
        "--isa",
        type=parse_isas,
        help=f"comma list (default: all available here, {','.join(fastsoftmax.available_isas())}); not with --topk",
    )
    parser.add_argument(
        "--repeats",
        type=positive_int,
        help=f"samples per candidate and size (default {DEFAULT_REPEATS}, {QUICK_REPEATS} with --quick)",
    )
    parser.add_argument(
        "--dist",
        choices=("normal", "uniform"),
        default="normal",
        help="input values: normal N(0, 4) (default) or uniform [-1000, 1000]",
    )
    parser.add_argument("--log", action="store_true", help="time log_softmax instead of softmax")
    parser.add_argument(
        "--topk",
        type=parse_topk,
        metavar="K[,K...]",
        help="time fastsoftmax.softmax_topk against softmax + a top-k for each K, comma-separated (see below)",
    )
    parser.add_argument("--json", metavar="PATH", help="write every sample and the machine description here")
    parser.add_argument(
        "--plot", metavar="PATH.png", help="draw throughput against size here (needs matplotlib; not with --topk)"
    )


def check_arguments(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Errors that argparse cannot see alone; each exits with status 2 and the usage."""
    if args.topk:
        options = {"--log": args.log, "--algorithms": args.algorithms, "--isa": args.isa, "--plot": args.plot}
        given = [option for option, value in options.items() if value]
        if given:
            parser.error(
                f"--topk does not take {given[0]} (it times softmax_topk and softmax on isa='auto' and draws no plot)"
            )
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        parser.error("--plot needs matplotlib: pip install 'fastsoftmax[bench]'")
    for option, path in (("--json", args.json), ("--plot", args.plot)):
        if path and not Path(path).resolve().parent.is_dir():
            parser.error(f"{option}: folder {Path(path).resolve().parent} does not exist")


def describe_machine(caches: list[dict[str, Any]], llc_bytes: int, candidates: list[Candidate]) -> dict[str, Any]:
    """The machine and software versions, for the header and the JSON file."""
    return {
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "cpu_features": fastsoftmax.cpu_features(),
        "available_isas": fastsoftmax.available_isas(),
        "caches": caches,
        "llc_bytes": llc_bytes,
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "fastsoftmax": fastsoftmax.__version__,
            "peers": {c.name: c.version for c in candidates if c.kind == "peer"},
        },
    }


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run the benchmark that `args` (parsed by a parser given configure_parser) describes."""
    check_arguments(args, parser)
    if args.threads > 1 and "OMP_WAIT_POLICY" not in os.environ:
        # fastsoftmax and PyTorch each bring an OpenMP runtime whose idle threads spin for a
        # while after every call (the default active wait): interleaved, each would time the
        # other's spinning. The policy is read when a runtime loads, so the run starts over.
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
    if args.topk:
        args.rows = args.rows or TOPK_ROWS
        args.sizes = args.sizes or [TOPK_SIZE]
    else:
        args.rows = args.rows or 1
        args.sizes = args.sizes or list(QUICK_SIZES if args.quick else DEFAULT_SIZES)
        args.algorithms = args.algorithms or list(fastsoftmax.ALGORITHMS[1:])
        args.isa = args.isa or fastsoftmax.available_isas()
    args.repeats = args.repeats or (QUICK_REPEATS if args.quick else DEFAULT_REPEATS)
    args.min_sample_seconds = QUICK_MIN_SAMPLE_SECONDS if args.quick else MIN_SAMPLE_SECONDS
    dtype = np.dtype(args.dtype)
    element_bytes = bytes_per_element(args)
    if args.topk and max(args.topk) > min(args.sizes):
        parser.error(f"--topk {max(args.topk)} is more than the row length {min(args.sizes)}")

    caches = cpu_caches()
    llc_bytes = last_level_cache_bytes(caches)
    memory_bytes = available_memory_bytes()
    pairs = {size: buffer_pairs(args.rows * size, dtype.itemsize, llc_bytes, memory_bytes) for size in args.sizes}
    too_big = [size for size, count in pairs.items() if count == 0]
    if too_big:
        parser.error(
            f"size {format_size(too_big[0])} x {args.rows} rows of {args.dtype}: an input and an "
            f"output need more than {MEMORY_FRACTION:.0%} of the available memory "
            f"({memory_bytes / (1 << 30):.1f} GiB)"
        )

    started = time.monotonic()
    candidates, skipped = make_topk_candidates(args) if args.topk else make_candidates(args)
    machine = describe_machine(caches, llc_bytes, candidates)
    progress = Progress(len(args.sizes) * (args.repeats + 1) * len(candidates))
    progress.write(header(args, machine, skipped))
    records = []
    try:
        for size in args.sizes:
            measurements = measure_size(size, args, candidates, pairs[size], progress)
            if args.topk:
                summarize_topk(measurements)
            else:
                summarize(measurements)
            size_records = [measurement_record(m, args.rows, pairs[size], element_bytes) for m in measurements]
            progress.write(topk_table(size_records) if args.topk else size_table(size_records))
            records += size_records
    finally:
        progress.close()

    function = function_name(args)
    if args.json:
        settings = {
            "function": function,
            "topk": args.topk,
            "dtype": args.dtype,
            "rows": args.rows,
            "sizes": args.sizes,
            "repeats": args.repeats,
            "min_sample_seconds": args.min_sample_seconds,
            "threads": args.threads,
            "fastsoftmax_threads": args.threads,
            "dist": args.dist,
            "bytes_per_element": element_bytes,
            "rotation_llc_multiple": ROTATION_LLC_MULTIPLE,
        }
        document = {"settings": settings, "machine": machine, "skipped": skipped, "measurements": records}
        Path(args.json).write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    if args.plot:
        title = (
            f"fastsoftmax {function}, {args.dtype}, {args.rows} row(s); {machine['cpu_model']}; "
            f"peers {args.threads} thread(s)"
        )
        plot(args.plot, title, element_bytes, records)
    print(f"\nfinished in {time.monotonic() - started:.1f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    """The ``fastsoftmax-bench`` console script."""
    parser = argparse.ArgumentParser(prog="fastsoftmax-bench")
    configure_parser(parser)
    return run(parser.parse_args(argv), parser)


if __name__ == "__main__":
    sys.exit(main())
