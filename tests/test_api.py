"""The Python API: layouts and strides, out=, dtype rules, argument errors, 0-d and empty arrays,
FASTSOFTMAX_ISA, introspection, and thread safety."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import threading
import tracemalloc

import fastsoftmax
import numpy as np
import pytest
from reference import assert_float16_matches, assert_matches_reference, float16_twin_algorithm, max_error

# numpy.exceptions.AxisError from NumPy 1.25; numpy.AxisError before (the package supports NumPy >= 1.23).
AxisError = getattr(np, "exceptions", np).AxisError

FUNCS = {"softmax": fastsoftmax.softmax, "log_softmax": fastsoftmax.log_softmax}


def along(func, x, axis, **kwargs) -> np.ndarray:
    """func applied along ``axis`` via a C-contiguous copy with that axis last (the oracle for
    layouts: every layout must give bit-for-bit these values)."""
    moved = np.ascontiguousarray(np.moveaxis(x, axis, -1))
    return np.moveaxis(func(moved, **kwargs), -1, axis)


# Accuracy bounds are test_accuracy.py's subject; the tests here check layouts and arguments, so
# they compare bit-for-bit with a contiguous computation and only sanity-check against the
# reference, with this loose float32 bound (float64 keeps its usual bound).
SANITY_ULP_F32 = 8.0


def sane(y, x, axis=-1, log=False, context="") -> None:
    """y is close to the reference (special values exact; float32 within SANITY_ULP_F32)."""
    bound = SANITY_ULP_F32 if np.asarray(y).dtype == np.float32 else None
    assert_matches_reference(y, x, axis=axis, log=log, bound=bound, context=context)


def sample(shape, dtype=np.float32, seed=0, scale=10.0) -> np.ndarray:
    return (np.random.default_rng(seed).normal(0, scale, shape)).astype(dtype)


@pytest.fixture(params=list(FUNCS))
def func(request):
    return FUNCS[request.param]


def is_log(func) -> bool:
    return func is fastsoftmax.log_softmax


# ---- Layouts ----------------------------------------------------------------------------------


@pytest.mark.parametrize("axis", [0, 1, 2, -1, -2, -3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_every_axis_of_3d_array(func, isa, axis, dtype):
    """Each axis of a (5, 6, 37) array matches the reference along that axis (bit-exact vs a copy
    along the last axis; other axes may run the column kernels, which round differently)."""
    x = sample((5, 6, 37), dtype)
    y = func(x, axis=axis, isa=isa)
    assert y.shape == x.shape and y.dtype == dtype and y.flags.c_contiguous
    if axis in (-1, 2):
        np.testing.assert_array_equal(y, along(func, x, axis, isa=isa))
    assert_matches_reference(y, x, axis=axis, log=is_log(func), context=f"axis={axis}")
    sane(y, x, axis=axis, log=is_log(func), context=f"axis={axis}")


@pytest.mark.parametrize(
    "view, axis",
    [
        (lambda a: a[:, ::-1], -1),
        (lambda a: a[:, ::-1], 0),
        (lambda a: a[::-1], -1),
        (lambda a: a[::-1, ::-1], 0),
        (lambda a: a[:, ::2], -1),
        (lambda a: a[:, ::2], 0),
        (lambda a: a[::2], -1),
        (lambda a: a[::3, 1::2], 0),
        (lambda a: a[:, -2::-3], -1),
        (lambda a: a.T, -1),
        (lambda a: a.T, 0),
        (lambda a: a[:, :50], -1),
    ],
    ids=["rev-cols/ax-1", "rev-cols/ax0", "rev-rows/ax-1", "rev-both/ax0", "step2-cols/ax-1",
         "step2-cols/ax0", "step2-rows/ax-1", "step3x2/ax0", "neg-step3/ax-1", "T/ax-1", "T/ax0",
         "prefix/ax-1"],
)
def test_strided_views(func, isa, view, axis):
    """Negative strides, step slices along and across the softmax axis, transposes."""
    base = sample((40, 101))
    x = view(base)
    before = base.copy()
    y = func(x, axis=axis, isa=isa)
    np.testing.assert_array_equal(base, before)  # the input is not modified
    np.testing.assert_array_equal(y, along(func, x, axis, isa=isa))
    sane(y, x, axis=axis, log=is_log(func))


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_fortran_order(func, isa, axis):
    x = np.asfortranarray(sample((7, 9, 33)))
    y = func(x, axis=axis, isa=isa)
    np.testing.assert_array_equal(y, along(func, x, axis, isa=isa))
    sane(y, x, axis=axis, log=is_log(func))


@pytest.mark.parametrize("n", [1, 15, 16, 17, 100, 1001])
def test_view_offset_by_one_element(func, isa, n):
    """np.empty(n + 1)[1:]: data 4 bytes past the allocation's alignment."""
    buf = np.empty(n + 1, np.float32)
    x = buf[1:]
    x[...] = sample(n, seed=n)
    y = func(x, isa=isa)
    np.testing.assert_array_equal(y, func(x.copy(), isa=isa))
    out = np.empty(n + 1, np.float32)[1:]
    assert func(x, isa=isa, out=out) is out
    np.testing.assert_array_equal(out, y)


