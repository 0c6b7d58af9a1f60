"""LLM token sampling: fastsoftmax.sample against vLLM's PyTorch-native sampler.

Shapes: batch {1, 8, 64} x vocabulary {32000, 128256, 151936} (Llama 2, Llama 3, Qwen 2),
float32 logits, temperature 0.8 in every case, and four cases:

  (a) temperature only;
  (b) top_k = 50;
  (c) top_p = 0.9;
  (d) top_k = 50, top_p = 0.9 and min_p = 0.05.

The parameters are per-row arrays on both sides (numpy arrays for fastsoftmax, tensors for
PyTorch, as vLLM's input batch keeps them: temperature and top_p float32, top_k int32).

The logits (``--dist llm``, the default) are meant to look like a language model's: every token
N(0, 2), then 16 tokens of each row (drawn at random) set to U(7, 13), numpy seed 0. At
temperature 0.8 the 16 hold about 97% of the mass with 32000 tokens and about 89% with 151936
(the bulk's share grows with the vocabulary); the largest probability is about 0.2 to 0.5, and
top_p 0.9 keeps a median of about 7 tokens (32000) to about 100 (151936), with a tail of rows
that reach into the bulk and keep thousands: each case's kept-set sizes (PyTorch's) are printed.
``--dist normal`` draws plain N(0, 1) logits instead, where top_p 0.9 keeps about half the
vocabulary.

The PyTorch side is vLLM v1's sampler written out plainly (vllm/v1/sample/sampler.py and
ops/topk_topp_sampler.py, forward_native with random_sample, no per-request generators):
``logits.div(temperature[:, None])``; then ``apply_top_k_top_p_pytorch`` as it runs on a CPU:
with top_k alone, ``apply_top_k_only`` (``logits.topk(max k)``, the k-th value gathered per row,
``masked_fill_`` of what is below it: no sort); with top_p, ``logits.sort()`` ascending, top_k by
``logits_sort < logits_sort.gather(1, V - k)``, top_p by ``softmax``, ``cumsum``,
``probs_sum <= 1 - p`` (the last column never masked), and ``scatter_`` back (``--always-sort``
sorts for top_k alone too, as vLLM does where it may not synchronize); then min_p (vLLM's
MinPLogitsProcessor: ``softmax``, ``amax``, ``probs < min_p * max`` masked to -inf); then
``softmax`` and the draw ``probs.div_(q).argmax(-1)`` with ``q = empty_like(probs).exponential_()``.
min_p comes after top_k and top_p here, as fastsoftmax.sample and the issue order them; vLLM
itself runs it first (as an argmax-invariant logits processor, before the TopKTopPSampler), which
costs the same operations but may keep another set. Recent vLLM on x86 CPUs draws the token with
a fused C++ Gumbel argmax (forward_cpu) and earlier versions put the final softmax and draw
under torch.compile; neither is timed here (the filters, the sort above all, are the same). In
PyTorch 2.x on one thread ``exponential_`` costs ~20 ns a token, most of case (a)'s time, so a third
candidate, "torch w/o noise" (the same calls with ``argmax`` of the probabilities in place of the
noise and the division: not a sampler), shows PyTorch's time were the draw free (--no-floor leaves
it out).

    OMP_WAIT_POLICY=PASSIVE python bench/sample_llm.py [--quick] [--threads N] [--dist llm|normal]
        [--json FILE] [--always-sort] [--no-floor] [--batches 1,8,64] [--vocabs 32000,128256,151936]

Each candidate is timed in samples of back-to-back calls (at least --sample-ms each, after one
untimed call); samples of all candidates alternate, --rounds times (bench/timing.py). A
candidate's figure is the median over rounds of its sample's mean call time; ratios are torch time
/ fastsoftmax time (> 1: fastsoftmax is faster). The issue's goal: torch / fastsoftmax >= 5 at
batch 1 and >= 3 at batch 64. --threads N (default 1) goes to torch.set_num_threads and to
fastsoftmax's num_threads. fastsoftmax gets the same seed in every timed call, PyTorch draws
from its global generator. A full run writes bench/results/sample_llm.json (--json changes the
path; a --quick run writes only where --json says), with the machine described.

Before timing, each case checks (untimed) that every row's fastsoftmax token lies in the set
PyTorch keeps (finite after its filters), and, on row 0 of the first batch of the smallest
vocabulary (1 x 32000 by default), that 2000 fastsoftmax
draws (seeds 0..1999) land on the 8 likeliest tokens, and on the rest, as often as PyTorch's
filtered probabilities say (largest deviation, in standard deviations of the binomial). Needs
torch.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import fastsoftmax
import numpy as np
import torch
from timing import measure

BATCHES = (1, 8, 64)
VOCABS = (32000, 128256, 151936)
TEMPERATURE = 0.8
CASES = {  # name: (top_k, top_p, min_p)
    "a: temperature": (None, None, None),
    "b: top_k 50": (50, None, None),
    "c: top_p 0.9": (None, 0.9, None),
    "d: top_k 50 + top_p 0.9 + min_p 0.05": (50, 0.9, 0.05),
}
GOALS = {1: 5.0, 64: 3.0}  # batch: torch / fastsoftmax at least
SPIKES, SPIKE_LOW, SPIKE_HIGH, BULK_SIGMA = 16, 7.0, 13.0, 2.0
SEED = 1234  # fastsoftmax's seed in the timed calls
CHECK_DRAWS, CHECK_TOP = 2000, 8

TorchArgs = tuple[torch.Tensor, "torch.Tensor | None", "torch.Tensor | None", "torch.Tensor | None"]
RESULTS = Path(__file__).resolve().parent / "results" / "sample_llm.json"


def make_logits(rng: np.random.Generator, batch: int, vocab: int, dist: str) -> np.ndarray:
    """float32 (batch, vocab) logits: see the module docstring."""
    if dist == "normal":
        return rng.normal(0, 1, (batch, vocab)).astype(np.float32)
    x = rng.normal(0, BULK_SIGMA, (batch, vocab)).astype(np.float32)
    for row in x:
        row[rng.choice(vocab, SPIKES, replace=False)] = rng.uniform(SPIKE_LOW, SPIKE_HIGH, SPIKES)
    return x


# --- vLLM v1's PyTorch-native sampler ---------------------------------------------------------


def apply_top_k_only(logits: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """vLLM's apply_top_k_only: the top-k mask without sorting the vocabulary (in place)."""
    no_top_k_mask = k == logits.shape[1]
    k = k.masked_fill(no_top_k_mask, 1)
    max_top_k = k.max()
    k_index = k.sub_(1).unsqueeze(1)
    top_k_mask = logits.topk(int(max_top_k), dim=1).values.gather(1, k_index.long())
    top_k_mask.masked_fill_(no_top_k_mask.unsqueeze(1), -float("inf"))
    return logits.masked_fill_(logits < top_k_mask, -float("inf"))


