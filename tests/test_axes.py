"""Softmax along any axis and any layout, with and without threads: a non-last axis of C arrays
(2-D, 3-D, every axis of 4-D), negative and step strides, transposes, Fortran order, out= a
strided view and in place, for every algorithm and ISA, float32 and float64, softmax and
log_softmax, num_threads 1 and 2. Every result is checked against the extended-precision
reference along that axis (computed once per input and reused).

The big float32 inputs are large enough for the calls with num_threads=2 to use both threads (in
float64 only the 2-D one with special values is: float64 runs the much slower long-double
kernels); the small inputs cover every axis of 3-D and 4-D arrays, negative axes and the
remaining layouts cheaply. test_threads.py covers out= views and in place along the last axis.
"""

from __future__ import annotations

import functools

import fastsoftmax
import numpy as np
import pytest
from reference import assert_matches_reference, reference

pytestmark = pytest.mark.usefixtures("fail_instead_of_hanging")

FUNCS = {"softmax": fastsoftmax.softmax, "log_softmax": fastsoftmax.log_softmax}
THREAD_COUNTS = (1, 2)
SENTINEL = -7.0


def sample(shape, dtype, seed=0, scale=10.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, scale, shape).astype(dtype)


def size(n: int, dtype) -> int:
    """A dimension of n for float32, of n // 32 (at least 3) for float64, which runs the much
    slower long-double kernels."""
    return n if np.dtype(dtype) == np.float32 else max(n // 32, 3)


def c2d_with_specials(dtype) -> np.ndarray:
    """(1024, 157) C-contiguous (float64: (424, 157)); its columns (the rows along axis 0) hold
    special values in various places, some in the last, partial block of columns (157 = 2 * 64 +
    29 = 4 * 32 + 29: the AVX-512 and AVX2 column kernels take 64 and 32 columns at a time)."""
    n = 1024 if np.dtype(dtype) == np.float32 else 424
    x = sample((n, 157), dtype, seed=1)
    x[5, 3] = np.nan  # NaN near the start of a column
    x[n - 1, 15] = np.nan  # NaN at the very end of a column
    x[100, 7] = x[n - 100, 7] = np.inf  # two +inf: 1/2 each
    x[n // 2, 70] = np.inf  # one +inf in the middle (second block)
    x[:, 9] = -np.inf  # only -inf but one finite value near the end
    x[n - 10, 9] = 2.0
    x[:, 11] = -np.inf  # only -inf: NaN
    x[17, 13] = x[n - 3, 13] = -np.inf  # -inf entries: exactly 0
    x[0, 20] = 1e30  # huge, beyond the kernels' fast range
    x[n - 1, 156] = np.nan  # in the last column
    x[:, 150] = -np.inf  # only -inf but one, in the partial block
    x[n // 3, 150] = -3.0
    x[n - 2, 140] = np.inf  # +inf near the end of a column of the partial block
    x[:, 133] = -np.inf  # only -inf, in the partial block
    return x


def identity(a):
    return a


# name -> (base array for a dtype, view of the base that is the input, axes, mode)
# mode: "new" (a new result), "out-view" (out= a strided view), "in-place" (out=x).
# The big float32 cases are sized so that each C++ call (one per index of the outer axes that do
# not merge into rows) gets more than 512 KiB and, along a strided axis whose neighbouring
# softmaxes lie next to each other, at least 2 blocks of columns: enough for 2 threads.
CASES = {
    # C-contiguous, non-last axes
    "c2d-1024x157": (c2d_with_specials, identity, (0,), "new"),
    "c3d-2x780x170": (lambda d: sample((2, size(780, d), 170), d, seed=2), identity, (1,), "new"),
    # (each index of the first two axes is one call; small-c4d below covers every axis)
    "c4d-1x2x300x450": (lambda d: sample((1, 2, 300, size(450, d)), d, seed=3), identity, (2,), "new"),
    # negative strides, steps, transposes / Fortran order
    "reversed-rows": (lambda d: sample((size(900, d), 150), d, seed=4), lambda a: a[::-1], (0,), "new"),
    "step2-columns": (lambda d: sample((size(135, d), 2000), d, seed=5), lambda a: a[:, ::2], (-1,), "new"),
    "negative-steps": (lambda d: sample((size(900, d), 900), d, seed=6), lambda a: a[::-2, ::-3], (0,), "new"),
    "fortran-2d": (lambda d: np.asfortranarray(sample((size(1000, d), 150), d, seed=8)), identity, (1,), "new"),
    # out= a strided view, and in place, along a non-last axis
    "out-view": (lambda d: sample((size(540, d), 250), d, seed=9), identity, (0,), "out-view"),
    "in-place": (lambda d: sample((size(540, d), 250), d, seed=10), identity, (0,), "in-place"),
    # small: every axis of 3-D and 4-D (negative ones too), more views, in place on a strided view
    "small-c3d": (lambda d: sample((5, 6, 37), d, seed=11), identity, (0, 1, 2, -1, -2, -3), "new"),
    "small-c4d": (lambda d: sample((3, 4, 5, 33), d, seed=12), identity, (0, 1, 2, 3, -1, -2, -3, -4), "new"),
    "small-views": (lambda d: sample((40, 101), d, seed=13), lambda a: a[::3, 1::2], (0, -1), "new"),
    "small-transposed": (lambda d: sample((30, 70), d, seed=7), lambda a: a.T, (0, -1), "new"),
    "small-reversed": (lambda d: sample((40, 101), d, seed=14), lambda a: a[::-1, ::-1], (0, -1), "new"),
    "small-fortran-2d": (lambda d: np.asfortranarray(sample((33, 70), d, seed=19)), identity, (0, 1, -1), "new"),
    "small-fortran-3d": (lambda d: np.asfortranarray(sample((7, 9, 33), d, seed=18)), identity, (0, 1, 2), "new"),
    "small-fortran-4d": (lambda d: np.asfortranarray(sample((3, 4, 5, 33), d, seed=15)), lambda a: a.T[:, ::-1],
                         (0, 1, -1), "new"),
    "small-in-place-strided": (lambda d: sample((30, 80), d, seed=16), lambda a: a[::2, ::-2], (0, -1), "in-place"),
    "small-out-view-3d": (lambda d: sample((6, 7, 45), d, seed=17), lambda a: a.transpose(1, 2, 0), (0, 1, 2, -1),
                          "out-view"),
}


@functools.cache
def base_array(name: str, dtype) -> np.ndarray:
    base = CASES[name][0](dtype)
    base.flags.writeable = False  # shared by many tests; in-place runs work on copies
    return base


def input_array(name: str, dtype) -> np.ndarray:
    return CASES[name][1](base_array(name, dtype))


@functools.cache
def expected(name: str, dtype, axis: int, log: bool) -> np.ndarray:
    return reference(input_array(name, dtype), axis, log)


def strided_out(shape, dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(buffer filled with SENTINEL, a view of it with negative and step strides of ``shape``,
    mask of the buffer elements outside the view)."""
    buf_shape = tuple(2 * s for s in shape[:-1]) + (3 * shape[-1],)
    buf = np.full(buf_shape, SENTINEL, dtype)
    index = tuple(slice(None, None, 2) for _ in shape[:-1]) + (slice(None, None, -3),)
    view = buf[index]
    assert view.shape == tuple(shape)
    outside = np.ones(buf_shape, bool)
    outside[index] = False
    return buf, view, outside


@pytest.mark.parametrize("name", list(CASES))
def test_axes_and_layouts(name, algorithm, isa, dtype, func_name):
    _, view, axes, mode = CASES[name]
    func, log = FUNCS[func_name], func_name == "log_softmax"
    for axis in axes:
        for threads in THREAD_COUNTS:
            x = input_array(name, dtype)
            kwargs = {"axis": axis, "algorithm": algorithm, "isa": isa, "num_threads": threads}
            context = f"{name} shape={x.shape} strides={x.strides} axis={axis} num_threads={threads}"
            if mode == "new":
                y = func(x, **kwargs)
                assert y.dtype == dtype and y.shape == x.shape
            elif mode == "out-view":
                buf, y, outside = strided_out(x.shape, dtype)
                assert func(x, out=y, **kwargs) is y
                assert np.all(buf[outside] == SENTINEL), f"{context}: elements outside out were written"
            else:  # in place, on a copy of the base (and so the same view of it)
                base = base_array(name, dtype).copy(order="K")
                y = view(base)
                outside_before = base.copy()
                assert func(y, out=y, **kwargs) is y
                y_mask = np.zeros(base.shape, bool)
                view(y_mask)[...] = True
                np.testing.assert_array_equal(base[~y_mask], outside_before[~y_mask],
                                              err_msg=f"{context}: elements outside x were written")
            assert_matches_reference(y, x, axis=axis, log=log, context=context, ref=expected(name, dtype, axis, log))
