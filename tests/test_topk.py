"""softmax_topk: the k largest probabilities of softmax(x, axis) and their indices, per ISA.

Expected results come from the inputs alone: the order is decreasing x with the lower index first
among equal inputs (``np.lexsort((index, -x))``, i.e. ``np.argsort(-x, kind="stable")``), a row
with NaN gives indices 0..k-1; the values are the extended-precision reference softmax
(reference.py) at those indices, within its ULP bounds (float32 2 ULP, float64 SOFTMAX_ULP_F64),
the special values (1/c for c entries of +inf, 0 for the rest of such rows and for -inf entries,
NaN for NaN rows and rows of only -inf) exact.

Covered: every length 1..70 and around the SIMD blocks and tails (127..257, 1000, 4097) with a few
long rows (65536, 128256), k in {1, 2, 5, 50, 256, n}; ties (small-integer inputs, all-equal rows,
equal maxima in different lanes and blocks, signed zeros); sorted and reverse-sorted rows;
argument errors, empty batches and every axis of 2-D and 3-D arrays; NaN, ±inf and huge values at
the start, middle, end and in the tail of a row; strided, negative-stride, unaligned and
byte-swapped inputs against contiguous copies; num_threads 1 vs 2; dtypes other than
float32/float64; and a hypothesis property test against a NumPy reference.
"""

from __future__ import annotations

import functools
import zlib

import fastsoftmax
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from reference import assert_matches_reference, default_bound, reference

# numpy.exceptions.AxisError from NumPy 1.25; numpy.AxisError before (the package supports NumPy >= 1.23).
AxisError = getattr(np, "exceptions", np).AxisError

pytestmark = pytest.mark.usefixtures("fail_instead_of_hanging")

SEED = 20240917

# Every length up to 70 (vector widths 8 and 16, blocks of 4 vectors = 32 and 64, their tails),
# then around 128 and 256, and longer rows with a partial last block.
LENGTHS = list(range(1, 71)) + [127, 128, 129, 255, 256, 257, 1000, 4097]
LONG_LENGTHS = (65536, 128256)  # a few rows each
KS = (1, 2, 5, 50, 256)  # and k = n

DISTRIBUTIONS = {
    "normal1": lambda rng, shape: rng.normal(0, 1, shape),
    "normal10": lambda rng, shape: rng.normal(0, 10, shape),
    "uniform1000": lambda rng, shape: rng.uniform(-1000, 1000, shape),
}


def ks_for(n: int) -> list[int]:
    """The k values to try for a row of n: those of KS that fit, and n."""
    return sorted({k for k in KS if k <= n} | {n})


# ---- Expected results -------------------------------------------------------------------------


def expected_indices(rows: np.ndarray, k: int) -> np.ndarray:
    """The expected indices of a 2-D array of rows (the axis last): decreasing x, lower index
    first among equal x (so +inf first and -inf last, each in index order); 0..k-1 for a row
    with NaN."""
    rows = np.asarray(rows)
    n = rows.shape[-1]
    neg = -rows if rows.dtype.kind == "f" else -rows.astype(np.float64)
    index = np.broadcast_to(np.arange(n), rows.shape)
    order = np.lexsort((index, neg), axis=-1)[..., :k]
    nan_rows = np.isnan(rows).any(axis=-1)
    order[nan_rows] = np.arange(k)
    return order


def describe_row(row: np.ndarray) -> str:
    return repr(row.tolist()) if row.size <= 16 else f"row of {row.size} (first {row[:8].tolist()})"


def check_topk(
    x,
    k: int,
    values: np.ndarray,
    indices: np.ndarray,
    axis: int = -1,
    sorted: bool = True,
    ref: np.ndarray | None = None,
    order: np.ndarray | None = None,
    bound: float | None = None,
    context: str = "",
) -> None:
    """Assert (values, indices) is softmax_topk(x, k, axis) (sorted or as a set), against the
    reference order and the extended-precision reference probabilities. ``ref`` and ``order``,
    if given, are reference(x rows) and expected_indices(x rows, n) of the rows (axis last)."""
    x = np.asarray(x)
    out_shape = x.shape[:axis % x.ndim] + (k,) + x.shape[axis % x.ndim + 1:]
    assert values.shape == out_shape, f"{context}: values shape {values.shape} != {out_shape}"
    assert indices.shape == out_shape, f"{context}: indices shape {indices.shape} != {out_shape}"
    assert indices.dtype == np.int64, f"{context}: indices dtype {indices.dtype}"
    n = x.shape[axis]
    rows = np.moveaxis(x, axis, -1).reshape(-1, n)
    got_v = np.moveaxis(values, axis, -1).reshape(-1, k)
    got_i = np.moveaxis(indices, axis, -1).reshape(-1, k)
    if rows.shape[0] == 0:
        return
    exp_i = expected_indices(rows, k) if order is None else order[:, :k]
    if ref is None:
        ref = reference(rows)
    else:
        ref = ref.reshape(-1, n)
    if not sorted:  # the same set: put both in index order (the expected set has no repeats)
        assert np.all((got_i >= 0) & (got_i < n)), f"{context}: index out of range 0..{n - 1}"
        perm = np.argsort(got_i, axis=-1)
        got_i = np.take_along_axis(got_i, perm, -1)
        got_v = np.take_along_axis(got_v, perm, -1)
        exp_i = np.sort(exp_i, axis=-1)
    bad_rows = np.flatnonzero(np.any(got_i != exp_i, axis=-1))
    if bad_rows.size:
        r = int(bad_rows[0])
        j = int(np.flatnonzero(got_i[r] != exp_i[r])[0])
        raise AssertionError(
            f"{context}: {bad_rows.size} of {rows.shape[0]} rows have wrong indices (n={n}, k={k}, "
            f"sorted={sorted}); row {r}: first difference at position {j}: got index {int(got_i[r, j])} "
            f"(x={rows[r, got_i[r, j]]!r}), expected {int(exp_i[r, j])} (x={rows[r, exp_i[r, j]]!r}); "
            f"got {got_i[r, :10].tolist()}, expected {exp_i[r, :10].tolist()}; x: {describe_row(rows[r])}"
        )
    x_k = np.take_along_axis(rows, exp_i, -1)
    ref_k = np.take_along_axis(ref, exp_i, -1)
    # A row's +inf entries come first, so x_k holds +inf where the row does and the reference
    # check applies the exact special rules.
    assert_matches_reference(got_v, x_k, axis=-1, ref=ref_k, bound=bound, context=f"{context} n={n} k={k}")


