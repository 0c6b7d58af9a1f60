"""GPU benchmark of fastsoftmax's CUDA backend against torch.softmax and a Triton fused softmax.

    python bench/gpu/bench_gpu.py --out DIR [--quick] [--reps N] [--budget SECONDS] [--l2 cold|warm]

Softmax along the last axis of row-major 2-D tensors, float32 and bfloat16:
  - 4096 rows x {256, 1024, 4096, 12672, 32768, 131072};
  - {1, 8, 64} rows x {32000, 128256, 151936, 256000} (LLM vocabularies);
  - 1 row x {2^20, 10^7, 2^24};
peers: torch.softmax, the Triton kernel of triton_softmax.py, fastsoftmax.softmax (algorithm
"auto", and each of the four algorithms as extra columns). Fused top-k: fastsoftmax.softmax_topk
against torch.topk(torch.softmax(x, -1), k), at {1, 8, 64} x {32000, 128256}, k in {1, 5, 50}.

Timing: CUDA events around each call; before each timed call the L2 cache is flushed (by writing
a buffer larger than it; --l2 warm skips that) and the stream is given a short sleep, so that the
call is enqueued before the GPU reaches it and host-side launch overhead does not count (the
numbers are device time). Every peer is warmed up, then the peers are interleaved within each
round (their order rotated from round to round), and each one's median over the rounds is
reported (>= 20 rounds; --quick: 10 rounds, fewer shapes).

Bandwidth: a device-to-device copy (y.copy_(x), 1 GiB) is timed the same way; every softmax
result is reported as GB/s = (bytes read + bytes written, once each) / time, and as a fraction of
the copy's GB/s (bytes read + written). Each peer's output is compared with torch.softmax in
float64 (max absolute difference, in the JSON).

Output: DIR/bench_gpu.json (every sample and median), DIR/bench_gpu.md (the tables), the tables
printed. A peer that is missing or fails is "n/a" (its error in the JSON); the exit status is 0
unless the arguments are wrong.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

try:
    import torch
except ImportError:  # reported in the output
    torch = None

ALGORITHMS = ("two_pass", "three_pass_reload", "three_pass_recompute", "online")
DTYPES = ("float32", "bfloat16")

FULL_SHAPES = (
    [(4096, n) for n in (256, 1024, 4096, 12672, 32768, 131072)]
    + [(b, n) for b in (1, 8, 64) for n in (32000, 128256, 151936, 256000)]
    + [(1, n) for n in (2**20, 10**7, 2**24)]
)
QUICK_SHAPES = [(4096, 256), (4096, 4096), (4096, 32768), (8, 128256), (64, 151936), (1, 2**20), (1, 2**24)]
TOPK_SHAPES = [(b, n) for b in (1, 8, 64) for n in (32000, 128256)]
QUICK_TOPK_SHAPES = [(1, 128256), (64, 128256)]
TOPK_KS = (1, 5, 50)

COPY_BYTES = 1 << 30
FLUSH_BYTES = 256 << 20  # larger than any current L2 (H100: 50 MB, H200: 60 MB... B200: 126 MB)
SLEEP_CYCLES = 200_000  # ~0.1 ms at 1.8 GHz: the next call is enqueued before the GPU gets there


# ---- Peers --------------------------------------------------------------------------------------


def load_peers():
    """{name: (callable or None, why not)} for the softmax peers, in column order."""
    peers = {"torch": (lambda x: torch.softmax(x, dim=-1), "")}
    try:
        from triton_softmax import available as triton_available
        from triton_softmax import triton_softmax

        ok, why = triton_available()
        peers["triton"] = (triton_softmax if ok else None, why)
    except Exception as e:  # noqa: BLE001 - a broken Triton is a missing peer
        peers["triton"] = (None, f"import failed: {e!r}")
    fs, why = load_fastsoftmax()
    peers["fastsoftmax"] = (fs.softmax if fs else None, why)
    for algorithm in ALGORITHMS:
        call = functools.partial(fs.softmax, algorithm=algorithm) if fs else None
        peers[f"fastsoftmax:{algorithm}"] = (call, why)
    return peers


def load_fastsoftmax():
    """(the fastsoftmax module, "") if its CUDA backend can run here, else (None, why)."""
    try:
        import fastsoftmax
    except Exception as e:  # noqa: BLE001
        return None, f"import failed: {e!r}"
    available = getattr(fastsoftmax, "cuda_available", None)
    if available is None:
        return None, "fastsoftmax has no cuda_available() (no CUDA backend in this build)"
    try:
        ok, why = available(reason=True)
    except Exception as e:  # noqa: BLE001
        return None, f"cuda_available() raised {e!r}"
    return (fastsoftmax, "") if ok else (None, f"cuda_available() is False: {why}")


# ---- Timing -------------------------------------------------------------------------------------


class Timer:
    """Device time of single calls: flush L2 (optional), sleep, event, call, event."""

    def __init__(self, cold_l2: bool):
        self.flush = torch.empty(FLUSH_BYTES // 4, dtype=torch.float32, device="cuda") if cold_l2 else None
        self.sleep = getattr(torch.cuda, "_sleep", None)

    def start(self):
        if self.flush is not None:
            self.flush.zero_()
        if self.sleep is not None:
            self.sleep(SLEEP_CYCLES)
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        begin.record()
        return begin, end


def run_rounds(calls: dict, reps: int, warmup: int, timer: Timer) -> dict:
    """{name: [ms, ...]} for each callable in calls (None ones skipped), interleaved per round,
    the order rotated each round. A call that raises is dropped, its error in the result."""
    live = {name: fn for name, fn in calls.items() if fn is not None}
    errors = {}
    for name, fn in list(live.items()):
        try:
            for _ in range(warmup):
                if fn() is None:
                    raise RuntimeError("not applicable (returned None)")
            torch.cuda.synchronize()
        except Exception as e:  # noqa: BLE001
            errors[name] = f"{type(e).__name__}: {e}"
            del live[name]
            torch.cuda.synchronize()
    samples = {name: [] for name in live}
    names = list(live)
    for r in range(reps):
        pending = []
        order = names[r % len(names) :] + names[: r % len(names)] if names else []
        for name in order:
            begin, end = timer.start()
            live[name]()
            end.record()
            pending.append((name, begin, end))
        torch.cuda.synchronize()
        for name, begin, end in pending:
            samples[name].append(begin.elapsed_time(end))
    return {"samples": samples, "errors": errors}


def copy_bandwidth(reps: int, timer: Timer) -> dict:
    """Device-to-device copy of COPY_BYTES: GB/s counting bytes read + written."""
    x = torch.ones(COPY_BYTES // 4, dtype=torch.float32, device="cuda")
    y = torch.empty_like(x)
    result = run_rounds({"copy": functools.partial(y.copy_, x)}, reps, 3, timer)
    times = result["samples"]["copy"]
    median = statistics.median(times)
    return {"bytes": 2 * COPY_BYTES, "samples_ms": times, "median_ms": median, "gbps": 2 * COPY_BYTES / median / 1e6}


# ---- Cases --------------------------------------------------------------------------------------


def torch_dtype(name: str):
    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[name]


def max_abs_diff(y, ref) -> float | None:
    if y is None or not isinstance(y, torch.Tensor) or y.shape != ref.shape:
        return None
    return float((y.double() - ref).abs().max())


def bench_softmax(rows: int, n: int, dtype: str, peers: dict, reps: int, timer: Timer, copy_gbps: float) -> dict:
    x = (torch.randn(rows, n, device="cuda") * 4).to(torch_dtype(dtype))
    ref = torch.softmax(x.double(), dim=-1)
    calls = {name: (functools.partial(fn, x) if fn else None) for name, (fn, _) in peers.items()}
    # Accuracy first (also triggers compilation), then the timing rounds.
    diffs, errors = {}, {}
    for name, fn in calls.items():
        if fn is None:
            errors[name] = peers[name][1] or "not available"
            continue
        try:
            y = fn()
            if y is None:
                errors[name] = "not applicable (returned None)"
                calls[name] = None
            else:
                diffs[name] = max_abs_diff(y, ref)
        except Exception as e:  # noqa: BLE001
            errors[name] = f"{type(e).__name__}: {e}"
            calls[name] = None
    del ref
    torch.cuda.synchronize()
    timed = run_rounds(calls, reps, 2, timer)
    errors.update(timed["errors"])
    moved = 2 * rows * n * x.element_size()  # read once + written once
    results = {}
    for name in peers:
        times = timed["samples"].get(name)
        if times:
            median = statistics.median(times)
            gbps = moved / median / 1e6
            results[name] = {
                "samples_ms": times,
                "median_ms": median,
                "gbps": gbps,
                "fraction_of_copy": gbps / copy_gbps if copy_gbps else None,
                "max_abs_diff": diffs.get(name),
            }
        else:
            results[name] = {"error": errors.get(name, "no samples")}
    return {"rows": rows, "n": n, "dtype": dtype, "bytes": moved, "peers": results}


def bench_topk(rows: int, n: int, dtype: str, k: int, fs, why: str, reps: int, timer: Timer) -> dict:
    x = (torch.randn(rows, n, device="cuda") * 4).to(torch_dtype(dtype))

    def torch_topk():
        return torch.topk(torch.softmax(x, dim=-1), k)

    calls = {"torch softmax+topk": torch_topk}
    calls["fastsoftmax.softmax_topk"] = functools.partial(fs.softmax_topk, x, k) if fs else None
    errors = {} if fs else {"fastsoftmax.softmax_topk": why}
    same_indices = same_values = None
    if fs:
        try:
            want_values, want = calls["torch softmax+topk"]()
            got_values, got = calls["fastsoftmax.softmax_topk"]()
            # Indices may differ where inputs tie (torch.topk's order among ties is unspecified;
            # bfloat16 rows have many): the values must agree all the same.
            same_indices = bool(torch.equal(want.cpu(), got.cpu()))
            same_values = bool(torch.allclose(got_values.float(), want_values.float(), rtol=1e-2, atol=1e-30))
        except Exception as e:  # noqa: BLE001
            errors["fastsoftmax.softmax_topk"] = f"{type(e).__name__}: {e}"
            calls["fastsoftmax.softmax_topk"] = None
    timed = run_rounds(calls, reps, 2, timer)
    errors.update(timed["errors"])
    results = {}
    for name in calls:
        times = timed["samples"].get(name)
        results[name] = (
            {"samples_ms": times, "median_ms": statistics.median(times)}
            if times
            else {"error": errors.get(name, "no samples")}
        )
    return {
        "rows": rows,
        "n": n,
        "dtype": dtype,
        "k": k,
        "same_indices": same_indices,
        "same_values": same_values,
        "peers": results,
    }


# ---- Report -------------------------------------------------------------------------------------


def shape_name(rows: int, n: int) -> str:
    def short(v: int) -> str:
        if v >= 1 << 20 and v & (v - 1) == 0:
            return f"2^{v.bit_length() - 1}"
        if v == 10**7:
            return "10^7"
        return str(v)

    return f"{rows} x {short(n)}"


def markdown(report: dict) -> str:
    lines = []
    env = report["environment"]
    copy = report.get("copy")
    lines.append(f"# fastsoftmax GPU benchmark: {env.get('device', '?')}")
    lines.append("")
    lines.append(
        f"torch {env.get('torch')}, triton {env.get('triton')}, fastsoftmax {env.get('fastsoftmax')}; "
        f"L2 {report['settings']['l2']}, {report['settings']['reps']} rounds, median device time."
    )
    if copy:
        lines.append(f"Device copy (y.copy_(x), 1 GiB): {copy['gbps']:.0f} GB/s (read + written).")
    names = report.get("peer_names", [])
    if report["softmax"]:
        lines.append("")
        lines.append("## softmax: GB/s (read + written once) and fraction of copy bandwidth")
        lines.append("")
        lines.append("| shape | dtype | " + " | ".join(names) + " | fastsoftmax / torch |")
        lines.append("| --- | --- | " + " | ".join("---:" for _ in names) + " | ---: |")
    for case in report["softmax"]:
        cells = []
        for name in names:
            r = case["peers"].get(name, {})
            cells.append(f"{r['gbps']:.0f} ({r['fraction_of_copy']:.2f})" if "gbps" in r else "n/a")
        fs, th = case["peers"].get("fastsoftmax", {}), case["peers"].get("torch", {})
        speedup = f"{th['median_ms'] / fs['median_ms']:.2f}x" if "median_ms" in fs and "median_ms" in th else "n/a"
        lines.append(
            f"| {shape_name(case['rows'], case['n'])} | {case['dtype']} | " + " | ".join(cells) + f" | {speedup} |"
        )
    if report.get("topk"):
        lines.append("")
        lines.append("## softmax_topk: ms per call (median)")
        lines.append("")
        lines.append(
            "| shape | dtype | k | torch softmax+topk | fastsoftmax.softmax_topk | speedup | same values / indices |"
        )
        lines.append("| --- | --- | ---: | ---: | ---: | ---: | --- |")
        for case in report["topk"]:
            t = case["peers"].get("torch softmax+topk", {})
            f = case["peers"].get("fastsoftmax.softmax_topk", {})
            tm = f"{t['median_ms']:.4f}" if "median_ms" in t else "n/a"
            fm = f"{f['median_ms']:.4f}" if "median_ms" in f else "n/a"
            sp = f"{t['median_ms'] / f['median_ms']:.2f}x" if "median_ms" in t and "median_ms" in f else "n/a"
            said = {True: "yes", False: "NO", None: "n/a"}
            agree = f"{said[case.get('same_values')]} / {said[case.get('same_indices')]}"
            lines.append(
                f"| {shape_name(case['rows'], case['n'])} | {case['dtype']} | {case['k']} | {tm} | {fm} | {sp} | {agree} |"
            )
    notes = report.get("notes", [])
    if notes:
        lines.append("")
        lines.append("Notes:")
        lines.extend(f"- {note}" for note in notes)
    return "\n".join(lines) + "\n"


def environment() -> dict:
    env = {"python": platform.python_version(), "host": platform.node()}
    if torch is not None:
        env["torch"] = torch.__version__
        env["torch_cuda"] = torch.version.cuda
        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            env["device"] = props.name
            env["sm_count"] = props.multi_processor_count
            env["memory_gib"] = round(props.total_memory / 2**30, 1)
            env["capability"] = f"{props.major}.{props.minor}"
    try:
        import triton

        env["triton"] = triton.__version__
    except Exception:  # noqa: BLE001
        env["triton"] = None
    try:
        import fastsoftmax

        env["fastsoftmax"] = getattr(fastsoftmax, "__version__", "?")
    except Exception:  # noqa: BLE001
        env["fastsoftmax"] = None
    return env


def write(report: dict, out: str) -> str:
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "bench_gpu.json"), "w") as f:
        json.dump(report, f, indent=1)
    text = markdown(report)
    with open(os.path.join(out, "bench_gpu.md"), "w") as f:
        f.write(text)
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder for bench_gpu.json and bench_gpu.md")
    parser.add_argument("--quick", action="store_true", help="fewer shapes and rounds")
    parser.add_argument("--reps", type=int, default=None, help="timed rounds per shape (default 25, quick 10)")
    parser.add_argument("--budget", type=float, default=None, help="seconds: skip the shapes left after this")
    parser.add_argument("--l2", choices=("cold", "warm"), default="cold", help="flush L2 before each call (cold)")
    parser.add_argument("--no-topk", action="store_true", help="skip the softmax_topk comparison")
    args = parser.parse_args(argv)
    reps = args.reps or (10 if args.quick else 25)
    if reps < 1:
        parser.error("--reps must be >= 1")
    started = time.monotonic()

    report = {
        "environment": environment(),
        "settings": {"quick": args.quick, "reps": reps, "l2": args.l2, "budget_s": args.budget},
        "softmax": [],
        "topk": [],
        "notes": [],
    }
    if torch is None or not torch.cuda.is_available():
        report["notes"].append("no PyTorch with CUDA: nothing measured")
        print(write(report, args.out))
        return 0

    def out_of_time() -> bool:
        return args.budget is not None and time.monotonic() - started > args.budget

    torch.manual_seed(0)
    timer = Timer(cold_l2=args.l2 == "cold")
    peers = load_peers()
    report["peer_names"] = list(peers)
    for name, (fn, why) in peers.items():
        if fn is None:
            report["notes"].append(f"{name}: n/a ({why})")
    copy = copy_bandwidth(max(reps, 10), timer)
    torch.cuda.empty_cache()  # the copy's 2 GiB
    report["copy"] = copy
    write(report, args.out)
    print(f"device copy: {copy['gbps']:.0f} GB/s", flush=True)

    shapes = QUICK_SHAPES if args.quick else FULL_SHAPES
    skipped = 0
    for rows, n in shapes:
        for dtype in DTYPES:
            if out_of_time():
                skipped += 1
                continue
            try:
                case = bench_softmax(rows, n, dtype, peers, reps, timer, copy["gbps"])
            except Exception as e:  # noqa: BLE001 - e.g. out of memory: record and go on
                case = {"rows": rows, "n": n, "dtype": dtype, "peers": {}, "error": traceback.format_exc()}
                report["notes"].append(f"{shape_name(rows, n)} {dtype}: {type(e).__name__}: {e}")
            report["softmax"].append(case)
            write(report, args.out)  # what is measured survives a timeout
            torch.cuda.empty_cache()
            cells = [
                f"{name} {r['gbps']:.0f}" for name, r in case["peers"].items() if isinstance(r, dict) and "gbps" in r
            ]
            print(f"{shape_name(rows, n)} {dtype}: " + ", ".join(cells) + " GB/s", flush=True)

    if not args.no_topk:
        fs, why = load_fastsoftmax()
        for rows, n in QUICK_TOPK_SHAPES if args.quick else TOPK_SHAPES:
            for dtype in DTYPES:
                for k in TOPK_KS:
                    if out_of_time():
                        skipped += 1
                        continue
                    try:
                        case = bench_topk(rows, n, dtype, k, fs, why, reps, timer)
                    except Exception as e:  # noqa: BLE001
                        case = {
                            "rows": rows,
                            "n": n,
                            "dtype": dtype,
                            "k": k,
                            "peers": {},
                            "error": traceback.format_exc(),
                        }
                        report["notes"].append(f"topk {shape_name(rows, n)} {dtype} k={k}: {type(e).__name__}: {e}")
                    report["topk"].append(case)
                    write(report, args.out)
    if skipped:
        report["notes"].append(f"{skipped} cases skipped: the --budget of {args.budget:g} s ran out")
    report["elapsed_s"] = time.monotonic() - started
    text = write(report, args.out)
    print()
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
