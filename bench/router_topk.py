"""MoE router top-k: fastsoftmax.topk_softmax against PyTorch (issue 16 part 2's benchmark).

Shapes: {1, 64, 4096, 16384} tokens x {8, 64, 256} experts, float32 N(0, 4) logits, k in {2, 8}
(k > experts skipped), each with renormalize off and on, against
``torch.topk(torch.softmax(x, -1), k)`` (then ``w / w.sum(-1, keepdim=True)`` when renormalizing):
vLLM's CPU path. And the DeepSeek-V3 gate (256 experts, 8 groups, topk_group 4, k 8, sigmoid
scores, a correction bias, renormalize, routed_scaling_factor 2.5) against vLLM's
``grouped_topk`` in PyTorch. One thread each (torch.set_num_threads(1), num_threads=1), candidates
interleaved in one run (bench/timing.py). Then the single-token calls from Python, on their own
with more rounds (the issue's goal: under 2 us).

    OMP_WAIT_POLICY=PASSIVE python bench/router_topk.py [--quick] [--json FILE]

Each candidate is timed in samples of back-to-back calls (at least --sample-ms each); samples of
all candidates alternate, --rounds times. A candidate's figure is the median over rounds of its
sample's mean call time; ratios are torch time / fastsoftmax time (> 1: fastsoftmax is faster).
Before timing, each case checks that both candidates choose the same experts (as sets: torch's
grouped path leaves them unsorted). Needs torch.
"""

from __future__ import annotations

import argparse
import json

import fastsoftmax
import numpy as np
import torch
from timing import measure

TOKENS = (1, 64, 4096, 16384)
EXPERTS = (8, 64, 256)
KS = (2, 8)
DEEPSEEK_V3 = {"renormalize": True, "scoring": "sigmoid", "num_expert_group": 8, "topk_group": 4,
               "routed_scaling_factor": 2.5}
GOAL_RATIO = 3.0  # from 64 tokens on
GOAL_SINGLE_TOKEN_US = 2.0


def torch_topk_softmax(tx: torch.Tensor, k: int, renormalize: bool):
    """vLLM's CPU topk_softmax: softmax in float32, top-k, optional renormalization."""
    weights, ids = torch.topk(torch.softmax(tx, -1), k)
    if renormalize:
        weights = weights / weights.sum(dim=-1, keepdim=True)
    return weights, ids


