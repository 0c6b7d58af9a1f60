"""logsumexp and masked softmax against their peers: fastsoftmax.logsumexp against
scipy.special.logsumexp and torch.logsumexp, and fastsoftmax.softmax(x, where=mask) against
PyTorch's masked softmax (masked_fill with -inf, then softmax) and jax.nn.softmax(x, where=mask)
under jax.jit (float32, N(0, 16) inputs, a mask keeping 70% of the entries, warm buffers,
candidates interleaved in one run, one thread each). Prints a markdown table (the README's
"logsumexp, masks and mergeable normalizer states").

    OMP_WAIT_POLICY=PASSIVE python bench/logsumexp_where.py [--quick] [--json FILE]

Each candidate is timed in samples of back-to-back calls (at least --sample-ms each); samples of
all candidates alternate, --rounds times. A candidate's figure is the median over rounds of its
sample's mean call time; ratios are peer time / fastsoftmax time (> 1: fastsoftmax is faster).
Peers that are not installed (torch, jax) are left out. fastsoftmax reads x once for logsumexp,
and x and the mask twice for the masked softmax (no copy of x); PyTorch writes a masked copy of
x first.
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import fastsoftmax
import numpy as np
import scipy.special
from timing import measure

SHAPES = [(1, 1 << 20), (64, 128256), (4096, 1024), (32768, 128)]
KEEP = 0.7  # the fraction of entries the mask keeps


def peers_logsumexp(x: np.ndarray) -> dict[str, object]:
    candidates: dict[str, object] = {
        "fastsoftmax": lambda: fastsoftmax.logsumexp(x, axis=-1, num_threads=1),
        "scipy": lambda: scipy.special.logsumexp(x, axis=-1),
    }
    try:
        import torch

        tx = torch.from_numpy(x)
        candidates["torch"] = lambda: torch.logsumexp(tx, -1)
    except ImportError:
        pass
    return candidates


def peers_masked(x: np.ndarray, mask: np.ndarray) -> dict[str, object]:
    y = np.empty_like(x)
    candidates: dict[str, object] = {
        "fastsoftmax": lambda: fastsoftmax.softmax(x, out=y, where=mask, num_threads=1),
    }
    try:
        import torch

        tx, tmask, ty = torch.from_numpy(x), torch.from_numpy(~mask), torch.from_numpy(y)

        def torch_masked() -> None:
            torch.softmax(tx.masked_fill(tmask, float("-inf")), -1, out=ty)

        candidates["torch"] = torch_masked
    except ImportError:
        pass
    try:
        import jax

        jx, jmask = jax.device_put(x), jax.device_put(mask)
        jitted = jax.jit(lambda a, m: jax.nn.softmax(a, axis=-1, where=m))
        jitted(jx, jmask).block_until_ready()
        candidates["jax"] = lambda: jitted(jx, jmask).block_until_ready()
    except ImportError:
        pass
    return candidates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter samples")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--sample-ms", type=float, default=None)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    rounds = args.rounds or (3 if args.quick else 9)
    seconds = (args.sample_ms or (20 if args.quick else 60)) / 1000
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass

    rng = np.random.default_rng(0)
    results = []
    print(f"fastsoftmax {fastsoftmax.__version__}, isa {fastsoftmax.active_isa()}, 1 thread, median of {rounds} "
          "interleaved rounds; us per call, ratio = peer / fastsoftmax")
    print()
    print("| operation | shape (rows x n) | fastsoftmax us | scipy us | torch us | jax us | scipy / fs | torch / fs | "
          "jax / fs |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for shape in SHAPES:
        x = rng.normal(0, 4, shape).astype(np.float32)
        mask = rng.random(shape) < KEEP
        for operation, candidates in (("logsumexp", peers_logsumexp(x)), ("softmax, where=", peers_masked(x, mask))):
            times = measure(candidates, rounds, seconds)  # type: ignore[arg-type]
            fs = times["fastsoftmax"]
            cells = [f"{times[p] * 1e6:.1f}" if p in times else "-" for p in ("fastsoftmax", "scipy", "torch", "jax")]
            ratios = [f"{times[p] / fs:.2f}" if p in times else "-" for p in ("scipy", "torch", "jax")]
            print(f"| {operation} | {shape[0]} x {shape[1]} | " + " | ".join(cells + ratios) + " |", flush=True)
            results.append({"operation": operation, "shape": shape, "seconds": times})
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
