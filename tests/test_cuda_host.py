"""The CUDA backend's host-side checks (no GPU needed): the __host__ __device__ arithmetic of
cpp/src/cuda/device_math.h run on the host the way the warp-rows kernel runs it, against the
float64 reference and the CPU library; the 16-bit conversions against NumPy and ml_dtypes; the
launch planner's families, grids and chunking; validation of device calls; and device-array
detection in the package. Skipped where the build has no CUDA backend."""

from __future__ import annotations

import importlib.util

import fastsoftmax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import assert_matches_reference, default_bound, reference, ulp_error

if importlib.util.find_spec("fastsoftmax._cuda") is None:
    pytest.skip("this build has no CUDA backend (FASTSOFTMAX_CUDA=OFF, or no usable nvcc at build time)", allow_module_level=True)

from fastsoftmax import _cuda

ALGORITHMS = ["two_pass", "three_pass_reload", "three_pass_recompute", "online"]
LANES = [1, 4, 32]
H100 = {"sm_count": 132, "max_threads_per_sm": 2048, "max_shared_per_block": 227 * 1024, "shared_per_sm": 228 * 1024}
SMALL_GPU = {"sm_count": 30, "max_threads_per_sm": 1536, "max_shared_per_block": 99 * 1024, "shared_per_sm": 100 * 1024}


def rows(n: int, count: int = 4, scale: float = 4.0, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed + n).standard_normal((count, n)) * scale).astype(np.float32)


# ---- exp(x / t) = (1 + q) * 2^n ---------------------------------------------------------------


@pytest.mark.parametrize("temperature", [1.0, 0.5, 3.0, 1e-3, 700.0])
def test_exp_parts_accuracy(temperature):
    rng = np.random.default_rng(1)
    limit = 88.0 * temperature
    x = np.concatenate([rng.uniform(-limit, limit, 20000), np.linspace(-limit, limit, 2001)]).astype(np.float32)
    q, n = _cuda.exp_parts(x, temperature)
    value = (1.0 + q.astype(np.longdouble)) * np.exp2(n.astype(np.longdouble))
    exact = np.exp(x.astype(np.longdouble) / np.longdouble(temperature))
    relative = np.abs(value - exact) / exact
    # Well within a float32 rounding (2^-24 = 6e-8): the kernels' outputs round once more.
    assert relative.max() < 2.0**-25, relative.max()


def test_exp_parts_clamps_its_domain():
    q, n = _cuda.exp_parts(np.float32([-np.inf, np.nan, 3e38, -3e38]), 1.0)
    assert np.all(np.isfinite(q)) and np.all(n > -(2**20)) and np.all(n < 2**20)


# ---- 16-bit conversions -----------------------------------------------------------------------


def all_kinds_of_floats() -> np.ndarray:
    rng = np.random.default_rng(2)
    bits = rng.integers(0, 2**32, 200000, dtype=np.uint64).astype(np.uint32)
    specials = np.float32([0.0, -0.0, np.inf, -np.inf, 65504, 65519.99, 65520, 6e-8, 3e-8, 2.98e-8, 1e-45, 3.4e38])
    return np.concatenate([bits.view(np.float32), specials])


def test_float16_conversion_matches_numpy():
    x = all_kinds_of_floats()
    bits = _cuda.to_bits(x, "float16")
    with np.errstate(over="ignore"):
        expected = x.astype(np.float16)
    nan = np.isnan(x)
    assert np.array_equal(bits[~nan], expected[~nan].view(np.uint16))
    assert np.all(np.isnan(bits[nan].view(np.float16)))
    back = _cuda.from_bits(bits, "float16")
    assert np.array_equal(back[~nan], expected[~nan].astype(np.float32))


def test_bfloat16_conversion_matches_ml_dtypes():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x = all_kinds_of_floats()
    bits = _cuda.to_bits(x, "bfloat16")
    with np.errstate(invalid="ignore"):
        expected = x.astype(ml_dtypes.bfloat16)
    nan = np.isnan(x)
    assert np.array_equal(bits[~nan], expected[~nan].view(np.uint16))
    assert np.all(np.isnan(bits[nan].view(ml_dtypes.bfloat16).astype(np.float32)))
    back = _cuda.from_bits(bits, "bfloat16")
    assert np.array_equal(back[~nan], expected[~nan].astype(np.float32))


