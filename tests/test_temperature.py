"""temperature=: softmax(x / T), log_softmax(x / T) and softmax_topk at temperature T, per
(algorithm, ISA).

The reference is the extended-precision one of reference.py applied to (x - max) / T computed
from x itself, never from x rounded to its dtype after the division: the shifted inputs are
carried as an unevaluated sum q + lo in np.longdouble (the error of the subtraction by TwoSum,
that of the division from an exact remainder by Dekker's product), so the reference is as exact
at every temperature as it is at temperature 1. Results must meet the temperature-1 bounds of
reference.py (float32 softmax 2 ULP, 4 for rows of 2^20; log_softmax 4 ulp(max(|ref|, 1));
float64 SOFTMAX_ULP_F64 / LOG_ULP_F64).

Covered:
1. accuracy for T in TEMPERATURES (float32 SIMD range and the scalar fallback outside
   [2^-20, 2^20], the two ends of that range too), float32 and float64, lengths 1..40 and around
   the SIMD blocks and tails up to 4097 and one row of 65536 (float32), inputs N(0, 1), N(0, 10),
   U[-100, 100] and T * N(0, 10) (x / T of moderate size at every T); rows where x / T is large
   (N(0, 10) at T = 0.01), rows whose maximum / T lies around the fast-range limit 2^16 (fast
   path below it, checked path above) and at extreme temperatures;
2. layouts with their own code paths: axis 0 of a C-contiguous (300, 37) float32 matrix (the
   column kernels, special columns included), strided axes, out= a strided view, in place, and a
   row of 2^20 floats split across 2 threads against 1 thread and the reference;
3. special values (NaN, +inf, -inf rows and entries, 1e30, the float maximum) at T != 1;
4. softmax_topk: indices independent of T (and those of temperature 1), values against the
   reference and against softmax(x, temperature=T) at the same indices;
5. argument errors (ValueError for T not finite and > 0, TypeError for non-numbers) and the
   accepted types (Python int, NumPy integer and floating scalars);
6. float16 inputs: the float32 result rounded to float16.
"""

from __future__ import annotations

import decimal
import functools
import zlib

import fastsoftmax
import numpy as np
import pytest
from reference import (
    LD,
    LOG_ULP,
    SOFTMAX_ULP_F32,
    SOFTMAX_ULP_F32_LONG,
    assert_float16_matches,
    assert_matches_reference,
    default_bound,
    float16_twin_algorithm,
    log_error,
    reference,
    ulp_error,
)

pytestmark = pytest.mark.usefixtures("fail_instead_of_hanging")

SEED = 20240923
FUNCS = {"softmax": fastsoftmax.softmax, "log_softmax": fastsoftmax.log_softmax}

# The float32 SIMD kernels cover [2^-20, 2^20]; outside it float32 runs the scalar kernels.
SIMD_TEMPERATURES = (1e-3, 0.1, 0.7, 1.0, 1.5, 10.0, 1e3)
SCALAR_TEMPERATURES = (2.0**-21, 2.0**21)
TEMPERATURES = SIMD_TEMPERATURES + SCALAR_TEMPERATURES

# Every length up to 40 (vector widths 8 and 16, blocks of 4 vectors, their tails), then around
# the blocks of 64, 128 and 256, and longer rows with a partial last block.
LENGTHS = list(range(1, 41)) + [63, 64, 65, 127, 128, 129, 255, 256, 257, 1000, 4097]
LONG_LENGTH = 65536  # one row per temperature (float32)

DISTRIBUTIONS = {
    "normal1": lambda rng, n, t: rng.normal(0, 1, n),
    "normal10": lambda rng, n, t: rng.normal(0, 10, n),
    "uniform100": lambda rng, n, t: rng.uniform(-100, 100, n),
    # x / T ~ N(0, 10) whatever T: many terms of the sum matter at every temperature
    "scaled10": lambda rng, n, t: t * rng.normal(0, 10, n),
}


def temperature_id(t: float) -> str:
    for k in (-21, -20, 20, 21):
        if t == 2.0**k:
            return f"2**{k}"
    return repr(t)


# ---- The reference at temperature T -----------------------------------------------------------

_SPLIT = LD(2.0**32 + 1)  # Veltkamp's splitter for np.longdouble's 64-bit significand


def _two_product(a: np.ndarray, b: LD) -> tuple[np.ndarray, np.ndarray]:
    """(p, e) with p = fl(a * b) and p + e = a * b exactly (Dekker), in np.longdouble."""
    def split(v):
        c = _SPLIT * v
        hi = c - (c - v)
        return hi, v - hi

    p = a * b
    a_hi, a_lo = split(a)
    b_hi, b_lo = split(b)
    return p, ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo


def reference_t(x, temperature: float, axis: int = -1, log: bool = False) -> np.ndarray:
    """softmax(x / T) (or log_softmax) along ``axis`` in np.longdouble, the special-value rules
    included, with (x - max) / T kept to about twice np.longdouble's precision."""
    x = np.asarray(x)
    if x.ndim == 0:
        return reference_t(x.reshape(1), temperature, 0, log).reshape(())
    xl = np.moveaxis(x, axis, -1).astype(LD)
    if xl.size == 0:
        return np.moveaxis(np.empty(xl.shape, dtype=LD), -1, axis)
    t = LD(temperature)
    with np.errstate(all="ignore"):
        m = np.max(xl, axis=-1, keepdims=True)
        # Rows with a finite maximum (no NaN, no +inf, not only -inf); the others follow rules that
        # do not depend on T.
        regular = np.isfinite(m)
        finite = np.isfinite(xl) & regular  # in regular rows, only -inf entries are not finite
        a = np.where(finite, xl, LD(0))
        b = -np.where(regular, m, LD(0))
        d = a + b  # TwoSum: d + d_err = x - max exactly
        bb = d - a
        d_err = (a - (d - bb)) + (b - bb)
        q = d / t
        p, p_err = _two_product(q, t)
        lo = (((d - p) - p_err) + d_err) / t  # (x - max) / T = q + lo (d - p is exact: Sterbenz)
        q = np.where(finite, q, LD(-np.inf))
        lo = np.where(finite, lo, LD(0))
        terms = np.where(finite, np.exp(q) * (1 + lo), LD(0))
        total = np.sum(terms, axis=-1, keepdims=True)
        out = (q - np.log(total)) + lo if log else terms / total
        out = np.where(finite, out, LD(-np.inf) if log else LD(0))
        if not regular.all():
            out = np.where(regular, out, reference(xl, log=log))
    return np.moveaxis(out, -1, axis)


def assert_matches(y, x, temperature: float, axis: int = -1, log: bool = False, bound: float | None = None,
                   context: str = "", ref: np.ndarray | None = None) -> None:
    """assert_matches_reference against the reference at temperature T."""
    if ref is None:
        ref = reference_t(x, temperature, axis, log)
    assert_matches_reference(y, x, axis=axis, log=log, bound=bound, ref=ref,
                             context=f"T={temperature_id(temperature)} {context}")


def test_reference_at_temperature_1_and_2():
    """Sanity of the helper: at T = 1 it is reference.py's reference, at T = 2 that of x / 2 (exact
    in float64), special rows included."""
    x = np.random.default_rng(SEED).normal(0, 30, (6, 50))
    x[1, 3], x[2, :], x[3, 7], x[4, 4:9], x[5, 0] = np.nan, -np.inf, np.inf, -np.inf, 1e300
    for log in (False, True):
        for temperature, expected in ((1.0, reference(x, log=log)), (2.0, reference(x / 2, log=log))):
            got = reference_t(x, temperature, log=log)
            finite = np.isfinite(expected)
            np.testing.assert_array_equal(got[~finite], expected[~finite])
            rel = np.abs(got[finite] - expected[finite]) / np.maximum(np.abs(expected[finite]), LD(1e-300))
            assert np.all(rel <= LD(2.0**-60)), (temperature, log, float(rel.max()))


def test_reference_is_exact_at_large_quotients():
    """Sanity of the helper: against a 60-digit decimal computation of softmax((x - max) / T) on
    rows with max / T near 2^16, the reference is within 0.01 ULP of float64 (a plain
    np.longdouble x / T is off by several ULP there)."""
    ctx = decimal.Context(prec=60)
    rng = np.random.default_rng([SEED, 3])
    for temperature in (0.01, 0.7, 3.0):
        x = (60000.0 - np.abs(rng.normal(0, 3, 40))) * temperature
        m = decimal.Decimal(float(x.max()))
        shifted = [ctx.divide(ctx.subtract(decimal.Decimal(float(v)), m), decimal.Decimal(temperature)) for v in x]
        terms = [ctx.exp(s) for s in shifted]
        total = sum(terms, decimal.Decimal(0))
        for log, exact in ((False, [ctx.divide(t, total) for t in terms]),
                           (True, [ctx.subtract(s, ctx.ln(total)) for s in shifted])):
            got = reference_t(x, temperature, log=log)
            for g, e in zip(got, exact):
                rel = abs(decimal.Decimal(np.format_float_scientific(g, unique=True)) - e) / max(abs(e), 1)
                assert rel <= decimal.Decimal(0.01 * 2.0**-52), (temperature, log, g, e)


# ---- 1. Accuracy -------------------------------------------------------------------------------