def test_misaligned_data(func, isa):
    """Data at an odd byte address (not aligned to the item size), as input and as out."""
    n = 37
    raw = bytearray(4 * n + 1)
    x = np.frombuffer(raw, dtype=np.float32, offset=1, count=n)
    assert not x.flags.aligned
    x[...] = sample(n)
    expected = func(x.copy(), isa=isa)
    np.testing.assert_array_equal(func(x, isa=isa), expected)
    out = np.frombuffer(bytearray(4 * n + 1), dtype=np.float32, offset=1, count=n)
    assert func(x, isa=isa, out=out) is out
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_in_place_every_axis(func, isa, axis):
    """out=x writes the result into x for every axis."""
    x = sample((6, 7, 45))
    original = x.copy()
    y = func(x, axis=axis, isa=isa, out=x)
    assert y is x
    assert_matches_reference(x, original, axis=axis, log=is_log(func), context=f"in place, axis={axis}")


@pytest.mark.parametrize("axis", [0, -1])
def test_in_place_on_strided_view(func, isa, axis):
    base = sample((30, 80))
    x = base[::2, ::-2]
    original_x, original_base = x.copy(), base.copy()
    assert func(x, axis=axis, isa=isa, out=x) is x
    np.testing.assert_array_equal(x, along(func, original_x, axis, isa=isa))
    untouched = np.ones(base.shape, bool)
    untouched[::2, ::-2] = False
    np.testing.assert_array_equal(base[untouched], original_base[untouched])


@pytest.mark.parametrize("axis", [0, -1])
def test_out_is_noncontiguous_view(func, isa, axis):
    """out a strided view: the result lands there, the elements around it keep their values."""
    x = sample((20, 50))
    buf = np.full((40, 150), -7.0, np.float32)
    out = buf[::2, ::3]
    assert func(x, axis=axis, isa=isa, out=out) is out
    assert_matches_reference(out, x, axis=axis, log=is_log(func), context=f"strided out, axis={axis}")
    mask = np.ones(buf.shape, bool)
    mask[::2, ::3] = False
    assert np.all(buf[mask] == -7.0)


def test_out_partially_overlapping_x(func, isa):
    """out overlapping x without being x (shifted by one element) still gets the right result."""
    buf = sample(201)
    x, out = buf[:-1], buf[1:]
    expected = func(x.copy(), isa=isa)
    assert func(x, isa=isa, out=out) is out
    np.testing.assert_array_equal(out, expected)


# ---- Zero copy --------------------------------------------------------------------------------