def apply_top_k_top_p(logits: torch.Tensor, k: torch.Tensor | None, p: torch.Tensor | None,
                      always_sort: bool = False) -> torch.Tensor:
    """vLLM's apply_top_k_top_p_pytorch as on a CPU (allow_cpu_sync): sorts unless top_k is alone."""
    if p is None:
        if k is None:
            return logits
        if not always_sort:
            return apply_top_k_only(logits, k)
    logits_sort, logits_idx = logits.sort(dim=-1, descending=False)
    if k is not None:
        top_k_mask = logits_sort.size(1) - k.to(torch.long)
        top_k_mask = logits_sort.gather(1, top_k_mask.unsqueeze(dim=1))
        top_k_mask = logits_sort < top_k_mask
        logits_sort.masked_fill_(top_k_mask, -float("inf"))
    if p is not None:
        probs_sort = logits_sort.softmax(dim=-1)
        probs_sum = torch.cumsum(probs_sort, dim=-1, out=probs_sort)
        top_p_mask = probs_sum <= 1 - p.unsqueeze(dim=1)
        top_p_mask[:, -1] = False
        logits_sort.masked_fill_(top_p_mask, -float("inf"))
    return logits.scatter_(dim=-1, index=logits_idx, src=logits_sort)


def apply_min_p(logits: torch.Tensor, min_p: torch.Tensor) -> torch.Tensor:
    """vLLM's MinPLogitsProcessor.apply (min_p of shape (batch, 1)), in place."""
    probability_values = torch.nn.functional.softmax(logits, dim=-1)
    max_probabilities = torch.amax(probability_values, dim=-1, keepdim=True)
    adjusted_min_p = max_probabilities.mul_(min_p)
    invalid_token_mask = probability_values < adjusted_min_p
    logits.masked_fill_(invalid_token_mask, -float("inf"))
    return logits


