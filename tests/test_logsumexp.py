"""logsumexp (issue 15, part 1): ``scipy.special.logsumexp``'s meaning for every argument, accurate
where its peers are not, on every ISA and thread count; and softmax/log_softmax over ``axis=None``
and tuples of axes (SciPy's convention).

Expected values come from ``logsumexp_reference`` (reference.py): ``log|sum(b * exp(a / T))|``
in np.longdouble over the entries that take part (``where`` True and ``b != 0``: SciPy's rule, a
zero weight removes its entry even when it is NaN or infinite), computed as ``m + log1p(S - 1)``
so that results near 0 are exact too. Bound: within 2 ULP of the correctly rounded result, or 2
ULP of max(|result|, 1) in absolute terms (``assert_log_close``, LOGSUMEXP_ULP); with weights of
both signs the sum can cancel, and the bound grows by 4 eps (of the dtype computed in) times
(kappa - 1), kappa = sum|b exp(a)| / |sum b exp(a)| (0 for weights of one sign).

Special values (exact): a NaN taking part gives NaN; a +inf taking part gives +inf (with weights:
the sign of the +inf entries' weight sum, NaN when they cancel); rows of only -inf, empty rows
and rows with nothing taking part give -inf with sign 0 (SciPy 1.17 gives sign -1 for an empty
array, a side effect of its code path; fastsoftmax takes the sign of the empty sum, 0, as for a
row of only -inf); a negative sum gives NaN without ``return_sign``.

Covered:
1. every length 1..130 and around the SIMD blocks (255..257, 1000, 4097), batches of rows with
   different distributions, float32 and float64, every ISA, num_threads 1 and 2; a long row of
   2^20 elements; batches big enough to be shared between two threads;
2. axis None, int, negative, tuples (adjacent or not), keepdims, against the reference and
   (float64) against SciPy itself;
3. b: positive, with zeros, negative (return_sign), of every broadcastable shape, a scalar;
   where=, alone and with b; temperature=;
4. float16 and bfloat16 (ml_dtypes; skipped without it), integer, bool, list and scalar inputs;
5. special values: NaN, ±inf, empty rows, the accurate small results (``[0, -40]`` in float32 is
   4.248e-18, not 0), huge values (1e30, the float maximum) that must not overflow;
6. out= (the result written there, its shape with keepdims, 0-d) and errors (b or where of the
   wrong shape, where not boolean, unsupported dtypes, bad axes, temperatures, ISAs): the
   exception type, and out= left unwritten.
"""

from __future__ import annotations

import functools
import zlib

import fastsoftmax
import numpy as np
import pytest
from reference import (
    LD,
    LOGSUMEXP_ULP,
    assert_log_close,
    assert_matches_reference,
    logsumexp_reference,
    reference,
)

try:
    import ml_dtypes
except ImportError:  # pragma: no cover - ml_dtypes is in the [test] extra
    ml_dtypes = None

# numpy.exceptions.AxisError from NumPy 1.25; numpy.AxisError before (the package supports NumPy >= 1.23).
AxisError = getattr(np, "exceptions", np).AxisError

pytestmark = pytest.mark.usefixtures("fail_instead_of_hanging")

SEED = 20250115
# Every length up to 130 (vectors of 8 and 16 floats, blocks of 4 vectors and their tails), then
# around 256 and longer rows with a partial last block.
LENGTHS = list(range(1, 131)) + [255, 256, 257, 1000, 4097]
LONG_LENGTH = 1 << 20
THREADS = (1, 2)
SENTINEL = -12345.0

# Row distributions: normal1 makes many terms comparable to the largest (the sum's rounding
# matters most), uniform1000 makes one term dominate.
DISTRIBUTIONS = {
    "normal1": lambda rng, n: rng.normal(0, 1, n),
    "normal10": lambda rng, n: rng.normal(0, 10, n),
    "normal100": lambda rng, n: rng.normal(0, 100, n),
    "uniform1000": lambda rng, n: rng.uniform(-1000, 1000, n),
}


def compute_eps(dtype) -> float:
    """eps of the precision the library computes a dtype in (16-bit types: float32)."""
    return float(np.finfo(np.float64 if np.dtype(dtype) == np.float64 else np.float32).eps)


def sign_slack(a, axis, b, where, temperature, dtype):
    """The bound's allowance for sums that cancel: 4 eps (kappa - 1), kappa = sum|t| / |sum t|."""
    if b is None or not np.any(np.asarray(b) < 0):
        return None
    ref, _ = logsumexp_reference(a, axis, b, where=where, temperature=temperature)
    ref_abs, _ = logsumexp_reference(a, axis, np.abs(np.asarray(b, dtype=np.float64)), where=where,
                                     temperature=temperature)
    with np.errstate(all="ignore"):
        kappa = np.exp(ref_abs - ref)
        slack = LD(4 * compute_eps(dtype)) * (kappa - 1)
    return np.where(np.isfinite(slack), slack, LD(0))


