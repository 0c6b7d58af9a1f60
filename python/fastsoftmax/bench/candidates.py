"""What a benchmark times: fastsoftmax's algorithms and implementations, its peers (NumPy,
SciPy, PyTorch, ONNX Runtime, each only where importable), the bandwidth bound, and for
``--topk`` the fused call against a softmax followed by a selection."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import fastsoftmax
from fastsoftmax import _core

BOUND = "bound (read 2x, write 1x)"


ONNX_OPSET = 13


ONNX_IR_VERSION = 9
"""Written into the model because onnx stamps its newest IR version, which an older onnxruntime rejects."""


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