def traced_peak(fn) -> int:
    """Peak of memory traced by tracemalloc (NumPy reports its data buffers) while fn runs."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        start, _ = tracemalloc.get_traced_memory()
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - start


@pytest.mark.parametrize("case", ["out", "in-place", "row-subset", "column-prefix"])
def test_no_copy_of_float32_input(func, case):
    """A float32 input whose softmax axis has unit stride is read in place: no NumPy copy of x."""
    base = sample((512, 1024))
    x = {"out": base, "in-place": base, "row-subset": base[::2], "column-prefix": base[:, :700]}[case]
    out = x if case == "in-place" else np.empty(x.shape, np.float32)
    func(x, out=out)  # warm-up
    peak = traced_peak(lambda: func(x, out=out))
    assert peak < x.nbytes // 16, f"{peak} bytes allocated for a {x.nbytes}-byte input"


def test_no_copy_without_out(func):
    """Without out, only the result is allocated (no copy of x besides it)."""
    x = sample((512, 1024))
    peak = traced_peak(lambda: func(x))
    assert x.nbytes <= peak < x.nbytes * 5 // 4


def test_result_is_out_and_in_place_changes_x(func):
    x = sample((8, 100))
    original = x.copy()
    out = np.empty_like(x)
    assert func(x, out=out) is out
    np.testing.assert_array_equal(x, original)  # out given: x untouched
    y = func(x, out=x)
    assert y is x and np.shares_memory(y, x) and not np.shares_memory(y, original)
    assert not np.array_equal(x, original)
    np.testing.assert_array_equal(x, out)


def test_new_result_does_not_share_memory(func):
    x = sample((8, 100))
    y = func(x)
    assert not np.shares_memory(x, y)
    assert y.flags.c_contiguous and y.flags.writeable and y.flags.owndata


# ---- The common call ------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, axis", [((1000,), -1), ((37, 1000), -1), ((3, 5, 300), 2), ((300, 20), 0),
                                         ((1, 300, 20), 1), ((4, 16), 0), ((100, 8), -1)])
def test_common_call_matches_the_general_path(func, dtype, shape, axis):
    """Plain arrays (C-contiguous, native byte order, along the last axis or an axis with only
    length-1 axes before it) run as one Call checked in the binding; the same values in the other
    byte order take the general path: the same bits, for new results, out= and in place, with
    options given too."""
    x = sample(shape, dtype)
    swapped = x.astype(x.dtype.newbyteorder())
    general = func(swapped, axis)
    np.testing.assert_array_equal(func(x, axis), general)
    out = np.empty_like(x)
    assert func(x, axis, out=out) is out
    np.testing.assert_array_equal(out, general)
    in_place = x.copy()
    assert func(in_place, axis, out=in_place) is in_place
    np.testing.assert_array_equal(in_place, general)
    options = {"algorithm": "two_pass", "num_threads": 1, "temperature": 0.5}
    np.testing.assert_array_equal(func(x, axis, **options), func(swapped, axis, **options))


def test_common_call_refusals_raise_before_writing(func):
    """A plain array with options the library refuses: the general path's error, out untouched."""
    x = sample((8, 100))
    out = np.zeros_like(x)
    with pytest.raises(ValueError, match="temperature"):
        func(x, out=out, temperature=-1.0)
    with pytest.raises(ValueError, match="num_threads"):
        func(x, out=out, num_threads=0)
    assert not out.any()


# ---- dtypes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_dtypes_preserved(func, dtype):
    x = sample((3, 10), dtype)
    y = func(x)
    assert y.dtype == dtype
    sane(y, x, log=is_log(func))


def test_float16_computed_in_float32(func, algorithm, isa):
    """float16 input -> float16 result, equal to the float32 result rounded to float16."""
    x = sample((4, 67), np.float16, scale=3.0)
    x[1, 5], x[2, 0], x[3, :] = np.inf, -np.inf, np.nan
    y = func(x, algorithm=algorithm, isa=isa)
    assert y.dtype == np.float16
    twin = float16_twin_algorithm(algorithm, isa)
    expected = func(x.astype(np.float32), algorithm=twin, isa=isa).astype(np.float16)
    reload_rule = algorithm if func is fastsoftmax.softmax else "auto"  # log_softmax never reloads
    assert_float16_matches(y, expected, reload_rule, isa)
    out = np.empty(x.shape, np.float16)
    assert func(x, algorithm=algorithm, isa=isa, out=out) is out
    assert_float16_matches(out, expected, reload_rule, isa)
    in_place = x.copy()
    assert func(in_place, algorithm=algorithm, isa=isa, out=in_place) is in_place
    assert_float16_matches(in_place, expected, reload_rule, isa)


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint64, np.bool_])
def test_integer_and_bool_inputs_give_float64(func, dtype):
    x = np.random.default_rng(3).integers(0, 100, (3, 21)).astype(dtype)
    y = func(x)
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, func(x.astype(np.float64)))


@pytest.mark.parametrize("dtype", [">f4", ">f8", "<f4", "<f8"])
def test_non_native_byte_order(func, dtype):
    """Byte-swapped float32/float64 are computed like native ones and returned native."""
    x = sample((3, 40), np.float64).astype(dtype)
    y = func(x)
    native = np.dtype(dtype).newbyteorder("=")
    assert y.dtype == native and y.dtype.isnative
    np.testing.assert_array_equal(y, func(x.astype(native)))


