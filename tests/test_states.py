"""Mergeable normalizer states (issue 15, part 3): softmax_state, merge_states,
logsumexp_from_state, softmax_from_state and log_softmax_from_state.

A row is cut into shards (some empty, some of only -inf, with NaN or +inf, masked); each shard's
state (softmax_state), merged in order (merge_states), gives the row's state; the second pass on
each shard (softmax_from_state, log_softmax_from_state) and logsumexp_from_state must give what
one call on the whole row gives (softmax, log_softmax, logsumexp with the same where= and
temperature=):

- the same special values, bit for bit: NaN positions, the exact 0 / -inf of -inf and masked
  entries, fully masked rows, 1/k and 0 in rows with +inf;
- the other values within the library's bounds of the extended-precision reference
  (reference.py: softmax 2 ULP of the correctly rounded result, log_softmax 4 (float32) or 2
  (float64) ulp(max(|result|, 1)), logsumexp 2 ulp(max(|result|, 1))): the accuracy of one call;
  and within twice those bounds of the one-call result itself (both lie within the bound of the
  same correctly rounded value, so this is what the bound allows between them).

Merging is deterministic: the same states give the same bits (as a list or as a stacked array,
on any axis, in any order: merge_states merges in one canonical order); another grouping,
((a, b), c) against (a, (b, c)), agrees within the bounds and has the same special values.
States are plain float64 arrays: they pickle, and their layout is STATE_FIELDS = ("max", "sum",
"sum_low", "count", "temperature") (sum_low: the part of a float64 row's long double sum below
float64's precision). The tests find each field by its name in STATE_FIELDS.

Covered: the layout and each field (axes, dtypes, masks, temperature), the special states of the
contract, the merge rules on hand-made states, hypothesis property tests over random shardings
and values, every ISA with rows of 1..70 elements and longer (1000, 4097, 2^20 with two threads),
sharding along axis 0, out= and in place, and the errors (mismatched temperatures, a last axis
that is not the state's fields, a state that does not match x, non-float states).
"""

from __future__ import annotations

import itertools
import pickle

import fastsoftmax
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from reference import (
    EXTENDED,
    LD,
    LOGSUMEXP_ULP,
    assert_log_close,
    assert_matches_reference,
    default_bound,
    log_error,
    logsumexp_reference,
    masked_reference,
    ulp_error,
)

pytestmark = pytest.mark.usefixtures("fail_instead_of_hanging")

SEED = 20250117
FIELDS = fastsoftmax.STATE_FIELDS
NF = len(FIELDS)  # a state array's last axis
MAX, SUM, COUNT, TEMPERATURE = (FIELDS.index(name) for name in ("max", "sum", "count", "temperature"))
# The sum's low part (float64 rows keep their sums in long double: sum + sum_low), if the layout has one.
SUM_LOW = FIELDS.index("sum_low") if "sum_low" in FIELDS else None
SENTINEL = -12345.0


# ---- running a sharded row ----------------------------------------------------------------------


def shard_bounds(n: int, cuts) -> list[tuple[int, int]]:
    edges = [0] + sorted(cuts) + [n]
    return list(itertools.pairwise(edges))


def run_sharded(x, cuts, mask=None, temperature=1.0, isa="auto", num_threads=None, grouping=None):
    """softmax, log_softmax (along the last axis) and logsumexp of x's rows, shard by shard.

    grouping: None merges every state at once; "left" as ((s0, s1), s2, ...); "right" as
    (s0, (s1, s2, ...))."""
    bounds = shard_bounds(x.shape[-1], cuts)
    kwargs = {"isa": isa, "num_threads": num_threads}
    masks = [None if mask is None else mask[..., a:b] for a, b in bounds]
    states = [fastsoftmax.softmax_state(x[..., a:b], where=m, temperature=temperature, **kwargs)
              for (a, b), m in zip(bounds, masks)]
    if grouping == "left" and len(states) > 2:
        merged = fastsoftmax.merge_states([fastsoftmax.merge_states(states[:2])] + states[2:])
    elif grouping == "right" and len(states) > 2:
        merged = fastsoftmax.merge_states([states[0], fastsoftmax.merge_states(states[1:])])
    else:
        merged = fastsoftmax.merge_states(states)
    soft = [fastsoftmax.softmax_from_state(x[..., a:b], merged, where=m, **kwargs) for (a, b), m in zip(bounds, masks)]
    logs = [fastsoftmax.log_softmax_from_state(x[..., a:b], merged, where=m, **kwargs)
            for (a, b), m in zip(bounds, masks)]
    return {
        "states": states,
        "merged": merged,
        "softmax": np.concatenate(soft, axis=-1),
        "log_softmax": np.concatenate(logs, axis=-1),
        "logsumexp": np.asarray(fastsoftmax.logsumexp_from_state(merged)),
    }


