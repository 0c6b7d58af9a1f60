"""fastsoftmax.dask on a real dask.distributed cluster of two worker processes.

Every result equals the in-memory call on the computed array (``fastsoftmax.softmax``,
``log_softmax``, ``logsumexp`` on ``x.compute()``) within 2 ULP (log_softmax and logsumexp: 2
ulp(max(|result|, 1))), with the same NaN and infinite
entries, for random chunkings (along the softmax axis too, empty chunks included), trees of merges
(``split_every=2``), chunks of only -inf, NaN or +inf, masks and temperatures. The cluster starts
once for the module (most of its time); the graph checks and the bad-input checks need none.
"""

from __future__ import annotations

import doctest
import logging
import subprocess
import sys

import fastsoftmax
import numpy as np
import pytest
from reference import LD, log_error, ulp_error

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
fsd = pytest.importorskip("fastsoftmax.dask")
from dask.core import get_dependencies

try:  # NumPy >= 1.25
    from numpy.exceptions import AxisError
except ImportError:  # pragma: no cover
    AxisError = np.AxisError

FUNCTIONS = ("softmax", "log_softmax", "logsumexp")


# ULP (log_softmax and logsumexp: ulp(max(|result|, 1))) between the Dask and in-memory results, for
# every function and dtype (float64 states carry their long double sums as sum + sum_low).
BOUND_ULP = 2.0