# ---- The kernels' arithmetic on the host --------------------------------------------------------

SIZES = [1, 2, 3, 4, 5, 7, 8, 9, 31, 32, 33, 127, 128, 129, 1000, 1021]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("lanes", LANES)
@pytest.mark.parametrize("log", [False, True])
def test_emulated_rows_match_reference_and_cpu(algorithm, lanes, log):
    operation = "log_softmax" if log else "softmax"
    cpu = fastsoftmax.log_softmax if log else fastsoftmax.softmax
    for n in SIZES:
        x = rows(n)
        y = _cuda.emulate(x, operation, algorithm, 1.0, lanes)
        context = f"{algorithm} lanes={lanes} n={n}"
        assert_matches_reference(y, x, log=log, context=context)
        # The CPU library's result for the same rows holds the same bound: the two backends agree
        # within twice the bound.
        ref = reference(x, log=log)
        if not log:
            assert np.nanmax(ulp_error(cpu(x), ref)) <= default_bound(np.float32, log)
            assert np.nanmax(np.abs(y.astype(np.float64) - cpu(x)) / np.spacing(np.abs(ref.astype(np.float32)))) <= 4


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("temperature", [0.5, 3.0, 1e-3, 1e3])
def test_emulated_temperature(algorithm, temperature):
    x = rows(300, scale=4.0 * temperature)
    for log in (False, True):
        y = _cuda.emulate(x, "log_softmax" if log else "softmax", algorithm, temperature, 32)
        assert_matches_reference(y, x / np.float64(temperature), log=log, context=f"T={temperature}")


SPECIAL_ROWS = {
    "nan": [1.0, np.nan, 2.0, 3.0],
    "inf": [1.0, np.inf, 2.0, np.inf, -np.inf],
    "inf_and_nan": [np.inf, np.nan, 0.0],
    "all_neg_inf": [-np.inf] * 5,
    "some_neg_inf": [-np.inf, 0.0, -np.inf, 1.0],
    "huge": [3e38, 3.4e38, -3.4e38, 1e30],
    "beyond_fast_range": [70000.0, 69990.0, 0.0],
    "wide": [80.0, -80.0, 0.0, -20.0],
}


@pytest.mark.parametrize("name", sorted(SPECIAL_ROWS))
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("log", [False, True])
def test_emulated_special_values_match_cpu(name, algorithm, log):
    x = np.float32([SPECIAL_ROWS[name]])
    y = _cuda.emulate(x, "log_softmax" if log else "softmax", algorithm, 1.0, 4)
    assert_matches_reference(y, x, log=log, context=name)
    cpu = (fastsoftmax.log_softmax if log else fastsoftmax.softmax)(x, algorithm=algorithm)
    assert np.array_equal(np.isnan(y), np.isnan(cpu))
    assert np.array_equal(np.isinf(y), np.isinf(cpu))


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 700),
    scale=st.sampled_from([0.1, 4.0, 30.0, 300.0]),
    lanes=st.sampled_from([1, 2, 8, 16, 32]),
    algorithm=st.sampled_from(ALGORITHMS),
    seed=st.integers(0, 2**16),
)
def test_emulated_any_split_of_lanes(n, scale, lanes, algorithm, seed):
    """Any number of lanes (any split of the row into merged states) stays within the bound."""
    x = (np.random.default_rng(seed).standard_normal((1, n)) * scale).astype(np.float32)
    assert_matches_reference(_cuda.emulate(x, "softmax", algorithm, 1.0, lanes), x)


def test_emulation_is_deterministic():
    x = rows(1000)
    a = _cuda.emulate(x, "softmax", "two_pass", 1.0, 32)
    b = _cuda.emulate(x, "softmax", "two_pass", 1.0, 32)
    assert a.tobytes() == b.tobytes()


# ---- The launch planner -------------------------------------------------------------------------


def pack(dtype: str) -> int:
    return 4 if dtype == "float32" else 8


