"""``fastsoftmax.explain``: which implementation and kernel a call runs, and why, for every rule of
the selection policy (cpp/src/plan.cc), and the validator's messages for refused calls."""

from __future__ import annotations

import os
import subprocess
import sys

import fastsoftmax
import numpy as np
import pytest
from conftest import skip_unless_available

try:
    import ml_dtypes
except ImportError:  # pragma: no cover - ml_dtypes is in the [test] extra
    ml_dtypes = None

SIMD = [isa for isa in fastsoftmax.ISAS[1:] if isa != "scalar"]
# The longest row "auto" still runs three_pass_reload (compute-bound), per ISA: AVX2's dearer exp
# keeps it compute-bound from L3 too.
RELOAD_ROW = {"avx2": (1 << 20) - 1, "avx512": (1 << 17) - 1, "avx512_bf16": (1 << 17) - 1}


def f32(*shape: int) -> np.ndarray:
    return np.random.default_rng(0).normal(0, 4, shape).astype(np.float32)


def test_explanation_fields_and_text():
    e = fastsoftmax.explain(f32(4, 1000), isa="scalar")
    assert e.ok and e.error == ""
    assert (e.implementation, e.algorithm, e.schedule, e.threads) == ("scalar", "three_pass_reload", "rows", 1)
    assert e.kernel == "f32-softmax-three_pass_reload-scalar-libm-u1"
    assert set(e.reasons) == {"implementation", "kernel", "algorithm", "schedule", "threads"}
    assert all(isinstance(r, str) and r for r in e.reasons.values())
    text = str(e)
    for field, reason in e.reasons.items():
        assert f"{field}: " in text and reason in text
    assert e.kernel in {k["name"] for k in fastsoftmax.kernels()}


def test_auto_implementation_is_the_best_supported(isa_env_unset):
    e = fastsoftmax.explain(f32(10))
    assert e.implementation == fastsoftmax.available_isas()[-1]
    assert "best" in e.reasons["implementation"]


def test_explicit_implementation():
    for isa in fastsoftmax.available_isas():
        e = fastsoftmax.explain(f32(10), isa=isa)
        assert e.implementation == isa and "asked for" in e.reasons["implementation"]


@pytest.mark.parametrize("isa", SIMD)
@pytest.mark.parametrize("temperature", [2.0**-21, 2.0**21, 1e-30, 1e30])
def test_temperature_outside_the_simd_range_runs_scalar_kernels(isa, temperature):
    skip_unless_available(isa)
    e = fastsoftmax.explain(f32(3, 100), isa=isa, temperature=temperature)
    assert e.implementation == isa
    assert "-scalar-" in e.kernel and "temperature" in e.reasons["kernel"]
    inside = fastsoftmax.explain(f32(3, 100), isa=isa, temperature=2.0**-19)
    assert "-scalar-" not in inside.kernel


@pytest.mark.parametrize("isa", SIMD)
def test_float64_runs_the_scalar_kernels(isa):
    skip_unless_available(isa)
    e = fastsoftmax.explain(np.zeros((3, 100)), isa=isa)
    assert e.implementation == isa
    assert e.kernel.startswith("f64-") and "-scalar-" in e.kernel
    assert "no kernels of its own" in e.reasons["kernel"]


@pytest.mark.parametrize("isa", SIMD)
@pytest.mark.parametrize("function", ["softmax", "log_softmax"])
def test_adjacent_columns_run_the_column_kernels_with_two_pass(isa, function):
    skip_unless_available(isa)
    x = f32(50, 200)
    e = fastsoftmax.explain(x, 0, function=function, isa=isa)
    assert e.schedule == "columns" and e.algorithm == "two_pass"
    assert "-c" in e.kernel and "column" in e.reasons["algorithm"]
    # Forced algorithms run as asked, on columns too.
    assert fastsoftmax.explain(x, 0, function=function, isa=isa, algorithm="online").algorithm == "online"
    # The same axis of a transposed copy is contiguous: (short) rows, not columns.
    assert fastsoftmax.explain(np.ascontiguousarray(x.T), -1, function=function, isa=isa).schedule == "short rows"


@pytest.mark.parametrize("isa", SIMD)
@pytest.mark.parametrize("function", ["softmax", "log_softmax"])
def test_short_rows_run_transposed_on_the_column_kernels(isa, function):
    """Batches of contiguous float32 rows under 64 elements: Schedule "short rows"; not one row,
    not strided rows (gathered instead), not other dtypes, not the scalar target."""
    skip_unless_available(isa)
    e = fastsoftmax.explain(f32(100, 8), function=function, isa=isa)
    assert e.schedule == "short rows" and "-c" in e.kernel and "lane" in e.reasons["schedule"]
    assert fastsoftmax.explain(f32(100, 63), function=function, isa=isa).schedule == "short rows"
    assert fastsoftmax.explain(f32(100, 64), function=function, isa=isa).schedule == "rows"
    assert fastsoftmax.explain(f32(1, 8), function=function, isa=isa).schedule == "rows"
    assert fastsoftmax.explain(f32(100, 16)[:, ::2], function=function, isa=isa).schedule == "rows"
    assert fastsoftmax.explain(f32(100, 8).astype(np.float16), function=function, isa=isa).schedule == "rows"
    assert fastsoftmax.explain(f32(100, 8), function=function, isa="scalar").schedule == "rows"