@pytest.mark.parametrize(
    "x",
    [
        np.array([1 + 2j, 3j], np.complex64),
        np.array([1 + 2j, 3j], np.complex128),
        np.array([1.0, 2.0], dtype=object),
        np.array(["a", "bc"]),
        np.array([b"a", b"bc"]),
        np.array(["2020-01-01", "2021-01-01"], dtype="datetime64[D]"),
        np.array([1, 2], dtype="timedelta64[s]"),
    ],
    ids=lambda a: str(a.dtype),
)
def test_unsupported_dtypes_raise_type_error(func, x):
    """TypeError whose message names the dtype."""
    with pytest.raises(TypeError, match=re.escape(str(x.dtype))):
        func(x)


def test_lists_tuples_and_scalars(func):
    np.testing.assert_array_equal(func([1, 2, 3]), func(np.array([1.0, 2.0, 3.0])))
    np.testing.assert_array_equal(func((1.5, -2.0)), func(np.array([1.5, -2.0])))
    np.testing.assert_array_equal(func([[1, 2], [3, 3]], axis=0), func(np.array([[1.0, 2.0], [3.0, 3.0]]), axis=0))
    for scalar in (3, 2.5, True, -1e300):
        y = func(scalar)
        assert y.shape == () and y.dtype == np.float64
        assert y == (0.0 if is_log(func) else 1.0)
    with pytest.raises(TypeError):
        func(1 + 1j)


# ---- out= errors ------------------------------------------------------------------------------

SENTINEL = -12345.0


def sentinel(shape, dtype=np.float32):
    return np.full(shape, SENTINEL, dtype)


@pytest.mark.parametrize("shape", [(3,), (3, 4, 1), (4, 3), ()])
def test_out_wrong_shape(func, shape):
    x = sample((3, 4))
    out = sentinel(shape)
    with pytest.raises(ValueError, match=re.escape(str((3, 4)))):
        func(x, out=out)
    assert np.all(out == SENTINEL)


@pytest.mark.parametrize(
    "x_dtype, out_dtype, expected",
    [(np.float64, np.float32, "result is float64"), (np.int32, np.float32, "result is float64"),
     (np.float32, np.int32, "out has dtype int32"), (np.float32, np.float16, "result is float32"),
     (np.float64, np.float16, "casting='same_kind'")],
)
def test_out_unsafe_dtype_refused(func, x_dtype, out_dtype, expected):
    """out= of a narrower float (it would round the result) or a non-float dtype: TypeError, nothing written."""
    x = np.ones((2, 5), x_dtype)
    out = sentinel((2, 5), out_dtype)
    with pytest.raises(TypeError, match=re.escape(expected)):
        func(x, out=out)
    assert np.all(out == out_dtype(SENTINEL))


@pytest.mark.parametrize("x_dtype, out_dtype", [(np.float16, np.float32), (np.float16, np.float64),
                                                (np.float32, np.float64)])
def test_out_wider_dtype_computes_in_it(func, x_dtype, out_dtype):
    """A wider out= (NumPy's safe casting) is computed in out's dtype, from x's exact values."""
    x = sample((3, 40), seed=4).astype(x_dtype)
    out = sentinel((3, 40), out_dtype)
    assert func(x, out=out) is out
    assert np.array_equal(out, func(x.astype(out_dtype)))


@pytest.mark.parametrize("casting", ["same_kind", "unsafe"])
def test_out_narrower_dtype_when_asked(func, casting):
    """casting='same_kind' (or 'unsafe'): the result in x's dtype, rounded into out's."""
    x = sample((3, 40), seed=5)
    out = sentinel((3, 40), np.float32)
    assert func(x, out=out, casting=casting) is out
    assert np.array_equal(out, func(x).astype(np.float32))
    half = sentinel((3, 40), np.float16)
    func(x.astype(np.float32), out=half, casting=casting)
    assert np.array_equal(half, func(x.astype(np.float32)).astype(np.float16))


@pytest.mark.parametrize("casting", ["no", "equiv"])
def test_out_casting_no_allows_only_the_same_dtype(func, casting):
    x = sample((2, 8)).astype(np.float16)
    out = sentinel((2, 8), np.float32)
    with pytest.raises(TypeError, match=f"casting='{casting}'"):
        func(x, out=out, casting=casting)
    assert np.all(out == SENTINEL)
    same = sentinel((2, 8), np.float16)
    assert func(x, out=same, casting=casting) is same