@functools.cache
def accuracy_rows(dtype_name: str, temperature: float):
    """One row per length and distribution for one dtype and T (and one of LONG_LENGTH for
    float32): (rows, their names, the rows concatenated, softmax and log_softmax references
    concatenated, the row of each element)."""
    dtype = np.dtype(dtype_name)
    rows, names = [], []
    for dist, make in DISTRIBUTIONS.items():
        rng = np.random.default_rng([SEED, zlib.crc32(dist.encode()), dtype.itemsize])
        for n in LENGTHS:
            rows.append(make(rng, n, temperature).astype(dtype))
            names.append(f"{dist} n={n}")
    if dtype == np.float32:
        rng = np.random.default_rng([SEED, 7])
        rows.append(DISTRIBUTIONS["scaled10"](rng, LONG_LENGTH, temperature).astype(dtype))
        names.append(f"scaled10 n={LONG_LENGTH}")
    for r in rows:
        r.flags.writeable = False
    ref = np.concatenate([reference_t(r, temperature) for r in rows])
    ref_log = np.concatenate([reference_t(r, temperature, log=True) for r in rows])
    row_of = np.repeat(np.arange(len(rows)), [r.size for r in rows])
    return rows, names, np.concatenate(rows), ref, ref_log, row_of


def check_row_set(func, rows, names, x_all, ref, row_of, temperature, bound=None, **kwargs) -> None:
    """Run ``func`` on every row at temperature T; every output within the bound of ``ref`` (the
    rows' references, concatenated)."""
    log = func is fastsoftmax.log_softmax
    ys = []
    for x in rows:
        y = func(x, temperature=temperature, **kwargs)
        assert y.dtype == x.dtype and y.shape == x.shape
        ys.append(y)
    y = np.concatenate(ys)
    if bound is None:
        bound = default_bound(y.dtype, log)
    assert np.all(np.isfinite(y) | np.isinf(ref)), (
        f"T={temperature_id(temperature)}: non-finite outputs in rows "
        f"{sorted({names[i] for i in row_of[~(np.isfinite(y) | np.isinf(ref))]})[:5]}")
    err = (log_error if log else ulp_error)(y, ref)
    bad = ~(err <= bound) & np.isfinite(ref)
    if bad.any():
        worst = int(np.argmax(np.where(np.isfinite(err), err, -1)))
        failing = sorted({names[i] for i in row_of[bad]})
        raise AssertionError(
            f"T={temperature_id(temperature)} {kwargs}: {bad.sum()} outputs in {len(failing)} rows exceed {bound}; "
            f"worst {float(err[worst]):.3f} in {names[row_of[worst]]} at element "
            f"{worst - int(np.searchsorted(row_of, row_of[worst]))}: x={x_all[worst]!r} y={y[worst]!r} "
            f"ref={float(ref[worst])!r}; failing rows: {failing[:8]}")


@pytest.mark.parametrize("temperature", TEMPERATURES, ids=temperature_id)
def test_accuracy(algorithm, isa, func_name, dtype, temperature):
    """Every length and distribution at T: within the temperature-1 bounds of the reference of
    softmax(x / T) (float32 softmax 2 ULP, log_softmax 4 ulp(max(|ref|, 1)), float64 likewise)."""
    rows, names, x_all, ref, ref_log, row_of = accuracy_rows(np.dtype(dtype).name, temperature)
    log = func_name == "log_softmax"
    check_row_set(FUNCS[func_name], rows, names, x_all, ref_log if log else ref, row_of, temperature,
                  algorithm=algorithm, isa=isa)


@functools.cache
def large_quotient_rows(dtype_name: str):
    """x ~ N(0, 10) at T = 0.01: x / T reaches about +-4000 (and the row maxima a few thousand)."""
    dtype = np.dtype(dtype_name)
    rng = np.random.default_rng([SEED, 11, dtype.itemsize])
    rows = [rng.normal(0, 10, n).astype(dtype) for n in (1, 2, 5, 8, 16, 17, 31, 33, 64, 100, 257, 1000, 4097)]
    rows += [rng.normal(0, 10, 4097).astype(dtype) for _ in range(3)]
    names = [f"N(0,10) n={r.size}" for r in rows]
    x_all = np.concatenate(rows)
    row_of = np.repeat(np.arange(len(rows)), [r.size for r in rows])
    refs = [np.concatenate([reference_t(r, 0.01, log=log) for r in rows]) for log in (False, True)]
    return rows, names, x_all, refs, row_of


def test_large_quotients(algorithm, isa, func_name, dtype):
    """x ~ N(0, 10) at T = 0.01 (x / T up to about +-4000): the temperature-1 bounds."""
    rows, names, x_all, refs, row_of = large_quotient_rows(np.dtype(dtype).name)
    log = func_name == "log_softmax"
    check_row_set(FUNCS[func_name], rows, names, x_all, refs[log], row_of, 0.01, algorithm=algorithm, isa=isa)


# Row maxima / T around the fast-range limit 2^16 (and well beyond), both signs, with x / T spread
# over a few units below the maximum so that every output depends on the exact x / T.
LIMIT_MULTIPLES = (30000.0, 60000.0, 65000.0, 65535.0, 65536.0, 65537.0, 66000.0, 70000.0, 131072.0, 200000.0, 1e6)
LIMIT_TEMPERATURES = (0.01, 0.7, 3.0, 2.0**-20, 2.0**-21)