def run_and_check(x, k, isa, axis=-1, sorted=True, context="", **kwargs):
    values, indices = fastsoftmax.softmax_topk(x, k, axis=axis, sorted=sorted, isa=isa, **kwargs)
    x = np.asarray(x)
    assert values.dtype == x.dtype, f"{context}: values dtype {values.dtype} for input {x.dtype}"
    check_topk(x, k, values, indices, axis=axis, sorted=sorted, context=context)
    return values, indices


# ---- 1. Accuracy around every block and tail -----------------------------------------------------


@functools.cache
def rows_with_reference(dist: str, dtype: type) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per length: 3 random rows (2 for the long lengths), their reference and expected order."""
    rng = np.random.default_rng([SEED, zlib.crc32(dist.encode()), np.dtype(dtype).itemsize])
    out = []
    for n in LENGTHS + list(LONG_LENGTHS):
        rows = 2 if n in LONG_LENGTHS else 3
        x = DISTRIBUTIONS[dist](rng, (rows, n)).astype(dtype)
        out.append((x, reference(x), expected_indices(x, n)))
    return out


@pytest.mark.parametrize("dist", list(DISTRIBUTIONS))
def test_accuracy(isa, dist, dtype):
    """float32/float64, every length and k: the reference order and values within the bound."""
    for x, ref, order in rows_with_reference(dist, dtype):
        n = x.shape[-1]
        for k in ks_for(n):
            values, indices = fastsoftmax.softmax_topk(x, k, isa=isa)
            assert values.dtype == np.dtype(dtype)
            check_topk(x, k, values, indices, ref=ref, order=order, context=f"{isa} {dist} {np.dtype(dtype)}")


@pytest.mark.parametrize("dist", ["normal10"])
def test_accuracy_unsorted_is_the_same_set(isa, dist, dtype):
    """sorted=False: the same (value, index) pairs as sorted=True, in any order."""
    for x, ref, order in rows_with_reference(dist, dtype):
        n = x.shape[-1]
        for k in ks_for(n):
            sv, si = fastsoftmax.softmax_topk(x, k, isa=isa)
            uv, ui = fastsoftmax.softmax_topk(x, k, isa=isa, sorted=False)
            check_topk(x, k, uv, ui, sorted=False, ref=ref, order=order, context=f"{isa} unsorted")
            perm = np.argsort(ui, axis=-1)
            np.testing.assert_array_equal(np.take_along_axis(uv, perm, -1),
                                          np.take_along_axis(sv, np.argsort(si, axis=-1), -1),
                                          err_msg=f"{isa} n={n} k={k}: unsorted values differ from sorted")


# ---- 2. Ties ----------------------------------------------------------------------------------


def assert_equal_inputs_equal_values(x: np.ndarray, values: np.ndarray, indices: np.ndarray, context: str) -> None:
    """Within each row, results for equal inputs are bit-identical probabilities."""
    rows = x.reshape(-1, x.shape[-1])
    v = values.reshape(-1, values.shape[-1])
    i = indices.reshape(-1, indices.shape[-1])
    for r in range(rows.shape[0]):
        xs = rows[r, i[r]]
        for val in np.unique(xs):
            got = v[r][xs == val]
            assert np.all(got == got[0]) or np.all(np.isnan(got)), (
                f"{context}: row {r}: equal inputs {val!r} give different probabilities {got.tolist()}"
            )


@pytest.mark.parametrize("low,high", [(-2, 2), (0, 1), (-50, 50)])
def test_ties_small_integers(isa, dtype, low, high):
    """Integer-valued inputs from a small range: many ties, straddling the k-th place; the lowest
    indices of equal inputs are returned, in index order; sorted=False gives the same set."""
    rng = np.random.default_rng([SEED, 2, low + 100, high + 100])
    for n in (1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 129, 257, 1000, 4097):
        x = rng.integers(low, high + 1, (4, n)).astype(dtype)
        for k in ks_for(n) + [max(1, n // 2), max(1, n - 1)]:
            ctx = f"{isa} ties [{low},{high}] n={n} k={k}"
            values, indices = run_and_check(x, k, isa, context=ctx)
            assert_equal_inputs_equal_values(x, values, indices, ctx)
            run_and_check(x, k, isa, sorted=False, context=ctx + " unsorted")


def test_all_equal_rows(isa, dtype):
    """A row of one repeated value: indices 0..k-1, every value 1/n."""
    for n in (1, 2, 5, 16, 17, 64, 65, 257, 4097):
        for fill in (0.0, -3.5, 1e30, float(np.finfo(dtype).max), -float(np.finfo(dtype).max)):
            x = np.full((2, n), fill, dtype)
            for k in ks_for(n):
                values, indices = run_and_check(x, k, isa, context=f"{isa} all {fill} n={n}")
                np.testing.assert_array_equal(indices, np.broadcast_to(np.arange(k), (2, k)))
                assert np.all(values == values[0, 0]), f"n={n} fill={fill}: {values[:, :8]}"


def test_equal_maxima_in_different_lanes(isa, dtype):
    """The same maximum at positions in different lanes, vectors, blocks and the tail: the lower
    indices win, whichever the kernel's lanes see first."""
    n = 1000
    base = np.random.default_rng([SEED, 3]).uniform(-5, 0, n).astype(dtype)
    spot_sets = [(0, 1), (1, 8), (7, 8), (15, 16), (3, 19, 35), (63, 64), (999, 0), (998, 999),
                 (500, 17, 250, 999), (960, 961, 999), (5, 69, 133, 197, 261)]
    for spots in spot_sets:
        x = base.copy()
        x[list(spots)] = 3.0
        for k in (1, 2, len(spots), len(spots) + 1):
            _, indices = run_and_check(x, k, isa, context=f"{isa} maxima at {spots}")
            assert indices[: min(k, len(spots))].tolist() == sorted(spots)[:k]
            run_and_check(x, k, isa, sorted=False, context=f"{isa} maxima at {spots} unsorted")


