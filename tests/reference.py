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


# ---- Masks (where=), logsumexp and normalizer states (issue 15) -------------------------------
# logsumexp: |y - ref| <= LOGSUMEXP_ULP * ulp(max(|ref|, 1)) in the result dtype (log_error), i.e.
# within 2 ULP of the correctly rounded result or 2 ULP of max(|result|, 1) in absolute terms.
LOGSUMEXP_ULP = 2.0


def _as_ld_array(x) -> np.ndarray:
    """x as np.longdouble, exactly (16-bit types through float32, which holds them)."""
    x = np.asarray(x)
    if x.dtype.kind == "V" or x.dtype == np.float16:  # bfloat16 (ml_dtypes), float16
        x = x.astype(np.float32)
    return x.astype(LD)


def masked_reference(x, where, axis: int = -1, log: bool = False, temperature: float = 1.0):
    """``jax.nn.softmax(x / temperature, axis, where=where)`` (log_softmax) in np.longdouble.

    Returns ``(ref, x_masked)``: ``x_masked`` is ``x / temperature`` (in np.longdouble; shifted by
    the row's largest finite entry first, which changes nothing) with the
    masked entries replaced by -inf, the array to hand to ``assert_matches_reference`` as ``x``
    together with ``ref=ref`` (its exact-value rules then hold the masked entries, which must be
    exactly 0 / -inf, and the rows' unmasked special values). Rules: masked entries take no part
    and give 0 (log: -inf), whatever their value (NaN, +inf); a fully masked row gives 0 (log:
    -inf) everywhere; otherwise the unmasked entries follow ``reference`` (NaN rows, +inf
    entries sharing the mass, a row whose unmasked entries are all -inf is NaN there).
    """
    x = _as_ld_array(x)
    where = np.broadcast_to(np.asarray(where, dtype=bool), x.shape)
    with np.errstate(all="ignore"):
        xm = np.where(where, x, LD(-np.inf))
        if temperature != 1.0:
            # (x - m) / T rounded once, m the row's largest finite entry: x / T - m / T would carry
            # the rounding errors of both quotients (|x / T| ulp(1) each), ULPs of the result when
            # |x / T| is large; the shift does not change softmax, nor any special value.
            finite = np.where(np.isfinite(xm), xm, LD(-np.inf))
            if x.ndim == 0:
                m = np.where(np.isfinite(finite), finite, LD(0))
            else:
                m = np.max(finite, axis=axis, keepdims=True, initial=-np.inf)
                m = np.where(np.isfinite(m), m, LD(0))
            xm = (xm - m) / LD(temperature)
    if x.ndim == 0:
        ref = reference(xm, log=log)
    else:
        ref = reference(xm, axis, log=log)
    masked_value = LD(-np.inf) if log else LD(0)
    ref = np.where(where, ref, masked_value)
    return ref, xm