@functools.cache
def limit_matrix(dtype_name: str, temperature: float, n: int):
    """Rows 4 i + 2 s + v: max / T about (-1)^s LIMIT_MULTIPLES[i], x / T spread over a few units
    (v = 0) or a few tens (v = 1) below it."""
    dtype = np.dtype(dtype_name)
    rng = np.random.default_rng([SEED, 13, n, dtype.itemsize])
    rows = []
    for c in LIMIT_MULTIPLES:
        for sign in (1.0, -1.0):
            rows.append((sign * c - np.abs(rng.normal(0, 3, n))) * temperature)
            rows.append(sign * c * temperature - np.abs(rng.normal(0, 30, n)) * temperature)
    x = np.array(rows).astype(dtype)
    x.flags.writeable = False
    return x, reference_t(x, temperature), reference_t(x, temperature, log=True)


@pytest.mark.parametrize("temperature", LIMIT_TEMPERATURES, ids=temperature_id)
def test_around_fast_range_limit(algorithm, isa, func_name, dtype, temperature):
    """Rows whose max / T lies below, at and beyond +-2^16 (the fast path below it, the checked
    path beyond): the temperature-1 bounds on every side."""
    log = func_name == "log_softmax"
    for n in (37, 300):
        x, ref, ref_log = limit_matrix(np.dtype(dtype).name, temperature, n)
        y = FUNCS[func_name](x, algorithm=algorithm, isa=isa, temperature=temperature)
        assert_matches(y, x, temperature, log=log, ref=ref_log if log else ref, context=f"{algorithm} {isa} n={n}")


EXTREME_TEMPERATURES = (5e-324, 1e-300, 1e-30, 1e30, 1e300, float(np.finfo(np.float64).max))


@pytest.mark.parametrize("temperature", EXTREME_TEMPERATURES, ids=repr)
def test_extreme_temperatures(algorithm, isa, func_name, dtype, temperature):
    """Any finite T > 0 is valid: tiny ones give (nearly) one-hot rows, huge ones uniform rows,
    within the bounds."""
    rng = np.random.default_rng([SEED, 17])
    x = rng.normal(0, 10, (4, 70)).astype(dtype)
    x[1, :] = np.round(x[1, :] / 10)  # ties: exact ties share the mass at any T
    x[2, :] = 0.0
    x[3, :] *= 1e-30
    log = func_name == "log_softmax"
    y = FUNCS[func_name](x, algorithm=algorithm, isa=isa, temperature=temperature)
    assert_matches(y, x, temperature, log=log, context=f"{algorithm} {isa}")


# ---- 2. Layouts with their own code paths -----------------------------------------------------

LAYOUT_TEMPERATURES = (0.05, 0.7, 4.0, 2.0**21)


@functools.cache
def column_matrix(temperature: float) -> np.ndarray:
    """(300, 37) float32 for softmax along axis 0: 37 columns = a block of 32 (AVX2) and a partial
    one, a partial block of 64 (AVX-512); a few columns the fast path declines."""
    rng = np.random.default_rng([SEED, 19])
    x = rng.normal(0, 10, (300, 37))
    x[:, 4] = temperature * rng.normal(0, 10, 300)  # x / T of moderate size
    x[:, 5] = 70000.0 * temperature - np.abs(rng.normal(0, 3, 300)) * temperature  # max / T beyond 2^16
    x[:, 6] = 65000.0 * temperature - np.abs(rng.normal(0, 3, 300)) * temperature  # just inside
    x[:, 7] = -65000.0 * temperature - np.abs(rng.normal(0, 3, 300)) * temperature
    x[17, 9] = np.nan
    x[299, 33] = np.nan  # the partial block
    x[[3, 200], 10] = np.inf
    x[:, 11] = -np.inf
    x[:, 12] = -np.inf
    x[150, 12] = 2.5
    x[[0, 100, 299], 13] = -np.inf
    x[42, 35] = 1e30
    x[43, 36] = float(np.finfo(np.float32).max)
    x = x.astype(np.float32)
    x.flags.writeable = False
    return x


@pytest.mark.parametrize("temperature", LAYOUT_TEMPERATURES, ids=temperature_id)
def test_columns_axis_0(algorithm, isa, func_name, temperature):
    """axis 0 of a C-contiguous (300, 37) float32 matrix (the column kernels): the bounds, special
    and checked columns included; num_threads 1 and 2."""
    x = column_matrix(temperature)
    log = func_name == "log_softmax"
    ref = reference_t(x, temperature, axis=0, log=log)
    for threads in (1, 2):
        y = FUNCS[func_name](x, axis=0, algorithm=algorithm, isa=isa, num_threads=threads, temperature=temperature)
        assert_matches(y, x, temperature, axis=0, log=log, ref=ref, context=f"{algorithm} {isa} threads={threads}")


# name -> (the view of a (40, 301) base, the axis)
STRIDED_VIEWS = {
    "[:, ::3] axis -1": (lambda a: a[:, ::3], -1),
    "[::-2, 1::2] axis 0": (lambda a: a[::-2, 1::2], 0),
    "T axis 0": (lambda a: a.T, 0),
    "[::3, ::-1].T axis 1": (lambda a: a[::3, ::-1].T, 1),
}