def run_one_call(x, mask=None, temperature=1.0, isa="auto", num_threads=None):
    kwargs = {"isa": isa, "num_threads": num_threads, "temperature": temperature}
    if mask is not None:
        kwargs["where"] = mask
    return {
        "softmax": fastsoftmax.softmax(x, **kwargs),
        "log_softmax": fastsoftmax.log_softmax(x, **kwargs),
        "logsumexp": np.asarray(fastsoftmax.logsumexp(x, -1, **kwargs)),
    }


def exact_positions(x, mask, temperature):
    """Where the special-value rules fix the result: NaN or infinite reference, -inf or masked
    entries, rows with an unmasked +inf."""
    full = np.ones(x.shape, bool) if mask is None else np.broadcast_to(mask, x.shape)
    ref, xm = masked_reference(x, full, -1, False, temperature)
    row_pos_inf = np.any(np.isposinf(xm), axis=-1, keepdims=True)
    return ~np.isfinite(ref) | np.isneginf(xm) | row_pos_inf, ref, xm


def assert_sharded_matches(sharded, one, x, mask, temperature, context=""):
    """The sharded results against the one-call ones (specials exact, the rest within twice the bounds)
    and against the reference (the library's bounds)."""
    dtype = x.dtype
    exact, ref, xm = exact_positions(x, mask, temperature)
    full = np.ones(x.shape, bool) if mask is None else np.broadcast_to(mask, x.shape)
    log_ref, _ = masked_reference(x, full, -1, True, temperature)
    for name, log, reference_values in (("softmax", False, ref), ("log_softmax", True, log_ref)):
        got, want = sharded[name], one[name]
        shown_mask = None if mask is None else mask.tolist() if mask.size <= 24 else "..."
        ctx = f"{context} {name}: x={x.tolist() if x.size <= 24 else x.shape} mask={shown_mask} T={temperature}"
        assert got.shape == x.shape and got.dtype == dtype, f"{ctx}: {got.shape} {got.dtype}"
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"NaN positions {ctx}: {got} vs {want}")
        bad = exact & ~np.isnan(want) & (got != want)
        assert not bad.any(), (f"special values {ctx}: at {np.argwhere(bad)[:5].tolist()}: {got[bad][:5]} "
                               f"vs one call {want[bad][:5]}")
        finite = np.isfinite(want) & ~exact
        if finite.any():
            err = (log_error if log else ulp_error)(got[finite], want[finite].astype(LD))
            assert np.all(err <= 2 * default_bound(dtype, log)), (
                f"{ctx}: {float(np.max(err)):.3g} ULP from the one-call result at "
                f"{np.argwhere(finite)[int(np.argmax(err))].tolist()}: {got[finite][np.argmax(err)]!r} vs "
                f"{want[finite][np.argmax(err)]!r}")
        assert_matches_reference(got, xm, log=log, ref=reference_values, bound=default_bound(dtype, log),
                                 context=f"{ctx} vs reference")
    # logsumexp: float64 from the state; rounded to x's dtype, within twice the bound of the one-call
    # result; unrounded, within the bound of the reference in x's ULPs
    lse, want = sharded["logsumexp"], one["logsumexp"]
    assert lse.dtype == np.float64 and lse.shape == want.shape, f"{context}: logsumexp {lse.dtype} {lse.shape}"
    with np.errstate(over="ignore"):
        rounded = lse.astype(dtype)
    assert_log_close(rounded, want.astype(LD), bound=2 * LOGSUMEXP_ULP,
                     context=f"{context} logsumexp_from_state vs one call")
    lse_ref, _ = logsumexp_reference(x, -1, where=mask, temperature=temperature)
    assert_log_close(lse, lse_ref, bound=LOGSUMEXP_ULP, dtype=dtype,
                     context=f"{context} logsumexp_from_state vs reference")


