"""``python -m fastsoftmax``: describe this build and machine, then self-check every kernel.

Exits with status 1 if any (algorithm, ISA) pair misses its accuracy bound.
``python -m fastsoftmax bench ...`` runs the benchmark instead (see ``fastsoftmax.bench``).
"""

from __future__ import annotations

import argparse
import platform
import sys

import numpy as np

import fastsoftmax
from fastsoftmax import _core, bench

# Self-check bound: float32 outputs within this many units in the last place of the
# float64 reference (the kernels are designed for 2).
MAX_ULP = 4.0


def ulp_error(result: np.ndarray, reference: np.ndarray) -> float:
    """Largest |result - reference| in units in the last place of the reference rounded to the
    result's dtype (float32 or float16)."""
    rounded = reference.astype(result.dtype)
    ulp = np.spacing(np.abs(rounded)).astype(np.float64)
    return float(np.max(np.abs(result.astype(np.float64) - reference) / ulp))


def reference_softmax(x: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    shifted = (x.astype(np.float64) - x.max()) / temperature
    return np.exp(shifted) / np.exp(shifted).sum()


def self_check() -> bool:
    rng = np.random.default_rng(2020)
    x = rng.uniform(-20, 20, size=4099).astype(np.float32)
    x16 = x.astype(np.float16)
    temperature, k = 0.7, 5
    reference = reference_softmax(x)
    reference_t = reference_softmax(x, temperature)
    best = np.argsort(-x, kind="stable")[:k]
    ok = True

    def report(isa: str, what: str, err: float, bound: float, extra_ok: bool = True) -> None:
        nonlocal ok
        passed = err <= bound and extra_ok
        ok &= passed
        print(f"  {isa:7s} {what:28s} max error {err:5.2f} ulp  {'ok' if passed else 'FAIL'}")

    print(f"self-check: softmax of {x.size} float32 values in [-20, 20] vs float64 NumPy")
    for isa in fastsoftmax.available_isas():
        for algorithm in fastsoftmax.ALGORITHMS[1:]:
            report(isa, algorithm, ulp_error(fastsoftmax.softmax(x, algorithm=algorithm, isa=isa), reference), MAX_ULP)
        y_t = fastsoftmax.softmax(x, isa=isa, temperature=temperature)
        report(isa, f"temperature={temperature}", ulp_error(y_t, reference_t), MAX_ULP)
        values, indices = fastsoftmax.softmax_topk(x, k, isa=isa, temperature=temperature)
        err = ulp_error(values, reference_t[best])
        report(isa, f"softmax_topk k={k} (and order)", err, MAX_ULP, bool((indices == best).all()))
        # float16: the float32 result rounded once, within 1 float16 ULP of the reference
        report(isa, "float16", ulp_error(fastsoftmax.softmax(x16, isa=isa), reference_softmax(x16)), 1.0)
    return ok


def describe_and_self_check() -> int:
    """The default command: print the build and machine, self-check; 0 if every check passes."""
    features = fastsoftmax.cpu_features()
    print(f"fastsoftmax {fastsoftmax.__version__} (Python {platform.python_version()}, NumPy {np.__version__})")
    print(f"CPU: {platform.processor() or platform.machine()}")
    print("CPU features: " + ", ".join(f"{name}={'yes' if on else 'no'}" for name, on in features.items()))
    print(f"ISAs compiled in: {', '.join(fastsoftmax.compiled_isas())}")
    print(f"ISAs supported here: {', '.join(fastsoftmax.available_isas())}")
    try:
        active = fastsoftmax.active_isa()
    except ValueError as exc:
        print(f"active ISA: error: {exc}")
        return 1
    print(f"active ISA: {active}; algorithm='auto' picks "
          + ", ".join(f"{fastsoftmax.explain(np.zeros(n, np.float32)).algorithm} for n={n}" for n in (1000, 1_000_000)))
    usable, why = fastsoftmax.cuda_available(reason=True)
    print(f"CUDA backend compiled in: {'yes' if _core.cuda_compiled else 'no'}; usable: "
          f"{'yes' if usable else 'no (' + why + ')'}")
    threads = _core.get_num_threads()
    print(f"threads: {threads} by default (FASTSOFTMAX_NUM_THREADS, OMP_NUM_THREADS or the CPUs available)")
    ok = self_check()
    print("self-check passed" if ok else "self-check FAILED")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fastsoftmax",
        description="Without a command: describe this build and machine, then self-check every "
        "algorithm on every ISA against a float64 NumPy reference (exit status 1 if a check fails).",
    )
    commands = parser.add_subparsers(dest="command", title="commands")
    bench_parser = commands.add_parser(
        "bench", help="time every algorithm and ISA against NumPy, SciPy, PyTorch and ONNX Runtime"
    )
    bench.configure_parser(bench_parser)
    args = parser.parse_args(argv)
    if args.command == "bench":
        return bench.run(args, bench_parser)
    return describe_and_self_check()


if __name__ == "__main__":
    sys.exit(main())