@functools.cache
def strided_base(dtype_name: str) -> np.ndarray:
    base = np.random.default_rng([SEED, 23]).normal(0, 10, (40, 301)).astype(dtype_name)
    base[5, 30] = np.inf
    base[7, 60] = np.nan
    base.flags.writeable = False
    return base


@functools.cache
def strided_reference(dtype_name: str, name: str, temperature: float, log: bool) -> np.ndarray:
    make_view, axis = STRIDED_VIEWS[name]
    return reference_t(make_view(strided_base(dtype_name)), temperature, axis=axis, log=log)


@pytest.mark.parametrize("temperature", LAYOUT_TEMPERATURES, ids=temperature_id)
def test_strided_out_and_in_place(algorithm, isa, func_name, dtype, temperature):
    """Strided last and non-last axes, out= a view with negative and step strides, and in place
    on the strided view itself (nothing outside the view written)."""
    log = func_name == "log_softmax"
    func = FUNCS[func_name]
    kwargs = {"algorithm": algorithm, "isa": isa, "temperature": temperature}
    base = strided_base(np.dtype(dtype).name)
    for name, (make_view, axis) in STRIDED_VIEWS.items():
        view = make_view(base)
        context = f"{algorithm} {isa} {name} shape={view.shape} strides={view.strides}"
        ref = strided_reference(np.dtype(dtype).name, name, temperature, log)
        y = func(view, axis=axis, **kwargs)
        assert_matches(y, view, temperature, axis=axis, log=log, ref=ref, context=context)
        buf = np.full((2 * view.shape[0], 3 * view.shape[1]), -7.0, dtype)
        out = buf[::2, ::-3]
        assert func(view, axis=axis, out=out, **kwargs) is out
        assert_matches(out, view, temperature, axis=axis, log=log, ref=ref, context=f"{context} out=")
        outside = np.ones(buf.shape, bool)
        outside[::2, ::-3] = False
        assert np.all(buf[outside] == -7.0), f"{context}: out= wrote outside the view"
        copy = base.copy()
        target = make_view(copy)
        assert func(target, axis=axis, out=target, **kwargs) is target
        assert_matches(target, view, temperature, axis=axis, log=log, ref=ref, context=f"{context} in place")
        mask = np.zeros(base.shape, bool)
        make_view(mask)[...] = True
        np.testing.assert_array_equal(copy[~mask], base[~mask], err_msg=f"{context}: in place wrote outside x")


@functools.cache
def long_row() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.random.default_rng([SEED, 29]).normal(0, 4, 1 << 20).astype(np.float32)
    x.flags.writeable = False
    return x, reference_t(x, 0.3), reference_t(x, 0.3, log=True)


def test_long_row_split_across_threads(algorithm, isa, func_name):
    """A row of 2^20 floats at T = 0.3 split across 2 threads: within the long-row bounds, as with
    1 thread, and close to the single-threaded result."""
    x, ref, ref_log = long_row()
    log = func_name == "log_softmax"
    bound = LOG_ULP if log else SOFTMAX_ULP_F32_LONG
    results = {}
    for threads in (1, 2):
        y = FUNCS[func_name](x, algorithm=algorithm, isa=isa, num_threads=threads, temperature=0.3)
        assert_matches(y, x, 0.3, log=log, bound=bound, ref=ref_log if log else ref,
                       context=f"{algorithm} {isa} num_threads={threads}")
        results[threads] = y
    # Split sums round differently: close to each other, not equal bit for bit (float32 check).
    scale = np.spacing(np.maximum(np.abs(results[1]), np.float32(1) if log else np.float32(0)))
    diff = float(np.max(np.abs(results[2] - results[1]) / scale))
    assert diff <= 2 * bound, f"num_threads=2 differs from num_threads=1 by {diff} ULP"


# ---- 3. Special values ------------------------------------------------------------------------

SPECIAL_TEMPERATURES = (0.01, 0.5, 3.0, 2.0**-21, 2.0**21)