def _normalize_axes(axis, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if np.ndim(axis) == 0 else tuple(axis)
    return tuple(sorted({int(a) % ndim for a in axes}))


def logsumexp_reference(a, axis=None, b=None, keepdims: bool = False, where=None, temperature: float = 1.0):
    """``scipy.special.logsumexp(a / temperature, axis, b, keepdims, return_sign=True)`` with a
    mask, in np.longdouble: ``(value, sign)`` of ``log(|sum(b * exp(a / T))|)`` over the entries
    that take part (``where`` True and, SciPy's rule, ``b != 0``: a zero weight removes its entry,
    even a NaN or an infinity).

    - any NaN taking part: (NaN, NaN);
    - else +inf entries taking part: the sign of the sum of their weights; (+inf, that sign), or
      (NaN, NaN) when their weights cancel (inf - inf);
    - else nothing taking part, or only -inf: (-inf, 0) (an empty row included);
    - else ``m + log1p(S - 1)`` with m the largest entry and S = sum(b * exp(x - m)) (accurate
      when S is near 1, e.g. ``[0, -40]``); sign(S), and (-inf, 0) when S is exactly 0.
    Without return_sign the caller turns a negative sign into a NaN value (SciPy).
    """
    a = _as_ld_array(a)
    if a.ndim == 0:
        a = a.reshape(1)
        if b is not None:
            b = np.reshape(b, (1,)) if np.ndim(b) == 0 else b
        if where is not None:
            where = np.reshape(where, (1,)) if np.ndim(where) == 0 else where
        axis = None
    axes = _normalize_axes(axis, a.ndim)
    weights = np.broadcast_to(_as_ld_array(1.0 if b is None else b), a.shape)
    mask = np.broadcast_to(np.asarray(True if where is None else where, dtype=bool), a.shape)
    takes_part = mask & (weights != 0)
    kept = tuple(i for i in range(a.ndim) if i not in axes)
    order = kept + axes
    out_shape = tuple(a.shape[i] for i in kept)
    rows = int(np.prod(out_shape, dtype=np.int64))
    length = int(np.prod([a.shape[i] for i in axes], dtype=np.int64))

    def flat(v):
        return np.transpose(v, order).reshape(rows, length)

    t = LD(temperature)
    with np.errstate(all="ignore"):
        x = flat(a)  # divided by T after the shift by the maximum: (x - m) / T rounded once
        w = flat(weights)
        part = flat(takes_part)
        x = np.where(part, x, LD(-np.inf))
        w = np.where(part, w, LD(0))
        has_nan = np.any(np.isnan(x), axis=1)
        pos_inf = np.isposinf(x)
        inf_weight = np.sum(np.where(pos_inf, w, LD(0)), axis=1)
        has_inf = np.any(pos_inf, axis=1)
        m = np.max(x, axis=1, initial=-np.inf) if length else np.full(rows, LD(-np.inf))
        finite_m = np.isfinite(m)
        m_safe = np.where(finite_m, m, LD(0))
        terms = w * np.exp((x - m_safe[:, None]) / t)
        terms = np.where(np.isneginf(x), LD(0), terms)
        if length:
            first_max = np.argmax(x == m[:, None], axis=1)
            idx = (np.arange(rows), first_max)
            terms[idx] = np.where(finite_m, terms[idx] - 1, terms[idx])  # b_max * 1 - 1, exact
        s_minus_1 = np.sum(terms, axis=1)
        s = s_minus_1 + 1
        value = m_safe / t + np.log1p(np.where(s > 0, s_minus_1, -s - 1))  # log|S|
        sign = np.sign(s)
        value = np.where(s == 0, LD(-np.inf), value)
        # the special cases, last wins
        value = np.where(~finite_m, LD(-np.inf), value)
        sign = np.where(~finite_m, LD(0), sign)
        inf_sign = np.sign(inf_weight)
        value = np.where(has_inf, np.where(inf_weight != 0, LD(np.inf), LD(np.nan)), value)
        sign = np.where(has_inf, np.where(inf_weight != 0, inf_sign, LD(np.nan)), sign)
        value = np.where(has_nan, LD(np.nan), value)
        sign = np.where(has_nan, LD(np.nan), sign)
    value, sign = value.reshape(out_shape), sign.reshape(out_shape)
    if keepdims:
        full = tuple(1 if i in axes else a.shape[i] for i in range(a.ndim))
        value, sign = value.reshape(full), sign.reshape(full)
    return value, sign


def ulp_of_any(values, dtype) -> np.ndarray:
    """``ulp_of`` for bfloat16 (ml_dtypes) as well, without ``np.finfo`` / ``np.spacing`` of
    bfloat16, which NumPy < 1.24 does not have: ulp(|v|) for v rounded to bfloat16 (8
    significant bits; the subnormal spacing near 0; the spacing below the largest finite value
    at and beyond it), as np.longdouble."""
    dtype = np.dtype(dtype)
    if dtype.kind != "V":
        return ulp_of(values, dtype)
    import ml_dtypes

    info = ml_dtypes.finfo(dtype)
    with np.errstate(all="ignore"):
        rounded = np.abs(np.asarray(values).astype(np.float64)).astype(dtype).astype(np.float64)
        rounded = np.minimum(rounded, float(info.max) * (1 - 2.0**-9))  # in the largest binade
        _, exponent = np.frexp(rounded)  # rounded = m * 2^exponent, 0.5 <= m < 1
        ulp = np.ldexp(1.0, exponent - (info.nmant + 1))
        ulp = np.where(rounded < float(info.tiny), float(info.smallest_subnormal), ulp)
    return ulp.astype(LD)


def assert_log_close(y, ref, bound: float = LOGSUMEXP_ULP, context: str = "", slack=None, dtype=None) -> None:
    """y (a logarithm: logsumexp, log_softmax) equals ref where ref is NaN or infinite, and lies
    within ``bound`` ulp(max(|ref|, 1)) of it elsewhere (``log_error``), plus ``slack`` (an
    absolute allowance per element, for ill-conditioned sums of mixed signs). The ULPs are those
    of ``dtype`` (default: y's own; e.g. float32 for a float64 y computed from float32 data)."""
    y = np.asarray(y)
    ref = np.asarray(ref, dtype=LD)
    assert y.shape == ref.shape, f"{context}: shape {y.shape} != {ref.shape}"
    ulp_dtype = y.dtype if dtype is None else np.dtype(dtype)
    if y.dtype.kind == "V":  # bfloat16: compared as the float32 holding it (exactly)
        y = y.astype(np.float32)
    yl = y.astype(LD)

    def show(mask):
        idx = np.argwhere(mask)[:5].tolist() if y.ndim else "()"
        shown_y, shown_ref = yl[mask][:5].astype(float).tolist(), ref[mask][:5].astype(float).tolist()
        return f"{context}: at {idx}: y={shown_y} ref={shown_ref}"

    nan_ref, nan_y = np.isnan(ref), np.isnan(yl)
    assert np.array_equal(nan_ref, nan_y), "NaN mismatch " + show(nan_ref != nan_y)
    inf_ref = np.isinf(ref)
    bad = inf_ref & (yl != ref)
    assert not bad.any(), "infinity mismatch " + show(bad)
    finite = np.isfinite(ref)
    if not finite.any():
        return
    with np.errstate(all="ignore"):
        scale = ulp_of_any(np.maximum(np.abs(ref), LD(1)), ulp_dtype)
        err = np.abs(_as_ld(y, ref) - ref)
        allowed = bound * scale + (LD(0) if slack is None else np.asarray(slack, dtype=LD))
    bad = finite & ~(err <= allowed)
    if bad.any():
        ratio = np.where(bad, err / scale, LD(0))
        worst = np.unravel_index(int(np.argmax(ratio)), ratio.shape) if y.ndim else ()
        raise AssertionError(
            f"error {float(ratio[worst]):.3g} ulp(max(|ref|,1)) > {bound}"
            + ("" if slack is None else " + slack") + " " + show(bad))
