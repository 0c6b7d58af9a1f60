"""The CUDA backend on a GPU: softmax, log_softmax and softmax_topk of device arrays.

Every test is marked ``gpu`` and skips, never fails, where no device call can run: no
``fastsoftmax.cuda_available()`` (a build without CUDA, no driver, no device) or no PyTorch with
CUDA (the arrays' producer here; the CuPy tests also skip without CuPy).

Results are compared with a float64 NumPy reference of the device input's own values
(``reference64``: ``exp(z - max) / sum`` and ``(z - max) - log(sum)`` with ``z = x / T``, and the
special-value rules of the CPU library), measured with reference.py's ``ulp_error`` /
``log_error`` (a ``bfloat16`` twin of them here, NumPy having no bfloat16):

- float32: softmax within SOFTMAX_ULP_F32 (2) ULP of the correctly rounded result (rows of 2^20
  elements and more: SOFTMAX_ULP_F32_LONG, as the CPU suite), log_softmax within LOG_ULP (4)
  ulp(max(|ref|, 1));
- float16 and bfloat16: within 1 ULP of their own type (log_softmax: of max(|ref|, 1));
  three_pass_reload softmax 1.5 ULP (its stored terms round twice, as on the CPU);
- special values: NaN rows all NaN, rows of only -inf NaN, the 0 (log: -inf) of -inf entries and
  of the finite entries of rows with +inf exact, the 1/count (log: -log(count)) of +inf entries
  within the bound.

Covered: every algorithm x dtype x {softmax, log_softmax} on rows of 1..33, around 1024, 2048,
4096 and 12288 (a shared-memory limit), 65537; a few long rows (2^20, 10_000_019); batches 1, 3,
132, 4096; special values (also in split rows); temperature 0.5 and 3; row-strided and
misaligned inputs and outputs; a rerun bit-identical; a non-default stream; out= written in place
and returned; the caller's array type back (torch, CuPy); float64 and non-adjacent axes refused;
softmax_topk (k 1, 5, 50, 256, ties to the lower index, special rows, sorted=False); explain() of
device calls.
"""

from __future__ import annotations

import inspect
import zlib

import fastsoftmax
import numpy as np
import pytest
from reference import LOG_ULP, SOFTMAX_ULP_F32, SOFTMAX_ULP_F32_LONG, log_error, ulp_error

try:
    import torch
except ImportError:  # pragma: no cover - torch is not a test dependency
    torch = None


def _why_not_ready() -> str:
    """'' when device calls can run here with torch as the producer, else why not."""
    available = getattr(fastsoftmax, "cuda_available", None)
    if available is None:
        return "this fastsoftmax has no cuda_available() (no CUDA backend)"
    try:
        ok, why = available(reason=True)
    except Exception as e:  # noqa: BLE001 - a broken backend skips here; its own tests fail elsewhere
        return f"fastsoftmax.cuda_available() raised {e!r}"
    if not ok:
        return f"fastsoftmax.cuda_available() is False: {why}"
    if torch is None:
        return "PyTorch is not importable"
    if not torch.cuda.is_available():
        return "PyTorch has no CUDA device"
    return ""


WHY_NOT = _why_not_ready()
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(bool(WHY_NOT), reason=WHY_NOT or "ready"),
    pytest.mark.usefixtures("fail_instead_of_hanging"),
]

ALGORITHMS = ("auto", "two_pass", "three_pass_reload", "three_pass_recompute", "online")
# softmax_topk's algorithms: "online" too where the Python function takes algorithm= (the device
# path otherwise always runs "auto", the fused online pass).
TOPK_TAKES_ALGORITHM = "algorithm" in inspect.signature(fastsoftmax.softmax_topk).parameters
TOPK_ALGORITHMS = ("auto", "online") if TOPK_TAKES_ALGORITHM else ("auto",)
DTYPES = ("float32", "float16", "bfloat16")
FUNCS = ("softmax", "log_softmax")
SEED = 20250611

SMALL_LENGTHS = tuple(range(1, 34))
# Around the warp/block boundaries, 4096 and a shared-memory limit (12288 float32 = 48 KiB), and
# just past 2^16.
MEDIUM_LENGTHS = (1023, 1024, 1025, 2047, 2048, 2049, 4095, 4097, 12287, 12288, 12289, 65537)
LONG_ROW = 2**20  # from here on, the CPU suite's long-row float32 bound
# The long rows each run only a few (algorithm, dtype, function) combinations (time).
LONG_CASES = [
    (2**20, "float32", "softmax", "auto"),
    (2**20, "float32", "softmax", "two_pass"),
    (2**20, "float32", "softmax", "three_pass_reload"),
    (2**20, "float32", "softmax", "three_pass_recompute"),
    (2**20, "float32", "softmax", "online"),
    (2**20, "float32", "log_softmax", "auto"),
    (2**20, "bfloat16", "softmax", "auto"),
    (2**20, "float16", "log_softmax", "online"),
    (10_000_019, "float32", "softmax", "auto"),
    (10_000_019, "float32", "log_softmax", "online"),
    (10_000_019, "bfloat16", "softmax", "two_pass"),
]