def result_dtype(a, b=None) -> np.dtype:
    """SciPy's result dtype: a's float dtype (integers and bools: float64), promoted with b's
    (a Python scalar b is weak, as NumPy's promotion has it: float32 a, b=2.0 stay float32)."""
    a_dtype = a.dtype if a.dtype.kind in "fV" else np.dtype(np.float64)
    if b is None:
        return a_dtype
    if isinstance(b, (int, float)):
        return a_dtype
    b_dtype = np.asarray(b).dtype
    if a_dtype.kind == "V" or b_dtype.kind == "V":  # bfloat16: with itself only, here
        return a_dtype if b_dtype.kind == "V" or b_dtype == a_dtype else np.result_type(np.float32, b_dtype)
    return np.result_type(a_dtype, b_dtype)


def check(a, axis=None, b=None, keepdims=False, where=None, temperature=1.0, context="", **kwargs):
    """logsumexp(a, ...) with and without return_sign against the reference, special values exact."""
    a = np.asarray(a)
    ref, ref_sign = logsumexp_reference(a, axis, b, keepdims, where, temperature)
    slack = sign_slack(a, axis, b, where, temperature, a.dtype)
    extra = {} if where is None else {"where": where}
    if temperature != 1.0:
        extra["temperature"] = temperature
    value, sign = fastsoftmax.logsumexp(a, axis, b, keepdims, True, **extra, **kwargs)
    value, sign = np.asarray(value), np.asarray(sign)
    expected_dtype = result_dtype(a, b)
    assert value.dtype == expected_dtype, f"{context}: dtype {value.dtype}, expected {expected_dtype}"
    assert_log_close(value, ref, context=f"{context} (return_sign=True)", slack=slack)
    np.testing.assert_array_equal(sign.astype(np.float64), ref_sign.astype(np.float64),
                                  err_msg=f"{context}: sign")
    plain = np.asarray(fastsoftmax.logsumexp(a, axis, b, keepdims, **extra, **kwargs))
    # without return_sign a negative sum is NaN (SciPy); otherwise the same value
    expected_plain = np.where(ref_sign < 0, LD(np.nan), ref)
    assert_log_close(plain, expected_plain, context=f"{context} (return_sign=False)", slack=slack)
    return value


@functools.cache
def batch(n: int, dtype) -> np.ndarray:
    """One row per distribution, of length n."""
    rng = np.random.default_rng([SEED, n, np.dtype(dtype).itemsize])
    return np.stack([DISTRIBUTIONS[d](rng, n) for d in DISTRIBUTIONS]).astype(dtype)


def sample(shape, dtype=np.float64, seed=0, scale=3.0) -> np.ndarray:
    return np.random.default_rng([SEED, seed]).normal(0, scale, shape).astype(dtype)


def weights(shape, dtype, seed=0, signs=False, zeros=False) -> np.ndarray:
    """Weights that every dtype holds exactly: positive, with zeros and/or negative ones."""
    choices = [0.25, 0.5, 1.0, 1.5, 2.0, 3.0]
    if zeros:
        choices += [0.0, 0.0]
    if signs:
        choices += [-0.5, -1.0]
    return np.random.default_rng([SEED, 7, seed]).choice(choices, shape).astype(dtype)


# ---- 1. lengths, ISAs, threads --------------------------------------------------------------------


@pytest.mark.parametrize("num_threads", THREADS)
def test_every_length(isa, dtype, num_threads):
    """Batches of rows (axis=-1) and single rows (axis=None) of every length up to 130 and beyond."""
    for n in LENGTHS:
        x = batch(n, dtype)
        ref, _ = logsumexp_reference(x, -1)
        y = fastsoftmax.logsumexp(x, -1, isa=isa, num_threads=num_threads)
        assert y.dtype == dtype and y.shape == (len(DISTRIBUTIONS),)
        assert_log_close(y, ref, context=f"n={n} {isa} threads={num_threads}")
        for i in (0, 3):
            one = fastsoftmax.logsumexp(x[i], isa=isa, num_threads=num_threads)
            assert_log_close(one, ref[i], context=f"one row n={n} {list(DISTRIBUTIONS)[i]} {isa}")


@pytest.mark.parametrize("num_threads", THREADS)
def test_b_and_where_every_length(isa, dtype, num_threads):
    """b (positive, with zeros, with negative values) and where= on rows of every length."""
    for n in LENGTHS[::3] + LENGTHS[-5:]:
        x = batch(n, dtype)
        mask = np.random.default_rng([SEED, 3, n]).random(x.shape) < 0.7
        for i, b in enumerate([weights(x.shape, dtype, n), weights(x.shape, dtype, n, zeros=True),
                               weights(x.shape, dtype, n, signs=True)]):
            check(x, -1, b, context=f"n={n} b#{i} {isa}", isa=isa, num_threads=num_threads)
        check(x, -1, where=mask, context=f"n={n} where {isa}", isa=isa, num_threads=num_threads)
        check(x, -1, weights(x.shape, dtype, n, zeros=True), where=mask, context=f"n={n} b+where {isa}", isa=isa,
              num_threads=num_threads)