@pytest.fixture(scope="module")
def client():
    """A Client of a LocalCluster of 2 worker processes, 1 thread each; the default scheduler of
    every .compute() while the module runs."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=logging.ERROR) as cluster, distributed.Client(cluster) as c:
        yield c


def in_memory(name: str, x: np.ndarray, axis: int, **kwargs) -> np.ndarray:
    """The one-call result on the whole array, the expected value."""
    return getattr(fastsoftmax, name)(x, axis, **kwargs)


def assert_close(y: np.ndarray, expected: np.ndarray, name: str, context: str = "") -> None:
    """y equals expected: the same dtype, shape, NaN and infinite entries, the rest within BOUND_ULP."""
    y = np.asarray(y)
    assert (y.dtype, y.shape) == (expected.dtype, expected.shape), context
    nan = np.isnan(expected)
    assert np.array_equal(np.isnan(y), nan), f"{context}: NaN at {np.argwhere(np.isnan(y) != nan)[:5].tolist()}"
    infinite = np.isinf(expected)
    assert np.array_equal(y[infinite], expected[infinite]), f"{context}: infinite entries differ"
    finite = np.isfinite(expected)
    measure = ulp_error if name == "softmax" else log_error
    err = measure(y[finite], expected[finite].astype(LD))
    assert not (err > BOUND_ULP).any(), f"{context}: error {float(err.max()):.3g} > {BOUND_ULP} ({name})"


def dask_call(name: str, x, axis: int, **kwargs):
    return getattr(fsd, name)(x, axis, **kwargs)


def random_chunks(rng: np.random.Generator, n: int, most: int) -> tuple[int, ...]:
    """Up to ``most`` chunks covering n, at random cut points (repeated cuts: empty chunks).

    An axis of length 1 stays one chunk: dask.array.from_array (2026.8) hands the element to
    that axis's empty chunks too (``(x + 1).compute()`` of a (1, 6) array in chunks
    ((0, 1, 0), (6,)) has shape (3, 6)).
    """
    if n == 1:
        return (1,)
    cuts = np.sort(rng.integers(0, n + 1, rng.integers(0, most)))
    return tuple(int(c) for c in np.diff([0, *cuts, n]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", FUNCTIONS)
def test_random_chunkings(client, name, dtype):
    """Random shapes, axes and chunkings (along the axis too, some empty), split_every 2 or
    Dask's default; all cases computed in one go, and the result keeps x's chunks."""
    rng = np.random.default_rng([FUNCTIONS.index(name), np.dtype(dtype).itemsize])
    cases = []
    for _ in range(8):
        shape = tuple(int(n) for n in rng.integers(1, 40, rng.integers(1, 4)))
        x = (rng.standard_normal(shape) * rng.choice([1.0, 30.0])).astype(dtype)
        chunks = tuple(random_chunks(rng, n, 7) for n in shape)
        axis = int(rng.integers(-len(shape), len(shape)))
        split_every = 2 if rng.random() < 0.5 else None
        lazy = dask_call(name, da.from_array(x, chunks=chunks), axis, split_every=split_every)
        if name != "logsumexp":
            assert lazy.chunks == chunks
        cases.append((x, axis, lazy, f"shape {shape} chunks {chunks} axis {axis} split_every {split_every}"))
    results = dask.compute(*(lazy for _, _, lazy, _ in cases))
    for (x, axis, _, context), y in zip(cases, results):
        assert_close(y, in_memory(name, x, axis), name, context)


def special_rows(dtype) -> np.ndarray:
    """8 rows of 24 in chunks of 4 (columns 0-3, 4-7, ...), each chunk of one kind."""
    inf, nan = np.inf, np.nan
    x = np.random.default_rng(7).standard_normal((8, 24)).astype(dtype)
    x[0, 4:8] = -inf  # a chunk of only -inf in a finite row
    x[1, 8:12] = nan  # a chunk of only NaN
    x[2, 12:16] = inf  # a chunk of only +inf: 4 entries share the mass
    x[3, :] = -inf  # the whole row -inf: NaN
    x[4, 0:4], x[4, 20] = -inf, inf  # -inf chunk and one +inf
    x[5, :12], x[5, 12:] = np.finfo(dtype).max, -inf  # huge values, then -inf chunks
    x[6, 0:4], x[6, 16:20] = inf, nan  # +inf and NaN chunks: NaN
    x[7, 20:24] = -inf  # the last chunk -inf
    return x


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", FUNCTIONS)
def test_special_value_chunks(client, name, dtype):
    """Chunks of only -inf, NaN or +inf (the merges meet them in every order) and an empty chunk
    along the axis: the special values of the one-call result, along both axes."""
    x = special_rows(dtype)
    along_rows = da.from_array(x, chunks=((3, 5), (4, 4, 0, 4, 4, 4, 4)))
    along_columns = da.from_array(np.ascontiguousarray(x.T), chunks=((4, 4, 4, 4, 0, 4, 4), (5, 3)))
    ys = dask.compute(dask_call(name, along_rows, -1, split_every=2), dask_call(name, along_columns, 0, split_every=2),
                      dask_call(name, along_rows, -1))
    assert_close(ys[0], in_memory(name, x, -1), name, "axis -1, split_every 2")
    assert_close(ys[1], in_memory(name, x.T, 0), name, "axis 0, split_every 2")
    assert_close(ys[2], in_memory(name, x, -1), name, "axis -1")


@pytest.mark.parametrize("name", FUNCTIONS)
def test_where(client, name):
    """Masks as NumPy arrays broadcast along rows, and as Dask arrays chunked unlike x: fully
    masked rows, rows whose unmasked entries are -inf, NaN and +inf masked out."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 30)).astype(np.float32)
    x[1, ::3] = np.nan
    x[2, 5] = np.inf
    x[3, 10:] = -np.inf
    full = rng.random(x.shape) < 0.6
    full[0] = False  # fully masked
    full[1, ::3] = full[2, 5] = False  # the NaN and +inf entries taken out
    full[3, :10] = False  # only -inf entries left
    lazy_x = da.from_array(x, chunks=(4, (7, 3, 12, 8)))
    masks = [full, da.from_array(full, chunks=(3, 10)), rng.random((1, 30)) < 0.5, rng.random(30) < 0.5]
    ys = dask.compute(*(dask_call(name, lazy_x, -1, where=m, split_every=2) for m in masks))
    for mask, y in zip(masks, ys):
        assert_close(y, in_memory(name, x, -1, where=np.asarray(mask)), name, f"mask of shape {mask.shape}")