BF16_MAX = float.fromhex("0x1.fep127")  # 0x7F7F


# ---- Arrays -------------------------------------------------------------------------------------


def torch_dtype(name: str):
    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]


def rng_for(*key) -> np.random.Generator:
    """A generator reproducible per test case."""
    return np.random.default_rng([SEED, zlib.crc32(repr(key).encode())])


def normal_rows(rows: int, n: int, *key, scale: float = 4.0) -> np.ndarray:
    """rows x n float32 values ~ N(0, scale)."""
    return (rng_for(rows, n, *key).standard_normal((rows, n), dtype=np.float32) * np.float32(scale)).astype(np.float32)


def to_device(x: np.ndarray, dtype: str) -> torch.Tensor:
    """x (float32 or float64 NumPy) on the GPU in ``dtype`` (rounded to nearest even)."""
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to("cuda").to(torch_dtype(dtype))


def host64(t: torch.Tensor) -> np.ndarray:
    """A device tensor's values as float64 NumPy (exact for every dtype here)."""
    return t.detach().to(torch.float64).cpu().numpy()


def host_result(t: torch.Tensor) -> np.ndarray:
    """A result in NumPy: float32 and float16 as themselves, bfloat16 widened to float32 (exact)."""
    t = t.detach()
    if t.dtype == torch.bfloat16:
        return t.float().cpu().numpy()
    return t.cpu().numpy()


def run(func: str, x, **kwargs):
    return getattr(fastsoftmax, func)(x, **kwargs)


# ---- The float64 reference ---------------------------------------------------------------------


def row_max(z: np.ndarray) -> np.ndarray:
    """Each row's maximum (keepdims), as a finite shift: rows whose maximum is NaN, +inf or -inf
    (their results are fixed by the special rules below) get 0."""
    with np.errstate(invalid="ignore"):
        m = np.max(z, axis=-1, keepdims=True)
    return np.where(np.isfinite(m), m, 0.0)