@pytest.mark.parametrize("isa", SIMD)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_16_bit_rows_run_two_pass(isa, dtype):
    skip_unless_available(isa)
    if dtype == "bfloat16" and ml_dtypes is None:
        pytest.skip("bfloat16 needs ml_dtypes")
    x = f32(3, 100).astype(ml_dtypes.bfloat16 if dtype == "bfloat16" else np.float16)
    e = fastsoftmax.explain(x, isa=isa)
    assert e.algorithm == "two_pass" and "16-bit" in e.reasons["algorithm"]
    assert fastsoftmax.explain(x, isa="scalar").algorithm == "three_pass_reload"


@pytest.mark.parametrize("function", ["softmax", "log_softmax", "softmax_topk"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_element_rows_take_the_checked_path(function, dtype):
    k = {"k": 1} if function == "softmax_topk" else {}
    for x in (np.ones((5, 1), dtype), np.array(2.0, dtype)):
        if function == "softmax_topk" and x.ndim == 0:
            continue
        e = fastsoftmax.explain(x, function=function, **k)
        assert e.schedule == "one element" and "-checked-" in e.kernel, str(e)
        assert "checked path" in e.reasons["schedule"]


@pytest.mark.parametrize("isa", SIMD)
def test_auto_algorithm_by_row_length(isa):
    skip_unless_available(isa)
    short = fastsoftmax.explain(f32(RELOAD_ROW[isa]), isa=isa)
    long = fastsoftmax.explain(f32(RELOAD_ROW[isa] + 1), isa=isa, num_threads=1)
    assert short.algorithm == "three_pass_reload" and "compute-bound" in short.reasons["algorithm"]
    assert long.algorithm == "two_pass" and "traffic" in long.reasons["algorithm"]
    scalar = fastsoftmax.explain(f32(RELOAD_ROW[isa] + 1), isa="scalar")
    assert scalar.algorithm == "three_pass_reload" and "C library" in scalar.reasons["algorithm"]


@pytest.mark.parametrize("algorithm", ["auto", "three_pass_reload"])
def test_log_softmax_never_reloads(algorithm):
    e = fastsoftmax.explain(f32(2, 100), function="log_softmax", algorithm=algorithm)
    assert e.algorithm == "three_pass_recompute" and "nothing to reload" in e.reasons["algorithm"]


def test_topk_runs_the_online_algorithm():
    e = fastsoftmax.explain(f32(4, 300), function="softmax_topk", k=3)
    assert e.algorithm == "online" and "softmax_topk" in e.kernel and "Alg. 4" in e.reasons["algorithm"]


@pytest.mark.parametrize("function", ["softmax", "softmax_topk"])
def test_few_long_rows_are_split_across_threads(function):
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one CPU: nothing to split across")
    k = {"k": 5} if function == "softmax_topk" else {}
    x = f32(1, 1 << 18)
    split = fastsoftmax.explain(x, function=function, num_threads=2, **k)
    assert split.schedule == "split rows" and split.threads == 2 and "split" in split.reasons["schedule"]
    one = fastsoftmax.explain(x, function=function, num_threads=1, **k)
    assert one.schedule == "rows" and one.threads == 1
    # Many rows are shared out whole; small work stays on one thread.
    assert fastsoftmax.explain(f32(8, 1 << 16), function=function, num_threads=2, **k).schedule == "rows"
    small = fastsoftmax.explain(f32(2, 1000), function=function, num_threads=2, **k)
    assert small.threads == 1 and "256 KiB" in small.reasons["threads"]


def test_strided_rows_are_gathered():
    x = f32(100, 30)[::2, ::3]
    e = fastsoftmax.explain(x, isa="scalar")
    assert e.schedule == "rows" and "gathered" in e.reasons["schedule"]


def test_avx512_bf16_is_listed_and_forceable():
    names = [i["name"] for i in fastsoftmax.implementations()]
    assert "avx512_bf16" in names and "avx512_bf16" in fastsoftmax.ISAS
    skip_unless_available("avx512_bf16")
    if ml_dtypes is None:
        pytest.skip("bfloat16 needs ml_dtypes")
    x = f32(3, 100)
    bf16 = fastsoftmax.explain(x.astype(ml_dtypes.bfloat16), isa="avx512_bf16")
    assert bf16.implementation == "avx512_bf16" and "-avx512_bf16-" in bf16.kernel
    plain = fastsoftmax.explain(x.astype(ml_dtypes.bfloat16), isa="avx512")
    assert "-avx512-" in plain.kernel
    # Its other kernels are avx512's.
    e = fastsoftmax.explain(x, isa="avx512_bf16")
    assert "-avx512-" in e.kernel and "nearest lower target" in e.reasons["kernel"]
    np.testing.assert_array_equal(
        fastsoftmax.softmax(x.astype(ml_dtypes.bfloat16), isa="avx512_bf16").view(np.uint16),
        fastsoftmax.softmax(x.astype(ml_dtypes.bfloat16), isa="avx512").view(np.uint16))


# ---- Refused calls: explain gives the validator's message, the call raises it ------------------


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"temperature": -1.0}, "temperature must be finite and > 0, got -1"),
        ({"temperature": -0.1}, "temperature must be finite and > 0, got -0.1"),
        ({"temperature": float("inf")}, "temperature must be finite and > 0, got inf"),
        ({"function": "softmax_topk", "k": 0}, "k must be in 1..n (n = 7, the row length), got 0"),
        ({"function": "softmax_topk", "k": 8}, "k must be in 1..n (n = 7, the row length), got 8"),
        ({"function": "softmax_topk", "k": -3}, "got -3"),
    ],
)
def test_refused_calls(kwargs, words):
    x = f32(2, 7)
    e = fastsoftmax.explain(x, **kwargs)
    assert not e.ok and words in e.error and e.kernel == ""
    assert str(e).startswith("error: ")
    function = getattr(fastsoftmax, kwargs.pop("function", "softmax"))
    args = (x, kwargs.pop("k")) if function is fastsoftmax.softmax_topk else (x,)
    with pytest.raises(ValueError) as raised:
        function(*args, **kwargs)
    assert words in str(raised.value)