@pytest.mark.parametrize("casting", ["", "SAFE", "kind", None, 1])
def test_bad_casting(func, casting):
    out = sentinel(5)
    with pytest.raises(ValueError, match="casting must be one of"):
        func(sample(5), out=out, casting=casting)
    assert np.all(out == SENTINEL)


@pytest.mark.parametrize("dtype, name", [(np.float64, "float64"), ("float16", "float16"), (np.dtype(np.float32), "float32"),
                                         ("double", "float64"), ("half", "float16"), ("f4", "float32"),
                                         (float, "float64"), ("float", "float64")])
def test_dtype_computes_in_and_returns_it(func, dtype, name):
    """dtype= (PyTorch's convention): x is converted to it first, the result has it."""
    x = sample((4, 33), seed=6)
    y = func(x, dtype=dtype)
    assert y.dtype == np.dtype(name)
    assert np.array_equal(y, func(x.astype(name)))
    out = sentinel((4, 33), np.float64)
    assert func(x.astype(np.float16), dtype=dtype, out=out) is out  # every float casts safely to float64
    assert np.array_equal(out, func(x.astype(np.float16).astype(name)).astype(np.float64))


def test_dtype_bfloat16():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x = sample((3, 20), seed=7)
    y = fastsoftmax.softmax(x, dtype=ml_dtypes.bfloat16)
    assert y.dtype == ml_dtypes.bfloat16
    assert np.array_equal(y.view(np.uint16), fastsoftmax.softmax(x.astype(np.float32).astype(ml_dtypes.bfloat16)).view(np.uint16))
    wide = fastsoftmax.softmax(y, dtype="float32")  # bfloat16 values widen exactly
    assert np.array_equal(wide, fastsoftmax.softmax(y.astype(np.float32)))


@pytest.mark.parametrize("dtype", ["int32", np.int64, "complex64", "float128", "bogus", 3])
def test_bad_dtype(func, dtype):
    with pytest.raises(TypeError, match="dtype must be"):
        func(sample(5), dtype=dtype)


def test_out_read_only(func):
    x = sample((2, 5))
    out = sentinel((2, 5))
    out.flags.writeable = False
    with pytest.raises(ValueError):
        func(x, out=out)
    assert np.all(out == SENTINEL)
    view = np.broadcast_to(sentinel(5), (2, 5))  # read-only by construction
    with pytest.raises(ValueError):
        func(x, out=view)


def test_out_whose_elements_share_memory(func):
    """out= that would receive several results in one element (a broadcast view, rows that
    overlap): ValueError naming out, nothing written."""
    x = sample((3, 4))
    memory = sentinel(12)
    sliding = np.lib.stride_tricks.as_strided(memory, (3, 4), (memory.itemsize, memory.itemsize))
    broadcast = np.lib.stride_tricks.as_strided(memory[:4], (3, 4), (0, memory.itemsize))
    for out in (sliding, broadcast):
        with pytest.raises(ValueError, match="out has elements that share memory"):
            func(x, out=out)
        assert np.all(memory == SENTINEL)
    with pytest.raises(ValueError, match="out has elements that share memory"):
        func(sliding, out=sliding)  # in place over itself: still several results per element
    assert np.all(memory == SENTINEL)


@pytest.mark.parametrize("out", [[0.0] * 5, (0.0,) * 5, memoryview(bytearray(20)), 3.0],
                         ids=["list", "tuple", "memoryview", "float"])
def test_out_not_ndarray(func, out):
    with pytest.raises(TypeError):
        func(sample(5), out=out)


def test_out_untouched_by_any_argument_error(func):
    """Bad axis, algorithm or isa with a valid out: the error comes before any write."""
    x = sample((2, 5))
    out = sentinel((2, 5))
    for kwargs, exc in [({"axis": 2}, AxisError), ({"axis": 1.0}, TypeError), ({"algorithm": "nope"}, ValueError),
                        ({"isa": "nope"}, ValueError)]:
        with pytest.raises(exc):
            func(x, out=out, **kwargs)
        assert np.all(out == SENTINEL), kwargs


# ---- axis, names ------------------------------------------------------------------------------