def assert_states_equal(a, b, context=""):
    """Bit for bit (NaN where NaN, the sign of zeros too)."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype == np.float64, (
        f"{context}: {a.shape} {a.dtype} {b.shape} {b.dtype}")
    same = np.array_equal(a, b, equal_nan=True) and np.array_equal(np.signbit(a), np.signbit(b))
    assert same, f"{context}: {a.tolist()} != {b.tolist()}"


def make_state(max_, sum_, count, temperature) -> np.ndarray:
    """A state with these fields (sum_low 0)."""
    state = np.zeros(NF)
    state[[MAX, SUM, COUNT, TEMPERATURE]] = max_, sum_, count, temperature
    return state


def full_sum(states) -> np.ndarray:
    """sum + sum_low in np.longdouble (the sum a state stands for)."""
    states = np.asarray(states)
    total = states[..., SUM].astype(LD)
    return total if SUM_LOW is None else total + states[..., SUM_LOW].astype(LD)


def assert_fields(state, max_, sum_, count, temperature, context=""):
    """max, count and temperature exact; sum exact (NaN where NaN), its low part 0 or NaN with it."""
    state = np.asarray(state)
    np.testing.assert_array_equal(state[..., [MAX, SUM, COUNT, TEMPERATURE]], [max_, sum_, count, temperature],
                                  err_msg=f"{context}: state {state.tolist()} (fields {FIELDS})")
    if SUM_LOW is not None:
        low = state[..., SUM_LOW]
        assert np.all((low == 0) | np.isnan(sum_)), f"{context}: sum_low {low} of an exact sum"


# ---- layout -------------------------------------------------------------------------------------


def test_state_fields():
    """The documented layout: a float64 array whose last axis holds these fields, in this order."""
    assert fastsoftmax.STATE_FIELDS == ("max", "sum", "sum_low", "count", "temperature")
    assert fastsoftmax.softmax_state(np.ones((2, 3))).shape == (2, NF)
    for name in ("STATE_FIELDS", "softmax_state", "merge_states", "logsumexp_from_state", "softmax_from_state",
                 "log_softmax_from_state", "logsumexp"):
        assert name in fastsoftmax.__all__, name


@pytest.mark.parametrize("axis", [-1, 0, 1, 2, -2])
def test_state_layout(isa, dtype, axis):
    """Shape x.shape without axis + (fields,), float64; max in x's units, sum of
    exp((x - max) / T) (with its low part, the float64 rows' long double sum), count, temperature."""
    x = np.random.default_rng([SEED, 1]).normal(0, 4, (3, 5, 7)).astype(dtype)
    for temperature in (1.0, 0.5, 3.0):
        state = fastsoftmax.softmax_state(x, axis, temperature=temperature, isa=isa)
        expected_shape = tuple(np.delete(np.array(x.shape), axis)) + (NF,)
        assert state.shape == expected_shape and state.dtype == np.float64
        m = np.max(x, axis=axis).astype(np.float64)
        np.testing.assert_array_equal(state[..., MAX], m)  # not divided by T
        np.testing.assert_array_equal(state[..., COUNT], x.shape[axis])
        np.testing.assert_array_equal(state[..., TEMPERATURE], temperature)
        xl = np.moveaxis(x.astype(LD), axis, -1)
        expected_sum = np.sum(np.exp((xl - m.astype(LD)[..., None]) / LD(temperature)), axis=-1)
        rel = np.abs(full_sum(state) - expected_sum) / (expected_sum * LD(np.finfo(dtype).eps))
        assert np.all(rel <= 4), f"sum {float(rel.max()):.3g} eps off (T={temperature}, axis={axis})"
        if dtype == np.float64 and SUM_LOW is not None and EXTENDED:  # kept in long double
            rel = np.abs(full_sum(state) - expected_sum) / (expected_sum * LD(np.finfo(LD).eps))
            assert np.all(rel <= 16), f"sum + sum_low {float(rel.max()):.3g} long double eps off"
        assert np.all(state[..., SUM] >= 1)


def test_state_of_1d_and_empty(isa):
    state = fastsoftmax.softmax_state(np.float32([0.0, 0.0, -np.inf]), isa=isa)
    assert state.shape == (NF,) and state.dtype == np.float64
    assert_fields(state, 0.0, 2.0, 3.0, 1.0)
    assert_fields(fastsoftmax.softmax_state(np.empty(0), temperature=2.0, isa=isa), -np.inf, 0.0, 0.0, 2.0)
    states = fastsoftmax.softmax_state(np.empty((2, 0), np.float32), isa=isa)
    assert states.shape == (2, NF)
    for state in states:
        assert_fields(state, -np.inf, 0.0, 0.0, 1.0)
    assert fastsoftmax.softmax_state(np.empty((0, 5)), isa=isa).shape == (0, NF)


@pytest.mark.parametrize("temperature", [1.0, 0.25])
def test_special_states(isa, dtype, temperature):
    """The special states of the contract, exactly, for every length."""
    t = temperature
    for n in (1, 2, 3, 8, 16, 17, 33, 64, 100, 1000):
        def state(x, where=None):
            return fastsoftmax.softmax_state(np.asarray(x, dtype), where=where, temperature=t, isa=isa)

        assert_fields(state(np.full(n, -np.inf)), -np.inf, 0, n, t, f"n={n} all -inf")
        assert_fields(state(np.arange(n), where=np.zeros(n, bool)), -np.inf, 0, 0, t, f"n={n} all masked")
        assert_fields(state(np.full(n, np.nan), where=False), -np.inf, 0, 0, t, f"n={n} NaN, all masked")
        row = np.arange(n, dtype=np.float64) - n
        for k in range(1, min(n, 3) + 1):
            with_inf = row.copy()
            with_inf[np.linspace(0, n - 1, k).astype(int)] = np.inf
            assert_fields(state(with_inf), np.inf, k, n, t, f"n={n} {k} +inf")
            if n > k:  # with -inf and the largest finite value beside them
                free = np.flatnonzero(~np.isposinf(with_inf))
                with_inf[free[0]] = -np.inf
                with_inf[free[-1]] = np.finfo(dtype).max
                assert_fields(state(with_inf), np.inf, k, n, t, f"n={n} {k} +inf, -inf and max")
        for pos in sorted({0, n // 2, n - 1}):
            with_nan = row.copy()
            with_nan[pos] = np.nan
            if n > 1:
                with_nan[(pos + 1) % n] = np.inf
            s = state(with_nan)
            assert_fields(s, np.nan, np.nan, n, t, f"n={n} NaN at {pos}")
            mask = np.ones(n, bool)
            mask[pos] = False  # the NaN masked: not counted, no effect
            s = state(with_nan, where=mask)
            assert not np.isnan(s).any() and s[COUNT] == n - 1, f"n={n} masked NaN at {pos}: {s}"
        # one finite entry: max, count, temperature exact, sum 1 (>= 1, within the dtype's rounding)
        s = state(np.where(np.arange(n) == 0, 5.0, -np.inf))
        np.testing.assert_array_equal(s[[MAX, COUNT, TEMPERATURE]], [5.0, n, t])
        assert 1 <= s[SUM] <= 1 + np.finfo(dtype).eps, f"n={n}: sum {s[SUM]!r} for one finite entry"


# ---- merge rules --------------------------------------------------------------------------------


def test_merge_rules():
    """Hand-made states (max, sum, count, temperature): counts add, a NaN part makes the row NaN,
    +inf parts share the mass, empty and all -inf parts add nothing, finite parts rescale."""
    e = np.exp
    cases = [
        ([(1, 2, 3, 1), (3, 1.5, 2, 1)], (3, 2 * e(-2) + 1.5, 5, 1)),
        ([(1, 1, 1, 2), (3, 1, 1, 2)], (3, 1 + e(-1), 2, 2)),  # temperature 2: exp((1 - 3) / 2)
        ([(0, 1, 1, 1)], (0, 1, 1, 1)),  # one part: itself
        ([(np.nan, np.nan, 4, 1), (1, 1, 1, 1)], (np.nan, np.nan, 5, 1)),
        ([(1, 1, 1, 1), (np.inf, 2, 3, 1), (np.nan, np.nan, 2, 1)], (np.nan, np.nan, 6, 1)),
        ([(np.inf, 2, 5, 1), (np.inf, 1, 1, 1), (7, 3, 2, 1)], (np.inf, 3, 8, 1)),
        ([(np.inf, 2, 5, 1), (-np.inf, 0, 3, 1)], (np.inf, 2, 8, 1)),
        ([(-np.inf, 0, 0, 1), (-np.inf, 0, 4, 1)], (-np.inf, 0, 4, 1)),  # empty + all -inf
        ([(-np.inf, 0, 0, 1), (2, 1.25, 4, 1), (-np.inf, 0, 3, 1)], (2, 1.25, 7, 1)),
        ([(-np.inf, 0, 0, 0.5)] * 3, (-np.inf, 0, 0, 0.5)),
        ([(1e300, 1, 1, 1), (-1e300, 1, 1, 1)], (1e300, 1, 2, 1)),
    ]
    for parts, (m, total, count, t) in cases:
        states = np.stack([make_state(*p) for p in parts])
        merged = fastsoftmax.merge_states(states)
        assert merged.shape == (NF,) and merged.dtype == np.float64
        np.testing.assert_array_equal(merged[[MAX, COUNT, TEMPERATURE]], [m, count, t], err_msg=f"{parts}")
        np.testing.assert_allclose(float(full_sum(merged)), total, rtol=4e-16, err_msg=f"{parts}")
        # a list of states, one per part
        assert_states_equal(fastsoftmax.merge_states(list(states)), merged, f"{parts}")


def test_merge_axes():
    """Parts along any axis but the last; the result has that axis removed."""
    rng = np.random.default_rng([SEED, 2])
    x = rng.normal(0, 3, (4, 6, 30))
    parts = np.stack([fastsoftmax.softmax_state(x[..., i:i + 10]) for i in (0, 10, 20)])  # (3, 4, 6, NF)
    whole = fastsoftmax.merge_states(parts)
    assert whole.shape == (4, 6, NF)
    for axis in (1, 2, -3, -2):
        moved = np.moveaxis(parts, 0, axis)
        assert_states_equal(fastsoftmax.merge_states(moved, axis=axis), whole, f"axis={axis}")
    assert_states_equal(fastsoftmax.merge_states(parts, axis=-4), whole, "axis=-4")
    reference_state = fastsoftmax.softmax_state(x)
    fixed = [MAX, COUNT, TEMPERATURE]
    np.testing.assert_array_equal(whole[..., fixed], reference_state[..., fixed])
    np.testing.assert_allclose(full_sum(whole).astype(np.float64), full_sum(reference_state).astype(np.float64),
                               rtol=1e-14)


def test_merge_is_deterministic(isa):
    """The same states give the same bits: called again, as a list or a stacked array, on another
    axis, after pickling, and in any order (merge_states merges in one canonical order); another
    grouping agrees within rounding, with the same max and count."""
    rng = np.random.default_rng([SEED, 3])
    for dtype in (np.float32, np.float64):
        x = rng.normal(0, 10, (50, 4000)).astype(dtype)
        x[7, 3000:] = np.inf
        x[8, 100] = np.nan
        x[9, :2048] = -np.inf
        cuts = [0, 700, 701, 2048, 3999, 4000]
        states = [fastsoftmax.softmax_state(x[:, a:b], isa=isa) for a, b in shard_bounds(4000, cuts)]
        first = fastsoftmax.merge_states(states)
        again = [fastsoftmax.merge_states(states), fastsoftmax.merge_states(np.stack(states)),
                 fastsoftmax.merge_states(np.stack(states, axis=1), axis=1),
                 fastsoftmax.merge_states([pickle.loads(pickle.dumps(s)) for s in states])]
        for seed in range(3):
            order = np.random.default_rng(seed).permutation(len(states))
            again.append(fastsoftmax.merge_states([states[i] for i in order]))
        for i, other in enumerate(again):
            assert_states_equal(other, first, f"{dtype.__name__} same states #{i}")
        left = fastsoftmax.merge_states([fastsoftmax.merge_states(states[:3]), *states[3:]])
        right = fastsoftmax.merge_states([states[0], fastsoftmax.merge_states(states[1:])])
        fixed = [MAX, COUNT, TEMPERATURE]
        for other in (left, right):
            np.testing.assert_array_equal(other[:, fixed], first[:, fixed])
            np.testing.assert_allclose(full_sum(other).astype(np.float64), full_sum(first).astype(np.float64),
                                       rtol=8 * np.finfo(np.float64).eps)


def test_pickle_round_trip():
    x = np.array([[1.0, np.inf, 2.0], [np.nan, 0, 1], [-np.inf] * 3, [0.5, -3, 7]])
    state = fastsoftmax.softmax_state(x, temperature=0.5)
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        back = pickle.loads(pickle.dumps(state, protocol=protocol))
        assert_states_equal(back, state, f"protocol {protocol}")
        np.testing.assert_array_equal(fastsoftmax.softmax_from_state(x, back), fastsoftmax.softmax_from_state(x, state))
    # a state that travelled as a list of floats (JSON, MPI of Python objects) is the same state
    assert_states_equal(np.array(state.tolist()), state)


# ---- sharded = one call: property tests ----------------------------------------------------------


def element_strategy(dtype):
    width = 32 if dtype == np.float32 else 64
    info = np.finfo(dtype)
    specials = [np.nan, np.inf, -np.inf, float(info.max), -float(info.max), float(dtype(1e30)), 0.0, -0.0,
                float(info.tiny), 88.0, -104.0, 1e6, -1e6]
    return st.one_of(st.floats(-30, 30, width=width), st.floats(-30, 30, width=width),
                     st.floats(-1e4, 1e4, width=width), st.sampled_from(specials))


SHARD_KINDS = ["plain", "plain", "plain", "neg_inf", "nan", "pos_inf", "masked", "half_masked"]


@st.composite
def sharded_rows(draw):
    """(x of shape (rows, n), cuts, mask or None, temperature): shards that may be empty, of only
    -inf, hold NaN or +inf, be fully or partly masked; values moderate, wide and special."""
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rows = draw(st.integers(1, 3))
    n = draw(st.integers(0, 200))
    x = draw(hnp.arrays(dtype, (rows, n), elements=st.floats(-20, 20, width=32 if dtype == np.float32 else 64)))
    if n and draw(st.booleans()):  # some entries anywhere from the wide/special strategy
        spots = draw(st.lists(st.tuples(st.integers(0, rows - 1), st.integers(0, n - 1)), max_size=6))
        for r, i in spots:
            x[r, i] = draw(element_strategy(dtype))
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=6)))  # repeated cuts, 0 and n: empty shards
    use_mask = draw(st.booleans())
    mask = np.ones((rows, n), bool)
    for a, b in shard_bounds(n, cuts):
        kind = draw(st.sampled_from(SHARD_KINDS))
        r = draw(st.integers(-1, rows - 1))  # -1: every row
        sel = slice(None) if r < 0 else r
        if b == a:
            continue
        if kind == "neg_inf":
            x[sel, a:b] = -np.inf
        elif kind == "nan":
            x[sel, draw(st.integers(a, b - 1))] = np.nan
        elif kind == "pos_inf":
            x[sel, draw(st.integers(a, b - 1))] = np.inf
        elif kind == "masked":
            mask[sel, a:b] = False
            use_mask = True
        elif kind == "half_masked":
            mask[sel, a:b] = draw(hnp.arrays(bool, b - a))
            use_mask = True
    temperature = draw(st.sampled_from([1.0, 1.0, 0.5, 2.0, 0.1, 7.5]))
    return x, cuts, (mask if use_mask else None), temperature


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=sharded_rows(), isa=st.sampled_from(fastsoftmax.available_isas()))
def test_sharded_equals_one_call(case, isa):
    """Random shardings: states per shard, merged, second pass per shard = one call on the row."""
    x, cuts, mask, temperature = case
    sharded = run_sharded(x, cuts, mask, temperature, isa=isa)
    one = run_one_call(x, mask, temperature, isa=isa)
    assert_sharded_matches(sharded, one, x, mask, temperature, context=f"cuts={cuts} {isa}")
    # merging the same states again gives the same bits
    assert_states_equal(fastsoftmax.merge_states(sharded["states"]), sharded["merged"], "merged again")
    assert_states_equal(fastsoftmax.merge_states(np.stack(sharded["states"])), sharded["merged"], "stacked")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=sharded_rows(), isa=st.sampled_from(fastsoftmax.available_isas()))