@functools.cache
def long_row(dtype, dist: str) -> tuple[np.ndarray, LD]:
    rng = np.random.default_rng([SEED, 99, zlib.crc32(dist.encode())])
    x = DISTRIBUTIONS[dist](rng, LONG_LENGTH).astype(dtype)
    return x, logsumexp_reference(x)[0]


@pytest.mark.parametrize("num_threads", THREADS)
@pytest.mark.parametrize("dist", ["normal1", "normal10"])
def test_long_row(isa, dtype, num_threads, dist):
    """A row of 2^20 elements (split between the threads with num_threads=2)."""
    x, ref = long_row(dtype, dist)
    y = fastsoftmax.logsumexp(x, isa=isa, num_threads=num_threads)
    assert_log_close(y, ref, context=f"2^20 {dist} {isa} threads={num_threads}")
    y = fastsoftmax.logsumexp(x.reshape(1, -1), axis=-1, isa=isa, num_threads=num_threads)
    assert_log_close(y, np.asarray(ref).reshape(1), context=f"(1, 2^20) {dist} {isa} threads={num_threads}")


@pytest.mark.parametrize("num_threads", THREADS)
def test_many_rows_shared_between_threads(isa, num_threads):
    """A batch big enough (2 MiB) for two threads, along the last axis and along axis 0."""
    x = sample((512, 1000), np.float32, seed=11, scale=10)
    x[5, 17] = np.nan
    x[100, :] = -np.inf
    x[200, 999] = np.inf
    for axis in (-1, 0, None):
        ref, _ = logsumexp_reference(x, axis)
        y = fastsoftmax.logsumexp(x, axis, isa=isa, num_threads=num_threads)
        assert_log_close(y, ref, context=f"(512, 1000) axis={axis} {isa} threads={num_threads}")


# ---- 2. axes and keepdims -------------------------------------------------------------------------

AXES = [None, 0, 1, 2, -1, -2, -3, (0,), (2,), (0, 1), (1, 2), (0, 2), (2, 0), (-1, 0), (0, 1, 2), (-3, -2, -1)]


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES, ids=repr)
def test_axes_and_keepdims(isa, dtype, axis, keepdims):
    """Any axis, negative axes and tuples of them (adjacent or not): np.sum's result shape."""
    x = sample((4, 5, 6), dtype, seed=1, scale=5)
    x[1, 2, 3] = -np.inf
    shape = np.sum(x, axis=axis, keepdims=keepdims).shape
    y = check(x, axis, keepdims=keepdims, context=f"axis={axis} keepdims={keepdims} {isa}", isa=isa)
    assert y.shape == shape
    b = weights((5, 6), dtype, seed=2, zeros=True)  # broadcast along axis 0
    y = check(x, axis, b, keepdims=keepdims, context=f"b (5, 6) axis={axis} keepdims={keepdims} {isa}", isa=isa)
    assert y.shape == shape


@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 1), (1, 0)], ids=repr)
def test_strided_and_transposed_inputs(isa, axis):
    """Non-contiguous inputs (transposed, every other column, reversed) give the contiguous results."""
    base = sample((40, 70), np.float32, seed=3, scale=8)
    for view in (base.T, base[:, ::2], base[::-1, ::-3], np.asfortranarray(base)):
        expected = fastsoftmax.logsumexp(np.ascontiguousarray(view), axis, isa=isa)
        got = fastsoftmax.logsumexp(view, axis, isa=isa)
        ref, _ = logsumexp_reference(view, axis)
        assert_log_close(got, ref, context=f"view {view.shape} {view.strides} axis={axis}")
        assert_log_close(expected, ref, context=f"contiguous {view.shape} axis={axis}")


@pytest.mark.parametrize("seed", range(40))
def test_matches_scipy(seed):
    """float64 against scipy.special.logsumexp itself (finite inputs, where every SciPy >= 1.9
    agrees): the same shapes, values, signs, for random shapes, axes, keepdims and b."""
    scipy_special = pytest.importorskip("scipy.special")
    rng = np.random.default_rng([SEED, 5, seed])
    ndim = int(rng.integers(1, 4))
    shape = tuple(int(s) for s in rng.integers(1, 6, ndim))
    a = rng.normal(0, 5, shape)
    axis = [None, int(rng.integers(-ndim, ndim)), tuple(range(ndim)), tuple(sorted({0, ndim - 1}))][seed % 4]
    keepdims = bool(seed % 3 == 0)
    b = None
    if seed % 2:
        b_shape = shape[int(rng.integers(0, ndim)):]  # a trailing part of a's shape
        b = rng.choice([0.5, 1.0, 2.0, 3.0, -1.0], b_shape) if seed % 4 == 1 else rng.uniform(0.1, 2, b_shape)
    want, want_sign = scipy_special.logsumexp(a, axis=axis, b=b, keepdims=keepdims, return_sign=True)
    got, got_sign = fastsoftmax.logsumexp(a, axis=axis, b=b, keepdims=keepdims, return_sign=True)
    assert np.shape(got) == np.shape(want)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(got_sign, want_sign)
    got_plain = fastsoftmax.logsumexp(a, axis=axis, b=b, keepdims=keepdims)
    want_plain = scipy_special.logsumexp(a, axis=axis, b=b, keepdims=keepdims)
    np.testing.assert_allclose(got_plain, want_plain, rtol=1e-12, atol=1e-12, equal_nan=True)