def torch_grouped_topk(gating_output: torch.Tensor, topk: int, renormalize: bool, num_expert_group: int,
                       topk_group: int, scoring_func: str, routed_scaling_factor: float,
                       e_score_correction_bias: torch.Tensor):
    """vLLM's grouped_topk (vllm/model_executor/layers/fused_moe/fused_moe.py), as it runs on the CPU."""
    if scoring_func == "softmax":
        scores = torch.softmax(gating_output, dim=-1)
    else:
        scores = gating_output.sigmoid()
    num_token = scores.size(0)
    original_scores = scores
    scores = scores + e_score_correction_bias.unsqueeze(0)
    group_scores = scores.view(num_token, num_expert_group, -1).topk(2, dim=-1)[0].sum(dim=-1)
    group_idx = torch.topk(group_scores, k=topk_group, dim=-1, sorted=False)[1]
    group_mask = torch.zeros_like(group_scores)
    group_mask.scatter_(1, group_idx, 1)
    score_mask = (group_mask.unsqueeze(-1).expand(num_token, num_expert_group, scores.size(-1) // num_expert_group)
                  .reshape(num_token, -1))
    tmp_scores = scores.masked_fill(~score_mask.bool(), float("-inf"))
    topk_ids = torch.topk(tmp_scores, k=topk, dim=-1, sorted=False)[1]
    topk_weights = original_scores.gather(1, topk_ids)
    if renormalize:
        topk_weights = topk_weights / topk_weights.sum(dim=-1, keepdim=True)
    if routed_scaling_factor != 1.0:
        topk_weights = topk_weights * routed_scaling_factor
    return topk_weights.to(torch.float32), topk_ids.to(torch.int32)


def same_choice(fs_ids: np.ndarray, torch_ids: torch.Tensor) -> bool:
    return np.array_equal(np.sort(fs_ids, axis=-1), np.sort(torch_ids.numpy(), axis=-1))


def cases(rng: np.random.Generator):
    """(name, tokens, experts, k, fastsoftmax call, torch call) of every case."""
    for tokens in TOKENS:
        for experts in EXPERTS:
            x = rng.normal(0, 2, (tokens, experts)).astype(np.float32)
            tx = torch.from_numpy(x)
            for k in KS:
                if k > experts:
                    continue
                for renormalize in (False, True):
                    name = "topk_softmax" + (", renormalize" if renormalize else "")
                    yield (name, tokens, experts, k,
                           lambda x=x, k=k, r=renormalize: fastsoftmax.topk_softmax(x, k, renormalize=r, num_threads=1),
                           lambda tx=tx, k=k, r=renormalize: torch_topk_softmax(tx, k, r))
        x = rng.normal(0, 1, (tokens, 256)).astype(np.float32)
        bias = (rng.normal(0, 0.1, 256)).astype(np.float32)
        tx, tbias = torch.from_numpy(x), torch.from_numpy(bias)
        yield ("DeepSeek-V3 grouped", tokens, 256, 8,
               lambda x=x, bias=bias: fastsoftmax.topk_softmax(x, 8, correction_bias=bias, num_threads=1,
                                                               **DEEPSEEK_V3),
               lambda tx=tx, tbias=tbias: torch_grouped_topk(tx, 8, True, 8, 4, "sigmoid", 2.5, tbias))


def single_token_cases(rng: np.random.Generator):
    """The single-token calls: (name, call) of fastsoftmax only."""
    x8, x64, x256 = (rng.normal(0, 2, (1, e)).astype(np.float32) for e in (8, 64, 256))
    bias = rng.normal(0, 0.1, 256).astype(np.float32)
    return {
        "1 x 8, k=2, renormalize": lambda: fastsoftmax.topk_softmax(x8, 2, renormalize=True, num_threads=1),
        "1 x 64, k=8": lambda: fastsoftmax.topk_softmax(x64, 8, num_threads=1),
        "1 x 256, DeepSeek-V3 grouped": lambda: fastsoftmax.topk_softmax(x256, 8, correction_bias=bias, num_threads=1,
                                                                          **DEEPSEEK_V3),
        "1 x 64, k=8, default num_threads": lambda: fastsoftmax.topk_softmax(x64, 8),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter samples")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--sample-ms", type=float, default=None)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    rounds = args.rounds or (3 if args.quick else 9)
    seconds = (args.sample_ms or (10 if args.quick else 40)) / 1000
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)

    print(f"fastsoftmax {fastsoftmax.__version__}, isa {fastsoftmax.active_isa()}, torch {torch.__version__}, "
          f"1 thread, float32 logits, median of {rounds} interleaved rounds; us per call, ratio = torch / fastsoftmax")
    print()
    print("| call | tokens x experts | k | fastsoftmax us | torch us | torch / fs |")
    print("| --- | --- | --- | ---: | ---: | ---: |")
    results = []
    for name, tokens, experts, k, fs_call, torch_call in cases(rng):
        agree = same_choice(fs_call()[1], torch_call()[1])
        times = measure({"fastsoftmax": fs_call, "torch": torch_call}, rounds, seconds)
        ratio = times["torch"] / times["fastsoftmax"]
        note = "" if agree else " (experts differ!)"
        print(f"| {name} | {tokens} x {experts} | {k} | {times['fastsoftmax'] * 1e6:.2f} | "
              f"{times['torch'] * 1e6:.2f} | {ratio:.2f}{note} |", flush=True)
        results.append({"call": name, "tokens": tokens, "experts": experts, "k": k, "seconds": times,
                        "same_experts": agree})

    print()
    print(f"| single-token call from Python | fastsoftmax us | under {GOAL_SINGLE_TOKEN_US:g} us |")
    print("| --- | ---: | --- |")
    single = measure(single_token_cases(rng), rounds * 3, seconds)
    for name, t in single.items():
        print(f"| {name} | {t * 1e6:.2f} | {'yes' if t * 1e6 < GOAL_SINGLE_TOKEN_US else 'no'} |")

    from64 = [r["seconds"]["torch"] / r["seconds"]["fastsoftmax"] for r in results if r["tokens"] >= 64]
    print(f"\nfrom 64 tokens on: torch / fastsoftmax {min(from64):.2f} to {max(from64):.2f} "
          f"(goal >= {GOAL_RATIO:g}; {sum(r >= GOAL_RATIO for r in from64)} of {len(from64)} cases meet it)")
    if not all(r["same_experts"] for r in results):
        print("WARNING: fastsoftmax and torch chose different experts in some case")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cases": results, "single_token": single}, f, indent=1)
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