@pytest.mark.parametrize("shape, axis", [((5,), 1), ((5,), -2), ((2, 3), 2), ((2, 3), -3), ((2, 3, 4), 3),
                                         ((2, 3, 4), -4), ((), 1), ((), -2), ((0, 3), 2)])
def test_axis_out_of_range(func, shape, axis):
    with pytest.raises(AxisError):
        func(np.ones(shape, np.float32), axis=axis)


@pytest.mark.parametrize("axis", [1.0, "0", [0], True, np.float64(0), (0, 1.0)])
def test_axis_not_integer(func, axis):
    with pytest.raises(TypeError):
        func(np.ones((2, 3)), axis=axis)


@pytest.mark.parametrize("axis", [None, (0,), (2,), (0, 2), (-1, 0), (1, 2), (0, 1, 2)])
def test_axis_none_or_tuple(func, axis):
    """SciPy's convention: None normalizes over every axis, a tuple over those axes together."""
    x = sample((4, 6, 5))
    axes = (0, 1, 2) if axis is None else tuple(sorted(a % 3 for a in axis))
    y = func(x, axis=axis)
    assert y.shape == x.shape and y.flags.c_contiguous

    rest = [d for d in range(3) if d not in axes]
    flat_x = np.moveaxis(x, rest + list(axes), range(3)).reshape(int(np.prod([x.shape[d] for d in rest])), -1)
    flat_y = np.moveaxis(y, rest + list(axes), range(3)).reshape(flat_x.shape)
    assert_matches_reference(flat_y, flat_x, -1, func is fastsoftmax.log_softmax)


@pytest.mark.parametrize("axis", [None, (1, 2), (-2, -1)])
def test_adjacent_axes_read_without_a_copy(func, axis):
    """Axes adjacent in memory (the trailing ones of a C-contiguous array) are read as one: the
    call allocates its result and nothing the size of x besides; out= then allocates nothing."""
    x = sample((8, 64, 256))
    out = np.empty_like(x)
    assert traced_peak(lambda: func(x, axis=axis)) < 1.25 * x.nbytes
    assert traced_peak(lambda: func(x, axis=axis, out=out)) < 0.25 * x.nbytes


@pytest.mark.parametrize("axis", [np.int64(-1), np.int32(0), np.uint8(1)])
def test_numpy_integer_axis(func, axis):
    x = sample((4, 6))
    np.testing.assert_array_equal(func(x, axis=axis), func(x, axis=int(axis)))


@pytest.mark.parametrize("name", ["", "fast", "TWO_PASS", "two-pass", "twopass", " online"])
def test_unknown_algorithm(func, name):
    with pytest.raises(ValueError, match="algorithm"):
        func([1.0, 2.0], algorithm=name)


@pytest.mark.parametrize("name", ["", "sse2", "AVX2", "neon", "avx512f", "cuda"])
def test_unknown_isa(func, name):
    with pytest.raises(ValueError, match="isa"):
        func([1.0, 2.0], isa=name)


@pytest.mark.parametrize("name", fastsoftmax.ISAS[1:])
def test_unavailable_isa(func, name):
    """An ISA this CPU or build lacks raises ValueError saying which: not compiled into this build
    (whatever the CPU has), or compiled but not supported by this CPU (skipped for the available
    ones; CI's lowest-NumPy job builds without AVX-512 on a CPU that has it)."""
    if name in fastsoftmax.available_isas():
        pytest.skip(f"{name} is available here")
    reason = "not supported by this CPU" if name in fastsoftmax.compiled_isas() else "not compiled into this build"
    with pytest.raises(ValueError, match=f"isa '{name}' is not available here: {reason}"):
        func([1.0, 2.0], isa=name)


def test_every_algorithm_and_isa_name_accepted(func):
    x = sample((3, 20))
    for algorithm in fastsoftmax.ALGORITHMS:
        for isa in ["auto", *fastsoftmax.available_isas()]:
            sane(func(x, algorithm=algorithm, isa=isa), x, log=is_log(func))


# ---- 0-d and empty ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int32, np.bool_])
def test_zero_dimensional(func, dtype, algorithm, isa):
    """A 0-d array is a row of one element: softmax 1.0, log_softmax 0.0, 0-d result."""
    x = np.array(3, dtype)
    expected_dtype = {np.float16: np.float16, np.float32: np.float32}.get(dtype, np.float64)
    for axis in (0, -1):
        y = func(x, axis=axis, algorithm=algorithm, isa=isa)
        assert isinstance(y, np.ndarray) and y.shape == () and y.dtype == expected_dtype
        assert y == (0.0 if is_log(func) else 1.0)
    out = np.empty((), expected_dtype)
    assert func(x, out=out, algorithm=algorithm, isa=isa) is out
    assert out == (0.0 if is_log(func) else 1.0)