# ---- 3. b, where, temperature ---------------------------------------------------------------------


@pytest.mark.parametrize("b_shape", [(), (1,), (9,), (1, 9), (6, 1), (6, 9), (1, 1)], ids=repr)
def test_b_broadcastable_shapes(isa, dtype, b_shape):
    """b of any shape that broadcasts to a's: scale factors per column, per row, one for all."""
    x = sample((6, 9), dtype, seed=4, scale=4)
    for signs in (False, True):
        b = weights(b_shape, dtype, seed=len(b_shape), zeros=not signs, signs=signs)
        if b_shape == ():
            b = dtype(-1.5 if signs else 2.0)
        for axis in (-1, 0, None):
            check(x, axis, b, context=f"b{b_shape} signs={signs} axis={axis} {isa}", isa=isa)


def test_b_python_scalar_and_list(dtype):
    """b as a Python float (weak, as in NumPy's promotion: a's dtype is kept, as SciPy keeps it)
    and as a list of ints (an int64 array: float64 results, as SciPy)."""
    x = sample((6, 9), dtype, seed=4, scale=4)
    check(x, -1, 2.0, context="b=2.0")
    check(x, -1, -0.5, context="b=-0.5")
    check(x[0], None, [1, 2, 0, 1, 1, 3, 1, 1, 1], context="b a list")


def test_b_signs_and_cancellation(isa, dtype):
    """SciPy's documented cases: negative sums give (log|sum|, -1) and NaN without return_sign;
    an exactly cancelling sum gives (-inf, 0); zero weights remove their entries (even NaN, inf)."""
    a = np.array([1, 2], dtype)
    value, sign = fastsoftmax.logsumexp(a, b=np.array([1, -1], dtype), return_sign=True, isa=isa)
    assert sign == -1
    assert_log_close(value, logsumexp_reference(a, b=[1, -1])[0], context="log(e^2 - e)")
    assert np.isnan(fastsoftmax.logsumexp(a, b=np.array([1, -1], dtype), isa=isa))
    value, sign = fastsoftmax.logsumexp(np.array([1, 1], dtype), b=np.array([1, -1], dtype), return_sign=True, isa=isa)
    assert value == -np.inf and sign == 0
    value, sign = fastsoftmax.logsumexp(a, b=np.zeros(2, dtype), return_sign=True, isa=isa)
    assert value == -np.inf and sign == 0
    for special in (np.nan, np.inf, -np.inf):
        x = np.array([special, 1.0, 2.0], dtype)
        value = fastsoftmax.logsumexp(x, b=np.array([0, 1, 1], dtype), isa=isa)
        assert_log_close(value, logsumexp_reference(x[1:])[0], context=f"b=0 at {special}")
    # +inf entries: the sign of their weights' sum; cancelling weights give NaN
    x = np.array([np.inf, 1.0, np.inf], dtype)
    for b, expected in [([1, 1, 1], (np.inf, 1)), ([-1, 1, 0], (np.inf, -1)), ([2, -5, -1], (np.inf, 1)),
                        ([1, 1, -1], (np.nan, np.nan)), ([-1, 3, -1], (np.inf, -1))]:
        value, sign = fastsoftmax.logsumexp(x, b=np.array(b, dtype), return_sign=True, isa=isa)
        np.testing.assert_array_equal([value, sign], np.array(expected, dtype), err_msg=f"b={b}")


@pytest.mark.parametrize("mask_shape", ["full", "row", "column", "scalar_true", "scalar_false", "strided"])
def test_where(isa, dtype, mask_shape):
    """where=: masked entries take no part (NaN and +inf there do not leak); a row with nothing
    taking part is -inf; broadcastable and non-contiguous masks."""
    x = sample((7, 50), dtype, seed=6, scale=6)
    x[0, 3] = np.nan
    x[1, 10] = np.inf
    x[2, :] = -np.inf
    x[3, 5] = np.nan
    x[3, 6] = np.inf
    rng = np.random.default_rng([SEED, 8])
    masks = {
        "full": rng.random((7, 50)) < 0.5,
        "row": rng.random(50) < 0.5,
        "column": rng.random((7, 1)) < 0.5,
        "scalar_true": True,
        "scalar_false": np.False_,
        "strided": (rng.random((14, 100)) < 0.5)[::2, ::-2],
    }
    mask = masks[mask_shape]
    if mask_shape == "full":
        mask[0, 3] = mask[1, 10] = False  # NaN and +inf masked: no effect
        mask[4] = False  # a fully masked row: -inf
    for axis in (-1, 0, None, (0, 1)):
        check(x, axis, where=mask, context=f"where {mask_shape} axis={axis} {isa}", isa=isa)
        check(x, axis, weights((7, 50), dtype, seed=9, signs=True), where=mask,
              context=f"where {mask_shape} with b, axis={axis} {isa}", isa=isa)