def test_equal_values_at_kth_place_in_different_lanes(isa, dtype):
    """A tie at the k-th place between entries far apart: the lower index is returned."""
    n = 300
    x = np.random.default_rng([SEED, 4]).uniform(-5, 0, n).astype(dtype)
    x[[250, 10, 290]] = 2.0  # three equal entries
    x[[100, 200]] = 5.0  # two larger ones
    for k in (3, 4):
        _, indices = run_and_check(x, k, isa, context=f"{isa} kth tie")
        assert indices.tolist() == [100, 200, 10, 250][:k]


def test_signed_zeros_are_equal(isa, dtype):
    """-0.0 == 0.0: they tie, so the lower index comes first whatever the sign."""
    for n in (2, 3, 17, 70):
        x = np.zeros(n, dtype)
        x[::2] = -0.0
        x[n - 1] = -1.0
        for k in (1, 2, n - 1):
            _, indices = run_and_check(x, k, isa, context=f"{isa} signed zeros n={n}")
            assert indices.tolist() == list(range(k))
        for low, high in ((-0.0, 0.0), (0.0, -0.0)):
            y = np.full(n + 1, -2.0, dtype)
            y[1], y[n] = low, high
            _, indices = run_and_check(y, 2, isa, context=f"{isa} signed zeros {low} then {high} n={n + 1}")
            assert indices.tolist() == [1, n]


# ---- 3. Adversarial orders --------------------------------------------------------------------


@pytest.mark.parametrize("order", ["ascending", "descending", "ascending_pairs", "sawtooth"])
def test_sorted_inputs(isa, dtype, order):
    """Sorted rows (each new element beats the running top-k, or none does), k = n included."""
    for n in (1, 2, 7, 16, 17, 33, 64, 65, 129, 257, 1000, 4097):
        for spread in (10.0, float(n)):  # spread n: the low probabilities underflow to 0
            up = np.linspace(-spread, spread, n)
            x = {
                "ascending": up,
                "descending": up[::-1],
                "ascending_pairs": np.repeat(up[::2], 2)[:n],
                "sawtooth": np.tile(np.linspace(-spread, spread, 16), n // 16 + 1)[:n],
            }[order]
            x = np.ascontiguousarray(x, dtype=dtype)
            for k in sorted({1, min(5, n), min(50, n), n}):
                run_and_check(x, k, isa, context=f"{isa} {order} spread={spread} n={n}")


# ---- 4. Arguments, shapes and axes --------------------------------------------------------------


@pytest.mark.parametrize("k", [0, -1, 11, 1000])
def test_k_out_of_range_raises(k):
    with pytest.raises(ValueError):
        fastsoftmax.softmax_topk(np.zeros((3, 10), np.float32), k)


@pytest.mark.parametrize("k", [2.0, 1.5, "2", None, True, np.float32(2), [2]])
def test_k_not_an_integer_raises(k):
    with pytest.raises(TypeError):
        fastsoftmax.softmax_topk(np.zeros((3, 10), np.float32), k)


def test_numpy_integer_k_works():
    x = np.arange(10, dtype=np.float32)
    for k in (np.int64(3), np.int32(3), np.uint8(3)):
        _, indices = fastsoftmax.softmax_topk(x, k)
        assert indices.tolist() == [9, 8, 7]


def test_k_along_the_chosen_axis():
    x = np.zeros((3, 10), np.float32)
    fastsoftmax.softmax_topk(x, 3, axis=0)
    with pytest.raises(ValueError):
        fastsoftmax.softmax_topk(x, 4, axis=0)  # fits axis 1, not axis 0


@pytest.mark.parametrize("x", [np.float32(1.0), np.array(2.0), np.array(3.0, np.float32), 5.0])
def test_zero_dimensional_raises(x):
    with pytest.raises(ValueError):
        fastsoftmax.softmax_topk(x, 1)


def test_empty_batch(isa, dtype):
    for shape, axis, out in [((0, 10), -1, (0, 3)), ((0, 10), 1, (0, 3)), ((10, 0), 0, (3, 0)),
                             ((2, 0, 10), -1, (2, 0, 3))]:
        values, indices = fastsoftmax.softmax_topk(np.zeros(shape, dtype), 3, axis=axis, isa=isa)
        assert values.shape == out and indices.shape == out, (shape, axis)
        assert values.dtype == np.dtype(dtype) and indices.dtype == np.int64


def test_empty_axis_raises():
    for k in (0, 1):
        with pytest.raises(ValueError):
            fastsoftmax.softmax_topk(np.zeros((3, 0), np.float32), k)
    with pytest.raises(ValueError):
        fastsoftmax.softmax_topk(np.zeros(0, np.float32), 1)


@pytest.mark.parametrize("shape,axis", [((3, 4), 2), ((3, 4), -3), ((5,), 1), ((5,), -2), ((2, 3, 4), 3)])
def test_bad_axis_raises(shape, axis):
    with pytest.raises(AxisError):
        fastsoftmax.softmax_topk(np.zeros(shape, np.float32), 1, axis=axis)


@pytest.mark.parametrize("axis", [1.0, "0", None])
def test_non_integer_axis_raises(axis):
    with pytest.raises(TypeError):
        fastsoftmax.softmax_topk(np.zeros((3, 4), np.float32), 1, axis=axis)


def test_bad_other_arguments_raise():
    x = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError):
        fastsoftmax.softmax_topk(x, 1, isa="sse9")
    with pytest.raises(ValueError):
        fastsoftmax.softmax_topk(x, 1, num_threads=0)
    with pytest.raises(TypeError):
        fastsoftmax.softmax_topk(x, 1, num_threads=1.5)
    with pytest.raises(TypeError):
        fastsoftmax.softmax_topk(x, 1, sorted="yes")
    with pytest.raises(TypeError):
        fastsoftmax.softmax_topk(x.astype(np.complex64), 1)
    with pytest.raises(TypeError):
        fastsoftmax.softmax_topk(x, 1, 0, True)  # sorted is keyword-only