def torch_filtered(logits: torch.Tensor, temperature: torch.Tensor, k: torch.Tensor | None,
                   p: torch.Tensor | None, min_p: torch.Tensor | None, always_sort: bool) -> torch.Tensor:
    """The logits after the temperature and the filters (a new tensor; the input is left alone)."""
    logits = logits.div(temperature.unsqueeze(dim=1))
    logits = apply_top_k_top_p(logits, k, p, always_sort)
    if min_p is not None:
        logits = apply_min_p(logits, min_p)
    return logits


def random_sample(probs: torch.Tensor) -> torch.Tensor:
    """vLLM's random_sample without per-request generators: the exponential race."""
    q = torch.empty_like(probs)
    q.exponential_()
    return probs.div_(q).argmax(dim=-1).view(-1)


def torch_sample(logits: torch.Tensor, temperature: torch.Tensor, k: torch.Tensor | None, p: torch.Tensor | None,
                 min_p: torch.Tensor | None, always_sort: bool) -> torch.Tensor:
    logits = torch_filtered(logits, temperature, k, p, min_p, always_sort)
    probs = logits.softmax(dim=-1, dtype=torch.float32)
    return random_sample(probs)


def torch_no_noise(logits: torch.Tensor, temperature: torch.Tensor, k: torch.Tensor | None, p: torch.Tensor | None,
                   min_p: torch.Tensor | None, always_sort: bool) -> torch.Tensor:
    """torch_sample without the exponential noise (argmax of the probabilities): what is left of
    PyTorch's time were the draw free, e.g. a fused Gumbel argmax. Not a sampler."""
    logits = torch_filtered(logits, temperature, k, p, min_p, always_sort)
    return logits.softmax(dim=-1, dtype=torch.float32).argmax(dim=-1).view(-1)


# --- the cases -------------------------------------------------------------------------------


def parameters(batch: int, top_k: int | None, top_p: float | None,
               min_p: float | None) -> tuple[dict[str, Any], TorchArgs]:
    """Per-row parameters: (fastsoftmax keyword arguments, torch arguments)."""
    fs: dict[str, Any] = {
        "temperature": np.full(batch, TEMPERATURE, np.float32),
        "top_k": None if top_k is None else np.full(batch, top_k, np.int32),
        "top_p": None if top_p is None else np.full(batch, top_p, np.float32),
        "min_p": None if min_p is None else np.full(batch, min_p, np.float32),
    }
    th: TorchArgs = (
        torch.full((batch,), TEMPERATURE, dtype=torch.float32),
        None if top_k is None else torch.full((batch,), top_k, dtype=torch.int32),
        None if top_p is None else torch.full((batch,), top_p, dtype=torch.float32),
        None if min_p is None else torch.full((batch, 1), min_p, dtype=torch.float32),  # vLLM's (batch, 1)
    )
    return fs, th


def check(x: np.ndarray, fs_kwargs: dict[str, Any], th_args: TorchArgs, always_sort: bool,
          threads: int) -> dict[str, Any]:
    """Untimed: fastsoftmax's tokens inside PyTorch's kept sets, and the kept sets' sizes."""
    filtered = torch_filtered(torch.from_numpy(x), *th_args, always_sort)
    kept = torch.isfinite(filtered).numpy()
    fs_ids = np.asarray(fastsoftmax.sample(x, **fs_kwargs, seed=SEED, num_threads=threads)).reshape(-1)
    th_ids = torch_sample(torch.from_numpy(x), *th_args, always_sort).numpy()
    rows = np.arange(x.shape[0])
    sizes = kept.sum(axis=1)
    return {"fastsoftmax_in_torch_kept_set": bool(kept[rows, fs_ids].all()),
            "torch_in_torch_kept_set": bool(kept[rows, th_ids].all()),
            "rows_outside": np.flatnonzero(~kept[rows, fs_ids]).tolist(),
            "kept_min": int(sizes.min()), "kept_median": float(np.median(sizes)), "kept_max": int(sizes.max())}