@settings(max_examples=300, deadline=None)
@given(
    dtype=st.sampled_from(["float32", "float16", "bfloat16"]),
    operation=st.sampled_from(["softmax", "log_softmax"]),
    rows=st.integers(1, 100000),
    n=st.one_of(st.integers(1, 5000), st.integers(1, 2**34)),
    aligned=st.booleans(),
    limits=st.sampled_from([None, H100, SMALL_GPU]),
)
def test_plan_invariants(dtype, operation, rows, n, aligned, limits):
    p = _cuda.plan(dtype, operation, rows, n, aligned=aligned, limits=limits)
    device = limits or H100
    # Every row start is aligned when the first is and the row stride (n here) is whole vectors.
    bytes_per_element = 4 if dtype == "float32" else 2
    rows_aligned = aligned and (rows == 1 or n * bytes_per_element % 16 == 0)
    slots = n if rows_aligned else n + pack(dtype) - 1
    resident = device["sm_count"] * device["max_threads_per_sm"] // p["threads"]
    assert 1 <= p["grid"] <= max(resident, 1)
    assert p["kernel"] in {k["name"] for k in _cuda.kernels()}
    assert p["algorithm"] in ALGORITHMS
    if p["family"] == "warp rows":
        assert slots <= 1024
        assert p["columns"] % pack(dtype) == 0 and p["columns"] <= 32
        assert p["lanes"] * p["columns"] >= slots and 32 % p["lanes"] == 0
        assert p["lanes"] * p["columns"] < 2 * max(slots, pack(dtype) * p["lanes"])  # no more than twice the need
    elif p["family"] == "block rows":
        assert slots > 1024
        assert 2 * rows >= device["sm_count"]
        assert n * (4 if dtype == "float32" else 2) < p["shared_bytes"] <= device["max_shared_per_block"]
        assert p["grid"] <= rows
    else:
        assert p["family"] == "split rows"
        assert slots > 1024
        assert (p["chunks"] - 1) * p["chunk_elements"] < n <= p["chunks"] * p["chunk_elements"]
        assert p["chunk_elements"] % 2048 == 0
        assert p["grid"] <= rows * p["chunks"]
        # The chunking, and so the merge order and the result bits, never depend on the device.
        other = _cuda.plan(dtype, operation, rows, n, aligned=aligned, limits=SMALL_GPU if limits is None else None)
        if other["family"] == "split rows":
            assert (other["chunks"], other["chunk_elements"]) == (p["chunks"], p["chunk_elements"])


@pytest.mark.parametrize(
    "rows, n, family",
    [
        (4096, 1000, "warp rows"),
        (4096, 8, "warp rows"),
        (4096, 4096, "block rows"),
        (4096, 32768, "block rows"),
        (4096, 131072, "split rows"),
        (1, 2**20, "split rows"),
        (8, 128256, "split rows"),
        (64, 4096, "split rows"),
        (132, 4096, "block rows"),
    ],
)
def test_plan_families(rows, n, family):
    assert _cuda.plan("float32", "softmax", rows, n)["family"] == family


def test_plan_sub_warp_lanes_for_short_rows():
    assert (_cuda.plan("float32", "softmax", 10000, 8)["lanes"], _cuda.plan("float32", "softmax", 10000, 8)["columns"]) == (2, 4)
    assert _cuda.plan("bfloat16", "softmax", 10000, 8)["lanes"] == 1


def test_plan_algorithms():
    assert _cuda.plan("float32", "softmax", 4096, 1000)["algorithm"] == "three_pass_reload"
    assert _cuda.plan("bfloat16", "softmax", 4096, 1000)["algorithm"] == "three_pass_recompute"
    assert _cuda.plan("float32", "softmax", 1, 2**24)["algorithm"] == "two_pass"
    assert _cuda.plan("float32", "softmax", 1, 2**24, algorithm="online")["algorithm"] == "online"
    assert _cuda.plan("float32", "softmax_topk", 8, 128256, k=50)["family"] == "split top-k rows"
    assert _cuda.plan("float32", "softmax_topk", 4096, 128256, k=50)["family"] == "top-k rows"
    assert _cuda.plan("float32", "softmax_topk", 8, 1000, k=5)["family"] == "top-k rows"


def test_plan_three_pass_split_rows_keeps_maxima_too():
    two = _cuda.plan("float32", "softmax", 1, 2**20, algorithm="two_pass")
    three = _cuda.plan("float32", "softmax", 1, 2**20, algorithm="three_pass_recompute")
    # Per chunk: a state (two_pass) or a maximum and a state (three-pass), and a checked partial sum.
    assert two["workspace_bytes"] == two["chunks"] * (20 + 8)
    assert three["workspace_bytes"] == three["chunks"] * (2 * 20 + 8)


