"""The kernel catalogue (``fastsoftmax.kernels()``), iterated rather than listed by hand.

For every kernel compiled into this build whose target this CPU runs: a call built from the
entry's fields (dtype, operation, algorithm, target, layout) is planned onto exactly that kernel
(``explain``), and its results hold the accuracy bounds against the extended-precision reference.
Kernels of targets this CPU lacks skip.
"""

from __future__ import annotations

import re

import fastsoftmax
import numpy as np
import pytest
from reference import LD, assert_matches_reference, reference
from test_half import ulp16

try:
    import ml_dtypes
except ImportError:  # pragma: no cover - ml_dtypes is in the [test] extra
    ml_dtypes = None

# The CPU kernels (the CUDA backend's, target "cuda", are tested in test_cuda_host.py).
CATALOGUE = [k for k in fastsoftmax.kernels() if k["target"] != "cuda"]
CUDA_CATALOGUE = [k for k in fastsoftmax.kernels() if k["target"] == "cuda"]
OPERATIONS = ("softmax|log_softmax|softmax_topk|topk_softmax|logsumexp|softmax_state|softmax_from_state|"
              "log_softmax_from_state|sample")
NAME = re.compile(rf"^(f32|f64|f16|bf16)-({OPERATIONS})-([a-z_]+)-([a-z0-9_]+)-([a-z0-9]+)-"
                  r"(u\d+|c\d+)(-split)?$")
# CUDA tiles: warp-c<elements per lane>, block, split, radix.
CUDA_NAME = re.compile(r"^(f32|f16|bf16)-(softmax|log_softmax|softmax_topk)-([a-z_]+)-cuda-([a-z0-9]+)-"
                       r"(warp-c\d+|block|split|radix|radix-split)$")
ROW_LENGTH = 131  # two blocks of 64 and a tail, longer than every unrolled block
COLUMN_LENGTH = 37
COLUMNS = 70  # a full block of 64 (AVX-512) or two of 32 (AVX2) and a partial one
SPLIT_LENGTH = (1 << 17) + 5  # split across 2 threads: 64K elements per slice and more
SPLIT_THREADS = 2
TOPK_K = 5
# Batches of rows up to 256 with k up to 8 run softmax_topk on the column kernels (short rows):
# the row kernels are reached with a larger k.
TOPK_ROWS_K = 9
HALF_ULP = 1.5  # 16-bit outputs: the float32 result rounded once; the reloading variant twice


def dtype_of(name: str) -> np.dtype:
    if name == "bfloat16":
        if ml_dtypes is None:
            pytest.skip("bfloat16 needs ml_dtypes")
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def call_for(kernel: dict[str, str]) -> tuple[np.ndarray, int, dict]:
    """An input, axis and keyword arguments that the planner sends to ``kernel``."""
    rng = np.random.default_rng(sum(map(ord, kernel["name"])))
    dtype = dtype_of(kernel["dtype"])
    kwargs: dict = {"isa": kernel["target"], "function": kernel["operation"]}
    if kernel["operation"] in ("softmax_topk", "topk_softmax"):
        kwargs["k"] = TOPK_K if kernel["algorithm"] != "checked" else 1
        if kernel["layout"] == "rows" and kernel["algorithm"] != "checked":
            kwargs["k"] = TOPK_ROWS_K
    elif kernel["operation"] in STATE_OPERATIONS + ("sample",):
        pass  # their algorithm is the target's reduction (two-pass's first pass; online's on scalar)
    elif kernel["algorithm"] != "checked":
        kwargs["algorithm"] = kernel["algorithm"]
    if kernel["algorithm"] == "checked":
        return rng.normal(0, 4, (3, 1)).astype(dtype), -1, kwargs
    if kernel["layout"] == "columns" and kernel["operation"] in ("softmax_topk", "topk_softmax"):  # short rows
        return rng.normal(0, 4, (COLUMNS, COLUMN_LENGTH)).astype(dtype), -1, kwargs
    if kernel["layout"] == "columns":
        return rng.normal(0, 4, (COLUMN_LENGTH, COLUMNS)).astype(dtype), 0, kwargs
    if kernel["layout"] == "split rows":
        kwargs["num_threads"] = SPLIT_THREADS
        return rng.normal(0, 4, (1, SPLIT_LENGTH)).astype(dtype), -1, kwargs
    return rng.normal(0, 4, (3, ROW_LENGTH)).astype(dtype), -1, kwargs


