"""Special values, identical for every algorithm and ISA, softmax and log_softmax, float32/64.

- a NaN anywhere makes the whole row NaN (other rows unaffected);
- k entries of +inf get 1/k (log: -log(k)), the rest exactly 0 (log: -inf);
- a row of only -inf is NaN;
- -inf entries in a finite row give exactly 0 (log: -inf);
- huge finite values never overflow; tiny and subnormal values are handled to the ULP bounds.
"""

from __future__ import annotations

import itertools

import fastsoftmax
import numpy as np
import pytest
from reference import assert_matches_reference, reference

LENGTHS = (1, 2, 7, 33, 100, 1000)


def positions(n: int) -> dict[str, int]:
    """Start, middle and end of a row of n elements (deduplicated for short rows)."""
    named = {"start": 0, "middle": n // 2, "end": n - 1}
    seen, out = set(), {}
    for name, i in named.items():
        if i not in seen:
            seen.add(i)
            out[name] = i
    return out


def base_row(n: int, dtype, seed: int = 0) -> np.ndarray:
    """Ordinary finite values, reproducible per (n, seed)."""
    return np.random.default_rng([n, seed]).normal(0, 3, n).astype(dtype)


def run(func_name: str, x, **kwargs) -> np.ndarray:
    return getattr(fastsoftmax, func_name)(x, **kwargs)


def huge_values(dtype) -> list[float]:
    """Finite values far outside the kernels' fast range, for this dtype."""
    big = float(np.finfo(dtype).max)
    values = [1e30, -1e30, big, -big, 3e38, -3e38, 1e6, -1e6]
    if dtype == np.float64:
        values += [1e300, -1e300]
    return values


# ---- NaN ------------------------------------------------------------------------------------


def test_nan_makes_whole_row_nan(algorithm, isa, func_name, dtype):
    """One NaN at the start, middle or end: that row is all NaN, the other rows are unchanged."""
    for n in LENGTHS:
        before, after = base_row(n, dtype, 1), base_row(n, dtype, 2)
        # The same batch without the NaN (batches of short rows run other kernels than one row).
        expected_before, _, expected_after = run(
            func_name, np.stack([before, base_row(n, dtype), after]), algorithm=algorithm, isa=isa)
        for where, i in positions(n).items():
            row = base_row(n, dtype)
            row[i] = np.nan
            y = run(func_name, np.stack([before, row, after]), algorithm=algorithm, isa=isa)
            assert np.isnan(y[1]).all(), f"n={n}, NaN at {where}: {y[1][:8]}"
            np.testing.assert_array_equal(y[0], expected_before, err_msg=f"row before, n={n} {where}")
            np.testing.assert_array_equal(y[2], expected_after, err_msg=f"row after, n={n} {where}")


def test_nan_with_other_specials_is_nan(algorithm, isa, func_name, dtype):
    """NaN wins over +inf, -inf and huge values anywhere in the row."""
    big = np.finfo(dtype).max
    for n in LENGTHS:
        if n < 2:
            continue
        for nan_at, other_at in itertools.permutations(positions(n).values(), 2):
            for other in (np.inf, -np.inf, big, -big):
                row = base_row(n, dtype)
                row[nan_at], row[other_at] = np.nan, other
                y = run(func_name, row, algorithm=algorithm, isa=isa)
                assert np.isnan(y).all(), f"n={n} NaN at {nan_at}, {other} at {other_at}: {y[:8]}"


def test_all_nan_row(algorithm, isa, func_name, dtype):
    for n in LENGTHS:
        y = run(func_name, np.full(n, np.nan, dtype), algorithm=algorithm, isa=isa)
        assert np.isnan(y).all()


# ---- +inf -----------------------------------------------------------------------------------


def test_positive_infinity_shares_mass(algorithm, isa, func_name, dtype):
    """k = 1, 2, 3 entries of +inf mixed with finite, -inf and huge values: 1/k and 0 exactly."""
    log = func_name == "log_softmax"
    big = np.finfo(dtype).max
    for n in LENGTHS:
        spots = list(positions(n).values())
        for k in range(1, min(3, n) + 1):
            for inf_at in itertools.combinations(spots if len(spots) >= k else range(n), k):
                for filler in (None, -np.inf, big, -big, 1e30):
                    row = base_row(n, dtype, k)
                    if filler is not None and n > k:
                        # the filler at the first spot that is not +inf, and (long rows) one more
                        free = [i for i in range(n) if i not in inf_at]
                        row[free[0]] = filler
                        row[free[len(free) // 2]] = filler
                    row[list(inf_at)] = np.inf
                    y = run(func_name, row, algorithm=algorithm, isa=isa)
                    k_ld = np.longdouble(k)
                    at_inf = dtype(-np.log(k_ld)) if log else dtype(1 / k_ld)
                    elsewhere = dtype(-np.inf) if log else dtype(0)
                    expected = np.where(np.isposinf(row), at_inf, elsewhere).astype(dtype)
                    np.testing.assert_array_equal(
                        y, expected, err_msg=f"n={n} +inf at {inf_at} filler={filler} ({algorithm}, {isa})")
                    assert y.dtype == dtype


def test_all_positive_infinity(algorithm, isa, func_name, dtype):
    """A row of n +inf: 1/n each (log: -log(n))."""
    for n in LENGTHS:
        y = run(func_name, np.full(n, np.inf, dtype), algorithm=algorithm, isa=isa)
        ref = reference(np.full(n, np.inf, dtype), log=func_name == "log_softmax").astype(dtype)
        np.testing.assert_array_equal(y, ref, err_msg=f"n={n}")


# ---- -inf -----------------------------------------------------------------------------------


def test_all_negative_infinity_is_nan(algorithm, isa, func_name, dtype):
    for n in LENGTHS:
        y = run(func_name, np.full(n, -np.inf, dtype), algorithm=algorithm, isa=isa)
        assert np.isnan(y).all(), f"n={n}: {y[:8]}"


def test_negative_infinity_entries_give_zero(algorithm, isa, func_name, dtype):
    """-inf entries (one, or at start, middle and end together) give exactly 0 (log: -inf)."""
    log = func_name == "log_softmax"
    for n in LENGTHS:
        if n < 2:
            continue
        spots = positions(n)
        cases = [[i] for i in spots.values()] + [list(spots.values())[: n - 1]]
        for neg in cases:
            row = base_row(n, dtype)
            row[neg] = -np.inf
            y = run(func_name, row, algorithm=algorithm, isa=isa)
            expect = -np.inf if log else 0.0
            assert np.all(y[neg] == expect), f"n={n} -inf at {neg}: {y[neg]}"
            if not log:
                assert not np.signbit(y[neg]).any(), "softmax of -inf must be +0"
            assert_matches_reference(y, row, log=log, context=f"{func_name} n={n} -inf at {neg} {algorithm} {isa}")
            # the other entries equal the result for the row without its -inf entries
            rest = np.delete(row, neg)
            assert_matches_reference(np.delete(y, neg), rest, log=log, context=f"n={n} rest")


def test_negative_infinity_with_huge_values(algorithm, isa, func_name, dtype):
    """-inf next to huge finite values (outside the fast range) still gives exact 0 / -inf."""
    log = func_name == "log_softmax"
    for n in LENGTHS:
        if n < 3:
            continue
        for big in huge_values(dtype):
            row = base_row(n, dtype)
            row[0], row[n - 1] = -np.inf, big
            y = run(func_name, row, algorithm=algorithm, isa=isa)
            assert y[0] == (-np.inf if log else 0.0)
            assert_matches_reference(y, row, log=log, context=f"n={n} big={big} {algorithm} {isa}")


# ---- huge, tiny and subnormal values ---------------------------------------------------------


def test_huge_values_mixed_with_small(algorithm, isa, func_name, dtype):
    """Rows with 1e30, -1e30, ±max, ±3e38, ±1e6 among small values: no NaN/overflow, reference bounds."""
    log = func_name == "log_softmax"
    for n in LENGTHS:
        for big in huge_values(dtype):
            for where, i in positions(n).items():
                row = base_row(n, dtype)
                row[i] = big
                y = run(func_name, row, algorithm=algorithm, isa=isa)
                assert not np.isnan(y).any()
                if not log:
                    assert np.isfinite(y).all()
                assert_matches_reference(y, row, log=log, context=f"n={n} {big} at {where} {algorithm} {isa}")


def test_several_huge_values(algorithm, isa, func_name, dtype):
    """Rows mixing several huge values of both signs, including ties at the maximum."""
    log = func_name == "log_softmax"
    big = float(np.finfo(dtype).max)
    combos = [(big, big), (big, -big), (1e30, 1e30, -1e30), (3e38, 1e30, 2.5e38), (-big, -1e30, 5.0),
              (big, np.nextafter(dtype(big), dtype(0)))]
    for n in (3, 7, 33, 100, 1000):
        for combo in combos:
            row = base_row(n, dtype)
            row[np.linspace(0, n - 1, len(combo)).astype(int)] = combo
            y = run(func_name, row, algorithm=algorithm, isa=isa)
            assert_matches_reference(y, row, log=log, context=f"n={n} {combo} {algorithm} {isa}")


@pytest.mark.parametrize("value", [-1e6, 1e6, -1e30, 1e30, 65536.0, -65536.0, 70000.0, -70000.0, -131072.0, -2e5])
def test_constant_rows(algorithm, isa, func_name, dtype, value):
    """A constant row, in or far outside the fast range: 1/n each (log: -log(n)), to the bounds."""
    log = func_name == "log_softmax"
    for n in LENGTHS:
        row = np.full(n, value, dtype)
        y = run(func_name, row, algorithm=algorithm, isa=isa)
        assert_matches_reference(y, row, log=log, context=f"n={n} all {value} {algorithm} {isa}")


def test_two_float_max_give_one_half(algorithm, isa, func_name, dtype):
    """[max, max] -> [0.5, 0.5] exactly (log: -log 2 rounded)."""
    big = np.finfo(dtype).max
    y = run(func_name, np.array([big, big], dtype), algorithm=algorithm, isa=isa)
    expected = dtype(-np.log(np.longdouble(2))) if func_name == "log_softmax" else dtype(0.5)
    np.testing.assert_array_equal(y, np.array([expected, expected], dtype))


def test_fast_range_boundaries(algorithm, isa, func_name, dtype):
    """Maxima at and just beyond ±65536 (the kernels' fast range) and values near the input floor."""
    log = func_name == "log_softmax"
    edge = np.float32(65536.0)
    up, down = np.nextafter(edge, np.float32(np.inf)), np.nextafter(edge, np.float32(0))
    rows = [
        [edge, 0.0], [up, 0.0], [down, 0.0], [edge, edge - 10], [up, up - 10], [edge, up],
        [-edge, -edge - 10], [-up, -up - 10], [-down, -down - 5], [-edge, -131072.0], [-edge, -131073.0],
        [-edge, -2e5, -edge + 1], [0.0, -131072.0], [0.0, -131072.5], [0.0, -1e5], [edge, -edge],
        [90.0, 89.0, -1e4], [-65000.0, -65010.0, -65536.0, -131071.0],
    ]
    for values in rows:
        for n in (len(values), 33, 100):
            row = np.resize(np.array(values, dtype), n)
            y = run(func_name, row, algorithm=algorithm, isa=isa)
            assert_matches_reference(y, row, log=log, context=f"{values} n={n} {algorithm} {isa}")


def test_tiny_and_subnormal_inputs(algorithm, isa, func_name, dtype):
    """Inputs 1e-45, 1e-40, -1e-40, 0.0, -0.0 (subnormal in float32) match the reference."""
    log = func_name == "log_softmax"
    tiny = np.array([1e-45, 1e-40, -1e-40, 0.0, -0.0, 5e-324 if dtype == np.float64 else 1e-45], dtype)
    for n in LENGTHS:
        row = np.resize(tiny, n)
        y = run(func_name, row, algorithm=algorithm, isa=isa)
        assert_matches_reference(y, row, log=log, context=f"tiny n={n} {algorithm} {isa}")
        mixed = base_row(n, dtype)
        mixed[:: 2] = np.resize(tiny, mixed[::2].size)
        y = run(func_name, mixed, algorithm=algorithm, isa=isa)
        assert_matches_reference(y, mixed, log=log, context=f"tiny mixed n={n} {algorithm} {isa}")


def test_subnormal_outputs(algorithm, isa, func_name, dtype):
    """Outputs in the subnormal range (e.g. [0, -100] in float32) within 2 subnormal ULP."""
    log = func_name == "log_softmax"
    if dtype == np.float32:
        pairs, lo, hi = [[0.0, -100.0], [0.0, -87.5], [0.0, -103.0], [0.0, -104.0], [5.0, -98.0]], -80.0, -106.0
    else:
        pairs, lo, hi = [[0.0, -740.0], [0.0, -708.5], [0.0, -744.0], [3.0, -735.0]], -700.0, -746.0
    for pair in pairs:
        row = np.array(pair, dtype)
        y = run(func_name, row, algorithm=algorithm, isa=isa)
        assert_matches_reference(y, row, log=log, context=f"{pair} {algorithm} {isa}")
        if not log:
            assert y[1] != 0 or reference(row)[1] < float(np.finfo(dtype).smallest_subnormal) / 2
    # A ramp through the subnormal range in every lane position, with one maximum of 0.
    for n in (33, 100, 1000):
        row = np.linspace(lo, hi, n).astype(dtype)
        row[n // 3] = 0.0
        y = run(func_name, row, algorithm=algorithm, isa=isa)
        assert_matches_reference(y, row, log=log, context=f"ramp n={n} {algorithm} {isa}")
        # and with many entries near the maximum, so the sum is large
        row2 = row.copy()
        row2[: n // 4] = 0.0
        y = run(func_name, row2, algorithm=algorithm, isa=isa)
        assert_matches_reference(y, row2, log=log, context=f"ramp2 n={n} {algorithm} {isa}")


SINGLE_VALUES = (0.0, 1.0, 3.0, -3.0, 0.1, 100.0, -100.0, 1e4, 65536.0, -65536.0, 1e6, 1e30, -1e30, 3e38, -3e38, 1e-40)


def test_single_element_rows(algorithm, isa, func_name, dtype):
    """A row of one finite element (what a 0-d input is): softmax exactly 1, log_softmax exactly 0."""
    expected = 0.0 if func_name == "log_softmax" else 1.0
    x = np.array(SINGLE_VALUES, dtype).reshape(-1, 1)
    y = run(func_name, x, algorithm=algorithm, isa=isa).ravel()
    wrong = [f"[{v!r}] -> {r!r}" for v, r in zip(SINGLE_VALUES, y.tolist()) if r != expected]
    assert not wrong, f"{func_name} ({algorithm}, {isa}, {np.dtype(dtype)}): " + ", ".join(wrong)