@pytest.mark.parametrize("temperature", [0.25, 0.5, 0.7, 2.0, 3.0, 1e-3])
def test_temperature(isa, dtype, temperature):
    """logsumexp(a / T), never rounding a / T: lengths, b, where and special values."""
    for n in (1, 7, 16, 33, 100, 1000):
        x = batch(n, dtype)
        check(x, -1, temperature=temperature, context=f"T={temperature} n={n} {isa}", isa=isa)
        check(x, -1, weights(x.shape, dtype, n, signs=True), temperature=temperature,
              context=f"T={temperature} n={n} b {isa}", isa=isa)
    big = np.finfo(dtype).max
    x = np.array([[0, -40, 1], [np.nan, 1, 2], [np.inf, 1, 2], [-np.inf] * 3, [big, big, 1], [1e30, -1e30, 0]], dtype)
    check(x, -1, temperature=temperature, context=f"T={temperature} specials {isa}", isa=isa)


@pytest.mark.parametrize("temperature, exc", [(0.0, ValueError), (-1.0, ValueError), (np.inf, ValueError),
                                              (np.nan, ValueError), ("2", TypeError), (None, TypeError)])
def test_bad_temperature(temperature, exc):
    out = np.full((), SENTINEL)
    with pytest.raises(exc):
        fastsoftmax.logsumexp(np.ones(3), temperature=temperature)
    with pytest.raises(exc):
        fastsoftmax.logsumexp(np.ones(3), temperature=temperature, out=out)
    assert out == SENTINEL


# ---- 4. dtypes ------------------------------------------------------------------------------------


def sixteen_bit(name):
    if name == "bfloat16":
        if ml_dtypes is None:
            pytest.skip("bfloat16 needs ml_dtypes")
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(np.float16)


@pytest.mark.parametrize("name", ["float16", "bfloat16"])
def test_16_bit_inputs(isa, name):
    """float16 and bfloat16: the result in that dtype, within the bound in its own ULPs; b, where,
    axes and special values."""
    dtype = sixteen_bit(name)
    for n in list(range(1, 70)) + [127, 128, 129, 255, 256, 257, 1000, 4097]:
        x = batch(n, np.float32).clip(-60000, 60000).astype(dtype)
        check(x, -1, context=f"{name} n={n} {isa}", isa=isa)
    x = sample((5, 40), np.float32, seed=12, scale=4).astype(dtype)
    check(x, None, context=f"{name} axis=None", isa=isa)
    check(x, 0, weights((5, 40), dtype, signs=True), context=f"{name} b", isa=isa)
    check(x, -1, where=np.random.default_rng(1).random((5, 40)) < 0.5, context=f"{name} where", isa=isa)
    big = float((ml_dtypes.finfo if name == "bfloat16" else np.finfo)(dtype).max)
    specials = np.array([[0, -10, -np.inf], [np.nan, 1, 2], [np.inf, 1, -np.inf], [-np.inf] * 3, [big, big, big]],
                        np.float32).astype(dtype)
    check(specials, -1, context=f"{name} specials", isa=isa)


@pytest.mark.parametrize("int_dtype", [np.int8, np.int32, np.int64, np.uint8, np.bool_])
def test_integer_and_bool_inputs_give_float64(int_dtype):
    """As SciPy and fastsoftmax.softmax: integers and bools are computed in float64."""
    x = np.random.default_rng(3).integers(0, 100, (3, 21)).astype(int_dtype)
    for axis in (-1, None):
        y = fastsoftmax.logsumexp(x, axis)
        assert np.asarray(y).dtype == np.float64
        np.testing.assert_array_equal(y, fastsoftmax.logsumexp(x.astype(np.float64), axis))


def test_lists_and_scalars():
    assert_log_close(fastsoftmax.logsumexp([1, 2, 3]), logsumexp_reference(np.array([1.0, 2.0, 3.0]))[0])
    assert np.asarray(fastsoftmax.logsumexp([1, 2, 3])).dtype == np.float64
    assert fastsoftmax.logsumexp(3.0) == 3.0  # one element: a itself
    assert fastsoftmax.logsumexp(np.float32(-2.5)) == np.float32(-2.5)
    assert np.asarray(fastsoftmax.logsumexp(np.float32(-2.5))).dtype == np.float32
    value, sign = fastsoftmax.logsumexp(2.0, b=-3.0, return_sign=True)
    assert sign == -1
    assert_log_close(value, LD(2) + np.log(LD(3)))
    assert np.asarray(fastsoftmax.logsumexp(np.ones((2, 3)))).shape == ()