def test_grouping_changes_only_rounding(case, isa):
    """((a, b), c, ...) against (a, (b, c, ...)): the same max and count, the same special values,
    results within the bounds of the reference (and so within twice those of each other)."""
    x, cuts, mask, temperature = case
    left = run_sharded(x, cuts, mask, temperature, isa=isa, grouping="left")
    right = run_sharded(x, cuts, mask, temperature, isa=isa, grouping="right")
    for m in (left["merged"], right["merged"]):
        fixed = [MAX, COUNT, TEMPERATURE]
        np.testing.assert_array_equal(m[..., fixed], left["merged"][..., fixed])
        np.testing.assert_array_equal(np.isnan(m[..., SUM]), np.isnan(left["merged"][..., SUM]))
    assert_sharded_matches(left, right, x, mask, temperature, context=f"left vs right, cuts={cuts} {isa}")
    one = run_one_call(x, mask, temperature, isa=isa)
    assert_sharded_matches(right, one, x, mask, temperature, context=f"right vs one call, cuts={cuts} {isa}")


# ---- sharded = one call: every ISA, lengths, threads, axes ----------------------------------------


LENGTHS = list(range(1, 71)) + [127, 128, 129, 1000, 4097]


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_every_length(isa, dtype, temperature):
    """Rows of every length, cut in 1 to 4 shards at random, with and without masks."""
    rng = np.random.default_rng([SEED, 4, np.dtype(dtype).itemsize])
    for n in LENGTHS:
        x = rng.normal(0, 6, (4, n)).astype(dtype)
        x[1, rng.integers(0, n)] = -np.inf
        x[2, : n // 3] = -np.inf
        cuts = sorted(rng.integers(0, n + 1, rng.integers(0, 4)).tolist())
        for mask in (None, rng.random((4, n)) < 0.7):
            sharded = run_sharded(x, cuts, mask, temperature, isa=isa)
            one = run_one_call(x, mask, temperature, isa=isa)
            assert_sharded_matches(sharded, one, x, mask, temperature, context=f"n={n} cuts={cuts} {isa}")


@pytest.mark.parametrize("num_threads", [1, 2])
def test_long_row(isa, num_threads):
    """A row of 2^20 float32 elements in 3 uneven shards (and whole), with two threads."""
    rng = np.random.default_rng([SEED, 5])
    x = rng.normal(0, 3, (1, 1 << 20)).astype(np.float32)
    for cuts in ([1000, 500000], []):
        sharded = run_sharded(x, cuts, isa=isa, num_threads=num_threads)
        one = run_one_call(x, isa=isa, num_threads=num_threads)
        assert_sharded_matches(sharded, one, x, None, 1.0, context=f"2^20 cuts={cuts} threads={num_threads} {isa}")


def test_many_rows_with_threads(isa):
    rng = np.random.default_rng([SEED, 6])
    x = rng.normal(0, 5, (400, 1500)).astype(np.float32)
    x[3, 100] = np.nan
    x[4, 200] = np.inf
    x[5, :] = -np.inf
    for threads in (1, 2):
        sharded = run_sharded(x, [700], isa=isa, num_threads=threads)
        one = run_one_call(x, isa=isa, num_threads=threads)
        assert_sharded_matches(sharded, one, x, None, 1.0, context=f"(400, 1500) threads={threads} {isa}")


def test_shards_along_axis_0(isa, dtype):
    """Rows along axis 0 (columns of a C array), shards of rows of the array."""
    rng = np.random.default_rng([SEED, 7])
    x = rng.normal(0, 4, (90, 13)).astype(dtype)
    x[5, 2] = np.nan
    x[:, 3] = -np.inf
    x[40, 4] = np.inf
    mask = rng.random((90, 13)) < 0.8
    mask[:, 6] = False
    parts = [(0, 30), (30, 30), (30, 89), (89, 90)]
    states = [fastsoftmax.softmax_state(x[a:b], axis=0, where=mask[a:b], temperature=1.5, isa=isa) for a, b in parts]
    assert all(s.shape == (13, NF) for s in states)
    merged = fastsoftmax.merge_states(states)
    soft = np.concatenate([fastsoftmax.softmax_from_state(x[a:b], merged, axis=0, where=mask[a:b], isa=isa)
                           for a, b in parts])
    logs = np.concatenate([fastsoftmax.log_softmax_from_state(x[a:b], merged, axis=0, where=mask[a:b], isa=isa)
                           for a, b in parts])
    lse = np.asarray(fastsoftmax.logsumexp_from_state(merged))
    sharded = {"softmax": soft.T, "log_softmax": logs.T, "logsumexp": lse}
    one = run_one_call(x.T, mask.T, 1.5, isa=isa)
    assert_sharded_matches(sharded, one, np.ascontiguousarray(x.T), mask.T, 1.5, context=f"axis 0 {isa}")


# ---- out= and the 16-bit types ------------------------------------------------------------------


def test_out_and_in_place(isa, dtype):
    rng = np.random.default_rng([SEED, 8])
    x = rng.normal(0, 3, (5, 40)).astype(dtype)
    state = fastsoftmax.merge_states([fastsoftmax.softmax_state(x[:, :25]), fastsoftmax.softmax_state(x[:, 25:])])
    for func in (fastsoftmax.softmax_from_state, fastsoftmax.log_softmax_from_state):
        expected = func(x[:, :25], state, isa=isa)
        out = np.full((5, 25), SENTINEL, dtype)
        assert func(x[:, :25], state, out=out, isa=isa) is out
        np.testing.assert_array_equal(out, expected)
        shard = x[:, :25].copy()
        assert func(shard, state, out=shard, isa=isa) is shard
        np.testing.assert_array_equal(shard, expected)


def test_float16_shards(isa):
    """A float16 shard's second pass is float16, and the sharded results match one call's."""
    rng = np.random.default_rng([SEED, 9])
    x = rng.normal(0, 3, (3, 100)).astype(np.float16)
    sharded = run_sharded(x, [30, 31], isa=isa)
    assert sharded["softmax"].dtype == np.float16 and sharded["log_softmax"].dtype == np.float16
    one = run_one_call(x, isa=isa)
    for name in ("softmax", "log_softmax"):
        wide, want = sharded[name].astype(np.float32), one[name].astype(np.float32)
        spacing = np.spacing(np.maximum(np.abs(one[name]), np.float16(1) if name == "log_softmax" else 0))
        assert np.all(np.abs(wide - want) <= spacing.astype(np.float32)), name


# ---- errors -------------------------------------------------------------------------------------


def test_merge_errors():
    good = np.stack([make_state(1, 1, 1, 1), make_state(2, 1, 1, 1)])
    with pytest.raises(ValueError):  # mismatched temperatures
        fastsoftmax.merge_states(np.stack([make_state(1, 1, 1, 1), make_state(2, 1, 1, 2)]))
    with pytest.raises(ValueError):
        fastsoftmax.merge_states([fastsoftmax.softmax_state(np.ones(3)),
                                  fastsoftmax.softmax_state(np.ones(3), temperature=0.5)])
    for bad_shape in ((2, NF - 1), (2, NF + 1), (2, 4, 3), (NF,), ()):  # not the fields last (or no parts axis)
        with pytest.raises(ValueError):
            fastsoftmax.merge_states(np.ones(bad_shape))
    for axis in (1, -1, 2, -3):  # the fields' axis, or out of range
        with pytest.raises(ValueError):
            fastsoftmax.merge_states(good, axis=axis)
    with pytest.raises(ValueError):  # states of different shapes
        fastsoftmax.merge_states([np.ones((2, NF)), np.ones((3, NF))])
    with pytest.raises(TypeError):  # not floating-point
        fastsoftmax.merge_states(good.astype(np.int64))


def test_from_state_errors():
    x = np.random.default_rng(1).normal(size=(3, 8))
    state = fastsoftmax.softmax_state(x)
    bad_states = {
        "rows": state[:2],
        "fields": state[:, :-1],
        "extra axis": state[None],
        "axis 0 shape": fastsoftmax.softmax_state(x, axis=0),
    }
    for func in (fastsoftmax.softmax_from_state, fastsoftmax.log_softmax_from_state):
        for name, bad in bad_states.items():
            out = np.full(x.shape, SENTINEL)
            with pytest.raises(ValueError):
                func(x, bad)
            with pytest.raises(ValueError):
                func(x, bad, out=out)
            assert np.all(out == SENTINEL), f"{func.__name__} {name}: out written"
        with pytest.raises(TypeError):  # states are float64
            func(x, state.astype(np.float32))
        with pytest.raises(TypeError):
            func(x, state, where=np.ones(8, np.int64))
        with pytest.raises(ValueError):
            func(x, state, where=np.ones(7, bool))
    with pytest.raises(ValueError):
        fastsoftmax.logsumexp_from_state(np.ones((3, NF + 1)))


@pytest.mark.parametrize("temperature, exc", [(0.0, ValueError), (-2.0, ValueError), (np.inf, ValueError),
                                              (np.nan, ValueError), ("1", TypeError)])
def test_state_bad_temperature(temperature, exc):
    with pytest.raises(exc):
        fastsoftmax.softmax_state(np.ones(3), temperature=temperature)
