"""Property-based tests: random shapes, axes, dtypes and values (NaN, ±inf, huge, tiny, subnormal)
against the extended-precision reference, for every algorithm and available ISA.

Bounds as in test_accuracy.py: float32 softmax 2 ULP, log_softmax 4 ulp(max(|ref|, 1)),
float64 SOFTMAX_ULP_F64 / LOG_ULP_F64; NaN positions and the special values exact.
"""

from __future__ import annotations

import fastsoftmax
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from reference import assert_matches_reference

MAX_ELEMENTS = 4000


def special_values(dtype) -> list[float]:
    info = np.finfo(dtype)
    # 1e30 as the dtype holds it: hypothesis refuses elements the array would round (NumPy < 1.24).
    huge = float(dtype(1e30))
    return [np.nan, np.inf, -np.inf, float(info.max), -float(info.max), huge, -huge, float(info.tiny),
            float(info.smallest_subnormal), -float(info.smallest_subnormal), 0.0, -0.0, 65536.0, -65536.0,
            -131072.0, 88.0, -104.0, 1e6, -1e6]


def element_strategy(dtype, mode: str):
    width = 32 if dtype == np.float32 else 64
    moderate = st.floats(-100, 100, width=width)
    if mode == "moderate":  # the kernels' fast path
        return moderate
    wide = st.floats(-1e5, 1e5, width=width)
    anything = st.floats(width=width, allow_nan=True, allow_infinity=True, allow_subnormal=True)
    if mode == "finite":  # huge and tiny values, no NaN/inf
        return st.one_of(moderate, wide, st.floats(width=width, allow_nan=False, allow_infinity=False))
    return st.one_of(moderate, moderate, wide, anything, st.sampled_from(special_values(dtype)))


@st.composite
def cases(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(0, 40), min_size=ndim, max_size=ndim)))
    if int(np.prod(shape)) > MAX_ELEMENTS:
        shape = shape[:-1] + (max(1, MAX_ELEMENTS // max(1, int(np.prod(shape[:-1])))),)
    axis = draw(st.integers(-ndim, ndim - 1))
    mode = draw(st.sampled_from(["moderate", "finite", "special"]))
    x = draw(hnp.arrays(dtype, shape, elements=element_strategy(dtype, mode)))
    return x, axis


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    case=cases(),
    algorithm=st.sampled_from(fastsoftmax.ALGORITHMS),
    isa=st.sampled_from(fastsoftmax.available_isas()),
    log=st.booleans(),
)
def test_matches_reference(case, algorithm, isa, log):
    """Any array, axis, dtype, algorithm and ISA: the reference with its special-value rules."""
    x, axis = case
    func = fastsoftmax.log_softmax if log else fastsoftmax.softmax
    y = func(x, axis=axis, algorithm=algorithm, isa=isa)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert_matches_reference(y, x, axis=axis, log=log, context=f"{func.__name__} {algorithm} {isa} axis={axis}")


@settings(max_examples=100, deadline=None)
@given(
    case=cases(),
    algorithm=st.sampled_from(fastsoftmax.ALGORITHMS),
    isa=st.sampled_from(fastsoftmax.available_isas()),
)
def test_range_of_outputs(case, algorithm, isa):
    """softmax lies in [0, 1] and log_softmax in [-inf, 0]: probabilities never exceed 1."""
    x, axis = case
    y = fastsoftmax.softmax(x, axis=axis, algorithm=algorithm, isa=isa)
    ok = np.isnan(y) | ((y >= 0) & (y <= 1))
    assert ok.all(), f"softmax outside [0, 1]: {y[~ok][:5]} for x={x[~ok][:5]}"
    y = fastsoftmax.log_softmax(x, axis=axis, algorithm=algorithm, isa=isa)
    ok = np.isnan(y) | (y <= 0)
    assert ok.all(), f"log_softmax > 0: {y[~ok][:5]} for x={x[~ok][:5]}"


@settings(max_examples=100, deadline=None)
@given(case=cases(), isa=st.sampled_from(fastsoftmax.available_isas()), log=st.booleans())
def test_algorithms_agree_on_specials(case, isa, log):
    """All algorithms give the same NaN positions and infinities."""
    x, axis = case
    func = fastsoftmax.log_softmax if log else fastsoftmax.softmax
    results = [func(x, axis=axis, algorithm=a, isa=isa) for a in fastsoftmax.ALGORITHMS[1:]]
    first = results[0]
    for other in results[1:]:
        np.testing.assert_array_equal(np.isnan(other), np.isnan(first))
        np.testing.assert_array_equal(np.isposinf(other), np.isposinf(first))
        np.testing.assert_array_equal(np.isneginf(other), np.isneginf(first))