def check_frequencies(x: np.ndarray, fs_kwargs: dict[str, Any], th_args: TorchArgs,
                      always_sort: bool) -> dict[str, Any]:
    """Untimed: on row 0, CHECK_DRAWS fastsoftmax draws (one seed each) against PyTorch's filtered
    probabilities, on the CHECK_TOP likeliest tokens and the rest: the largest |deviation| / sigma."""
    row = x[:1]
    temperature, k, p, min_p = (None if a is None else a[:1] for a in th_args)
    assert temperature is not None
    probs = torch_filtered(torch.from_numpy(row), temperature, k, p, min_p, always_sort).softmax(-1)[0].double().numpy()
    top = np.argsort(probs)[::-1][:CHECK_TOP]
    kwargs: dict[str, Any] = {name: None if v is None else v[:1] for name, v in fs_kwargs.items()}
    ids = np.array([int(np.asarray(fastsoftmax.sample(row, **kwargs, seed=s, num_threads=1)).reshape(-1)[0])
                    for s in range(CHECK_DRAWS)])
    expected = np.append(probs[top], 1 - probs[top].sum())
    observed = np.append([(ids == t).sum() for t in top], (~np.isin(ids, top)).sum()) / CHECK_DRAWS
    sigma = np.sqrt(np.maximum(expected * (1 - expected), 1e-12) / CHECK_DRAWS)
    z = np.abs(observed - expected) / sigma
    z[(expected < 1e-9) & (observed == 0)] = 0
    return {"draws": CHECK_DRAWS, "max_z": float(z.max()), "expected": expected.tolist(),
            "observed": observed.tolist()}


def build() -> dict[str, Any]:
    """Which fastsoftmax ran: its package path, its native module's sha256, this checkout's commit."""
    import hashlib
    import subprocess

    package = Path(fastsoftmax.__file__).resolve().parent
    native = sorted(package.glob("_core*"))
    info: dict[str, Any] = {"package": str(package)}
    if native:
        info["native_module"] = native[0].name
        info["native_sha256"] = hashlib.sha256(native[0].read_bytes()).hexdigest()
    try:
        info["checkout"] = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=Path(__file__).parent,
                                          capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return info