def test_zero_dimensional_specials(func):
    assert func(np.float32(np.inf)) == (0.0 if is_log(func) else 1.0)
    assert np.isnan(func(np.float32(np.nan)))
    assert np.isnan(func(np.float32(-np.inf)))
    assert func(np.float32(3e38)) == (0.0 if is_log(func) else 1.0)


@pytest.mark.parametrize("shape", [(0,), (3, 0), (0, 5), (2, 0, 3), (0, 0)])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int64])
def test_empty_arrays(func, shape, dtype):
    x = np.empty(shape, dtype)
    result_dtype = np.float64 if dtype == np.int64 else dtype
    for axis in range(-len(shape), len(shape)):  # over zero-length and non-zero-length axes
        y = func(x, axis=axis)
        assert y.shape == shape and y.dtype == result_dtype
        out = np.empty(shape, result_dtype)
        assert func(x, axis=axis, out=out) is out


# ---- FASTSOFTMAX_ISA (subprocesses: the variable is read once per process) -------------------


def run_python(code: str, isa_env: str | None, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "FASTSOFTMAX_ISA"}
    if isa_env is not None:
        env["FASTSOFTMAX_ISA"] = isa_env
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_env_forces_scalar():
    proc = run_python("import fastsoftmax; print(fastsoftmax.active_isa())", "scalar")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "scalar"


@pytest.mark.parametrize("value", ["bogus", "AVX2", "sse"])
def test_env_unknown_isa_raises(value):
    """An unknown FASTSOFTMAX_ISA: active_isa() and isa='auto' raise ValueError; an explicit isa works."""
    code = """
        import numpy as np, fastsoftmax
        for name, call in [("active_isa", fastsoftmax.active_isa),
                           ("softmax", lambda: fastsoftmax.softmax(np.ones(3, np.float32))),
                           ("log_softmax", lambda: fastsoftmax.log_softmax(np.ones(3)))]:
            try:
                call()
                print(name, "no error")
            except ValueError as exc:
                print(name, "ValueError", exc)
        print("explicit", fastsoftmax.softmax(np.ones(2, np.float32), isa="scalar").tolist())
    """
    proc = run_python(code, value)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("active_isa ValueError") and value in lines[0], proc.stdout
    assert lines[1].startswith("softmax ValueError") and f"FASTSOFTMAX_ISA='{value}' names no ISA" in lines[1], proc.stdout
    assert lines[2].startswith("log_softmax ValueError") and f"'{value}'" in lines[2], proc.stdout
    assert lines[3] == "explicit [0.5, 0.5]", proc.stdout


def test_env_unavailable_isa_raises():
    missing = [i for i in fastsoftmax.ISAS[1:] if i not in fastsoftmax.available_isas()]
    if not missing:
        pytest.skip("every ISA is available here")
    proc = run_python("import fastsoftmax\ntry:\n    fastsoftmax.active_isa()\nexcept ValueError:\n    print('ok')",
                      missing[0])
    assert proc.stdout.strip() == "ok", proc.stdout + proc.stderr


@pytest.mark.parametrize("value", ["auto", ""])
def test_env_auto_or_empty_is_best(value):
    proc = run_python("import fastsoftmax; print(fastsoftmax.active_isa())", value)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == fastsoftmax.available_isas()[-1]