# The operations that run through normalizer states (logsumexp, the states, the second passes).
STATE_OPERATIONS = ("logsumexp", "softmax_state", "softmax_from_state", "log_softmax_from_state")


def run(x: np.ndarray, axis: int, kwargs: dict):
    kwargs = dict(kwargs)
    function = getattr(fastsoftmax, kwargs.pop("function"))
    if function is fastsoftmax.softmax_topk:
        return function(x, kwargs.pop("k"), axis, **kwargs)
    if function is fastsoftmax.topk_softmax:  # rows of router logits (tokens, experts)
        return function(x, kwargs.pop("k"), **kwargs)
    if function is fastsoftmax.sample:  # one token per row (of axis -1), with its probability
        return function(x, seed=1, return_probs=True, **kwargs)
    if function in (fastsoftmax.softmax_from_state, fastsoftmax.log_softmax_from_state):
        return function(x, fastsoftmax.softmax_state(x, axis, isa="scalar"), axis, **kwargs)
    return function(x, axis, **kwargs)


def check_half(y: np.ndarray, x: np.ndarray, axis: int, log: bool, context: str) -> None:
    """16-bit results within HALF_ULP of the 16-bit type (of max(|ref|, 1) for log_softmax)."""
    ref = reference(x.astype(np.float32), axis, log)
    scale = np.maximum(np.abs(ref), LD(1)) if log else np.abs(ref)
    err = np.abs(y.astype(np.float32).astype(LD) - ref).astype(np.float64) / ulp16(scale, y.dtype)
    assert float(np.max(err)) <= HALF_ULP, f"{context}: {float(np.max(err)):.3f} ULP of {y.dtype}"


def test_catalogue_names_follow_the_scheme():
    """One name per kernel, built from its fields, and every field a known name."""
    names = [k["name"] for k in CATALOGUE]
    assert len(names) == len(set(names))
    targets = {i["name"] for i in fastsoftmax.implementations()}
    short = {"float32": "f32", "float64": "f64", "float16": "f16", "bfloat16": "bf16"}
    for kernel in CATALOGUE:
        match = NAME.match(kernel["name"])
        assert match, kernel["name"]
        dtype, operation, algorithm, target, _exp, tile, split = match.groups()
        assert (dtype, operation, algorithm, target) == (
            short[kernel["dtype"]], kernel["operation"], kernel["algorithm"], kernel["target"])
        assert target in targets
        assert algorithm in fastsoftmax.ALGORITHMS[1:] + ("checked",)
        assert (kernel["layout"] == "columns") == tile.startswith("c")
        assert (kernel["layout"] == "split rows") == (split is not None)


def test_cuda_catalogue_names_follow_the_scheme():
    """The CUDA kernels' names come from the same name maker, with their own tiles."""
    all_names = [k["name"] for k in fastsoftmax.kernels()]
    assert len(all_names) == len(set(all_names))
    layouts = {"warp": "warp rows", "block": "block rows", "split": "split rows", "radix": "top-k rows",
               "radix-split": "split top-k rows"}
    short = {"float32": "f32", "float16": "f16", "bfloat16": "bf16"}
    for kernel in CUDA_CATALOGUE:
        match = CUDA_NAME.match(kernel["name"])
        assert match, kernel["name"]
        dtype, operation, algorithm, _exp, tile = match.groups()
        assert (dtype, operation, algorithm) == (short[kernel["dtype"]], kernel["operation"], kernel["algorithm"])
        assert kernel["layout"] == layouts[tile if tile in layouts else tile.split("-")[0]]