def special_matrix(n: int, dtype) -> np.ndarray:
    """Rows of n elements with special values at the start, middle and end."""
    big = float(np.finfo(dtype).max)
    rng = np.random.default_rng([SEED, 31, n])
    base = rng.normal(0, 3, n)
    rows = [base.copy()]
    for i in sorted({0, n // 2, n - 1}):
        for value in (np.nan, np.inf, -np.inf, 1e30, -1e30, big, -big):
            row = base.copy()
            row[i] = value
            rows.append(row)
    row = base.copy()
    row[0], row[-1] = np.inf, np.inf  # two +inf: 1/2 each (one +inf when n == 1)
    rows.append(row)
    row = base.copy()
    row[0], row[-1] = np.inf, np.nan  # NaN wins
    rows.append(row)
    row = base.copy()
    row[0], row[-1] = -np.inf, np.inf
    rows.append(row)
    rows.append(np.full(n, -np.inf))  # only -inf: NaN
    row = np.full(n, -np.inf)
    row[n // 2] = 1.5  # only -inf but one
    rows.append(row)
    row = np.full(n, -np.inf)
    row[-1] = -big
    rows.append(row)
    rows.append(np.full(n, big))  # all equal huge: 1/n each
    row = base * 1e29  # huge spread
    rows.append(row)
    row = base.copy()
    row[: n // 2] = -np.inf
    rows.append(row)
    return np.array(rows).astype(dtype)


def test_special_values(algorithm, isa, func_name, dtype):
    """NaN rows are NaN, +inf entries share the mass, only -inf is NaN, -inf entries give 0
    (log: -inf), huge values never overflow: at every T, the other outputs within the bounds."""
    log = func_name == "log_softmax"
    for n in (1, 7, 33, 100):
        x = special_matrix(n, dtype)
        for temperature in SPECIAL_TEMPERATURES:
            y = FUNCS[func_name](x, algorithm=algorithm, isa=isa, temperature=temperature)
            assert_matches(y, x, temperature, log=log, context=f"{algorithm} {isa} n={n}")


def test_special_values_exact_at_any_temperature(func_name):
    """The fixed outputs do not depend on T: 1/k at the k +inf entries, exactly 0 for -inf."""
    x = np.float32([[1.0, np.inf, 3.0, np.inf, -np.inf], [1.0, -np.inf, 2.0, -np.inf, 0.0]])
    for temperature in (1e-3, 0.5, 7.0, 1e3, 2.0**21):
        y = FUNCS[func_name](x, temperature=temperature)
        if func_name == "softmax":
            np.testing.assert_array_equal(y[0], [0, 0.5, 0, 0.5, 0])
            assert y[1, 1] == 0 and y[1, 3] == 0
        else:
            np.testing.assert_array_equal(y[0], np.float32([-np.inf, -np.log(2), -np.inf, -np.log(2), -np.inf]))
            assert y[1, 1] == -np.inf and y[1, 3] == -np.inf
        assert_matches(y, x, temperature, log=func_name == "log_softmax")


# ---- 4. softmax_topk --------------------------------------------------------------------------

TOPK_TEMPERATURES = (1e-3, 0.1, 0.7, 1.5, 10.0, 1e3, 2.0**-21, 2.0**21)
TOPK_LENGTHS = (1, 5, 16, 17, 33, 64, 100, 257, 1000, 4097)


def expected_indices(rows: np.ndarray, k: int) -> np.ndarray:
    """Decreasing x, the lower index first among equal x; 0..k-1 for rows with NaN."""
    n = rows.shape[-1]
    order = np.lexsort((np.broadcast_to(np.arange(n), rows.shape), -rows), axis=-1)[..., :k]
    order[np.isnan(rows).any(axis=-1)] = np.arange(k)
    return order


def in_index_order(values: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    perm = np.argsort(indices, axis=-1)
    return np.take_along_axis(values, perm, -1), np.take_along_axis(indices, perm, -1)


@functools.cache
def topk_rows(dtype_name: str) -> list[np.ndarray]:
    dtype = np.dtype(dtype_name)
    rng = np.random.default_rng([SEED, 37, dtype.itemsize])
    out = []
    for n in TOPK_LENGTHS:
        x = np.concatenate([rng.normal(0, 10, (2, n)), rng.normal(0, 1, (1, n)), rng.integers(-3, 3, (1, n))])
        out.append(x.astype(dtype))
    return out


@pytest.mark.parametrize("temperature", TOPK_TEMPERATURES, ids=temperature_id)
def test_topk(isa, dtype, temperature):
    """Indices those of temperature 1 and of the order of x; values within the bound of the
    reference, and (float32) within 2 ULP of softmax(x, temperature=T) at the same indices."""
    for x in topk_rows(np.dtype(dtype).name):
        n = x.shape[-1]
        ref = reference_t(x, temperature)
        soft = fastsoftmax.softmax(x, isa=isa, temperature=temperature)
        for k in sorted({1, min(2, n), min(5, n), min(50, n), n}):
            context = f"{isa} T={temperature_id(temperature)} n={n} k={k}"
            values, indices = fastsoftmax.softmax_topk(x, k, isa=isa, temperature=temperature)
            assert values.dtype == x.dtype and indices.dtype == np.int64
            _, indices_1 = fastsoftmax.softmax_topk(x, k, isa=isa)
            np.testing.assert_array_equal(indices, indices_1, err_msg=f"{context}: indices depend on T")
            np.testing.assert_array_equal(indices, expected_indices(x, k), err_msg=f"{context}: wrong indices")
            x_k = np.take_along_axis(x, indices, -1)
            assert_matches(values, x_k, temperature, ref=np.take_along_axis(ref, indices, -1), context=context)
            if x.dtype == np.float32:
                soft_k = np.take_along_axis(soft, indices, -1)
                err = ulp_error(values, soft_k.astype(LD))
                assert np.all(err <= SOFTMAX_ULP_F32), (
                    f"{context}: topk values differ from softmax(x, temperature=T) by up to {float(err.max()):.3f} "
                    f"ULP (at {np.unravel_index(int(np.argmax(err)), err.shape)})")
            unsorted_v, unsorted_i = fastsoftmax.softmax_topk(x, k, isa=isa, temperature=temperature, sorted=False)
            (uv, ui), (sv, si) = in_index_order(unsorted_v, unsorted_i), in_index_order(values, indices)
            np.testing.assert_array_equal(ui, si, err_msg=f"{context}: sorted=False selects other entries")
            np.testing.assert_array_equal(uv, sv, err_msg=f"{context}: sorted=False gives other values")


@pytest.mark.parametrize("temperature", (0.01, 0.7, 2.0**-21), ids=temperature_id)
def test_topk_large_quotients_and_specials(isa, dtype, temperature):
    """Rows around the fast-range limit and with special values: indices by x alone, values by
    the reference (NaN rows: NaN with indices 0..k-1; +inf: 1/count; only -inf: NaN)."""
    for x in (limit_matrix(np.dtype(dtype).name, temperature, 37)[0], special_matrix(33, dtype)):
        ref = reference_t(x, temperature)
        for k in (1, 3, x.shape[-1]):
            context = f"{isa} T={temperature_id(temperature)} k={k}"
            values, indices = fastsoftmax.softmax_topk(x, k, isa=isa, temperature=temperature)
            np.testing.assert_array_equal(indices, expected_indices(x, k), err_msg=f"{context}: wrong indices")
            x_k = np.take_along_axis(x, indices, -1)
            nan_rows = np.isnan(x).any(axis=-1)
            ref_k = np.take_along_axis(ref, indices, -1)
            assert np.all(np.isnan(values[nan_rows])), f"{context}: NaN rows must give NaN values"
            assert_matches(values[~nan_rows], x_k[~nan_rows], temperature, ref=ref_k[~nan_rows], context=context)


def test_topk_axis_and_threads():
    """Along axis 0 and with 2 threads: the same results as along the last axis, 1 thread."""
    x = np.random.default_rng([SEED, 41]).normal(0, 10, (300, 2000)).astype(np.float32)
    v1, i1 = fastsoftmax.softmax_topk(x, 7, temperature=0.4, num_threads=1)
    v2, i2 = fastsoftmax.softmax_topk(x, 7, temperature=0.4, num_threads=2)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_array_equal(v1, v2)
    v0, i0 = fastsoftmax.softmax_topk(np.ascontiguousarray(x.T), 7, axis=0, temperature=0.4)
    np.testing.assert_array_equal(i0.T, i1)
    np.testing.assert_array_equal(v0.T, v1)


# ---- 5. Argument errors and accepted types ----------------------------------------------------

BAD_VALUES = [0, 0.0, -0.0, -1, -1e-3, -np.inf, np.inf, np.nan, np.float32(0), np.float64(-2.0), np.float32(np.nan),
              np.float64(np.inf), np.int64(0), np.int32(-3), -(2**70)]
BAD_TYPES = ["1.0", "", None, [1.0], (2.0,), 1 + 0j, np.complex128(1), True, False, np.bool_(True),
             np.array([1.0]), object()]


def call(name: str, x, temperature, **kwargs):
    if name == "softmax_topk":
        return fastsoftmax.softmax_topk(x, 2, temperature=temperature, **kwargs)
    return getattr(fastsoftmax, name)(x, temperature=temperature, **kwargs)


ALL_FUNCS = ["softmax", "log_softmax", "softmax_topk"]


@pytest.mark.parametrize("value", BAD_VALUES, ids=repr)
@pytest.mark.parametrize("name", ALL_FUNCS)
def test_bad_temperature_value_raises(name, value):
    """0, negative, NaN and infinite temperatures raise ValueError; out= is not written."""
    for x in (np.float32([1, 2, 3]), np.float64([[1, 2], [3, 4]]), [1.0, 2.0], np.float16([1, 2])):
        with pytest.raises(ValueError, match="temperature"):
            call(name, x, value)
    if name != "softmax_topk":
        x = np.float32([1, 2, 3])
        out = np.full(3, -5.0, np.float32)
        with pytest.raises(ValueError, match="temperature"):
            call(name, x, value, out=out)
        assert np.all(out == -5.0)
        with pytest.raises(ValueError, match="temperature"):
            call(name, x, value, out=x)
        np.testing.assert_array_equal(x, [1, 2, 3])


@pytest.mark.parametrize("value", BAD_TYPES, ids=repr)
@pytest.mark.parametrize("name", ALL_FUNCS)
def test_bad_temperature_type_raises(name, value):
    """Non-numbers (str, None, sequences, complex, bool) raise TypeError."""
    for x in (np.float32([1, 2, 3]), np.float64([[1, 2], [3, 4]])):
        with pytest.raises(TypeError, match="temperature"):
            call(name, x, value)
    if name != "softmax_topk":
        out = np.full(3, -5.0, np.float32)
        with pytest.raises(TypeError, match="temperature"):
            call(name, np.float32([1, 2, 3]), value, out=out)
        assert np.all(out == -5.0)


ACCEPTED = [2, np.int64(2), np.int32(2), np.uint8(2), np.float64(2.0), np.float32(2.0), np.float16(2.0), 2.0]


@pytest.mark.parametrize("value", ACCEPTED, ids=lambda v: f"{type(v).__name__}({v})")
@pytest.mark.parametrize("name", ALL_FUNCS)
def test_accepted_temperature_types(name, value):
    """Python int and NumPy integer and floating scalars: the result of the same float."""
    for x in (np.random.default_rng(1).normal(0, 3, (3, 50)).astype(np.float32),
              np.random.default_rng(2).normal(0, 3, 50)):
        got = call(name, x, value)
        expected = call(name, x, 2.0)
        if name == "softmax_topk":
            np.testing.assert_array_equal(got[0], expected[0])
            np.testing.assert_array_equal(got[1], expected[1])
        else:
            np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("name", ALL_FUNCS)
def test_default_temperature_is_1(name):
    """Omitted, 1.0, 1 and np.float64(1): bit-identical results."""
    x = np.random.default_rng(3).normal(0, 10, (5, 300)).astype(np.float32)
    if name == "softmax_topk":
        base = fastsoftmax.softmax_topk(x, 4)
        for t in (1.0, 1, np.float64(1.0), np.float32(1.0)):
            got = fastsoftmax.softmax_topk(x, 4, temperature=t)
            np.testing.assert_array_equal(got[0], base[0])
            np.testing.assert_array_equal(got[1], base[1])
    else:
        base = getattr(fastsoftmax, name)(x)
        for t in (1.0, 1, np.float64(1.0), np.float32(1.0)):
            np.testing.assert_array_equal(getattr(fastsoftmax, name)(x, temperature=t), base)


def test_temperature_is_keyword_only():
    x = np.float32([1, 2, 3])
    for func in FUNCS.values():
        with pytest.raises(TypeError):
            func(x, -1, 2.0)  # type: ignore[misc]
    with pytest.raises(TypeError):
        fastsoftmax.softmax_topk(x, 2, -1, 2.0)  # type: ignore[misc]


def test_temperature_on_0d_empty_and_integer_inputs(func_name):
    """0-d arrays give 1 (log: 0) at any T, empty arrays an empty result, integer inputs the
    float64 result of their float64 values."""
    func = FUNCS[func_name]
    log = func_name == "log_softmax"
    assert func(np.float32(3.0), temperature=0.1) == (0.0 if log else 1.0)
    assert func(np.zeros((0, 5), np.float32), temperature=0.1).shape == (0, 5)
    xi = np.arange(-20, 20).reshape(4, 10)
    y = func(xi, temperature=0.37)
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, func(xi.astype(np.float64), temperature=0.37))
    assert_matches(y, xi, 0.37, log=log)


# ---- 6. float16 -------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", (0.05, 0.7, 3.0, 2.0**21), ids=temperature_id)
def test_float16_is_float32_rounded(algorithm, isa, func_name, temperature):
    """float16 inputs at T: the float32 result for the same values, rounded to float16 (axis -1
    and axis 0, out= a float16 array)."""
    func = FUNCS[func_name]
    x = np.random.default_rng([SEED, 43]).normal(0, 5, (9, 131)).astype(np.float16)
    x[2, 5] = np.inf
    x[3, 0] = np.nan
    x[4, :] = -np.inf
    x[5, 7] = np.float16(65504)
    kwargs = {"algorithm": algorithm, "isa": isa, "temperature": temperature}
    twin = {**kwargs, "algorithm": float16_twin_algorithm(algorithm, isa)}
    for axis in (-1, 0):
        with np.errstate(over="ignore"):  # log_softmax of row 5 lies below -65504: -inf in float16
            y = func(x, axis=axis, **kwargs)
            expected = func(x.astype(np.float32), axis=axis, **twin).astype(np.float16)
            out = np.empty_like(x)
            assert func(x, axis=axis, out=out, **kwargs) is out
        assert y.dtype == np.float16
        reload_rule = algorithm if func_name == "softmax" else "auto"  # log_softmax never reloads
        assert_float16_matches(y, expected, reload_rule, isa)
        assert_float16_matches(out, expected, reload_rule, isa)
    values, indices = fastsoftmax.softmax_topk(x, 5, isa=isa, temperature=temperature)
    v32, i32 = fastsoftmax.softmax_topk(x.astype(np.float32), 5, isa=isa, temperature=temperature)
    assert values.dtype == np.float16
    np.testing.assert_array_equal(indices, i32)
    np.testing.assert_array_equal(values, v32.astype(np.float16))