@pytest.mark.parametrize(
    "x",
    [np.array([1 + 2j, 3j], np.complex64), np.array([1 + 2j, 3j], np.complex128), np.array([1.0, 2.0], dtype=object),
     np.array(["a", "bc"]), np.array(["2020-01-01", "2021-01-01"], dtype="datetime64[D]")],
    ids=lambda a: str(a.dtype),
)
def test_unsupported_dtypes_raise_type_error(x):
    """Complex inputs raise TypeError, as for softmax (SciPy would take complex values; fastsoftmax
    computes float16, bfloat16, float32 and float64 only), and so do objects, strings, dates."""
    with pytest.raises(TypeError):
        fastsoftmax.logsumexp(x)


# ---- 5. special values ----------------------------------------------------------------------------

SPECIAL_LENGTHS = (1, 2, 7, 16, 33, 100, 1000)


def test_all_negative_infinity_and_empty(isa, dtype):
    """Rows of only -inf and empty rows: -inf, sign 0."""
    for n in SPECIAL_LENGTHS:
        x = np.full((3, n), -np.inf, dtype)
        value, sign = fastsoftmax.logsumexp(x, -1, return_sign=True, isa=isa)
        np.testing.assert_array_equal(value, np.full(3, -np.inf, dtype))
        np.testing.assert_array_equal(sign, np.zeros(3, dtype))
        assert fastsoftmax.logsumexp(x[0], isa=isa) == -np.inf
    value, sign = fastsoftmax.logsumexp(np.empty((3, 0), dtype), -1, return_sign=True, isa=isa)
    np.testing.assert_array_equal(value, np.full(3, -np.inf, dtype))
    np.testing.assert_array_equal(sign, np.zeros(3, dtype))
    assert fastsoftmax.logsumexp(np.empty(0, dtype), isa=isa) == -np.inf
    assert fastsoftmax.logsumexp(np.empty((0, 4), dtype), 0, isa=isa).tolist() == [-np.inf] * 4
    y = fastsoftmax.logsumexp(np.empty((0, 4), dtype), -1, isa=isa)
    assert y.shape == (0,) and y.dtype == dtype
    y = fastsoftmax.logsumexp(np.empty((2, 0, 3), dtype), (0, 1), keepdims=True, isa=isa)
    np.testing.assert_array_equal(y, np.full((1, 1, 3), -np.inf, dtype))


