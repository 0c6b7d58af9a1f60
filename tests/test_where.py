"""Masks (issue 15, part 2): ``where=`` on softmax, log_softmax, logsumexp, softmax_topk and
softmax_state, with ``jax.nn.softmax(x, where=where)``'s meaning.

Expected results come from ``masked_reference`` (reference.py), a NumPy/long-double rendering of
JAX's rules: masked entries take no part, whatever their value (a NaN or +inf there must not
leak), and give 0 (log_softmax: -inf); a fully masked row gives 0 everywhere (log_softmax -inf,
logsumexp -inf), never NaN; a row whose unmasked entries are all -inf gives NaN there (as a row
of only -inf without a mask) and 0 at the masked ones; the unmasked entries otherwise follow the
library's rules (a NaN makes them NaN, +inf entries share the mass) and its accuracy bounds
(reference.py: float32 softmax 2 ULP, log_softmax 4 ulp(max(|ref|, 1)), float64 2 / 2).

Covered:
1. every algorithm and ISA, softmax and log_softmax, float32 and float64, rows of 2..64 elements
   and long ones (1000, 4097, 70001), batches mixing random masks, fully masked rows, rows whose
   unmasked entries are all -inf, masked NaN/+inf/huge values, unmasked NaN and +inf;
2. masks of every broadcastable shape (full, (n,), (rows, 1), scalar True/False, a
   non-contiguous view), along the last axis and along axis 0; temperature; num_threads 2;
   float16/bfloat16 (the float32 computation rounded, as test_half.py);
3. in place (out=x) and out= views;
4. softmax_topk: masked entries rank below every unmasked one and have probability 0;
5. logsumexp and softmax_state with masks (fully masked rows: -inf; states (-inf, 0, 0, T));
6. errors: a non-boolean where (TypeError), one that does not broadcast to x (ValueError), for
   every function, and nothing written to out=.
"""

from __future__ import annotations

import functools

import fastsoftmax
import numpy as np
import pytest
from reference import (
    LD,
    assert_float16_matches,
    assert_log_close,
    assert_matches_reference,
    default_bound,
    float16_twin_algorithm,
    logsumexp_reference,
    masked_reference,
    ulp_error,
    ulp_of_any,
)

try:
    import ml_dtypes
except ImportError:  # pragma: no cover - ml_dtypes is in the [test] extra
    ml_dtypes = None

pytestmark = pytest.mark.usefixtures("fail_instead_of_hanging")

SEED = 20250116
SHORT_LENGTHS = list(range(2, 65))
LONG_LENGTHS = [1000, 4097, 70001]
FUNCS = {"softmax": fastsoftmax.softmax, "log_softmax": fastsoftmax.log_softmax}
SENTINEL = -12345.0


def check(y, x, where, axis=-1, log=False, temperature=1.0, context=""):
    """y against jax.nn.softmax(x / temperature, axis, where=where) (log_softmax)."""
    ref, xm = masked_reference(x, where, axis, log, temperature)
    assert y.shape == x.shape, f"{context}: shape {y.shape} != {x.shape}"
    assert_matches_reference(y, xm, axis=axis, log=log, ref=ref, context=context)