@pytest.mark.parametrize("shape", [(7, 33), (33, 7), (3, 17, 9), (9, 5, 70), (2, 1, 3)])
def test_every_axis(isa, dtype, shape):
    """2-D and 3-D arrays along every axis, positive and negative: the reference along that axis,
    and the same indices as the rows moved last and made contiguous (float32: values within the
    bound of both; other dtypes: the same bits)."""
    x = np.random.default_rng([SEED, 5, *shape]).normal(0, 5, shape).astype(dtype)
    x.flat[::7] = np.round(x.flat[::7])  # some ties
    x.flat[::11] = 1.0
    for axis in range(-x.ndim, x.ndim):
        n = shape[axis]
        for k in sorted({1, min(3, n), n}):
            values, indices = run_and_check(x, k, isa, axis=axis, context=f"{isa} shape {shape} axis {axis}")
            moved = np.ascontiguousarray(np.moveaxis(x, axis, -1))
            cv, ci = run_and_check(moved, k, isa, context=f"{isa} shape {shape} axis {axis} moved")
            np.testing.assert_array_equal(np.moveaxis(indices, axis, -1), ci)
            if x.dtype != np.float32:  # float32 batches of short rows run other kernels: both within the bound
                np.testing.assert_array_equal(np.moveaxis(values, axis, -1), cv)
            run_and_check(x, k, isa, axis=axis, sorted=False, context=f"{isa} shape {shape} axis {axis} unsorted")


def test_one_dimensional_result_shape(isa):
    values, indices = fastsoftmax.softmax_topk(np.float32([1, 3, 2, 3]), 2, isa=isa)
    assert values.shape == indices.shape == (2,)
    assert indices.tolist() == [1, 3]
    assert values[0] == values[1]


def test_float16_is_computed_in_float32(isa):
    x = np.random.default_rng([SEED, 6]).normal(0, 4, (5, 300)).astype(np.float16)
    x[:, ::9] = 2.0  # ties
    for k in (1, 7, 300):
        values, indices = fastsoftmax.softmax_topk(x, k, isa=isa)
        assert values.dtype == np.float16 and indices.dtype == np.int64
        v32, i32 = fastsoftmax.softmax_topk(x.astype(np.float32), k, isa=isa)
        np.testing.assert_array_equal(indices, i32)
        np.testing.assert_array_equal(values, v32.astype(np.float16))
        np.testing.assert_array_equal(indices, expected_indices(x, k))


@pytest.mark.parametrize("int_dtype", [np.int8, np.int32, np.int64, np.uint16, np.bool_])
def test_integer_and_bool_give_float64(isa, int_dtype):
    rng = np.random.default_rng([SEED, 7])
    x = rng.integers(0, 2 if int_dtype is np.bool_ else 100, (4, 50)).astype(int_dtype)
    for k in (1, 5, 50):
        values, indices = fastsoftmax.softmax_topk(x, k, isa=isa)
        assert values.dtype == np.float64
        fv, fi = fastsoftmax.softmax_topk(x.astype(np.float64), k, isa=isa)
        np.testing.assert_array_equal(values, fv)
        np.testing.assert_array_equal(indices, fi)
        check_topk(x.astype(np.float64), k, values, indices, context=f"{isa} {np.dtype(int_dtype)}")