def test_unavailable_isa_says_why():
    missing = [i for i in fastsoftmax.implementations() if not i["supported"] and i["backend"] == "cpu"]
    if not missing:
        pytest.skip("every implementation is available here")
    for implementation in missing:
        e = fastsoftmax.explain(f32(5), isa=implementation["name"])
        assert not e.ok and "not available" in e.error
        reason = "not compiled into this build" if not implementation["compiled"] else "not supported by this CPU"
        assert reason in e.error


def run_python(code: str, isa_env: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "FASTSOFTMAX_ISA": isa_env}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                          check=False)


def test_fastsoftmax_isa_in_the_reasons_and_errors():
    isa = fastsoftmax.available_isas()[0]
    code = ("import numpy as np, fastsoftmax; e = fastsoftmax.explain(np.ones(4, np.float32)); "
            "print(e.implementation); print(e.reasons['implementation'])")
    proc = run_python(code, isa)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [isa, "isa auto: FASTSOFTMAX_ISA names it"]
    proc = run_python("import numpy as np, fastsoftmax; print(fastsoftmax.explain(np.ones(4)).error)", "bogus")
    assert proc.stdout.strip().startswith("FASTSOFTMAX_ISA='bogus' names no ISA"), proc.stdout + proc.stderr
    proc = run_python("import numpy as np, fastsoftmax\ntry:\n    fastsoftmax.softmax(np.ones(4))\n"
                      "except ValueError as e:\n    print(e)", "bogus")
    assert "FASTSOFTMAX_ISA='bogus'" in proc.stdout, proc.stdout + proc.stderr


def test_explain_arguments_like_the_call():
    with pytest.raises(TypeError):
        fastsoftmax.explain(f32(5), temperature="hot")
    with pytest.raises(ValueError, match="unknown function"):
        fastsoftmax.explain(f32(5), function="softmin")
    with pytest.raises(TypeError, match="needs k"):
        fastsoftmax.explain(f32(5), function="softmax_topk")
    with pytest.raises(ValueError, match="unknown isa"):
        fastsoftmax.explain(f32(5), isa="neon")
    empty = fastsoftmax.explain(np.zeros((0, 4), np.float32))
    assert empty.ok


# ---- Names: defined once, in C++ -------------------------------------------------------------


def test_names_come_from_the_library():
    cpu = [i for i in fastsoftmax.implementations() if i["backend"] == "cpu"]
    assert fastsoftmax.ISAS == ("auto", *(i["name"] for i in cpu))
    assert fastsoftmax.ALGORITHMS == ("auto", "two_pass", "three_pass_reload", "three_pass_recompute", "online")
    priorities = [i["priority"] for i in fastsoftmax.implementations()]
    assert priorities == sorted(priorities)
    # The CUDA backend, where built, comes last: it takes device arrays, not isa=.
    devices = [i for i in fastsoftmax.implementations() if i["backend"] != "cpu"]
    assert [i["name"] for i in devices] == (["cuda"] if fastsoftmax._core.cuda_compiled else [])
    assert all(i["supported"] == fastsoftmax.cuda_available() for i in devices)
    features = fastsoftmax.cpu_features()
    for implementation in cpu:
        required = implementation["required_features"].split()
        assert set(required) <= set(features)
        if implementation["compiled"]:
            assert implementation["supported"] == all(features[f] for f in required)