def reference64(x: np.ndarray, log: bool = False, temperature: float = 1.0) -> np.ndarray:
    """softmax(x / T) (or log_softmax) along the last axis in float64, with the special rules:
    NaN in a row -> all NaN; c entries +inf -> 1/c there (log -log(c)), 0 (log -inf) elsewhere;
    a row of only -inf -> NaN; otherwise exp(z - max) / sum, (z - max) - log(sum)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(all="ignore"):
        z = x / temperature
        shifted = z - row_max(z)
        terms = np.exp(shifted)
        total = np.sum(terms, axis=-1, keepdims=True)
        out = shifted - np.log(total) if log else terms / total
        pos_inf = np.isposinf(z)
        count = np.sum(pos_inf, axis=-1, keepdims=True)
        at_inf = -np.log(np.maximum(count, 1)) if log else 1.0 / np.maximum(count, 1)
        elsewhere = -np.inf if log else 0.0
        out = np.where(count > 0, np.where(pos_inf, at_inf, elsewhere), out)
        nan_row = np.any(np.isnan(z), axis=-1, keepdims=True) | np.all(np.isneginf(z), axis=-1, keepdims=True)
        out = np.where(nan_row, np.nan, out)
    return out


# ---- Error measures ----------------------------------------------------------------------------


def round_to_bfloat16(v: np.ndarray) -> np.ndarray:
    """v rounded to bfloat16 (to nearest even, through float32), as float32."""
    with np.errstate(all="ignore"):
        f = np.asarray(v, dtype=np.float64).astype(np.float32)
    bits = f.view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000).astype(np.uint32)
    out = rounded.view(np.float32)
    return np.where(np.isnan(f), f, out)


def bfloat16_ulp(v: np.ndarray) -> np.ndarray:
    """ulp(|v|) of v rounded to bfloat16 (2^-133 in the subnormal range), as float64: the
    float32 spacing of the rounded value times 2^16 (bfloat16 keeps float32's exponents)."""
    r = np.abs(round_to_bfloat16(v))
    r = np.minimum(r, np.float32(np.nextafter(np.float32(BF16_MAX), np.float32(0))))
    return np.spacing(r).astype(np.float64) * 65536.0


def bfloat16_error(y: np.ndarray, ref: np.ndarray, log: bool) -> np.ndarray:
    """ulp_error / log_error for bfloat16 results (y: their float32 values)."""
    y = np.asarray(y, dtype=np.float64)
    with np.errstate(all="ignore"):
        scale = bfloat16_ulp(np.maximum(np.abs(ref), 1.0) if log else ref)
        err = np.abs(y - ref) / scale
        # An infinite y where ref is finite is right if ref itself rounds to that infinity.
        overflow_ok = np.isinf(y) & (round_to_bfloat16(ref).astype(np.float64) == y)
    err = np.where(overflow_ok, 0.0, err)
    return np.where(np.isfinite(ref), err, np.nan)


def error_of(y: np.ndarray, ref: np.ndarray, dtype: str, log: bool) -> np.ndarray:
    """The error of each element in the measure of its bound (NaN where ref is not finite)."""
    if dtype == "bfloat16":
        return bfloat16_error(y, ref, log)
    measure = log_error if log else ulp_error
    return np.asarray(measure(y, ref), dtype=np.float64)


def bound_of(dtype: str, log: bool, n: int) -> float:
    if dtype in ("float16", "bfloat16"):
        return 1.0
    if log:
        return LOG_ULP
    return SOFTMAX_ULP_F32_LONG if n >= LONG_ROW else SOFTMAX_ULP_F32


def check(
    y: np.ndarray,
    x: np.ndarray,
    dtype: str,
    log: bool,
    temperature: float = 1.0,
    context: str = "",
    ref: np.ndarray | None = None,
    bound: float | None = None,
) -> None:
    """Assert y (a host result, see host_result) is softmax(x / T) (or log) within the bound.

    x: the device input's values in float64, rows along the last axis."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y)
    assert y.shape == x.shape, f"{context}: shape {y.shape} != {x.shape}"
    if ref is None:
        ref = reference64(x, log, temperature)
    if bound is None:
        bound = bound_of(dtype, log, x.shape[-1] if x.ndim else 1)
        if dtype in ("float16", "bfloat16") and not log and "three_pass_reload" in context:
            # Block and split rows store the terms in the 16-bit output and round them again:
            # 1.5 ULP, as on the CPU (the context names the algorithm a call asked for).
            bound = 1.5

    def where(mask: np.ndarray) -> str:
        idx = np.argwhere(mask)[:5]
        pts = [tuple(int(i) for i in p) for p in idx]
        return (
            f"{context}: {int(mask.sum())} elements, first at {pts}: y={[float(y[p]) for p in pts]} "
            f"ref={[float(ref[p]) for p in pts]} x={[float(x[p]) for p in pts]}"
        )

    nan_ref, nan_y = np.isnan(ref), np.isnan(y)
    assert np.array_equal(nan_ref, nan_y), "NaN mismatch " + where(nan_ref != nan_y)
    # Fixed exactly by the rules: infinite results, the 0 / -inf of -inf entries, and the finite
    # entries of rows with +inf. (The 1/count of +inf entries is measured like any other value.)
    with np.errstate(invalid="ignore"):
        z = x / temperature
    row_pos_inf = np.any(np.isposinf(z), axis=-1, keepdims=True)
    exact = ~nan_ref & (np.isinf(ref) | np.isneginf(z) | (row_pos_inf & ~np.isposinf(z)))
    with np.errstate(invalid="ignore"):
        wrong = exact & (y.astype(np.float64) != ref)
    assert not wrong.any(), "special value not exact " + where(wrong)
    measured = np.isfinite(ref) & ~exact
    err = np.zeros(ref.shape, dtype=np.float64)
    err[measured] = error_of(y[measured], ref[measured], dtype, log)
    bad = measured & ~(err <= bound)
    if bad.any():
        worst = np.unravel_index(int(np.argmax(np.where(bad, err, -1.0))), err.shape)
        raise AssertionError(
            f"error {float(err[worst]):.3g} > {bound} {'ulp(max(|ref|,1))' if log else 'ULP'} "
            f"at {tuple(int(i) for i in worst)}: y={float(y[worst])!r} ref={float(ref[worst])!r}; " + where(bad)
        )


def check_device(y: torch.Tensor, x: torch.Tensor, dtype: str, log: bool, **kwargs) -> None:
    """check() of a device result against its device input; also its type, device and dtype."""
    assert isinstance(y, torch.Tensor), f"result is {type(y)}, not a torch.Tensor"
    assert y.device == x.device, f"result on {y.device}, input on {x.device}"
    assert y.dtype == x.dtype, f"result {y.dtype}, input {x.dtype}"
    check(host_result(y), host64(x), dtype, log, **kwargs)


# ---- Lengths, algorithms and dtypes -------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("func", FUNCS)
def test_small_lengths(func, dtype, algorithm):
    """Rows of 1..33 elements (a warp's 32 lanes and their tails), 3 rows each."""
    for n in SMALL_LENGTHS:
        x = to_device(normal_rows(3, n, "small", dtype), dtype)
        y = run(func, x, algorithm=algorithm)
        check_device(y, x, dtype, func == "log_softmax", context=f"{func} {dtype} {algorithm} 3x{n}")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("func", FUNCS)
def test_medium_lengths(func, dtype, algorithm):
    """Around 1024, 2048, 4096, the 12288-element shared-memory limit, and 65537; 3 rows each."""
    for n in MEDIUM_LENGTHS:
        x = to_device(normal_rows(3, n, "medium", dtype), dtype)
        y = run(func, x, algorithm=algorithm)
        check_device(y, x, dtype, func == "log_softmax", context=f"{func} {dtype} {algorithm} 3x{n}")


@pytest.mark.parametrize("n, dtype, func, algorithm", LONG_CASES, ids=lambda v: str(v))
def test_long_rows(n, dtype, func, algorithm):
    """One long row (split across blocks), a few combinations each."""
    x = to_device(normal_rows(1, n, "long", scale=3.0), dtype)
    y = run(func, x, algorithm=algorithm)
    check_device(y, x, dtype, func == "log_softmax", context=f"{func} {dtype} {algorithm} 1x{n}")


@pytest.mark.parametrize(
    "rows, n",
    [(1, 4099), (3, 4099), (132, 777), (132, 5000), (132, 16000), (4096, 33), (4096, 256), (4096, 513)],
)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("func", FUNCS)
def test_batches(func, dtype, rows, n):
    """Batches of 1, 3, 132 (an H100's SM count) and 4096 rows, algorithm auto; every row differs."""
    x = to_device(normal_rows(rows, n, "batch", dtype), dtype)
    y = run(func, x)
    check_device(y, x, dtype, func == "log_softmax", context=f"{func} {dtype} {rows}x{n}")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_batches_every_algorithm(algorithm):
    """4096 x 300 and 132 x 6000 float32 for every algorithm, both functions."""
    for rows, n in ((4096, 300), (132, 6000)):
        x = to_device(normal_rows(rows, n, "batch-alg"), "float32")
        for func in FUNCS:
            y = run(func, x, algorithm=algorithm)
            check_device(y, x, "float32", func == "log_softmax", context=f"{func} {algorithm} {rows}x{n}")


def test_many_dims():
    """A 1-D input is one row; a 3-D input's leading axes are rows; the shape comes back."""
    for shape in ((1,), (777,), (2, 3, 129), (4, 1, 5000)):
        x = to_device(normal_rows(1, int(np.prod(shape)), "dims").reshape(shape), "float32")
        for func in FUNCS:
            y = run(func, x)
            assert tuple(y.shape) == shape
            check_device(y, x, "float32", func == "log_softmax", context=f"{func} {shape}")


# ---- Special values -----------------------------------------------------------------------------


def huge(dtype: str) -> float:
    """A finite value far beyond the kernels' fast range, representable in dtype."""
    return {"float32": 3e38, "float16": 65504.0, "bfloat16": 3e38}[dtype]


def special_rows(n: int, dtype: str) -> np.ndarray:
    """Rows of n elements with NaN, +inf, -inf, huge and tiny-result values at the start, middle
    and end, in float64 (exact in dtype)."""
    big = huge(dtype)
    ends = sorted({0, n // 2, n - 1})
    base = normal_rows(1, n, "special", dtype)[0].astype(np.float64)
    rows = []

    def row(**at) -> None:
        r = base.copy()
        for i, v in at.items():
            r[{"s": 0, "m": n // 2, "e": n - 1}[i]] = v
        rows.append(r)

    rows.append(base.copy())
    for p in ("s", "m", "e"):
        row(**{p: np.nan})
        row(**{p: np.inf})
        row(**{p: -np.inf})
        row(**{p: big})
        row(**{p: -big})
    row(s=np.inf, e=np.inf)  # +inf entries share the mass
    row(s=np.inf, m=np.inf, e=np.inf)
    row(s=np.nan, e=np.inf)  # NaN wins
    row(s=-np.inf, m=np.nan)
    row(s=big, e=np.inf)  # +inf wins over huge
    row(s=big, m=big, e=-big)  # huge values equal: they share
    rows.append(np.full(n, -np.inf))  # NaN
    rows.append(np.full(n, np.inf))  # 1/n each
    rows.append(np.full(n, big))  # 1/n each, no overflow
    rows.append(np.full(n, -big))
    only = np.full(n, -np.inf)
    only[ends[len(ends) // 2]] = 1.5  # a single finite value: 1 (log 0)
    rows.append(only)
    some = base.copy()
    some[::3] = -np.inf  # -inf entries: exactly 0 (log -inf)
    rows.append(some)
    # Results down to the subnormal range: float32 exp underflows past -87.3 and -103.9.
    rows.append(np.linspace(0.0, -120.0 if dtype != "float16" else -20.0, n))
    if n >= 2:
        rows.append(np.where(np.arange(n) % 2 == 0, big, -big))  # x - max overflows float32
    x = np.stack(rows)
    # Exactly representable in dtype: round through the device type.
    return host64(to_device(x, dtype))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("func", FUNCS)
def test_special_values(func, dtype, algorithm):
    """NaN rows, +inf sharing the mass, all -inf rows, -inf entries, huge values, tiny results."""
    log = func == "log_softmax"
    for n in (1, 2, 7, 33, 1000, 5000, 12289):
        x64 = special_rows(n, dtype)
        x = to_device(x64, dtype)
        assert np.array_equal(host64(x), x64, equal_nan=True)
        y = run(func, x, algorithm=algorithm)
        check_device(y, x, dtype, log, context=f"{func} {dtype} {algorithm} n={n}")


@pytest.mark.parametrize(
    "dtype, algorithm", [("float32", algorithm) for algorithm in ALGORITHMS] + [("bfloat16", "auto")]
)
def test_special_values_split_rows(dtype, algorithm):
    """Special values in single rows of 2^20 + 3 (split across blocks), in the first, a middle
    and the last chunk."""
    n = 2**20 + 3
    big = huge(dtype)
    base = normal_rows(1, n, "split-special")[0].astype(np.float64)
    cases = {
        "nan_end": {n - 1: np.nan},
        "nan_middle": {n // 2 + 17: np.nan},
        "inf_two": {5: np.inf, n - 2: np.inf},
        "neg_inf_entries": {0: -np.inf, n // 3: -np.inf, n - 1: -np.inf},
        "huge": {n // 2: big, n - 1: -big},
        "huge_late": {n - 1: big},  # the maximum arrives in the last chunk
    }
    for name, at in cases.items():
        r = base.copy()
        for i, v in at.items():
            r[i] = v
        x = to_device(r[None, :], dtype)
        for func in FUNCS:
            y = run(func, x, algorithm=algorithm)
            check_device(y, x, dtype, func == "log_softmax", context=f"{func} {dtype} {algorithm} {name}")
    every = np.full((1, n), -np.inf)
    x = to_device(every, dtype)
    assert torch.isnan(run("softmax", x, algorithm=algorithm)).all()


# ---- Temperature --------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", (0.5, 3.0))
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("func", FUNCS)
def test_temperature(func, dtype, algorithm, temperature):
    """softmax(x / T) to the same bounds, x / T never rounded; a -inf entry stays exact."""
    for rows, n in ((3, 7), (3, 33), (3, 1025), (2, 12289), (1, 70001)):
        x64 = normal_rows(rows, n, "temperature", dtype).astype(np.float64)
        x64[:, n // 2] = -np.inf
        x = to_device(x64, dtype)
        y = run(func, x, algorithm=algorithm, temperature=temperature)
        check_device(
            y,
            x,
            dtype,
            func == "log_softmax",
            temperature=temperature,
            context=f"{func} {dtype} {algorithm} T={temperature} {rows}x{n}",
        )


# ---- Layouts ------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("func", FUNCS)
def test_strided_rows(func, dtype, algorithm):
    """x[:, :n] of a wider tensor (row stride > n), the row stride odd or a multiple of 16."""
    for rows, n, pad in ((5, 33, 1), (5, 1000, 7), (4, 4097, 64), (3, 12289, 3), (1, 70001, 5)):
        wide = to_device(normal_rows(rows, n + pad, "strided", dtype), dtype)
        x = wide[:, :n]
        assert x.stride() == (n + pad, 1)
        y = run(func, x, algorithm=algorithm)
        check_device(y, x, dtype, func == "log_softmax", context=f"{func} {dtype} {algorithm} {rows}x{n}+{pad}")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("func", FUNCS)
def test_misaligned(func, dtype, algorithm):
    """Inputs and out= starting 1, 2 or 3 elements past an aligned address (a storage offset),
    and x[:, 1:] of a wider tensor (every row misaligned differently)."""
    log = func == "log_softmax"
    for offset in (1, 2, 3):
        shapes = ((3, 33), (3, 1025), (2, 12289)) + (((1, 70001),) if offset == 1 else ())
        for rows, n in shapes:
            storage = to_device(normal_rows(1, rows * n + 8, "misaligned", dtype, offset), dtype)[0]
            x = storage[offset : offset + rows * n].view(rows, n)
            assert x.storage_offset() == offset
            y = run(func, x, algorithm=algorithm)
            context = f"{func} {dtype} {algorithm} {rows}x{n} offset {offset}"
            check_device(y, x, dtype, log, context=context)
            # out= misaligned too, by another offset (2, 3, 1 elements).
            out_offset = offset % 3 + 1
            out_storage = torch.full((rows * n + 8,), float("nan"), dtype=x.dtype, device=x.device)
            out = out_storage[out_offset : out_offset + rows * n].view(rows, n)
            r = run(func, x, algorithm=algorithm, out=out)
            assert r.data_ptr() == out.data_ptr()
            check_device(out, x, dtype, log, context=context + f" out= at offset {out_offset}")
            # Nothing outside out was written.
            assert torch.isnan(out_storage[:out_offset]).all()
            assert torch.isnan(out_storage[out_offset + rows * n :]).all()
            wide = to_device(normal_rows(rows, n + 1, "shifted", dtype, offset), dtype)
            xs = wide[:, 1:]
            check_device(run(func, xs, algorithm=algorithm), xs, dtype, log, context=context + " x[:, 1:]")


def test_rerun_bit_identical():
    """Every algorithm, each family of kernels: a second run gives the same bits."""
    for rows, n in ((4096, 500), (64, 8000), (3, 40000), (1, 2**20 + 3)):
        for dtype in DTYPES:
            x = to_device(normal_rows(rows, n, "rerun"), dtype)
            bits = torch.int32 if dtype == "float32" else torch.int16
            for algorithm in ALGORITHMS:
                for func in FUNCS:
                    a = run(func, x, algorithm=algorithm)
                    b = run(func, x, algorithm=algorithm)
                    assert torch.equal(a.view(bits), b.view(bits)), f"{func} {dtype} {algorithm} {rows}x{n}"


# ---- Streams and the caller's arrays ------------------------------------------------------------


def _busy(stream_ms: float = 50.0) -> None:
    """Keep the current stream busy for a while, so that work on another stream would overtake."""
    sleep = getattr(torch.cuda, "_sleep", None)
    if sleep is not None:
        sleep(int(stream_ms * 1e6))  # cycles: ~1 GHz or more, so at least a few ms
    else:  # pragma: no cover - older torch
        a = torch.randn(2048, 2048, device="cuda")
        for _ in range(20):
            a = a @ a
            a = a / a.norm()


@pytest.mark.parametrize("func", FUNCS)
@pytest.mark.parametrize("rows, n", [(4096, 256), (64, 8000), (1, 2**20 + 3)])
def test_non_default_stream(func, rows, n):
    """Under `with torch.cuda.stream(s)` the call runs on s, ordered after s's earlier work: the
    input is written on s after a delay and read by the call without any synchronization."""
    src = to_device(normal_rows(rows, n, "stream"), "float32")
    expected = run(func, src)
    torch.cuda.synchronize()
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        x = torch.zeros_like(src)
        s.wait_stream(torch.cuda.default_stream())
        _busy()
        x.copy_(src)
        y = run(func, x)
        out = torch.full_like(src, float("nan"))
        r = run(func, x, out=out)
    s.synchronize()
    assert r.data_ptr() == out.data_ptr()
    check_device(y, src, "float32", func == "log_softmax", context=f"{func} {rows}x{n} on a stream")
    assert torch.equal(y, expected) and torch.equal(out, expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("func", FUNCS)
def test_out_written_in_place(func, dtype):
    """out= is written and returned (the same tensor memory); out=x computes in place."""
    log = func == "log_softmax"
    for rows, n in ((8, 100), (2, 12289), (1, 70001)):
        x = to_device(normal_rows(rows, n, "out", dtype), dtype)
        out = torch.full_like(x, float("nan"))
        r = run(func, x, out=out)
        assert isinstance(r, torch.Tensor) and r.data_ptr() == out.data_ptr()
        assert r.shape == x.shape and r.dtype == x.dtype and r.device == x.device
        check_device(out, x, dtype, log, context=f"{func} {dtype} {rows}x{n} out=")
        expected = host_result(out).copy()
        x_values = host64(x)
        r = run(func, x, out=x)
        assert r.data_ptr() == x.data_ptr()
        check(host_result(x), x_values, dtype, log, context=f"{func} {dtype} {rows}x{n} in place")
        np.testing.assert_array_equal(host_result(x), expected)


def test_result_is_torch_on_the_same_device():
    """A torch input gives a new torch tensor on the input's device, its dtype and shape."""
    for index in range(torch.cuda.device_count()):
        device = torch.device("cuda", index)
        for dtype in DTYPES:
            x = torch.randn(5, 300, device=device).to(torch_dtype(dtype))
            for func in FUNCS:
                y = run(func, x)
                assert type(y) is torch.Tensor
                assert y.device == device and y.dtype == x.dtype and y.shape == x.shape
                assert y.data_ptr() != x.data_ptr()
                check_device(y, x, dtype, func == "log_softmax", context=f"{func} {dtype} {device}")


def test_cupy_in_cupy_out():
    """A CuPy array gives a CuPy array (also float16, and out=)."""
    cp = pytest.importorskip("cupy")
    for dtype in ("float32", "float16"):
        x_host = normal_rows(7, 1025, "cupy").astype(dtype)
        x = cp.asarray(x_host)
        for func in FUNCS:
            y = run(func, x)
            assert isinstance(y, cp.ndarray), type(y)
            assert y.dtype == x.dtype and y.shape == x.shape
            assert y.device.id == x.device.id
            check(cp.asnumpy(y), x_host.astype(np.float64), dtype, func == "log_softmax", context=f"cupy {func}")
            out = cp.full_like(x, cp.nan)
            r = run(func, x, out=out)
            assert isinstance(r, cp.ndarray) and r.data.ptr == out.data.ptr
            np.testing.assert_array_equal(cp.asnumpy(out), cp.asnumpy(y))


def test_float64_refused():
    """float64 device arrays raise ValueError and nothing is written."""
    x = torch.randn(4, 100, dtype=torch.float64, device="cuda")
    out = torch.full_like(x, 7.0)
    for func in FUNCS:
        with pytest.raises(ValueError):
            run(func, x)
        with pytest.raises(ValueError):
            run(func, x, out=out)
    with pytest.raises(ValueError):
        fastsoftmax.softmax_topk(x, 3)
    assert (out == 7.0).all()


def test_non_adjacent_axis_refused():
    """Only an axis whose elements are adjacent in memory: axis 0, a transposed or a step-2 last
    axis raise ValueError; the last axis of a 3-D tensor and axis 0 of a transposed one run."""
    x = torch.randn(16, 64, device="cuda")
    for func in FUNCS:
        with pytest.raises(ValueError):
            run(func, x, axis=0)
        with pytest.raises(ValueError):
            run(func, x.t())  # last axis has stride 64
        with pytest.raises(ValueError):
            run(func, x[:, ::2])
        y = run(func, x.t(), axis=0)  # axis 0 of x.t() is x's last axis: adjacent
        check_device(y.t(), x, "float32", func == "log_softmax", context=f"{func} x.t() axis 0")
    with pytest.raises(ValueError):
        fastsoftmax.softmax_topk(x, 2, axis=0)
    x3 = torch.randn(2, 5, 33, device="cuda")
    with pytest.raises(ValueError):
        fastsoftmax.softmax(x3, axis=1)
    check_device(fastsoftmax.softmax(x3, axis=2), x3, "float32", False, context="3-D axis 2")


# ---- softmax_topk -------------------------------------------------------------------------------


def expected_topk(x: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest inputs per row, the lower index first among equal inputs; rows
    with NaN or of only -inf: 0..k-1."""
    order = np.argsort(-x, axis=-1, kind="stable")[:, :k]
    special = np.any(np.isnan(x), axis=-1) | np.all(np.isneginf(x), axis=-1)
    order[special] = np.arange(k)
    return order


def softmax_topk(x, k: int, algorithm: str = "auto", **kwargs):
    """fastsoftmax.softmax_topk, with algorithm= only when it is not "auto"."""
    if algorithm != "auto":
        kwargs["algorithm"] = algorithm
    return fastsoftmax.softmax_topk(x, k, **kwargs)


def check_topk(
    values,
    indices,
    x: torch.Tensor,
    k: int,
    dtype: str,
    temperature: float = 1.0,
    sorted_: bool = True,
    context: str = "",
    expected: tuple[np.ndarray, np.ndarray] | None = None,
) -> None:
    """values/indices of softmax_topk(x, k) against expected_topk and reference64.

    expected: (indices of at least k columns, reference64 of x), computed beforehand."""
    assert isinstance(values, torch.Tensor) and isinstance(indices, torch.Tensor)
    assert values.dtype == x.dtype and indices.dtype == torch.int64, (values.dtype, indices.dtype)
    assert values.device == x.device and indices.device == x.device
    assert tuple(values.shape) == tuple(x.shape[:-1]) + (k,) == tuple(indices.shape)
    x64 = host64(x).reshape(-1, x.shape[-1])
    if expected is None:
        want_idx, ref = expected_topk(x64, k), reference64(x64, temperature=temperature)
    else:
        want_idx, ref = expected[0][:, :k].copy(), expected[1]
    got_idx = indices.cpu().numpy().reshape(-1, k).copy()
    got_val = host_result(values).reshape(-1, k).copy()
    if not sorted_:  # the same results in any order: compare both in index order
        for r in range(len(want_idx)):
            assert sorted(got_idx[r].tolist()) == sorted(want_idx[r].tolist()), f"{context}: row {r}'s indices"
            order = np.argsort(got_idx[r])
            got_idx[r], got_val[r] = got_idx[r][order], got_val[r][order]
            want_idx[r] = np.sort(want_idx[r])
    bad = np.nonzero((got_idx != want_idx).any(axis=-1))[0]
    assert not len(bad), f"{context}: indices of row {bad[0]}: {got_idx[bad[0]][:10]} != {want_idx[bad[0]][:10]}"
    ref_at = np.take_along_axis(ref, want_idx, axis=-1)
    x_at = np.take_along_axis(x64, want_idx, axis=-1)
    special = np.any(np.isnan(x64), axis=-1) | np.all(np.isneginf(x64), axis=-1)
    assert np.isnan(got_val[special]).all(), f"{context}: NaN rows"
    ok = ~special
    if ok.any():
        check(
            got_val[ok],
            x_at[ok],
            dtype,
            False,
            temperature,
            context=context,
            ref=ref_at[ok],
            bound=bound_of(dtype, False, x64.shape[-1]),
        )


TOPK_SHAPES = ((1, 300), (3, 4097), (64, 32000), (1, 128256), (1, 2**20 + 3))
TOPK_KS = (1, 5, 50, 256)
_topk_cases: dict = {}


def topk_case(rows: int, n: int, kind: str, dtype: str):
    """(x64, expected indices of max(TOPK_KS) columns, reference64), made once per case: random
    values (16-bit inputs repeat values: ties) or small integers (many ties)."""
    key = (rows, n, kind, dtype)
    if key not in _topk_cases:
        if kind == "normal":
            x32 = normal_rows(rows, n, "topk", dtype)
        else:
            x32 = rng_for(rows, n, "ties").integers(-4, 5, (rows, n)).astype(np.float32)
        x64 = host64(to_device(x32, dtype))
        _topk_cases[key] = (x64, expected_topk(x64, max(TOPK_KS)), reference64(x64))
    return _topk_cases[key]


@pytest.mark.parametrize("algorithm", TOPK_ALGORITHMS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", TOPK_KS)
def test_topk(k, dtype, algorithm):
    """Batches 1, 3 and 64 of rows from 300 to 2^20 + 3 elements, random values and ties."""
    for rows, n in TOPK_SHAPES:
        for kind in ("normal", "integers"):
            x64, want, ref = topk_case(rows, n, kind, dtype)
            x = to_device(x64, dtype)
            values, indices = softmax_topk(x, k, algorithm)
            check_topk(
                values,
                indices,
                x,
                k,
                dtype,
                expected=(want, ref),
                context=f"topk k={k} {dtype} {algorithm} {rows}x{n} {kind}",
            )


@pytest.mark.parametrize("dtype", DTYPES)
def test_topk_ties_and_specials(dtype):
    """Explicit ties (equal maxima far apart, all-equal rows), NaN rows (NaN values at 0..k-1),
    +inf entries first, rows of only -inf, -inf entries, huge values; sorted=False; temperature."""
    n, k = 5000, 50
    base = normal_rows(1, n, "topk-special")[0].astype(np.float64)
    rows = []
    tied = base.copy()
    tied[[7, 1000, 4999, 2500]] = 20.0  # four equal maxima: 7, 1000, 2500, 4999
    tied[[3, 4000]] = 19.0
    rows.append(tied)
    rows.append(np.zeros(n))  # all equal: 0..k-1
    r = base.copy()
    r[[10, 4000]] = np.nan
    rows.append(r)
    r = base.copy()
    r[[4998, 3, 200]] = np.inf
    rows.append(r)
    rows.append(np.full(n, -np.inf))
    r = base.copy()
    r[::2] = -np.inf
    rows.append(r)
    r = base.copy()
    r[[17, 18]] = huge(dtype)
    rows.append(r)
    x = to_device(np.stack(rows), dtype)
    for algorithm in TOPK_ALGORITHMS:
        for sorted_ in (True, False):
            for temperature in (1.0, 0.5):
                values, indices = softmax_topk(x, k, algorithm, sorted=sorted_, temperature=temperature)
                check_topk(
                    values,
                    indices,
                    x,
                    k,
                    dtype,
                    temperature,
                    sorted_,
                    context=f"topk specials {dtype} {algorithm} sorted={sorted_} T={temperature}",
                )


def test_topk_leading_dims_and_stream():
    """A 3-D input (leading axes as rows) on a non-default stream; and k = n."""
    x = to_device(normal_rows(1, 2 * 3 * 600, "topk-3d").reshape(2, 3, 600), "float32").reshape(2, 3, 600)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.default_stream())
    with torch.cuda.stream(s):
        values, indices = fastsoftmax.softmax_topk(x, 5)
    s.synchronize()
    check_topk(values, indices, x, 5, "float32", context="topk 3-D on a stream")
    small = to_device(normal_rows(4, 9, "topk-all"), "float32")
    values, indices = fastsoftmax.softmax_topk(small, 9)
    check_topk(values, indices, small, 9, "float32", context="topk k = n")


# ---- explain ------------------------------------------------------------------------------------


def explain(x, operation: str = "softmax", **kwargs):
    """fastsoftmax.explain with the operation named; `function=` for a binding that spells it so."""
    try:
        return fastsoftmax.explain(x, operation=operation, **kwargs)
    except TypeError as e:
        if "operation" not in str(e):
            raise
        return fastsoftmax.explain(x, function=operation, **kwargs)


def test_explain_device_calls():
    """explain() of a device tensor: implementation "cuda", a kernel of the catalogue ("-cuda-"
    in its name, the dtype and operation first), the family consistent with the shape."""
    many_short = torch.empty(4096, 512, device="cuda")
    e = explain(many_short)
    assert e.ok, e.error
    assert e.implementation == "cuda", str(e)
    assert e.schedule == "warp rows", str(e)
    assert e.kernel.startswith("f32-softmax-") and "-cuda-" in e.kernel, e.kernel
    assert e.algorithm != "auto"

    one_long = torch.empty(1, 2**20, device="cuda")
    e = explain(one_long)
    assert e.ok and e.implementation == "cuda" and e.schedule == "split rows", str(e)

    for shape in ((64, 4096), (132, 12289), (8, 128256)):
        e = explain(torch.empty(shape, device="cuda", dtype=torch.bfloat16), "log_softmax")
        assert e.ok and e.implementation == "cuda", str(e)
        assert e.schedule in ("warp rows", "block rows", "split rows"), str(e)
        assert e.kernel.startswith("bf16-log_softmax-") and "-cuda-" in e.kernel, e.kernel

    for algorithm in ALGORITHMS[1:]:
        e = explain(many_short, algorithm=algorithm, temperature=0.5)
        assert e.ok and e.algorithm == algorithm and f"-{algorithm}-" in e.kernel, str(e)

    e = explain(torch.empty(64, 32000, device="cuda", dtype=torch.float16), "softmax_topk", k=5)
    assert e.ok and e.implementation == "cuda" and e.kernel.startswith("f16-softmax_topk-"), str(e)


def test_explain_refusals():
    """float64 device arrays and non-adjacent axes: refused by explain too (ok False with the
    reason, or ValueError as the call itself)."""
    for x, kwargs in (
        (torch.empty(4, 10, dtype=torch.float64, device="cuda"), {}),
        (torch.empty(16, 64, device="cuda"), {"axis": 0}),
    ):
        try:
            e = explain(x, **kwargs)
        except ValueError:
            continue
        assert not e.ok and e.error, str(e)


def test_cuda_available_reason():
    ok, why = fastsoftmax.cuda_available(reason=True)
    assert ok is True and isinstance(why, str)
    assert fastsoftmax.cuda_available() is True
