"""Where users live: fastsoftmax against PyTorch and ONNX Runtime on the shapes of attention
scores, MoE gating and classifier heads (float32, N(0, 16) inputs, warm buffers, candidates
interleaved in one run), on 1 and 2 threads, plus softmax_topk on router shapes and the cost of
small calls from Python. Prints markdown tables (the README's "Where users live").

    OMP_WAIT_POLICY=PASSIVE python bench/user_shapes.py            # everything, a few minutes
    OMP_WAIT_POLICY=PASSIVE python bench/user_shapes.py --quick    # fewer, shorter samples

Each candidate is timed in samples of back-to-back calls (at least --sample-ms each); samples of
all candidates alternate, --rounds times. A candidate's figure is the median over rounds of its
sample's mean call time; ratios are peer time / fastsoftmax time (> 1: fastsoftmax is faster).
fastsoftmax writes into out= (as the peers do: torch's out=, ONNX Runtime's bound output).
Needs torch, onnx and onnxruntime (`pip install ".[bench]" onnx onnxruntime torch`).
"""

from __future__ import annotations

import argparse
import json

import fastsoftmax
import numpy as np
import torch
from peers import onnx_softmax
from timing import measure

SHAPES = [(1, 1000), (1, 128256), (16384, 8), (4096, 64), (32768, 128), (4096, 256), (256, 4096), (64, 128256)]
TOPK_CASES = [(4096, 64, 2), (16384, 8, 2), (4096, 256, 8)]  # rows, experts, k


def softmax_rows(threads: int, rounds: int, seconds: float, rng: np.random.Generator) -> list[dict]:
    torch.set_num_threads(threads)
    rows = []
    for shape in SHAPES:
        x = rng.normal(0, 4, shape).astype(np.float32)
        y, y_torch, y_ort = np.empty_like(x), np.empty_like(x), np.empty_like(x)
        tx, ty = torch.from_numpy(x), torch.from_numpy(y_torch)
        times = measure({
            "fastsoftmax": lambda x=x, y=y: fastsoftmax.softmax(x, -1, out=y, num_threads=threads),
            "torch": lambda tx=tx, ty=ty: torch.softmax(tx, -1, out=ty),
            "onnxruntime": onnx_softmax(x, y_ort, -1, threads),
        }, rounds, seconds)
        rows.append({"shape": shape, "threads": threads, **times})
    return rows


def topk_rows(threads: int, rounds: int, seconds: float, rng: np.random.Generator) -> list[dict]:
    torch.set_num_threads(threads)
    rows = []
    for n_rows, experts, k in TOPK_CASES:
        x = rng.normal(0, 4, (n_rows, experts)).astype(np.float32)
        tx = torch.from_numpy(x)
        times = measure({
            "fastsoftmax": lambda x=x, k=k: fastsoftmax.softmax_topk(x, k, num_threads=threads),
            "torch": lambda tx=tx, k=k: torch.topk(torch.softmax(tx, -1), k),
        }, rounds, seconds)
        rows.append({"shape": (n_rows, experts), "k": k, "threads": threads, **times})
    return rows


def small_call_rows(rounds: int, seconds: float, rng: np.random.Generator) -> list[dict]:
    torch.set_num_threads(1)
    x = rng.normal(0, 4, 1000).astype(np.float32)
    small = rng.normal(0, 4, (4, 16)).astype(np.float32)
    tx, t_small = torch.from_numpy(x), torch.from_numpy(small)
    cases = {
        "1000 floats, a new result": ({
            "fastsoftmax": lambda: fastsoftmax.softmax(x),
            "torch": lambda: torch.softmax(tx, -1),
        }),
        "4 x 16, last axis": ({
            "fastsoftmax": lambda: fastsoftmax.softmax(small, -1),
            "torch": lambda: torch.softmax(t_small, -1),
        }),
        "4 x 16, axis 0": ({
            "fastsoftmax": lambda: fastsoftmax.softmax(small, 0),
            "torch": lambda: torch.softmax(t_small, 0),
        }),
    }
    return [{"case": name, **measure(c, rounds, seconds)} for name, c in cases.items()]


def us(seconds: float) -> str:
    return f"{seconds * 1e6:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5 rounds of 10 ms samples (default: 15 of 30 ms)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts (default: 1 2)")
    parser.add_argument("--json", help="also write every figure to this file")
    args = parser.parse_args()
    rounds, seconds = (5, 0.01) if args.quick else (15, 0.03)
    rng = np.random.default_rng(0)

    softmax = [row for t in args.threads for row in softmax_rows(t, rounds, seconds, rng)]
    topk = [row for t in args.threads for row in topk_rows(t, rounds, seconds, rng)]
    small = small_call_rows(rounds, seconds, rng)

    print(f"median of {rounds} interleaved samples, us per call; ratios: peer / fastsoftmax (> 1: fastsoftmax faster)\n")
    print("| shape (rows x n) | threads | fastsoftmax us | torch us | ONNX Runtime us | torch / fs | ORT / fs |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in softmax:
        fs = r["fastsoftmax"]
        print(f"| {r['shape'][0]} x {r['shape'][1]} | {r['threads']} | {us(fs)} | {us(r['torch'])} | "
              f"{us(r['onnxruntime'])} | {r['torch'] / fs:.2f} | {r['onnxruntime'] / fs:.2f} |")
    print("\n| softmax_topk (rows x n, k) | threads | fastsoftmax us | torch.topk(torch.softmax) us | torch / fs |")
    print("| --- | --- | --- | --- | --- |")
    for r in topk:
        print(f"| {r['shape'][0]} x {r['shape'][1]}, k={r['k']} | {r['threads']} | {us(r['fastsoftmax'])} | "
              f"{us(r['torch'])} | {r['torch'] / r['fastsoftmax']:.2f} |")
    print("\n| small call from Python (1 thread) | fastsoftmax us | torch us | torch / fs |")
    print("| --- | --- | --- | --- |")
    for r in small:
        print(f"| {r['case']} | {us(r['fastsoftmax'])} | {us(r['torch'])} | {r['torch'] / r['fastsoftmax']:.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"softmax": softmax, "topk": topk, "small_calls": small}, f, indent=1)


if __name__ == "__main__":
    main()
