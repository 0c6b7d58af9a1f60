"""Extended-precision reference softmax / log-softmax and error measures for the tests.

The reference computes in ``np.longdouble`` (x87 80-bit on x86-64 Linux: 64-bit significand) and
follows the library's special-value rules exactly:

- a NaN anywhere in a row: the whole row is NaN;
- k > 0 entries equal to +inf: those get 1/k (log: -log(k)), every other entry 0 (log: -inf);
- a row of only -inf: NaN;
- otherwise ``exp(x - max) / sum(exp(x - max))`` and ``(x - max) - log(sum)``, which gives
  exactly 0 (log: -inf) for -inf entries and never overflows.

Errors are measured in units in the last place (ULP) of the correctly rounded result: the spacing
of the reference rounded to the output dtype, the subnormal spacing for subnormal results.
"""

from __future__ import annotations

import numpy as np

LD = np.longdouble
# True where np.longdouble carries more precision than float64 (x86-64 Linux, aarch64 Linux);
# the float64 bounds below are only meaningful then.
EXTENDED = np.finfo(LD).nmant > np.finfo(np.float64).nmant

# ---- Bounds -------------------------------------------------------------------------------------
# float32 softmax: every output within this many ULP of the correctly rounded result.
SOFTMAX_ULP_F32 = 2.0
# float32 softmax over very long rows (1 << 20 elements).
SOFTMAX_ULP_F32_LONG = 4.0
# log_softmax: |y - ref| <= LOG_ULP * ulp(max(|ref|, 1)) (absolute error near 0, relative beyond).
LOG_ULP = 4.0
# float64 runs the scalar kernels in long double (64-bit significand) on every ISA. Measured on
# x86-64 over the rows of test_accuracy.py: softmax at most 1.38 ULP for three_pass_reload (it
# rounds exp(x - max) to double before scaling by 1/sum: about 1.5 ULP in the worst case) and
# 0.58 ULP for the others; log_softmax at most 0.68 ulp(max(|ref|, 1)). Bounds with margin:
SOFTMAX_ULP_F64 = 2.0
LOG_ULP_F64 = 2.0


def reference(x, axis: int = -1, log: bool = False) -> np.ndarray:
    """Softmax (or log-softmax) of ``x`` along ``axis`` in np.longdouble, special values included."""
    x = np.asarray(x)
    if x.ndim == 0:
        return reference(x.reshape(1), 0, log).reshape(())
    xl = np.moveaxis(x.astype(LD), axis, -1)
    if xl.size == 0:
        return np.moveaxis(np.empty(xl.shape, dtype=LD), -1, axis)
    with np.errstate(all="ignore"):
        m = np.max(xl, axis=-1, keepdims=True)  # NaN if the row has one
        shifted = xl - m  # NaN everywhere when m is -inf (a row of only -inf)
        total = np.sum(np.exp(shifted), axis=-1, keepdims=True)
        out = shifted - np.log(total) if log else np.exp(shifted) / total
        # Rows with +inf (and no NaN): the k +inf entries share the mass.
        pos_inf = np.isposinf(xl)
        k = np.sum(pos_inf, axis=-1, keepdims=True).astype(LD)
        has_nan = np.any(np.isnan(xl), axis=-1, keepdims=True)
        at_inf = -np.log(k) if log else 1 / k
        elsewhere = LD(-np.inf) if log else LD(0)
        out = np.where((k > 0) & ~has_nan, np.where(pos_inf, at_inf, elsewhere), out)
        out = np.where(has_nan, LD(np.nan), out)
    return np.moveaxis(out, -1, axis)


def ulp_of(values: np.ndarray, dtype) -> np.ndarray:
    """ulp(|v|) for v rounded to ``dtype`` (subnormal spacing near 0), as np.longdouble.

    Values at or beyond the largest finite number use the spacing just below it.
    """
    dtype = np.dtype(dtype)
    with np.errstate(all="ignore"):
        rounded = np.abs(np.asarray(values).astype(dtype))
        below_max = np.nextafter(np.finfo(dtype).max, dtype.type(0))
        return np.spacing(np.minimum(rounded, below_max)).astype(LD)