def test_lists_are_accepted():
    values, indices = fastsoftmax.softmax_topk([[1, 2, 3], [3, 2, 1]], 2)
    assert values.dtype == np.float64
    assert indices.tolist() == [[2, 1], [0, 1]]
    np.testing.assert_array_equal(values[0], values[1])


# ---- 5. Special values ------------------------------------------------------------------------

SPECIAL_LENGTHS = (1, 2, 7, 33, 100, 1000, 4103)


def positions(n: int) -> dict[str, int]:
    """Start, middle, end, and the first and last element of the tails after the whole vectors
    (8 and 16 floats) and blocks (32, 64) of a row of n, deduplicated."""
    named = {"start": 0, "middle": n // 2, "end": n - 1}
    for w in (8, 16, 32, 64):
        if n % w:
            named[f"tail{w}"] = n - n % w
    named["tail_mid"] = n - max(1, (n % 64) // 2)
    seen, out = set(), {}
    for name, i in named.items():
        if 0 <= i < n and i not in seen:
            seen.add(i)
            out[name] = i
    return out


def base_row(n: int, dtype, seed: int = 0) -> np.ndarray:
    return np.random.default_rng([SEED, n, seed]).normal(0, 3, n).astype(dtype)


def small_ks(n: int) -> list[int]:
    return sorted({1, min(2, n), min(5, n), n})


def test_nan_row(isa, dtype):
    """A NaN anywhere (alone or with ±inf, huge values): NaN values at indices 0..k-1; the rows
    around it unaffected."""
    big = float(np.finfo(dtype).max)
    for n in SPECIAL_LENGTHS:
        before, after = base_row(n, dtype, 1), base_row(n, dtype, 2)
        for where, i in positions(n).items():
            for other in (None, np.inf, -np.inf, big):
                row = base_row(n, dtype)
                if other is not None:
                    row[(i + n // 3 + 1) % n] = other
                row[i] = np.nan
                x = np.stack([before, row, after])
                for k in small_ks(n):
                    values, indices = run_and_check(x, k, isa, context=f"{isa} NaN at {where} with {other} n={n}")
                    assert np.isnan(values[1]).all() and indices[1].tolist() == list(range(k))
                    assert not np.isnan(values[[0, 2]]).any()


def test_all_nan_row(isa, dtype):
    for n in SPECIAL_LENGTHS:
        for k in small_ks(n):
            values, indices = run_and_check(np.full(n, np.nan, dtype), k, isa, context=f"{isa} all NaN n={n}")
            assert np.isnan(values).all() and indices.tolist() == list(range(k))


def test_positive_infinity_comes_first(isa, dtype):
    """c = 1, 2, 3 entries of +inf: those first in index order with exactly 1/c, then the others
    in order of x (finite, huge, then -inf) with exactly 0."""
    big = float(np.finfo(dtype).max)
    for n in SPECIAL_LENGTHS:
        spots = list(positions(n).values())
        for c in range(1, min(3, n) + 1):
            inf_at = spots[:c] if len(spots) >= c else list(range(c))
            inf_sets = [inf_at, spots[-c:]] if len(spots) >= c else [inf_at]
            for inf_at in inf_sets:
                for filler in (None, -np.inf, big, -big, 1e30):
                    row = base_row(n, dtype)
                    if filler is not None:
                        row[::5] = filler
                    row[inf_at] = np.inf
                    for k in small_ks(n):
                        ctx = f"{isa} +inf at {inf_at} filler {filler} n={n}"
                        values, indices = run_and_check(row, k, isa, context=ctx)
                        assert indices[: min(k, c)].tolist() == sorted(inf_at)[:k], ctx
                        want = np.array([1 / c] * min(k, c) + [0] * (k - min(k, c))).astype(dtype)
                        np.testing.assert_array_equal(values, want, err_msg=ctx)


def test_all_positive_infinity(isa, dtype):
    for n in (1, 3, 16, 33, 100):
        for k in small_ks(n):
            values, indices = run_and_check(np.full(n, np.inf, dtype), k, isa, context=f"{isa} all +inf n={n}")
            assert indices.tolist() == list(range(k))
            np.testing.assert_array_equal(values, np.full(k, 1 / n, dtype=np.longdouble).astype(dtype))


def test_only_negative_infinity_row(isa, dtype):
    """A row of only -inf: NaN values at indices 0..k-1; neighbouring rows unaffected."""
    for n in SPECIAL_LENGTHS:
        x = np.stack([base_row(n, dtype), np.full(n, -np.inf, dtype), base_row(n, dtype, 1)])
        for k in small_ks(n):
            values, indices = run_and_check(x, k, isa, context=f"{isa} all -inf n={n}")
            assert np.isnan(values[1]).all() and indices[1].tolist() == list(range(k))
            assert not np.isnan(values[[0, 2]]).any()


def test_negative_infinity_entries(isa, dtype):
    """-inf entries in a finite row: probability exactly 0, after every finite entry, in index
    order among themselves (a row with fewer than k finite entries ends with its first -inf)."""
    for n in SPECIAL_LENGTHS:
        if n < 2:
            continue
        spots = list(positions(n).values())
        # -inf at the named spots
        row = base_row(n, dtype)
        row[spots] = -np.inf
        for k in small_ks(n):
            values, indices = run_and_check(row, k, isa, context=f"{isa} -inf at {spots} n={n}")
        if n > len(spots):
            assert np.all(values[: n - len(spots)] > 0) and np.all(values[n - len(spots):] == 0)
            assert indices[n - len(spots):].tolist() == sorted(spots)
        # only a few finite entries, at the named spots; the rest -inf
        for few in sorted({1, 2, min(3, len(spots))}):
            row = np.full(n, -np.inf, dtype)
            finite_at = spots[:few]
            row[finite_at] = np.arange(few, dtype=dtype) - 1  # -1, 0, 1
            for k in small_ks(n):
                ctx = f"{isa} finite only at {finite_at} n={n} k={k}"
                values, indices = run_and_check(row, k, isa, context=ctx)
                m = min(k, few)
                assert indices[:m].tolist() == finite_at[::-1][:m], ctx
                assert indices[m:].tolist() == [i for i in range(n) if i not in finite_at][: k - m], ctx
                assert np.all(values[m:] == 0) and np.all(values[:m] > 0), ctx


def test_huge_finite_values(isa, dtype):
    """1e30 and the float maximum, positive and negative, at every spot: no overflow, no NaN."""
    big = float(np.finfo(dtype).max)
    for n in SPECIAL_LENGTHS:
        for where, i in positions(n).items():
            for value in (1e30, -1e30, big, -big):
                for second in (None, value, -value):
                    row = base_row(n, dtype)
                    row[i] = value
                    if second is not None and n > 1:
                        j = (i + n // 2 + 1) % n
                        row[j if j != i else (i + 1) % n] = second
                    for k in sorted({1, n}):
                        values, _ = run_and_check(row, k, isa, context=f"{isa} {value} at {where}, {second}, n={n}")
                        assert np.isfinite(values).all()
    row = np.array([big, big, 0.0, -big], dtype)
    values, indices = run_and_check(row, 4, isa, context="two maxima")
    assert indices.tolist() == [0, 1, 2, 3] and values.tolist() == [0.5, 0.5, 0.0, 0.0]


def test_one_element_rows(isa, dtype):
    """Rows of one element: exactly 1.0 at index 0 for every finite value and +inf; NaN for NaN
    and -inf."""
    big = float(np.finfo(dtype).max)
    finite = [0.0, -0.0, 1.0, -1.0, 1e30, -1e30, big, -big, float(np.finfo(dtype).smallest_subnormal), np.inf]
    x = np.array(finite + [np.nan, -np.inf], dtype).reshape(-1, 1)
    for xi, axis in ((x, -1), (np.ascontiguousarray(x.T), 0)):
        values, indices = run_and_check(xi, 1, isa, axis=axis, context=f"{isa} one-element axis {axis}")
        v, i = values.ravel(), indices.ravel()
        assert np.all(i == 0)
        assert np.all(v[: len(finite)] == 1.0), v
        assert np.isnan(v[len(finite):]).all()


def test_special_rows_among_ordinary_rows(isa, dtype):
    """A batch mixing every kind of special row with ordinary ones, with threads."""
    n = 777
    rng = np.random.default_rng([SEED, 8])
    x = rng.normal(0, 5, (40, n)).astype(dtype)
    x[3, 500] = np.nan
    x[7, [5, 700]] = np.inf
    x[11] = -np.inf
    x[12, ::3] = -np.inf
    x[13] = -np.inf
    x[13, [770, 3]] = [1.0, 1.0]
    x[17, 769] = float(np.finfo(dtype).max)
    x[21] = 0.5
    x[39, 776] = np.inf
    for k in (1, 3, 100, n):
        for threads in (1, 2):
            run_and_check(x, k, isa, num_threads=threads, context=f"{isa} mixed batch threads={threads}")


@pytest.mark.parametrize("n", [2, 3, 7, 8, 9, 31, 33, 64, 100, 255, 256])
def test_batches_of_short_rows(isa, n):
    """float32 batches of rows up to 256 with k up to 8 (run transposed, a row per SIMD lane, the
    k best chosen lane by lane): 70 rows, whole blocks of rows and a partial one, special rows and
    ties among them, every k up to 8, threads."""
    rng = np.random.default_rng([SEED, 11, n])
    x = rng.normal(0, 5, (70, n)).astype(np.float32)
    x[1, n // 2] = np.nan
    x[2, [0, n - 1]] = np.inf
    x[3] = -np.inf
    x[4, : n // 2] = -np.inf
    x[5, -1] = float(np.finfo(np.float32).max)
    x[6] = 0.5
    x[7] = np.round(x[7])  # ties
    x[8, ::2] = x[8].max()  # ties at the top
    x[9, 0], x[9, -1] = 0.0, -0.0
    for k in range(1, min(8, n) + 1):
        for threads in (1, 2):
            run_and_check(x, k, isa, num_threads=threads, context=f"{isa} n={n} k={k} threads={threads}")
        run_and_check(x, k, isa, sorted=False, context=f"{isa} n={n} k={k} unsorted")


# ---- 6. Layouts, threads and properties --------------------------------------------------------


def assert_same(a, b, context):
    np.testing.assert_array_equal(a[0], b[0], err_msg=f"{context}: values")
    np.testing.assert_array_equal(a[1], b[1], err_msg=f"{context}: indices")


def strided_views(dtype):
    """(name, view, axis) of a few strided and negative-stride layouts of random data with ties."""
    rng = np.random.default_rng([SEED, 9])
    base = rng.normal(0, 5, (40, 3 * 301)).astype(dtype)
    base[:, ::13] = 1.0
    cube = rng.normal(0, 5, (6, 70, 9)).astype(dtype)
    return [
        ("every third column", base[:, ::3], -1),
        ("every other row", base[::2, :301], -1),
        ("reversed row", base[:, ::-1], -1),
        ("reversed rows and columns", base[::-1, ::-2], -1),
        ("transposed", base.T, -1),
        ("transposed, axis 0", base.T, 0),
        ("column of a C array", base[:, :301], 0),
        ("Fortran order", np.asfortranarray(base[:, :301]), -1),
        ("3-D middle axis", cube, 1),
        ("3-D reversed middle axis", cube[:, ::-1], 1),
        ("3-D strided first axis", cube[::-2, ::3, ::2], 0),
    ]


def test_strided_views_match_contiguous_copies(isa, dtype):
    for name, view, axis in strided_views(dtype):
        n = view.shape[axis]
        for k in sorted({1, min(5, n), n}):
            for sorted_ in (True, False):
                got = fastsoftmax.softmax_topk(view, k, axis=axis, isa=isa, sorted=sorted_)
                want = fastsoftmax.softmax_topk(np.ascontiguousarray(view), k, axis=axis, isa=isa, sorted=sorted_)
                if sorted_ and dtype != np.float32:
                    assert_same(got, want, f"{isa} {name} k={k}")
                elif sorted_:  # float32 batches of short rows run other kernels: the same indices, both within the bound
                    np.testing.assert_array_equal(got[1], want[1], err_msg=f"{isa} {name} k={k}: indices")
                    check_topk(view, k, *want, axis=axis, sorted=sorted_, context=f"{isa} {name} contiguous")
                check_topk(view, k, *got, axis=axis, sorted=sorted_, context=f"{isa} {name}")


def unaligned(x: np.ndarray, offset: int) -> np.ndarray:
    """A copy of x whose data starts ``offset`` bytes past an aligned address."""
    buf = np.zeros(x.nbytes + 64, np.uint8)
    start = (-buf.ctypes.data) % 64 + offset
    view = buf[start:start + x.nbytes].view(x.dtype).reshape(x.shape)
    view[...] = x
    return view


def test_unaligned_inputs(isa, dtype):
    """Data not aligned to its element size (a byte-offset view) gives the aligned results."""
    x = np.random.default_rng([SEED, 10]).normal(0, 5, (5, 131)).astype(dtype)
    x[:, ::10] = 0.0
    for offset in (1, 2, 3, np.dtype(dtype).itemsize // 2):
        ux = unaligned(x, offset)
        assert not ux.flags.aligned
        np.testing.assert_array_equal(ux, x)
        for k in (1, 5, 131):
            assert_same(fastsoftmax.softmax_topk(ux, k, isa=isa), fastsoftmax.softmax_topk(x, k, isa=isa),
                        f"{isa} offset {offset} k={k}")
            assert_same(fastsoftmax.softmax_topk(ux[:, ::-2], k // 2 + 1, isa=isa),
                        fastsoftmax.softmax_topk(x[:, ::-2], k // 2 + 1, isa=isa), f"{isa} offset {offset} reversed")
        for k in (1, 5):  # along the strided axis 0
            assert_same(fastsoftmax.softmax_topk(ux, k, axis=0, isa=isa),
                        fastsoftmax.softmax_topk(x, k, axis=0, isa=isa), f"{isa} offset {offset} axis 0 k={k}")
        check_topk(ux, 5, *fastsoftmax.softmax_topk(ux, 5, isa=isa), context=f"{isa} unaligned")


def test_non_native_byte_order(isa, dtype):
    x = np.random.default_rng([SEED, 11]).normal(0, 5, (3, 100)).astype(dtype)
    swapped = x.astype(np.dtype(dtype).newbyteorder(">" if np.little_endian else "<"))
    for k in (1, 10, 100):
        values, indices = fastsoftmax.softmax_topk(swapped, k, isa=isa)
        assert values.dtype.isnative and values.dtype == np.dtype(dtype)
        assert_same((values, indices), fastsoftmax.softmax_topk(x, k, isa=isa), f"{isa} byte-swapped k={k}")


@functools.cache
def threads_input(dt) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """64 x 20000 (large enough to be shared between threads) with special rows and a tie in
    every row; its reference and expected order (computed once)."""
    x = np.random.default_rng([SEED, 12]).normal(0, 10, (64, 20000)).astype(dt)
    x[5, 100] = np.nan
    x[9, [3, 19999]] = np.inf
    x[10] = -np.inf
    x[:, 7] = 4.0
    return x, reference(x), expected_indices(x, x.shape[-1])


@pytest.mark.parametrize("dt", [np.float32, np.float64], ids=["f32", "f64"])
def test_threads_one_and_two_identical(isa, dt):
    """num_threads=1 and 2: identical results, and those of the reference."""
    x, ref, order = threads_input(dt)
    for k in (1, 50, 20000) if dt == np.float32 else (1, 50):
        one = fastsoftmax.softmax_topk(x, k, isa=isa, num_threads=1)
        two = fastsoftmax.softmax_topk(x, k, isa=isa, num_threads=2)
        assert_same(one, two, f"{isa} {np.dtype(dt)} threads k={k}")
        if k == 50:
            check_topk(x, k, *two, ref=ref, order=order, context=f"{isa} threads=2")
            unsorted = fastsoftmax.softmax_topk(x, k, isa=isa, num_threads=2, sorted=False)
            check_topk(x, k, *unsorted, sorted=False, ref=ref, order=order, context=f"{isa} threads=2 unsorted")


@functools.cache
def split_rows_input(dt, case: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three rows of 300000: with 2 threads each row is split in two slices (too few rows to share
    out whole; two rows would be, one per thread). The cases put the row's specials, its ties and
    its best entries in either slice. With the reference and the expected order (computed once)."""
    x = np.random.default_rng([SEED, 13]).normal(0, 3, (3, 300_000)).astype(dt)
    half = x.shape[1] // 2
    if case == "minus_inf_slice":  # a slice of nothing but -inf: declined there, fast as a whole
        x[:, :half] = -np.inf
    elif case == "ties_across_slices":  # equal maxima in both slices: the first slice's index wins
        x[:, [half - 1, half, 7, x.shape[1] - 1]] = 20.0
    elif case == "best_in_second_slice":
        x[:, half + 5 : half + 60] += 30.0
    elif case == "specials_in_second_slice":
        x[0, half + 11] = np.nan
        x[1, [half + 3, half + 99]] = np.inf
    elif case == "huge_in_second_slice":
        x[:, half + 1] = 1e30
    return x, reference(x), expected_indices(x, 300)


@pytest.mark.parametrize(
    "case", ["plain", "minus_inf_slice", "ties_across_slices", "best_in_second_slice", "specials_in_second_slice",
             "huge_in_second_slice"]
)
@pytest.mark.parametrize("dt", [np.float32, np.float64], ids=["f32", "f64"])
def test_split_rows_match_whole_rows(isa, dt, case):
    """Few long rows with 2 threads are split across them (a selector and a normalizer per slice,
    merged): the indices of the unsplit rows, the reference's values."""
    x, ref, order = split_rows_input(dt, case)
    for k, temperature in ((1, 1.0), (300, 1.0), (64, 0.6)):
        one = fastsoftmax.softmax_topk(x, k, isa=isa, num_threads=1, temperature=temperature)
        two = fastsoftmax.softmax_topk(x, k, isa=isa, num_threads=2, temperature=temperature)
        context = f"{isa} {np.dtype(dt)} {case} k={k} T={temperature}"
        np.testing.assert_array_equal(one[1], two[1], err_msg=context)
        if temperature == 1.0:
            check_topk(x, k, *two, ref=ref, order=order, context=f"{context} threads=2")
        else:  # the merged normalizer may round the last bit differently
            np.testing.assert_allclose(two[0], one[0], rtol=4 * np.finfo(dt).eps, err_msg=context)


def numpy_topk(x: np.ndarray, k: int, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """softmax_topk built from NumPy: np.argsort(-x, kind="stable"), NaN rows at 0..k-1, values
    from the extended-precision reference (in np.longdouble)."""
    rows = np.moveaxis(x, axis, -1)
    order = np.argsort(-rows, axis=-1, kind="stable")[..., :k]
    order[np.isnan(rows).any(axis=-1)] = np.arange(k)
    probs = np.take_along_axis(reference(rows), order, -1)
    return np.moveaxis(probs, -1, axis), np.moveaxis(order, -1, axis)


def element_strategy(dtype):
    width = 32 if dtype == np.float32 else 64
    info = np.finfo(dtype)
    # 1e30 as the dtype holds it: hypothesis refuses elements the array would round (NumPy < 1.24).
    huge = float(dtype(1e30))
    specials = [np.nan, np.inf, -np.inf, float(info.max), -float(info.max), huge, -huge, 0.0, -0.0,
                float(info.smallest_subnormal)]
    return st.one_of(
        st.integers(-3, 3).map(float),  # ties
        st.floats(-100, 100, width=width),
        st.floats(width=width, allow_nan=False, allow_infinity=False),
        st.sampled_from(specials),
    )


@st.composite
def cases(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    ndim = draw(st.integers(1, 2))
    shape = tuple(draw(st.lists(st.integers(1, 40), min_size=ndim, max_size=ndim)))
    axis = draw(st.integers(-ndim, ndim - 1))
    x = draw(hnp.arrays(dtype, shape, elements=element_strategy(dtype)))
    if draw(st.booleans()):  # mostly-special rows: few finite entries, many -inf or +inf
        x[x > 2] = draw(st.sampled_from([-np.inf, np.inf]))
    k = draw(st.integers(1, shape[axis]))
    return x, k, axis


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=cases(), isa=st.sampled_from(fastsoftmax.available_isas()), sorted_=st.booleans())
def test_matches_numpy_reference(case, isa, sorted_):
    x, k, axis = case
    values, indices = fastsoftmax.softmax_topk(x, k, axis=axis, isa=isa, sorted=sorted_)
    ref_values, ref_indices = numpy_topk(x, k, axis)
    assert values.shape == ref_values.shape and indices.dtype == np.int64
    if not sorted_:
        perm = np.argsort(indices, axis=axis)
        values = np.take_along_axis(values, perm, axis)
        indices = np.take_along_axis(indices, perm, axis)
        ref_perm = np.argsort(ref_indices, axis=axis)
        ref_values = np.take_along_axis(ref_values, ref_perm, axis)
        ref_indices = np.take_along_axis(ref_indices, ref_perm, axis)
    np.testing.assert_array_equal(indices, ref_indices, err_msg=f"x={x!r} k={k} axis={axis}")
    x_k = np.take_along_axis(x, ref_indices, axis)
    assert_matches_reference(values, x_k, axis=axis, ref=ref_values, bound=default_bound(x.dtype, False),
                             context=f"x={x!r} k={k} axis={axis} isa={isa}")