def machine(threads: int) -> dict[str, Any]:
    model = None
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    except OSError:
        pass
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    return {"cpu": model or platform.processor(), "cpu_count": os.cpu_count(), "cpus_usable": affinity,
            "platform": platform.platform(), "python": sys.version.split()[0], "numpy": np.__version__,
            "torch": torch.__version__, "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "fastsoftmax": fastsoftmax.__version__, "fastsoftmax_isa": fastsoftmax.active_isa(),
            "threads": threads, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
            "load_average_at_end": os.getloadavg() if hasattr(os, "getloadavg") else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter samples (about a minute)")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--sample-ms", type=float, default=None)
    parser.add_argument("--threads", type=int, default=1, help="threads of both candidates (default 1)")
    parser.add_argument("--dist", choices=("llm", "normal"), default="llm", help="the logits (module docstring)")
    parser.add_argument("--batches", default=",".join(map(str, BATCHES)))
    parser.add_argument("--vocabs", default=",".join(map(str, VOCABS)))
    parser.add_argument("--always-sort", action="store_true", help="PyTorch sorts for top_k alone too")
    parser.add_argument("--no-floor", action="store_true", help="leave out the 'torch w/o noise' candidate")
    parser.add_argument("--json", help=f"write the figures here (default for a full run: {RESULTS})")
    args = parser.parse_args()
    rounds = args.rounds or (3 if args.quick else 9)
    seconds = (args.sample_ms or (10 if args.quick else 40)) / 1000
    json_path = args.json or (None if args.quick else str(RESULTS))
    batches = [int(b) for b in args.batches.split(",")]
    vocabs = [int(v) for v in args.vocabs.split(",")]
    threads = args.threads
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    started = time.perf_counter()

    print(f"fastsoftmax {fastsoftmax.__version__}, isa {fastsoftmax.active_isa()}, torch {torch.__version__}, "
          f"{threads} thread{'s' if threads > 1 else ''}, float32 logits ({args.dist}), temperature {TEMPERATURE}, "
          f"median of {rounds} interleaved rounds; us per call, ratio = torch / fastsoftmax")
    print()
    floor_head, floor_rule = ("", "") if args.no_floor else ("torch w/o noise us | w/o noise / fs | ", "---: | ---: | ")
    print(f"| case | batch x vocab | fastsoftmax us | torch us | torch / fs | goal | {floor_head}"
          "torch keeps (min/median/max) | fs token kept |")
    print(f"| --- | --- | ---: | ---: | ---: | --- | {floor_rule}--- | --- |")
    results: list[dict[str, Any]] = []
    for vocab in vocabs:
        for batch in batches:
            x = make_logits(rng, batch, vocab, args.dist)
            tx = torch.from_numpy(x)
            for case, (top_k, top_p, min_p) in CASES.items():
                fs_kwargs, th_args = parameters(batch, top_k, top_p, min_p)
                checked = check(x, fs_kwargs, th_args, args.always_sort, threads)
                if batch == batches[0] and vocab == min(vocabs):
                    checked["frequencies_row0"] = check_frequencies(x, fs_kwargs, th_args, args.always_sort)

                def fs_call(x=x, fs_kwargs=fs_kwargs):
                    return fastsoftmax.sample(x, **fs_kwargs, seed=SEED, num_threads=threads)

                def torch_call(tx=tx, th_args=th_args):
                    return torch_sample(tx, *th_args, args.always_sort)

                def no_noise_call(tx=tx, th_args=th_args):
                    return torch_no_noise(tx, *th_args, args.always_sort)

                candidates: dict[str, Any] = {"fastsoftmax": fs_call, "torch": torch_call}
                if not args.no_floor:
                    candidates["torch_no_noise"] = no_noise_call
                times = measure(candidates, rounds, seconds)
                ratio = times["torch"] / times["fastsoftmax"]
                floor = times.get("torch_no_noise")
                floor_cells = "" if floor is None else f"{floor * 1e6:.1f} | {floor / times['fastsoftmax']:.2f} | "
                goal = GOALS.get(batch)
                goal_cell = "-" if goal is None else f">= {goal:g}: {'met' if ratio >= goal else 'NOT met'}"
                kept_cell = f"{checked['kept_min']}/{checked['kept_median']:g}/{checked['kept_max']}"
                ok = checked["fastsoftmax_in_torch_kept_set"]
                print(f"| {case} | {batch} x {vocab} | {times['fastsoftmax'] * 1e6:.1f} | {times['torch'] * 1e6:.1f} | "
                      f"{ratio:.2f} | {goal_cell} | {floor_cells}{kept_cell} | {'yes' if ok else 'NO'} |", flush=True)
                results.append({"case": case, "batch": batch, "vocab": vocab, "top_k": top_k, "top_p": top_p,
                                "min_p": min_p, "temperature": TEMPERATURE, "seconds": times, "ratio": ratio,
                                "goal": goal, "check": checked})

    print()
    for batch, goal in GOALS.items():
        ratios = [r["ratio"] for r in results if r["batch"] == batch]
        if ratios:
            print(f"batch {batch}: torch / fastsoftmax {min(ratios):.2f} to {max(ratios):.2f}, median "
                  f"{statistics.median(ratios):.2f} (goal >= {goal:g}; {sum(q >= goal for q in ratios)} of "
                  f"{len(ratios)} cases meet it)")
    for batch, goal in GOALS.items():
        ratios = [r["seconds"]["torch_no_noise"] / r["seconds"]["fastsoftmax"] for r in results
                  if r["batch"] == batch and "torch_no_noise" in r["seconds"]]
        if ratios:
            print(f"batch {batch}, against torch w/o noise: {min(ratios):.2f} to {max(ratios):.2f}, median "
                  f"{statistics.median(ratios):.2f} ({sum(q >= goal for q in ratios)} of {len(ratios)} >= {goal:g})")
    freq = [(r["case"], r["check"]["frequencies_row0"]["max_z"]) for r in results if "frequencies_row0" in r["check"]]
    if freq:
        print(f"frequencies (row 0, {batches[0]} x {min(vocabs)}, {CHECK_DRAWS} draws, {CHECK_TOP} likeliest "
              "tokens + the rest): largest |deviation| / sigma " + ", ".join(f"{c[:1]} {z:.1f}" for c, z in freq))
    bad = [r for r in results if not r["check"]["fastsoftmax_in_torch_kept_set"]]
    if bad:
        print("WARNING: fastsoftmax drew tokens outside PyTorch's kept set in: "
              + "; ".join(f"{r['case']} {r['batch']} x {r['vocab']} rows {r['check']['rows_outside']}" for r in bad))
    if any(z > 4.5 for _, z in freq):
        print("WARNING: fastsoftmax's draw frequencies are off PyTorch's probabilities by more than 4.5 sigma")
    elapsed = time.perf_counter() - started
    print(f"\n{elapsed:.0f} s")
    if json_path:
        with open(json_path, "w") as f:
            json.dump({"machine": machine(threads), "build": build(),
                       "settings": {"dist": args.dist, "rounds": rounds, "sample_seconds": seconds,
                                    "always_sort": args.always_sort, "no_floor": args.no_floor,
                                    "spikes": [SPIKES, SPIKE_LOW, SPIKE_HIGH],
                                    "bulk_sigma": BULK_SIGMA, "quick": args.quick, "elapsed_seconds": elapsed},
                       "cases": results}, f, indent=1)
        print(f"wrote {json_path}")


if __name__ == "__main__":
    main()
