"""Side-by-side softmax timings: fastsoftmax against the peers a user would pick instead.

Peers (each used only if importable): NumPy (hand-written three-pass), SciPy
(scipy.special.softmax), PyTorch CPU (torch.softmax), ONNX Runtime (Softmax op, MLAS kernels).
Install them with:  pip install scipy onnx onnxruntime torch==2.13.0

Prints nanoseconds per element (best of N runs, all in one process, interleaved) and each
peer's time divided by fastsoftmax's best algorithm (>1 means fastsoftmax is faster).

  python bench/bench_peers.py                      # default shapes, 1 thread
  python bench/bench_peers.py --threads 2 --shape 64x128256 --shape 1x16777216
"""
import argparse
import importlib
import time

import numpy as np

ALGORITHMS = ("two_pass", "three_pass_reload", "three_pass_recompute", "online")


def best_time(fn, reps):
    fn()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def peers(x, threads):
    out = {}
    out["numpy"] = lambda: (lambda e: e / e.sum(-1, keepdims=True))(np.exp(x - x.max(-1, keepdims=True)))
    try:
        import scipy.special as sp
        out["scipy"] = lambda: sp.softmax(x, axis=-1)
    except ImportError:
        pass
    try:
        import torch
        torch.set_num_threads(threads)
        tx = torch.from_numpy(x)
        out["torch"] = lambda: torch.softmax(tx, -1)
    except ImportError:
        pass
    try:
        from peers import onnx_softmax
        out["onnxruntime"] = onnx_softmax(x, np.empty_like(x), -1, threads)
    except ImportError:
        pass
    return out


def ours(x, threads):
    try:
        fs = importlib.import_module("fastsoftmax")
    except ImportError:
        return {}
    y = np.empty_like(x)
    out = {}
    for algo in ALGORITHMS:
        kwargs = {"algorithm": algo, "out": y}
        try:
            fs.softmax(x, num_threads=threads, **kwargs)
            kwargs["num_threads"] = threads
        except TypeError:
            pass
        try:
            fs.softmax(x, **kwargs)
        except Exception as exc:  # an algorithm not built yet
            print(f"  fastsoftmax {algo}: unavailable ({exc})")
            continue
        out[f"fastsoftmax[{algo}]"] = (lambda kw: lambda: fs.softmax(x, **kw))(dict(kwargs))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", action="append", help="ROWSxCOLS, e.g. 64x128256 (repeatable)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=0, help="runs per candidate (default: by size)")
    args = ap.parse_args()
    shapes = args.shape or ["1x1024", "1x65536", "1x1048576", "1x16777216", "64x128256"]
    rng = np.random.default_rng(0)
    for spec in shapes:
        rows, cols = (int(v) for v in spec.lower().split("x"))
        x = (rng.standard_normal((rows, cols), dtype=np.float32) * 4).astype(np.float32)
        reps = args.reps or (50 if x.size <= 1 << 20 else 8)
        cands = {**ours(x, args.threads), **peers(x, args.threads)}
        times = {name: best_time(fn, reps) for name, fn in cands.items()}
        mine = [t for n, t in times.items() if n.startswith("fastsoftmax")]
        best_ours = min(mine) if mine else None
        print(f"shape {rows}x{cols}, {args.threads} thread(s), best of {reps}:")
        for name, t in sorted(times.items(), key=lambda kv: kv[1]):
            ratio = f"  x{t / best_ours:5.2f} of fastsoftmax best" if best_ours else ""
            print(f"  {name:34s} {t * 1e9 / x.size:8.3f} ns/element{ratio}")


if __name__ == "__main__":
    main()