def _as_ld(y: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """y in np.longdouble, for comparing with a finite ref.

    An infinite y where ref is finite: if ref itself rounds to that infinity in y's dtype (it lies
    beyond the overflow threshold), y is correctly rounded and reads as ref; otherwise it reads as
    ±2^max_exp, the value just past the largest finite number.
    """
    y = np.asarray(y)
    yl = y.astype(LD)
    overflow = np.isinf(yl) & np.isfinite(ref)
    if np.any(overflow):
        with np.errstate(over="ignore"):
            correctly_rounded = overflow & (ref.astype(y.dtype) == y)
        edge = np.ldexp(LD(1), np.finfo(y.dtype).maxexp)
        yl = np.where(overflow, np.copysign(edge, yl), yl)
        yl = np.where(correctly_rounded, ref, yl)
    return yl


def ulp_error(y: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """|y - ref| in ULPs of the correctly rounded result (ref rounded to y's dtype).

    Only meaningful where ref is finite; NaN elsewhere.
    """
    y = np.asarray(y)
    ref = np.asarray(ref, dtype=LD)
    with np.errstate(all="ignore"):
        err = np.abs(_as_ld(y, ref) - ref) / ulp_of(ref, y.dtype)
    return np.where(np.isfinite(ref), err, LD(np.nan))


def log_error(y: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """|y - ref| in units of ulp(max(|ref|, 1)) in y's dtype (the log_softmax measure)."""
    y = np.asarray(y)
    ref = np.asarray(ref, dtype=LD)
    with np.errstate(all="ignore"):
        scale = ulp_of(np.maximum(np.abs(ref), LD(1)), y.dtype)
        err = np.abs(_as_ld(y, ref) - ref) / scale
    return np.where(np.isfinite(ref), err, LD(np.nan))


def default_bound(dtype, log: bool) -> float:
    """The accuracy bound (in the measure of ``ulp_error`` / ``log_error``) for a result dtype."""
    dtype = np.dtype(dtype)
    if dtype == np.float64:
        if not EXTENDED:  # the reference is no more precise than the kernels: no numeric check
            return float("inf")
        return LOG_ULP_F64 if log else SOFTMAX_ULP_F64
    if log:
        return LOG_ULP
    return SOFTMAX_ULP_F32


def assert_matches_reference(
    y: np.ndarray,
    x,
    axis: int = -1,
    log: bool = False,
    bound: float | None = None,
    context: str = "",
    ref: np.ndarray | None = None,
) -> None:
    """Assert y == softmax(x) (or log_softmax) with the special-value rules and the ULP bound.

    NaN positions must match; the values the special rules fix (±inf results, the 0 / -inf of
    -inf entries, every entry of a row containing +inf) must be met exactly; every other entry
    must lie within ``bound`` (default: ``default_bound``) of the extended-precision reference,
    in ULPs (softmax) or in ulp(max(|ref|, 1)) (log_softmax). ``ref``, if given, is
    ``reference(x, axis, log)`` computed beforehand (to check many results for one input).
    """
    x = np.asarray(x)
    y = np.asarray(y)
    assert y.shape == x.shape, f"{context}: shape {y.shape} != {x.shape}"
    if x.ndim == 0:  # a row of one element
        ref1 = None if ref is None else np.asarray(ref).reshape(1)
        return assert_matches_reference(y.reshape(1), x.reshape(1), 0, log, bound, context, ref1)
    if ref is None:
        ref = reference(x, axis, log)
    else:
        ref = np.asarray(ref, dtype=LD)
        assert ref.shape == x.shape, f"{context}: reference shape {ref.shape} != {x.shape}"
    if bound is None:
        bound = default_bound(y.dtype, log)

    def where(mask: np.ndarray) -> str:
        idx = np.argwhere(mask)[:5].tolist()
        flat_x = x if x.size <= 16 else f"array of shape {x.shape}"
        return (
            f"{context}: at indices {idx}: y={y[mask][:5].tolist()} ref={ref[mask][:5].astype(float).tolist()} "
            f"(x={flat_x})"
        )

    nan_ref, nan_y = np.isnan(ref), np.isnan(y)
    assert np.array_equal(nan_ref, nan_y), "NaN mismatch " + where(nan_ref != nan_y)
    # Values the special rules fix exactly: ±inf, the -inf entries of a row (0 or -inf), and every
    # entry of a row with +inf (1/k or 0; log: -log(k) or -inf).
    row_has_pos_inf = np.any(np.isposinf(x), axis=axis, keepdims=True)
    exact = ~nan_ref & (np.isinf(ref) | np.isneginf(x) | row_has_pos_inf)
    with np.errstate(over="ignore", invalid="ignore"):
        bad = exact & (y != ref.astype(y.dtype))
    assert not bad.any(), "special value not exact " + where(bad)
    measure = log_error if log else ulp_error
    # The bound applies where the reference is finite; the entries just checked to be exact are
    # within it by construction, so only the others are measured (cheaper for special rows).
    measured = np.isfinite(ref) & ~exact
    if measured.all():
        err = measure(y, ref)
    else:
        err = np.zeros(ref.shape, dtype=LD)
        err[measured] = measure(y[measured], ref[measured])
    bad = measured & ~(err <= bound)
    if bad.any():
        worst = np.unravel_index(np.nanargmax(np.where(measured, err, -1)), err.shape)
        raise AssertionError(
            f"error {float(err[worst]):.3g} > {bound} "
            + ("(log ulp of max(|ref|,1))" if log else "ULP")
            + f" at {tuple(int(i) for i in worst)}: y={y[worst]!r} ref={float(ref[worst])!r} "
            + where(bad)
        )


def max_error(y: np.ndarray, x, axis: int = -1, log: bool = False) -> float:
    """Largest error over the finite reference entries (0.0 if there are none)."""
    ref = reference(x, axis, log)
    err = (log_error if log else ulp_error)(y, ref)
    return float(np.nanmax(err)) if np.isfinite(ref).any() else 0.0


def float16_twin_algorithm(algorithm: str, isa: str) -> str:
    """The float32 algorithm whose result, rounded to float16, a 16-bit input gets: "auto" runs
    two_pass on 16-bit rows with the SIMD ISAs (never the reloading variant, which stores its
    terms in the 16-bit output)."""
    return "two_pass" if algorithm == "auto" and isa != "scalar" else algorithm


def assert_float16_matches(y: np.ndarray, expected: np.ndarray, algorithm: str, isa: str) -> None:
    """y (float16) equals expected (the float32 twin's result rounded to float16); the SIMD
    three_pass_reload rounds its stored terms to float16 first, so it may be 1 float16 ULP off."""
    if algorithm == "three_pass_reload" and isa != "scalar":
        wide, want = y.astype(np.float64), expected.astype(np.float64)
        same_specials = (np.isnan(wide) == np.isnan(want)).all() and (np.isinf(wide) == np.isinf(want)).all()
        finite = np.isfinite(want)
        ulps = np.abs(wide[finite] - want[finite]) / np.spacing(np.abs(expected[finite])).astype(np.float64)
        assert same_specials and (ulps <= 1).all(), f"max {ulps.max()} float16 ULP"
    else:
        np.testing.assert_array_equal(y, expected)