@pytest.mark.parametrize("temperature", [0.25, 3.0])
@pytest.mark.parametrize("name", FUNCTIONS)
def test_temperature(client, name, temperature):
    x = np.random.default_rng(5).standard_normal((5, 50)).astype(np.float32)
    y = dask_call(name, da.from_array(x, chunks=(2, 9)), 1, temperature=temperature, split_every=2).compute()
    assert_close(y, in_memory(name, x, 1, temperature=temperature), name, f"temperature {temperature}")


def test_logsumexp_keepdims_and_integers(client):
    """keepdims keeps the axis with length 1; integer inputs give float64, as in memory."""
    x = np.arange(24).reshape(4, 6)
    lazy = da.from_array(x, chunks=(3, 2))
    kept, probabilities = dask.compute(fsd.logsumexp(lazy, 0, keepdims=True), fsd.softmax(lazy, 0))
    assert_close(kept, fastsoftmax.logsumexp(x, 0, keepdims=True), "logsumexp")
    assert_close(probabilities, fastsoftmax.softmax(x, 0), "softmax")


def test_input_read_twice_and_never_rechunked():
    """In the graph, every chunk of x feeds two tasks (softmax, log_softmax: a state task and a
    pass-2 task) or one (logsumexp), and nothing is rechunked."""
    x = da.from_array(np.zeros((6, 40), np.float32), chunks=(3, (10, 5, 15, 10)))
    for name, readers in (("softmax", 2), ("log_softmax", 2), ("logsumexp", 1)):
        for split_every in (2, None):
            y = dask_call(name, x, -1, split_every=split_every)
            graph = dict(y.__dask_graph__())
            dependents = {key: 0 for key in graph if isinstance(key, tuple) and key[0] == x.name}
            for key in graph:
                for dependency in get_dependencies(graph, key):
                    if dependency in dependents:
                        dependents[dependency] += 1
            assert len(dependents) == 8
            assert set(dependents.values()) == {readers}, (name, dependents)
            assert not any("rechunk" in str(layer) for layer in y.__dask_graph__().layers), name


@pytest.mark.parametrize(
    "call, error",
    [
        (lambda x: fsd.softmax(np.zeros((2, 3))), TypeError),  # not a Dask array
        (lambda x: fsd.log_softmax(x, axis=None), TypeError),
        (lambda x: fsd.logsumexp(x, axis=(0, 1)), TypeError),
        (lambda x: fsd.softmax(x, axis=2), AxisError),
        (lambda x: fsd.softmax(x, where=np.ones((2, 3))), TypeError),  # not boolean
        (lambda x: fsd.softmax(x, where=np.ones(2, bool)), ValueError),  # does not broadcast
        (lambda x: fsd.logsumexp(x, where=da.ones((3, 3), dtype=bool)), ValueError),
        (lambda x: fsd.softmax(x, temperature=0.0), ValueError),
        (lambda x: fsd.softmax(x.astype(np.complex64)), TypeError),
    ],
)
def test_bad_input_raises_at_the_call(call, error):
    """Bad arguments raise when the function is called, not later on a worker."""
    with pytest.raises(error):
        call(da.zeros((2, 3), chunks=1, dtype=np.float32))


def test_docstring_examples(client):
    """The module's examples run as doctests, on the cluster."""
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(fsd, "fastsoftmax.dask", globs={"np": np, "da": da, "fastsoftmax": fastsoftmax})
             if t.examples]
    assert len(tests) >= 4
    report: list[str] = []
    for test in tests:
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)


def test_import_fastsoftmax_does_not_import_dask():
    code = "import sys, fastsoftmax; assert not [m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')]"
    subprocess.run([sys.executable, "-c", code], check=True)