def test_nan_propagates(isa, dtype):
    """A NaN anywhere (next to +inf, -inf, huge values too) gives NaN for its row only."""
    big = np.finfo(dtype).max
    for n in SPECIAL_LENGTHS:
        for i in sorted({0, n // 2, n - 1}):
            for other in (None, np.inf, -np.inf, big):
                x = sample((3, n), dtype, seed=n)
                x[1, i] = np.nan
                if other is not None and n > 1:
                    x[1, (i + 1) % n] = other
                y = fastsoftmax.logsumexp(x, -1, isa=isa)
                assert np.isnan(y[1]) and not np.isnan(y[[0, 2]]).any(), f"n={n} NaN at {i} with {other}: {y}"
                assert_log_close(y[[0, 2]], logsumexp_reference(x[[0, 2]], -1)[0], context=f"other rows n={n}")
                _, sign = fastsoftmax.logsumexp(x, -1, return_sign=True, isa=isa)
                assert np.isnan(sign[1])


def test_positive_infinity(isa, dtype):
    """A +inf anywhere (with -inf, huge values, other +inf) gives +inf, sign 1."""
    big = np.finfo(dtype).max
    for n in SPECIAL_LENGTHS:
        for i in sorted({0, n // 2, n - 1}):
            for other in (None, np.inf, -np.inf, big, -big):
                x = sample(n, dtype, seed=n)
                x[i] = np.inf
                if other is not None and n > 1:
                    x[(i + 1) % n] = other
                value, sign = fastsoftmax.logsumexp(x, return_sign=True, isa=isa)
                assert value == np.inf and sign == 1, f"n={n} +inf at {i} with {other}: {value}, {sign}"


def test_negative_infinity_entries_take_no_part(isa, dtype):
    """-inf entries among finite ones: the logsumexp of the others."""
    for n in SPECIAL_LENGTHS[1:]:
        x = sample(n, dtype, seed=n)
        x[sorted({0, n // 2})] = -np.inf
        check(x, None, context=f"n={n} -inf entries", isa=isa)


def test_accurate_near_zero(isa, dtype):
    """log(1 + small) keeps every digit: [0, -40] in float32 is 4.248354e-18 (not 0); [0, -d]
    within 2 ULP of log1p(exp(-d)) in relative terms, as long as exp(-d) is a normal number."""
    y = fastsoftmax.logsumexp(np.array([0, -40], dtype), isa=isa)
    assert y != 0
    exact = np.log1p(np.exp(LD(-40)))
    assert abs(LD(y) - exact) <= 2 * np.spacing(dtype(exact)), f"{y!r} vs {exact}"
    limit = 80 if dtype == np.float32 else 700
    for d in list(range(1, 40)) + list(range(40, limit, 7)):
        for n_small in (1, 3):  # [0, -d] and [0, -d, -d, -d]; the maximum at the end, too
            for row in ([0.0] + [-d] * n_small, [-d] * n_small + [0.0]):
                x = np.array(row, dtype)
                exact = np.log1p(n_small * np.exp(LD(-d)))
                y = fastsoftmax.logsumexp(x, isa=isa)
                err = abs(LD(y) - exact) / np.spacing(dtype(exact)).astype(LD)
                assert err <= LOGSUMEXP_ULP, f"{x}: {y!r} vs {exact} ({float(err):.3g} ULP)"
    # the same in a batch, with a mask and with weights
    x = np.array([[0, -40, -np.inf], [0, -40, 5], [-40, 5, 0]], dtype)
    mask = np.array([[True, True, False], [True, True, False], [True, False, True]])
    exact = np.log1p(np.exp(LD(-40)))
    for y in (fastsoftmax.logsumexp(x, -1, where=mask, isa=isa),
              fastsoftmax.logsumexp(x, -1, b=mask.astype(dtype), isa=isa)):
        err = np.abs(y.astype(LD) - exact) / np.spacing(dtype(exact)).astype(LD)
        assert np.all(err <= LOGSUMEXP_ULP), f"{y} vs {exact}"


def test_huge_values_do_not_overflow(isa, dtype):
    """1e30, the float maximum and mixes of both signs: finite, within the bound."""
    big = float(np.finfo(dtype).max)
    values = [1e30, -1e30, big, -big, 1e6, -1e6] + ([1e300, -1e300] if dtype == np.float64 else [3e38, -3e38])
    for n in SPECIAL_LENGTHS:
        for v in values:
            x = sample(n, dtype, seed=n)
            x[n // 2] = v
            y = check(x, None, context=f"n={n} {v} {isa}", isa=isa)
            assert np.isfinite(y)
        y = check(np.full(n, big, dtype), None, context=f"n={n} all max", isa=isa)
        assert y == dtype(big)  # max + log(n) rounds to max
        check(np.full(n, -big, dtype), None, context=f"n={n} all -max", isa=isa)
    # b scales huge terms without overflowing either
    check(np.array([big, big], dtype), None, np.array([3, 1], dtype), context="b * huge", isa=isa)
    check(np.array([big, big], dtype), None, np.array([-3, 1], dtype), context="negative b * huge", isa=isa)


# ---- 6. out= and errors ---------------------------------------------------------------------------


@pytest.mark.parametrize("axis, keepdims, shape", [(-1, False, (4,)), (0, False, (9,)), (None, False, ()),
                                                   (None, True, (1, 1)), ((0, 1), True, (1, 1)), (1, True, (4, 1))])
def test_out(isa, dtype, axis, keepdims, shape):
    """out= receives the result (the same bits as without it) and is returned."""
    x = sample((4, 9), dtype, seed=13)
    expected = fastsoftmax.logsumexp(x, axis, keepdims=keepdims, isa=isa)
    out = np.full(shape, SENTINEL, dtype)
    got = fastsoftmax.logsumexp(x, axis, keepdims=keepdims, out=out, isa=isa)
    assert got is out
    np.testing.assert_array_equal(out, expected)
    out = np.full(shape, SENTINEL, dtype)
    b = weights((4, 9), dtype, signs=True)
    got = fastsoftmax.logsumexp(x, axis, b, keepdims, where=x > -2, out=out, isa=isa)
    np.testing.assert_array_equal(out, fastsoftmax.logsumexp(x, axis, b, keepdims, where=x > -2, isa=isa))


def test_out_strided_view(isa):
    x = sample((6, 30), np.float32, seed=14)
    base = np.full((6, 3), SENTINEL, np.float32)
    fastsoftmax.logsumexp(x, -1, out=base[:, 1], isa=isa)
    np.testing.assert_array_equal(base[:, 1], fastsoftmax.logsumexp(x, -1, isa=isa))
    assert np.all(base[:, [0, 2]] == SENTINEL)


def bad_calls():
    """(name, kwargs, exception) for a (4, 9) float64 x: each refused before anything is written."""
    return [
        ("b wrong length", {"b": np.ones(8)}, ValueError),
        ("b wrong rows", {"b": np.ones((3, 9))}, ValueError),
        ("where not boolean (int)", {"where": np.ones((4, 9), np.int64)}, TypeError),
        ("where not boolean (float)", {"where": np.ones(9)}, TypeError),
        ("where not boolean (list of ints)", {"where": [1, 0, 1, 1, 1, 1, 1, 1, 1]}, TypeError),
        ("where not broadcastable", {"where": np.ones(8, bool)}, ValueError),
        ("where larger than a", {"where": np.ones((2, 4, 9), bool)}, ValueError),
        ("axis out of range", {"axis": 2}, AxisError),
        ("axis tuple out of range", {"axis": (0, -3)}, AxisError),
        ("duplicate axes", {"axis": (1, 1)}, ValueError),
        ("axis not an integer", {"axis": 1.0}, TypeError),
        ("bad isa", {"isa": "nope"}, ValueError),
        ("bad num_threads", {"num_threads": 0}, ValueError),
        ("bad temperature", {"temperature": -1.0}, ValueError),
    ]


@pytest.mark.parametrize("name, kwargs, exc", bad_calls(), ids=[c[0] for c in bad_calls()])
def test_errors_write_nothing(name, kwargs, exc):
    x = sample((4, 9), seed=15)
    axis = kwargs.pop("axis", -1)
    with pytest.raises(exc):
        fastsoftmax.logsumexp(x, axis, **kwargs)
    out = np.full((4,), SENTINEL)
    with pytest.raises(exc):
        fastsoftmax.logsumexp(x, axis, out=out, **kwargs)
    assert np.all(out == SENTINEL), f"{name}: out was written"


@pytest.mark.parametrize("shape", [(3,), (4, 1), (), (5,)], ids=repr)
def test_out_wrong_shape(shape):
    out = np.full(shape, SENTINEL)
    with pytest.raises(ValueError):
        fastsoftmax.logsumexp(sample((4, 9)), -1, out=out)
    assert np.all(out == SENTINEL)


def test_out_read_only():
    out = np.full(4, SENTINEL)
    out.flags.writeable = False
    with pytest.raises(ValueError):
        fastsoftmax.logsumexp(sample((4, 9)), -1, out=out)


# ---- softmax and log_softmax over axis=None and tuples of axes ------------------------------------


def reference_over_axes(x, axes, log):
    """reference() over several axes at once: those moved to the end and flattened into one."""
    axes = tuple(sorted(a % x.ndim for a in axes))
    kept = tuple(i for i in range(x.ndim) if i not in axes)
    moved = np.transpose(x, kept + axes)
    flat = moved.reshape(moved.shape[:len(kept)] + (-1,))
    ref = reference(flat, -1, log).reshape(moved.shape)
    return np.transpose(ref, np.argsort(kept + axes)), np.transpose(flat.reshape(moved.shape), np.argsort(kept + axes))


@pytest.mark.parametrize("axis", [None, (0, 1, 2), (0, 1), (1, 2), (0, 2), (2, 0), (-1,), (-3, -1)], ids=repr)
def test_softmax_axis_none_and_tuples(isa, func_name, dtype, axis):
    """softmax/log_softmax normalize over all axes (None) or several at once (SciPy's convention):
    the result of normalizing the flattened axes, special values included."""
    log = func_name == "log_softmax"
    func = getattr(fastsoftmax, func_name)
    x = sample((5, 6, 7), dtype, seed=16, scale=5)
    x[0, 0, 0] = -np.inf
    x[4, 2, 6] = np.inf  # a +inf: its slice shares the mass
    x[3, 1, 3] = np.nan  # a NaN: its slice is NaN
    for data in (x, sample((5, 6, 7), dtype, seed=17, scale=5)):
        axes = tuple(range(3)) if axis is None else axis
        ref, _ = reference_over_axes(data, axes, log)
        y = func(data, axis=axis, isa=isa)
        assert y.shape == data.shape and y.dtype == dtype
        # compare flattened over the axes: the reference's exact-value rules see each slice whole
        norm = tuple(sorted(a % 3 for a in axes))
        kept = tuple(i for i in range(3) if i not in norm)
        flat_shape = tuple(data.shape[i] for i in kept) + (-1,)
        y_flat, x_flat, ref_flat = (np.transpose(v, kept + norm).reshape(flat_shape) for v in (y, data, ref))
        assert_matches_reference(y_flat, x_flat, axis=-1, log=log, ref=ref_flat,
                                 context=f"{func_name} axis={axis} {isa}")
    if axis is None:  # SciPy's softmax(x, axis=None)
        scipy_special = pytest.importorskip("scipy.special")
        clean = sample((5, 6, 7), np.float64, seed=18)
        want = scipy_special.softmax(clean, axis=None) if not log else scipy_special.log_softmax(clean, axis=None)
        np.testing.assert_allclose(func(clean, axis=None), want, rtol=1e-12, atol=1e-300)


def test_softmax_axis_tuple_errors(func_name):
    func = getattr(fastsoftmax, func_name)
    x = sample((3, 4))
    with pytest.raises(ValueError):
        func(x, axis=(0, 0))
    with pytest.raises(AxisError):
        func(x, axis=(0, 2))