@functools.cache
def masked_batch(n: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    """(x, mask) of 10 rows of n: random masks, and the special rows (see below)."""
    rng = np.random.default_rng([SEED, n, np.dtype(dtype).itemsize])
    x = rng.normal(0, 5, (10, n)).astype(dtype)
    mask = rng.random((10, n)) < 0.6
    mask[:, 0] = True  # every row but the special ones keeps one entry
    mid, last = n // 2, n - 1
    mask[1] = False  # 1: fully masked
    x[2, :] = -np.inf  # 2: unmasked entries all -inf, masked ones finite
    x[2, ~mask[2]] = 3.0
    x[3, mid], x[3, last] = np.nan, np.inf  # 3: NaN and +inf masked: no effect
    mask[3, [mid, last]] = False
    mask[3, 0] = True
    x[4, 1] = np.inf  # 4: an unmasked +inf (and a masked one)
    mask[4, 1] = True
    x[4, last], mask[4, last] = np.inf, (n == 2)
    x[5, mid] = np.nan  # 5: an unmasked NaN
    mask[5, mid] = True
    x[6, 1:] = np.finfo(dtype).max  # 6: masked huge values above the unmasked ones
    mask[6, 1:] = False
    mask[6, last] = True
    mask[7] = True  # 7: nothing masked
    mask[8] = False  # 8: one entry, at the end, and masked -inf elsewhere
    mask[8, last] = True
    x[8, :last] = -np.inf
    x[9, ~mask[9]] = np.nan  # 9: NaN at every masked entry
    return x, mask


# ---- 1. every algorithm, ISA, length ------------------------------------------------------------


def test_short_and_long_rows(algorithm, isa, func_name, dtype):
    """Rows of 2..64 and long rows, with random masks and the special rows of masked_batch."""
    log = func_name == "log_softmax"
    lengths = SHORT_LENGTHS + (LONG_LENGTHS if dtype == np.float32 else LONG_LENGTHS[:2])
    for n in lengths:
        x, mask = masked_batch(n, dtype)
        y = FUNCS[func_name](x, where=mask, algorithm=algorithm, isa=isa)
        assert y.dtype == dtype
        check(y, x, mask, log=log, context=f"{func_name} n={n} {algorithm} {isa}")
        # one row at a time (the single-row kernels), the special ones
        for r in (1, 2, 3, 9):
            y = FUNCS[func_name](x[r], where=mask[r], algorithm=algorithm, isa=isa)
            check(y, x[r], mask[r], log=log, context=f"{func_name} row {r} n={n} {algorithm} {isa}")


def test_masked_specials_do_not_leak(algorithm, isa, func_name, dtype):
    """A masked NaN, +inf or huge value at the start, middle or end changes nothing: the unmasked
    entries get the result of the row without it, the masked one 0 (log -inf)."""
    log = func_name == "log_softmax"
    big = np.finfo(dtype).max
    for n in (2, 3, 7, 16, 17, 33, 64, 100, 1000):
        for pos in sorted({0, n // 2, n - 1}):
            for value in (np.nan, np.inf, big, -np.inf):
                x = np.random.default_rng([SEED, n]).normal(0, 3, n).astype(dtype)
                x[pos] = value
                mask = np.ones(n, bool)
                mask[pos] = False
                y = FUNCS[func_name](x, where=mask, algorithm=algorithm, isa=isa)
                assert y[pos] == (-np.inf if log else 0), f"n={n} {value} masked at {pos}: {y[pos]}"
                assert not np.isnan(y).any(), f"n={n} masked {value} at {pos} leaked: {y}"
                check(y, x, mask, log=log, context=f"{func_name} n={n} {value} masked at {pos} {algorithm} {isa}")


def test_fully_masked_and_all_negative_infinity_rows(algorithm, isa, func_name, dtype):
    """A fully masked row: 0 (log -inf), never NaN, whatever it holds. A row whose unmasked
    entries are all -inf: NaN at them, 0 (log -inf) at the masked ones."""
    log = func_name == "log_softmax"
    zero = -np.inf if log else 0.0
    for n in (1, 2, 5, 16, 31, 64, 1000):
        for fill in (0.0, np.nan, np.inf, -np.inf):
            x = np.full((3, n), fill, dtype)
            y = FUNCS[func_name](x, where=np.zeros((3, n), bool), algorithm=algorithm, isa=isa)
            np.testing.assert_array_equal(y, np.full((3, n), zero, dtype), err_msg=f"n={n} fill={fill}")
            y = FUNCS[func_name](x, where=False, algorithm=algorithm, isa=isa)
            np.testing.assert_array_equal(y, np.full((3, n), zero, dtype), err_msg=f"where=False n={n} fill={fill}")
        if n < 2:
            continue
        x = np.full(n, -np.inf, dtype)
        mask = np.arange(n) % 2 == 0
        x[~mask] = 1.0
        y = FUNCS[func_name](x, where=mask, algorithm=algorithm, isa=isa)
        assert np.isnan(y[mask]).all() and (y[~mask] == zero).all(), f"n={n}: {y}"


# ---- 2. mask shapes, axes, temperature, threads, 16-bit ---------------------------------------------


def masks_for(shape, axis):
    """Masks of every shape that broadcasts to ``shape`` (2-D), named."""
    rng = np.random.default_rng([SEED, *shape, axis % 2])
    rows, n = shape
    full = rng.random(shape) < 0.6
    full[0] = False  # a fully masked row (axis -1) / a masked first column-row
    return {
        "full": full,
        "last_axis": rng.random(n) < 0.6,
        "column": rng.random((rows, 1)) < 0.6,
        "ones_shape": np.ones((1, 1), bool),
        "scalar_True": True,
        "scalar_False": False,
        "np_bool": np.True_,
        "0d_array": np.array(False),
        "strided_view": (rng.random((rows * 2, n * 3)) < 0.6)[::2, ::-3],
        "transposed": np.ascontiguousarray(rng.random((n, rows)) < 0.6).T,
        "broadcast_view": np.broadcast_to(rng.random(n) < 0.6, shape),
    }


@pytest.mark.parametrize("axis", [-1, 0])
def test_mask_shapes(algorithm, isa, func_name, dtype, axis):
    """Every broadcastable mask shape, along the last axis and along axis 0 (the column kernels)."""
    log = func_name == "log_softmax"
    for shape in ((6, 37), (5, 64), (40, 9)):
        x = np.random.default_rng([SEED, *shape]).normal(0, 4, shape).astype(dtype)
        x[1, 2] = np.nan
        x[2, 3] = np.inf
        for name, mask in masks_for(shape, axis).items():
            y = FUNCS[func_name](x, axis=axis, where=mask, algorithm=algorithm, isa=isa)
            check(y, x, mask, axis=axis, log=log,
                  context=f"{func_name} {shape} axis={axis} mask {name} {algorithm} {isa}")


@pytest.mark.parametrize("temperature", [0.5, 2.0, 1e-3])
def test_temperature(isa, func_name, dtype, temperature):
    log = func_name == "log_softmax"
    for n in (2, 17, 64, 1000):
        x, mask = masked_batch(n, dtype)
        y = FUNCS[func_name](x, where=mask, temperature=temperature, isa=isa)
        check(y, x, mask, log=log, temperature=temperature, context=f"{func_name} T={temperature} n={n} {isa}")


def test_threads(isa, func_name):
    """A batch big enough for two threads (rows shared out) and a long row (split), masked."""
    log = func_name == "log_softmax"
    rng = np.random.default_rng([SEED, 77])
    for shape in ((300, 1000), (1, 1 << 19)):
        x = rng.normal(0, 5, shape).astype(np.float32)
        mask = rng.random(shape) < 0.5
        x[~mask & (rng.random(shape) < 0.01)] = np.nan  # NaN at some masked entries
        mask[0, : shape[1] // 2] = False
        for threads in (1, 2):
            y = FUNCS[func_name](x, where=mask, isa=isa, num_threads=threads)
            check(y, x, mask, log=log, context=f"{func_name} {shape} threads={threads} {isa}")


@pytest.mark.parametrize("name", ["float16", "bfloat16"])
def test_16_bit(algorithm, isa, func_name, name):
    """16-bit inputs with a mask: the float32 computation with the same mask, rounded."""
    if name == "bfloat16":
        if ml_dtypes is None:
            pytest.skip("bfloat16 needs ml_dtypes")
        dtype = np.dtype(ml_dtypes.bfloat16)
    else:
        dtype = np.dtype(np.float16)
    func = FUNCS[func_name]
    for n in (2, 7, 16, 33, 64, 129, 1000):
        x, mask = masked_batch(n, np.float32)
        x = np.where(np.abs(x) > 60000, np.sign(x) * 60000, x).astype(dtype)
        y = func(x, where=mask, algorithm=algorithm, isa=isa)
        assert y.dtype == dtype
        twin = func(x.astype(np.float32), where=mask, algorithm=float16_twin_algorithm(algorithm, isa), isa=isa)
        if dtype == np.float16:
            assert_float16_matches(y, twin.astype(dtype), algorithm if func_name == "softmax" else "", isa)
        else:
            wide, want = y.astype(np.float32), twin.astype(dtype).astype(np.float32)
            np.testing.assert_array_equal(np.isnan(wide), np.isnan(want), err_msg=f"n={n}")
            finite = np.isfinite(want)
            np.testing.assert_array_equal(wide[~finite & ~np.isnan(want)], want[~finite & ~np.isnan(want)])
            spacing = ulp_of_any(twin[finite], dtype)
            err = np.abs(wide[finite] - want[finite]).astype(LD)
            assert np.all(err <= spacing), f"bfloat16 n={n} {algorithm} {isa}"


# ---- 3. in place and out= ---------------------------------------------------------------------


def test_in_place(algorithm, isa, func_name, dtype):
    log = func_name == "log_softmax"
    for n in (2, 16, 33, 1000):
        x, mask = masked_batch(n, dtype)
        inout = x.copy()
        assert FUNCS[func_name](inout, where=mask, out=inout, algorithm=algorithm, isa=isa) is inout
        check(inout, x, mask, log=log, context=f"in place n={n} {algorithm} {isa}")
        # along axis 0 in place, a mask per column
        inout = x.T.copy()
        col_mask = mask[0]
        FUNCS[func_name](inout, axis=0, where=col_mask[:, None], out=inout, algorithm=algorithm, isa=isa)
        check(inout, x.T, col_mask[:, None], axis=0, log=log, context=f"in place axis 0 n={n}")


def test_out_view(isa, func_name):
    x, mask = masked_batch(40, np.float32)
    base = np.full((10, 80), SENTINEL, np.float32)
    out = base[:, ::2]
    FUNCS[func_name](x, where=mask, out=out, isa=isa)
    check(out, x, mask, log=func_name == "log_softmax", context="out a strided view")
    assert np.all(base[:, 1::2] == SENTINEL)


# ---- 4. softmax_topk ----------------------------------------------------------------------------


def check_topk(values, indices, x, mask, k, temperature=1.0, context="", sorted_=True):
    """Unmasked entries first, by decreasing x (lower index first among equals), their
    probabilities the masked reference's; then masked entries, with probability exactly 0."""
    ref, _ = masked_reference(x, mask, -1, False, temperature)
    mask = np.broadcast_to(mask, x.shape)
    bound = default_bound(values.dtype, False)
    x_ld = x.astype(np.float64) if x.dtype.kind == "V" else x
    for r in range(x.shape[0]):
        unmasked = int(mask[r].sum())
        take = min(k, unmasked)
        order = np.lexsort((np.arange(x.shape[1]), -x_ld[r].astype(np.float64), ~mask[r]))
        got_i, got_v = indices[r], values[r]
        ctx = f"{context} row {r}: indices {got_i.tolist()} values {got_v.tolist()} mask {mask[r].astype(int).tolist()}"
        if sorted_:
            np.testing.assert_array_equal(got_i[:take], order[:take], err_msg=ctx)
        else:
            assert set(got_i[mask[r][got_i]].tolist()) == set(order[:take].tolist()), ctx
        chosen_unmasked = mask[r][got_i]
        assert chosen_unmasked.sum() == take, "masked entries chosen ahead of unmasked ones " + ctx
        assert len(set(got_i.tolist())) == k and np.all((got_i >= 0) & (got_i < x.shape[1])), ctx
        assert np.all(got_v[~chosen_unmasked] == 0), "masked entries must have probability 0 " + ctx
        want = ref[r, got_i[chosen_unmasked]]
        got = got_v[chosen_unmasked]
        special = ~np.isfinite(want) | (want == 0) | np.isposinf(x_ld[r][mask[r]]).any()
        assert np.all(got[special] == want[special].astype(values.dtype)), "special values " + ctx
        err = ulp_error(got[~special], want[~special]) if (~special).any() else np.zeros(0)
        assert np.all(err <= bound), f"error {err.max()} ULP " + ctx


@functools.cache
def topk_batch(n: int, dtype):
    """Rows with masked maxima above every unmasked entry, ties between masked and unmasked
    entries, masked +inf/NaN, unmasked +inf, few unmasked entries, fully masked rows."""
    rng = np.random.default_rng([SEED, 5, n])
    x = rng.integers(-6, 7, (8, n)).astype(dtype)  # small integers: many ties
    mask = rng.random((8, n)) < 0.5
    x[1, : n // 2] = 100  # 1: masked maxima in front
    mask[1, : n // 2] = False
    x[2, ~mask[2]] = np.inf  # 2: masked +inf
    x[3, 0], mask[3, 0] = np.nan, False  # 3: a masked NaN
    x[4, n - 1], mask[4, n - 1] = np.inf, True  # 4: an unmasked +inf
    mask[5] = False  # 5: fully masked
    mask[6] = False  # 6: one unmasked entry, the smallest
    x[6, n // 2], mask[6, n // 2] = -50, True
    x[7] = rng.normal(0, 3, n).astype(dtype)  # 7: distinct values
    return x, mask


@pytest.mark.parametrize("k_kind", ["1", "2", "5", "half", "n"])
def test_softmax_topk(isa, dtype, k_kind):
    for n in (2, 3, 8, 16, 17, 31, 64, 100, 1000):
        k = {"1": 1, "2": 2, "5": 5, "half": max(1, n // 2), "n": n}[k_kind]
        if k > n:
            continue
        x, mask = topk_batch(n, dtype)
        values, indices = fastsoftmax.softmax_topk(x, k, where=mask, isa=isa)
        assert values.shape == indices.shape == (8, k) and values.dtype == dtype and indices.dtype == np.int64
        check_topk(values, indices, x, mask, k, context=f"n={n} k={k} {isa}")
        values, indices = fastsoftmax.softmax_topk(x, k, where=mask, isa=isa, sorted=False)
        check_topk(values, indices, x, mask, k, context=f"sorted=False n={n} k={k} {isa}", sorted_=False)
        values, indices = fastsoftmax.softmax_topk(x, k, where=mask, isa=isa, temperature=0.5)
        check_topk(values, indices, x, mask, k, temperature=0.5, context=f"T=0.5 n={n} k={k} {isa}")


def test_softmax_topk_mask_shapes_and_axes(isa):
    x, mask = topk_batch(40, np.float32)
    x = np.where(np.isnan(x), np.float32(50), x)  # other masks would leave the NaN unmasked
    for name, m in masks_for(x.shape, -1).items():
        values, indices = fastsoftmax.softmax_topk(x, 7, where=m, isa=isa)
        check_topk(values, indices, x, m, 7, context=f"mask {name} {isa}")
    # along axis 0: the same as the transposed problem
    values, indices = fastsoftmax.softmax_topk(x.T, 7, axis=0, where=mask.T, isa=isa)
    check_topk(values.T, indices.T, x, mask, 7, context=f"axis 0 {isa}")


def test_softmax_topk_threads(isa):
    rng = np.random.default_rng([SEED, 6])
    x = rng.normal(0, 3, (4, 200000)).astype(np.float32)
    mask = rng.random(x.shape) < 0.3
    x[0, ~mask[0]] += 100  # masked entries above all unmasked ones
    for threads in (1, 2):
        values, indices = fastsoftmax.softmax_topk(x, 10, where=mask, isa=isa, num_threads=threads)
        check_topk(values, indices, x, mask, 10, context=f"threads={threads} {isa}")


# ---- 5. logsumexp and softmax_state with masks --------------------------------------------------


def test_logsumexp_and_state(isa, dtype):
    """logsumexp with where= against the reference (fully masked rows -inf); softmax_state with
    where=: max and count of the unmasked entries, fully masked rows (-inf, 0, 0, T)."""
    for n in (2, 7, 16, 33, 64, 1000):
        x, mask = masked_batch(n, dtype)
        y = fastsoftmax.logsumexp(x, -1, where=mask, isa=isa)
        ref, _ = logsumexp_reference(x, -1, where=mask)
        assert_log_close(y, ref, context=f"logsumexp n={n} {isa}")
        assert y[1] == -np.inf
        state = fastsoftmax.softmax_state(x, where=mask, temperature=2.0, isa=isa)
        field = {name: state[:, i] for i, name in enumerate(fastsoftmax.STATE_FIELDS)}
        assert state.shape == (10, len(fastsoftmax.STATE_FIELDS)) and state.dtype == np.float64
        np.testing.assert_array_equal(field["count"], mask.sum(axis=1), err_msg=f"count n={n}")
        np.testing.assert_array_equal(field["temperature"], 2.0)
        with np.errstate(invalid="ignore"):
            unmasked_max = np.max(np.where(mask, x.astype(np.float64), -np.inf), axis=1)
        np.testing.assert_array_equal(field["max"], unmasked_max, err_msg=f"max n={n}")
        assert (field["max"][1], field["sum"][1], field["count"][1]) == (-np.inf, 0, 0)  # fully masked
        assert_log_close(fastsoftmax.logsumexp_from_state(state), logsumexp_reference(x, -1, where=mask,
                                                                                         temperature=2.0)[0],
                         dtype=dtype, context=f"logsumexp_from_state n={n} {isa}")


# ---- 6. errors ----------------------------------------------------------------------------------


def call(name, x, **kwargs):
    if name == "softmax_topk":
        return fastsoftmax.softmax_topk(x, 2, **kwargs)
    return getattr(fastsoftmax, name)(x, **kwargs)


ALL_FUNCS = ["softmax", "log_softmax", "logsumexp", "softmax_topk", "softmax_state"]
NOT_BOOLEAN = {
    "int": np.ones((3, 8), np.int64),
    "uint8": np.ones(8, np.uint8),
    "float": np.ones((3, 8)),
    "list_of_ints": [1, 0, 1, 1, 0, 1, 1, 1],
    "int_scalar": 1,
    "float_scalar": 1.0,
    "object": np.array([True] * 8, dtype=object),
}
NOT_BROADCASTABLE = {
    "wrong_length": np.ones(7, bool),
    "wrong_rows": np.ones((2, 8), bool),
    "transposed": np.ones((8, 3), bool),
    "too_many_dims": np.ones((2, 3, 8), bool),
}


@pytest.mark.parametrize("name", ALL_FUNCS)
@pytest.mark.parametrize("bad", list(NOT_BOOLEAN), ids=str)
def test_where_not_boolean_raises_type_error(name, bad):
    x = np.random.default_rng(1).normal(size=(3, 8))
    with pytest.raises(TypeError):
        call(name, x, where=NOT_BOOLEAN[bad])


@pytest.mark.parametrize("name", ALL_FUNCS)
@pytest.mark.parametrize("bad", list(NOT_BROADCASTABLE), ids=str)
def test_where_not_broadcastable_raises_value_error(name, bad):
    x = np.random.default_rng(1).normal(size=(3, 8))
    with pytest.raises(ValueError):
        call(name, x, where=NOT_BROADCASTABLE[bad])


@pytest.mark.parametrize("func_name_", ["softmax", "log_softmax"])
@pytest.mark.parametrize("bad", list(NOT_BOOLEAN) + list(NOT_BROADCASTABLE), ids=str)
def test_nothing_written_to_out_on_error(func_name_, bad):
    x = np.random.default_rng(1).normal(size=(3, 8))
    where = NOT_BOOLEAN.get(bad, NOT_BROADCASTABLE.get(bad))
    for out, kwargs in [(np.full((3, 8), SENTINEL), {}), (None, {})]:
        inout = x.copy()
        target = inout if out is None else out  # in place too: x must be left as it was
        with pytest.raises((TypeError, ValueError)):
            FUNCS[func_name_](inout, where=where, out=target, **kwargs)
        if out is None:
            np.testing.assert_array_equal(inout, x)
        else:
            assert np.all(out == SENTINEL)
    out = np.full(3, SENTINEL)
    with pytest.raises((TypeError, ValueError)):
        fastsoftmax.logsumexp(x, -1, where=where, out=out)
    assert np.all(out == SENTINEL)