def test_env_forced_isa_results(isa, tmp_path):
    """FASTSOFTMAX_ISA=<isa>: isa='auto' runs that ISA (same bits as isa=<isa>) within the bounds."""
    x = np.concatenate([sample((3, 1000), seed=5), sample((3, 1000), seed=6, scale=300)])
    x[2, 7] = np.inf
    np.save(tmp_path / "x.npy", x)
    code = f"""
        import numpy as np, fastsoftmax
        assert fastsoftmax.active_isa() == {isa!r}, fastsoftmax.active_isa()
        x = np.load({str(tmp_path / "x.npy")!r})
        for alg in fastsoftmax.ALGORITHMS:
            np.save({str(tmp_path)!r} + f"/softmax-{{alg}}.npy", fastsoftmax.softmax(x, algorithm=alg))
            np.save({str(tmp_path)!r} + f"/log-{{alg}}.npy", fastsoftmax.log_softmax(x, algorithm=alg))
        print("done")
    """
    proc = run_python(code, isa)
    assert proc.returncode == 0 and proc.stdout.strip() == "done", proc.stdout + proc.stderr
    for alg in fastsoftmax.ALGORITHMS:
        for log, prefix in ((False, "softmax"), (True, "log")):
            y = np.load(tmp_path / f"{prefix}-{alg}.npy")
            f = fastsoftmax.log_softmax if log else fastsoftmax.softmax
            np.testing.assert_array_equal(y, f(x, algorithm=alg, isa=isa), err_msg=f"{prefix} {alg}")
            sane(y, x, log=log, context=f"FASTSOFTMAX_ISA={isa} {prefix} {alg}")


# ---- Introspection ----------------------------------------------------------------------------


def test_isa_lists():
    available, compiled = fastsoftmax.available_isas(), fastsoftmax.compiled_isas()
    assert isinstance(available, list) and isinstance(compiled, list)
    assert "scalar" in available and "scalar" in compiled
    assert set(available) <= set(compiled) <= set(fastsoftmax.ISAS[1:])
    assert len(set(compiled)) == len(compiled)
    # best last: in the order of ISAS
    order = list(fastsoftmax.ISAS)
    assert available == sorted(available, key=order.index)


def test_active_isa_is_best_available(isa_env_unset):
    assert fastsoftmax.active_isa() in fastsoftmax.available_isas()
    assert fastsoftmax.active_isa() == fastsoftmax.available_isas()[-1]


def test_cpu_features():
    features = fastsoftmax.cpu_features()
    assert isinstance(features, dict) and features
    assert all(isinstance(k, str) and type(v) is bool for k, v in features.items())
    available = fastsoftmax.available_isas()
    if "avx2" in available:
        assert features["avx2"] and features["fma"] and features["os_saves_ymm"]
    if "avx512" in available:
        assert features["avx512f"] and features["os_saves_zmm"]


def test_names_and_version():
    assert isinstance(fastsoftmax.__version__, str)
    assert re.match(r"^\d+\.\d+", fastsoftmax.__version__)
    assert fastsoftmax.ALGORITHMS[0] == "auto" and fastsoftmax.ISAS[0] == "auto"
    assert set(fastsoftmax.ALGORITHMS) == {"auto", "two_pass", "three_pass_reload", "three_pass_recompute", "online"}
    for name in fastsoftmax.__all__:
        assert hasattr(fastsoftmax, name), name


def test_cmake_dir():
    path = fastsoftmax.cmake_dir()
    assert os.path.isfile(os.path.join(path, "fastsoftmaxConfig.cmake"))


def test_module_self_check():
    """python -m fastsoftmax describes the build and passes its self-check."""
    env = {k: v for k, v in os.environ.items() if k != "FASTSOFTMAX_ISA"}
    proc = subprocess.run([sys.executable, "-m", "fastsoftmax"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "self-check passed" in proc.stdout


# ---- Threads ----------------------------------------------------------------------------------


def test_threads_give_correct_results():
    """4 threads x 50 calls on different arrays, all algorithms and ISAs: each result is exact."""
    isas = fastsoftmax.available_isas()
    jobs = []
    for t in range(4):
        x = sample((16 + t, 2000 + 37 * t), seed=100 + t)
        kwargs = {"algorithm": fastsoftmax.ALGORITHMS[t % 5], "isa": isas[t % len(isas)]}
        jobs.append((x, kwargs, fastsoftmax.softmax(x, **kwargs), fastsoftmax.log_softmax(x, **kwargs)))
    errors: list[str] = []
    barrier = threading.Barrier(4)

    def work(t: int) -> None:
        x, kwargs, expected, expected_log = jobs[t]
        barrier.wait()
        for i in range(50):
            log = i % 2 == 1
            y = (fastsoftmax.log_softmax if log else fastsoftmax.softmax)(x, **kwargs)
            if not np.array_equal(y, expected_log if log else expected):
                errors.append(f"thread {t} call {i}")

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    for x, kwargs, expected, expected_log in jobs:
        assert max_error(expected, x) <= SANITY_ULP_F32
        assert max_error(expected_log, x, log=True) <= SANITY_ULP_F32