def test_device_calls_refuse_float64_and_large_k():
    with pytest.raises(ValueError, match="float64 is not supported on CUDA devices"):
        _cuda.plan("float64", "softmax", 4, 100)
    with pytest.raises(ValueError, match="at most 1024"):
        _cuda.plan("float32", "softmax_topk", 4, 5000, k=1025)
    with pytest.raises(ValueError, match="k must be in 1..n"):
        _cuda.plan("float32", "softmax_topk", 4, 10, k=11)
    with pytest.raises(ValueError, match="algorithm must be auto or online"):
        _cuda.plan("float32", "softmax_topk", 4, 10, k=1, algorithm="two_pass")


# ---- The package's side ---------------------------------------------------------------------------


def test_catalogue_lists_cuda_kernels_once():
    names = [k["name"] for k in fastsoftmax.kernels()]
    cuda_names = [k["name"] for k in fastsoftmax.kernels() if k["target"] == "cuda"]
    assert len(names) == len(set(names))
    assert "f32-softmax-two_pass-cuda-rr1p7-split" in cuda_names
    assert "bf16-softmax_topk-online-cuda-rr1p7-radix" in cuda_names
    assert fastsoftmax.implementations()[-1]["name"] == "cuda"


def test_numpy_arrays_stay_on_the_cpu():
    x = np.zeros(10, np.float32)
    assert fastsoftmax.explain(x).implementation != "cuda"


class FakeDeviceArray:
    """Claims to live on a CUDA device: calls must fail cleanly here (no device), never crash."""

    shape = (4, 8)

    def __dlpack_device__(self):
        return (2, 0)

    def __dlpack__(self, stream=None, max_version=None):
        raise BufferError("no device memory behind this fake")


def test_device_arrays_without_a_device_fail_cleanly():
    if fastsoftmax.cuda_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises((TypeError, BufferError, RuntimeError)):
        fastsoftmax.softmax(FakeDeviceArray())


class FakeInterfaceArray:
    """A __cuda_array_interface__ producer whose pointer is host memory."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array
        self.shape = array.shape
        self.__cuda_array_interface__ = {
            "shape": array.shape, "typestr": array.dtype.str, "data": (array.ctypes.data, False), "version": 3,
            "strides": None, "stream": None,
        }


def test_cuda_array_interface_of_host_memory_is_refused():
    x = FakeInterfaceArray(np.ones((2, 8), np.float32))
    with pytest.raises(TypeError, match="pass out="):
        fastsoftmax.softmax(x)  # no framework to allocate in
    with pytest.raises((ValueError, RuntimeError)):
        fastsoftmax.softmax(x, out=FakeInterfaceArray(np.zeros((2, 8), np.float32)))
    assert np.all(x.array == 1)


@pytest.mark.parametrize("versioned", [False, True])
def test_dlpack_capsules_are_read_and_consumed(versioned):
    """NumPy's own capsules (CPU memory): parsed, consumed, and refused as not device memory."""
    x = np.ones((2, 8), np.float32)
    out = np.zeros_like(x)
    kwargs = {"max_version": (1, 0)} if versioned else {}
    try:
        capsule, out_capsule = x.__dlpack__(**kwargs), out.__dlpack__(**kwargs)
    except TypeError:
        pytest.skip("this NumPy exports no versioned DLPack")
    with pytest.raises(ValueError, match="x is not in CUDA device memory"):
        _cuda.run("softmax", capsule, out_capsule, None, -1, "auto", 1.0, None, True, 0)
    assert "used_dltensor" in repr(capsule)  # consumed, as the protocol asks
    assert np.all(out == 0)
    with pytest.raises(TypeError, match="expected a DLPack capsule"):
        _cuda.run("softmax", capsule, out.__dlpack__(), None, -1, "auto", 1.0, None, True, 0)


def test_device_argument_errors_come_first():
    """Bad temperature, k or algorithm are reported before anything about memory."""
    x = np.ones((2, 8), np.float32)
    with pytest.raises(ValueError, match="temperature must be finite"):
        _cuda.explain("softmax", x.__dlpack__(), -1, "auto", -1.0, None)