def test_catalogue_covers_every_target_and_dtype():
    """Every compiled target has kernels, every dtype has softmax, log_softmax and top-k kernels
    on the scalar target, and avx512_bf16 adds bfloat16 kernels only."""
    for isa in fastsoftmax.compiled_isas():
        assert any(k["target"] == isa for k in CATALOGUE), isa
    for dtype in ("float32", "float64", "float16", "bfloat16"):
        for operation in ("softmax", "log_softmax", "softmax_topk"):
            assert any(k["target"] == "scalar" and k["dtype"] == dtype and k["operation"] == operation
                       and k["algorithm"] != "checked" for k in CATALOGUE), (dtype, operation)
    assert {k["dtype"] for k in CATALOGUE if k["target"] == "avx512_bf16"} <= {"bfloat16"}


@pytest.mark.parametrize("kernel", CATALOGUE, ids=[k["name"] for k in CATALOGUE])
def test_every_kernel_is_reached_and_accurate(kernel):
    if kernel["target"] not in fastsoftmax.available_isas():
        pytest.skip(f"{kernel['target']} is not available here")
    x, axis, kwargs = call_for(kernel)
    explanation = fastsoftmax.explain(x, axis, **kwargs)
    assert explanation.ok, explanation.error
    if kernel["layout"] == "split rows" and explanation.schedule != "split rows":
        pytest.skip(f"rows are not split here ({explanation.reasons['threads']})")
    assert explanation.kernel == kernel["name"], str(explanation)

    result = run(x, axis, kwargs)
    context = kernel["name"]
    if kernel["operation"] in ("softmax_topk", "topk_softmax"):
        values, indices = result
        k = indices.shape[-1]
        # The k largest inputs, larger first, ties to the lower index.
        expected = np.argsort(-x.astype(np.float64), axis=-1, kind="stable")[:, :k]
        np.testing.assert_array_equal(indices, expected, err_msg=context)
        probabilities = np.take_along_axis(reference(x.astype(np.float64)), expected, -1).astype(np.float64)
        # Within one unit of the last place of values' type (relative), at worst.
        precision = {"float16": 2.0**-10, "bfloat16": 2.0**-7, "float32": 2.0**-23, "float64": 2.0**-52}
        values_dtype = values.dtype.name  # topk_softmax's weights are float32 for every input dtype
        np.testing.assert_allclose(values.astype(np.float64), probabilities, rtol=precision[values_dtype],
                                   err_msg=context)
        return
    if kernel["operation"] == "sample":  # each token's probability is its softmax probability
        ids, probabilities = result
        expected = np.take_along_axis(reference(x.astype(np.float64)), ids[:, None], -1)[:, 0].astype(np.float64)
        np.testing.assert_allclose(probabilities, expected, rtol=2.0**-22, err_msg=context)
        return
    if kernel["operation"] in ("logsumexp", "softmax_state"):
        lse = result if kernel["operation"] == "logsumexp" else fastsoftmax.logsumexp_from_state(result)
        expected = np.log(np.sum(np.exp(x.astype(LD)), axis=axis))
        # Within 2 ULP of max(|result|, 1) of x's type (the 16-bit types: float32's, rounded once).
        eps = np.finfo(np.float32 if x.itemsize == 2 else x.dtype).eps
        half = {"float16": 2.0**-11, "bfloat16": 2.0**-8}.get(x.dtype.name, 0.0)
        err = np.abs(np.asarray(lse, np.float64).astype(LD) - expected) / np.maximum(np.abs(expected), 1)
        assert float(np.max(err)) <= 2 * eps + half, context
        return
    log = kernel["operation"] in ("log_softmax", "log_softmax_from_state")
    if x.itemsize == 2:
        check_half(result, x, axis, log, context)
    else:
        assert_matches_reference(result, x, axis, log, context=context)
