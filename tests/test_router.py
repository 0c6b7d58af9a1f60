"""topk_softmax, the MoE router top-k (issue 16 part 2): expert ids and weights against vLLM's CPU path.

The semantics (vLLM's ``topk_softmax`` and ``grouped_topk``, DeepSeek-V3's "noaux_tc" gate), per
token (row) of ``router_logits`` (tokens, experts):

1. scores = softmax(logits) over the experts, or sigmoid(logits); computed in float32 (float64
   for float64 logits);
2. with ``correction_bias`` the experts are chosen by scores + bias, but weighted by the
   unbiased scores;
3. with ``num_expert_group`` G / ``topk_group``: G groups of experts/G consecutive experts; group
   score = sum of the two largest biased scores (with a bias), else the group's largest score;
   the ``topk_group`` best groups are kept (ties: lower group index), the others' experts cannot
   be chosen;
4. the k experts of largest (biased) score, in decreasing order, ties to the lower expert index;
   a -inf logit scores 0: without a bias it comes after every finite one (scores are computed
   in double, where finite ones do not underflow); with a bias it is ranked by 0 + its bias, as
   any expert (vLLM's rule);
5. weights = unbiased scores of the chosen experts; renormalize: divided by their sum; then
   multiplied by ``routed_scaling_factor``. float32 weights, int32 ids, both (tokens, k);
6. a row with a NaN: NaN weights, ids 0..k-1 (as softmax_topk).

Two references of these semantics are written here. ``torch_reference`` is vLLM's CPU code
(torch.softmax / sigmoid of ``x.float()``, torch.topk, the grouped mask) with ``torch.topk``
replaced by a stable descending sort, so that ties go to the lower index as the contract says
(torch.topk leaves the order of ties unspecified), and NaN rows set as the contract says.
``router_reference`` is the same in NumPy; it runs without PyTorch, and the torch-only test
``test_numpy_reference_matches_torch_reference`` checks it against ``torch_reference``.

``router_reference`` makes its choice from float64 scores and checks that float32 rounding cannot
change it: every comparison that decides the choice (consecutive chosen experts, the k-th against
the next, the last kept group against the next) is between exactly equal values (equal logits and
biases: a true tie, resolved by index whatever the precision) or values further apart than a few
float32 ULPs of the scores; otherwise the test input itself is at fault (``AmbiguousInput``). The
random logits are normal values rounded to multiples of 2^-10 (many exact ties, no near-ties), with
sigmoid scores kept away from saturation. The weights are compared with the float64 weights of
the same choice: within ``WEIGHT_ULP`` float32 ULPs of the correctly rounded value
(reference.ulp_error), NaN exactly where the reference is NaN.

Covered: softmax and sigmoid scoring, with and without correction_bias, grouped (DeepSeek-V3:
256 experts, 8 groups, topk_group 4, k 8, bias, routed_scaling_factor 2.5, renormalize; and other
group shapes) and ungrouped, renormalize on and off, tokens {1, 2, 7, 64, 1000} x experts
{8, 60, 64, 128, 256, 512} x k 1..8, float32 / float16 / bfloat16 (ml_dtypes; skipped without it)
/ float64 logits; random, tied, -inf-masked logits and NaN rows; every ISA; num_threads 1 and 2;
strided inputs; result dtypes and shapes; argument errors; a hypothesis property test; and (with
PyTorch) the NumPy reference against the torch one and fastsoftmax against the torch one directly.
Where vLLM and the contract part (a -inf logit with a correction bias larger than a finite expert's
biased score: vLLM ranks it by its bias, the contract after every finite one), the random tests
give masked experts the lowest bias so that both agree, and one test checks the contract's rule
(``test_minus_inf_never_ahead_of_finite_with_bias``, an expected failure until the library
follows it).
"""

from __future__ import annotations

import functools
import zlib

import fastsoftmax
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from reference import ulp_error

try:
    import ml_dtypes
except ImportError:  # pragma: no cover - ml_dtypes is in the [test] extra
    ml_dtypes = None

pytestmark = pytest.mark.usefixtures("fail_instead_of_hanging")

SEED = 20260216
TOKENS = (1, 2, 7, 64, 1000)
EXPERTS = (8, 60, 64, 128, 256, 512)
KS = range(1, 9)
WEIGHT_ULP = 2.0  # weights within this many float32 ULPs of the float64 reference of the same choice
# The DeepSeek-V3 gate: sigmoid scores, 256 experts in 8 groups, 4 groups kept, 8 experts chosen by
# scores + e_score_correction_bias, weights renormalized then scaled by 2.5.
DEEPSEEK_V3 = {"renormalize": True, "scoring": "sigmoid", "num_expert_group": 8, "topk_group": 4,
               "routed_scaling_factor": 2.5}

DTYPE_NAMES = ["float32", "float16", "bfloat16", "float64"]


def dtype_of(name: str) -> np.dtype:
    """The NumPy dtype of a name of DTYPE_NAMES; skips bfloat16 without ml_dtypes."""
    if name == "bfloat16":
        if ml_dtypes is None:
            pytest.skip("ml_dtypes is not installed")
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


# ---- The NumPy reference ------------------------------------------------------------------------


class AmbiguousInput(AssertionError):
    """A test input with a near-tie that float32 rounding could resolve either way: the input,
    not the library, is at fault (change the seed or the distribution)."""


def working_dtype(dtype) -> type:
    """The precision the contract computes in: float64 for float64 logits, else float32."""
    return np.float64 if np.dtype(dtype) == np.float64 else np.float32


def scores64(x64: np.ndarray, scoring: str) -> np.ndarray:
    """softmax or sigmoid of float64 logits, in float64 (-inf gives 0, a NaN row NaN)."""
    with np.errstate(all="ignore"):
        if scoring == "softmax":
            e = np.exp(x64 - x64.max(axis=-1, keepdims=True))
            return e / e.sum(axis=-1, keepdims=True)
        return 1.0 / (1.0 + np.exp(-x64))


def _check_gaps(high, low, err_high, err_low, same, rows_ok, what: str, x: np.ndarray, where) -> None:
    """Raise AmbiguousInput unless the two compared values come from the same inputs (``same``: a
    true tie, equal at any precision) or differ by more than the sum of their rounding errors. A
    difference of exactly 0 from different inputs (p(1) + 0.125 + p(-1) + 0.5 against
    p(1) + 0.5 + p(-1) + 0.125) is as ambiguous as a tiny one: float32 may round the two apart."""
    with np.errstate(invalid="ignore"):
        gap = high - low
        fine = same | (gap > err_high + err_low) | ~np.isfinite(gap)
    bad = np.flatnonzero(~fine & rows_ok)
    if bad.size:
        r = int(bad[0])
        raise AmbiguousInput(
            f"{what}: row {r} ({where(r)}) compares {float(high[r])!r} with {float(low[r])!r}, closer than "
            f"float32 rounding can separate ({float(err_high[r] + err_low[r]):.3g}); {bad.size} such rows; "
            f"logits {x[r][:12].tolist()}..."
        )


def router_reference(x, k: int, *, renormalize: bool = False, scoring: str = "softmax",
                     num_expert_group: int | None = None, topk_group: int | None = None,
                     correction_bias=None, routed_scaling_factor: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """The contract in NumPy: (ids int64 (tokens, k), weights float64 (tokens, k)).

    The choice is made on float64 scores; every comparison that decides it is checked to be an
    exact tie or wider than float32 rounding (AmbiguousInput otherwise), so that it is also the
    choice made in float32. The bias is first rounded to the working precision."""
    x = np.asarray(x)
    work = working_dtype(x.dtype)
    x64 = x.astype(np.float64)
    tokens, experts = x64.shape
    s = scores64(x64, scoring)
    b = np.zeros(experts) if correction_bias is None else np.asarray(correction_bias).astype(work).astype(np.float64)
    key = s + b  # the biased score; a -inf logit has score 0 (key = its bias)
    masked = np.isneginf(x64)
    nan_rows = np.isnan(x64).any(axis=-1)
    rows_ok = ~nan_rows

    def ulp(v):
        with np.errstate(all="ignore"):
            return np.spacing(np.abs(v).astype(work)).astype(np.float64)

    tiny = float(np.finfo(work).tiny)
    # How far the working-precision key may be from this one: 2 ULPs of the score (its computation),
    # 1 of the key (the bias addition), and a floor for scores near underflow.
    err = 2 * ulp(s) + ulp(key) + 2 * tiny

    eligible = np.ones((tokens, experts), bool)
    if num_expert_group is not None:
        groups, size = num_expert_group, experts // num_expert_group
        gk, ge = key.reshape(tokens, groups, size), err.reshape(tokens, groups, size)
        if correction_bias is not None:  # sum of the two largest biased scores
            top = np.argsort(-gk, axis=-1, kind="stable")[..., :2]
        else:  # the largest score
            top = np.argmax(gk, axis=-1)[..., None]
        gscore = np.take_along_axis(gk, top, -1).sum(axis=-1)
        gerr = np.take_along_axis(ge, top, -1).sum(axis=-1) + ulp(gscore)
        # The (logit, bias) pairs that make each group's score, as (tokens, groups, 1 or 2).
        gx = np.take_along_axis(x64.reshape(tokens, groups, size), top, -1)
        gb = np.take_along_axis(np.broadcast_to(b, x64.shape).reshape(tokens, groups, size), top, -1)
        gorder = np.argsort(-gscore, axis=-1, kind="stable")  # ties: lower group index
        if topk_group < groups:
            a, c = gorder[:, topk_group - 1:topk_group], gorder[:, topk_group:topk_group + 1]

            def pick(values, g):  # values[row, g[row]]
                return np.take_along_axis(values, g, -1)[:, 0]

            def pair(g):  # the (logits, biases) making group g[row]'s score
                return np.take_along_axis(gx, g[..., None], 1)[:, 0], np.take_along_axis(gb, g[..., None], 1)[:, 0]

            (ax, ab), (cx, cb) = pair(a), pair(c)
            same = np.all((ax == cx) & (ab == cb), axis=-1)
            if top.shape[-1] == 2:  # the same two pairs in the other order
                same |= np.all((ax == cx[:, ::-1]) & (ab == cb[:, ::-1]), axis=-1)
            _check_gaps(pick(gscore, a), pick(gscore, c), pick(gerr, a), pick(gerr, c), same, rows_ok,
                        "last kept group against the next", x64, lambda r: f"groups {a[r, 0]} and {c[r, 0]}")
        kept = np.zeros((tokens, groups), bool)
        np.put_along_axis(kept, gorder[:, :topk_group], True, -1)
        eligible = np.repeat(kept, size, axis=-1)

    # Eligible finite experts by decreasing key, then eligible -inf ones, then the rest; ties by index.
    tier = np.where(eligible, np.where(masked, 1, 0), 2)
    index = np.broadcast_to(np.arange(experts), x64.shape)
    order = np.lexsort((index, np.where(tier == 0, -key, 0.0), tier), axis=-1)
    ids = order[:, :k].copy()
    head = order[:, :k + 1]
    hk, ht, he, hx = (np.take_along_axis(a, head, -1) for a in (key, tier, err, x64))
    hb = b[head]
    for j in range(min(k, experts - 1)):
        both_finite = (ht[:, j] == 0) & (ht[:, j + 1] == 0)
        same = (hx[:, j] == hx[:, j + 1]) & (hb[:, j] == hb[:, j + 1])
        _check_gaps(hk[:, j], hk[:, j + 1], he[:, j], he[:, j + 1], same, rows_ok & both_finite,
                    f"chosen expert {j} against the next", x64,
                    lambda r, j=j: f"experts {head[r, j]}, {head[r, j + 1]}")

    with np.errstate(all="ignore"):
        weights = np.take_along_axis(s, ids, -1)
        if renormalize:
            weights = weights / weights.sum(axis=-1, keepdims=True)
        weights = weights * routed_scaling_factor
    ids[nan_rows] = np.arange(k)
    weights[nan_rows] = np.nan
    return ids, weights


# ---- The PyTorch reference (vLLM's CPU path) ---------------------------------------------------


def torch_reference(torch, x, k: int, *, renormalize: bool = False, scoring: str = "softmax",
                    num_expert_group: int | None = None, topk_group: int | None = None, correction_bias=None,
                    routed_scaling_factor: float = 1.0, compute=None):
    """vLLM's fused_topk / grouped_topk (vllm/model_executor/layers/fused_moe/fused_moe.py) on the
    CPU, with torch.topk as a stable descending sort (ties: lower index) and NaN rows as the
    contract says. ``compute``: the torch dtype computed in (default: float32, as
    ``gating_output.float()``; float64 for float64 logits). Returns (weights, ids) as NumPy arrays
    (weights in the computing dtype, ids int64)."""
    x = np.asarray(x)
    if compute is None:
        compute = torch.float64 if x.dtype == np.float64 else torch.float32
    np_compute = np.float64 if compute == torch.float64 else np.float32
    gating_output = torch.from_numpy(np.ascontiguousarray(x.astype(np.float64))).to(compute)

    def topk(t, kk):
        values, indices = torch.sort(t, dim=-1, descending=True, stable=True)
        return values[..., :kk], indices[..., :kk]

    if scoring == "softmax":
        scores = torch.softmax(gating_output, dim=-1)
    else:
        scores = gating_output.sigmoid()
    num_token = scores.shape[0]
    bias = None
    if correction_bias is not None:  # e_score_correction_bias, in the computing precision
        bias = torch.from_numpy(np.asarray(correction_bias).astype(working_dtype(x.dtype)).astype(np_compute))
    if num_expert_group is None:
        if bias is None:
            topk_weights, topk_ids = topk(scores, k)
        else:
            topk_ids = topk(scores + bias.unsqueeze(0), k)[1]
            topk_weights = scores.gather(1, topk_ids)
    else:
        if bias is not None:
            original_scores = scores
            scores = scores + bias.unsqueeze(0)
            group_scores = topk(scores.view(num_token, num_expert_group, -1), 2)[0].sum(dim=-1)
        else:
            group_scores = scores.view(num_token, num_expert_group, -1).max(dim=-1).values
        group_idx = topk(group_scores, topk_group)[1]
        group_mask = torch.zeros_like(group_scores)
        group_mask.scatter_(1, group_idx, 1)
        score_mask = (group_mask.unsqueeze(-1).expand(num_token, num_expert_group, scores.shape[-1] // num_expert_group)
                      .reshape(num_token, -1))
        tmp_scores = scores.masked_fill(~score_mask.bool(), float("-inf"))
        if bias is not None:
            topk_ids = topk(tmp_scores, k)[1]
            topk_weights = original_scores.gather(1, topk_ids)
        else:
            topk_weights, topk_ids = topk(tmp_scores, k)
    if renormalize:
        topk_weights = topk_weights / topk_weights.sum(dim=-1, keepdim=True)
    if routed_scaling_factor != 1.0:
        topk_weights = topk_weights * routed_scaling_factor
    weights, ids = topk_weights.numpy().copy(), topk_ids.numpy().astype(np.int64)
    nan_rows = np.isnan(x.astype(np.float64)).any(axis=-1)
    ids[nan_rows] = np.arange(k)
    weights[nan_rows] = np.nan
    return weights, ids


# ---- Inputs -------------------------------------------------------------------------------------


def grid_normal(rng: np.random.Generator, shape, sigma: float) -> np.ndarray:
    """Normal logits rounded to multiples of 2^-10: exact ties, no near-ties (float64)."""
    return np.round(rng.normal(0, sigma, shape) * 1024) / 1024


def random_bias(rng: np.random.Generator, experts: int) -> np.ndarray:
    """A correction bias like DeepSeek-V3's: small float32 values (multiples of 2^-12)."""
    return (np.round(rng.normal(0, 0.1, experts) * 4096) / 4096).astype(np.float32)


SIGMA = {"softmax": 3.0, "sigmoid": 1.0}  # sigmoid scores stay well below 1, where float32 resolves them


def rng_for(*parts) -> np.random.Generator:
    return np.random.default_rng([SEED] + [zlib.crc32(str(p).encode()) for p in parts])


# ---- Checking a result --------------------------------------------------------------------------


def describe(x: np.ndarray, r: int, ids) -> str:
    row = np.asarray(x[r], np.float64)
    return ", ".join(f"{int(i)}: {row[int(i)]!r}" for i in np.asarray(ids).ravel()[:10])


def check_result(result, x, k: int, context: str = "", expected=None, **options) -> None:
    """Assert ``result`` = topk_softmax(x, k, **options): dtypes, shapes, ids exactly those of
    router_reference, weights within WEIGHT_ULP float32 ULPs of its float64 weights (NaN alike)."""
    weights, ids = result
    x = np.asarray(x)
    tokens = x.shape[0]
    assert isinstance(weights, np.ndarray) and isinstance(ids, np.ndarray), f"{context}: {type(weights)}, {type(ids)}"
    assert weights.dtype == np.float32, f"{context}: weights dtype {weights.dtype}, expected float32"
    assert ids.dtype == np.int32, f"{context}: ids dtype {ids.dtype}, expected int32"
    assert weights.shape == (tokens, k) and ids.shape == (tokens, k), (
        f"{context}: shapes {weights.shape}, {ids.shape}, expected {(tokens, k)}")
    ref_ids, ref_w = router_reference(x, k, **options) if expected is None else expected
    bad = np.flatnonzero(np.any(ids != ref_ids, axis=-1))
    if bad.size:
        r = int(bad[0])
        raise AssertionError(
            f"{context}: {bad.size} of {tokens} rows have wrong ids (k={k}, experts={x.shape[1]}); row {r}: got "
            f"{ids[r].tolist()}, expected {ref_ids[r].tolist()}; logits at got ids: {describe(x, r, ids[r])}; at "
            f"expected ids: {describe(x, r, ref_ids[r])}"
        )
    nan_ref, nan_got = np.isnan(ref_w), np.isnan(weights)
    if not np.array_equal(nan_ref, nan_got):
        r = int(np.flatnonzero(np.any(nan_ref != nan_got, axis=-1))[0])
        raise AssertionError(f"{context}: NaN weights differ in row {r}: got {weights[r].tolist()}, "
                             f"expected {ref_w[r].tolist()}")
    finite = ~nan_ref
    err = np.zeros(ref_w.shape)
    err[finite] = ulp_error(weights[finite], ref_w[finite]).astype(np.float64)
    if np.any(err > WEIGHT_ULP):
        r, j = np.unravel_index(int(np.argmax(err)), err.shape)
        with np.errstate(all="ignore"):
            rel = abs(float(weights[r, j]) - ref_w[r, j]) / abs(ref_w[r, j]) / float(np.finfo(np.float32).eps)
        raise AssertionError(
            f"{context}: {int(np.sum(err > WEIGHT_ULP))} weights beyond {WEIGHT_ULP} ULP; worst {float(err[r, j]):.3g} "
            f"ULP ({rel:.3g} float32 eps relative) at row {r}, position {j} (expert {int(ids[r, j])}): got "
            f"{float(weights[r, j])!r}, float64 reference {float(ref_w[r, j])!r}; row's weights "
            f"{weights[r].tolist()}"
        )


def run(x, k: int, isa: str = "auto", num_threads=None, **options):
    return fastsoftmax.topk_softmax(x, k, isa=isa, num_threads=num_threads, **options)


# ---- 1. Random logits: every shape, k, option, dtype and ISA ------------------------------------


def _random_cases() -> list[tuple[int, int, int, dict]]:
    """(tokens, experts, k, options) with a flag for a bias in options["bias"]: every experts x k
    (tokens cycling through TOKENS), ungrouped, and grouped shapes."""
    cases = []
    i = 0
    for experts in EXPERTS:
        for k in KS:
            if k > experts:
                continue
            options = {"renormalize": bool(i % 2), "bias": i % 3 == 2,
                       "routed_scaling_factor": 2.5 if i % 4 == 3 else 1.0}
            cases.append((TOKENS[i % len(TOKENS)], experts, k, options))
            i += 1
    grouped = [  # tokens, experts, groups, topk_group, k, bias, renormalize, routed_scaling_factor
        (1000, 256, 8, 4, 8, True, True, 2.5),  # DeepSeek-V3
        (7, 256, 8, 4, 8, True, True, 2.5),
        (1, 256, 8, 4, 8, True, True, 2.5),
        (64, 64, 8, 3, 6, False, False, 1.0),  # DeepSeek-V2's shape of grouping
        (64, 128, 4, 2, 8, True, True, 1.0),
        (64, 512, 16, 4, 8, True, False, 2.5),
        (64, 512, 8, 3, 8, False, True, 1.0),
        (2, 8, 2, 1, 2, True, True, 1.0),
        (7, 60, 4, 2, 4, False, False, 1.0),  # groups of 15
        (7, 60, 3, 2, 5, True, True, 1.0),  # groups of 20
        (64, 64, 1, 1, 8, True, True, 1.0),  # one group: as ungrouped
        (64, 256, 8, 8, 8, True, True, 1.0),  # every group kept
        (64, 8, 4, 1, 2, True, False, 1.0),  # groups of 2, k = the one group's experts
        (2, 64, 64, 1, 1, False, False, 1.0),  # groups of one expert
        (64, 64, 8, 2, 1, False, True, 1.0),
    ]
    for tokens, experts, groups, topk_group, k, bias, renormalize, scale in grouped:
        cases.append((tokens, experts, k, {"renormalize": renormalize, "bias": bias, "routed_scaling_factor": scale,
                                               "num_expert_group": groups, "topk_group": topk_group}))
    return cases


RANDOM_CASES = _random_cases()


@functools.cache
def random_case(index: int, dtype_name: str, scoring: str):
    """(x, k, options, expected) of RANDOM_CASES[index] in this dtype and scoring (computed once)."""
    tokens, experts, k, flags = RANDOM_CASES[index]
    rng = rng_for("random", index, dtype_name, scoring)
    x = grid_normal(rng, (tokens, experts), SIGMA[scoring]).astype(dtype_of(dtype_name))
    options = {key: value for key, value in flags.items() if key != "bias"}
    options["scoring"] = scoring
    if flags["bias"]:
        options["correction_bias"] = random_bias(rng, experts)
    return x, k, options, router_reference(x, k, **options)


def case_name(index: int) -> str:
    tokens, experts, k, flags = RANDOM_CASES[index]
    extra = [f"{key}={value}" for key, value in flags.items() if value not in (False, 1.0)]
    return f"{tokens}x{experts} k={k} " + " ".join(extra)


@pytest.mark.parametrize("scoring", ["softmax", "sigmoid"])
@pytest.mark.parametrize("dtype_name", DTYPE_NAMES)
def test_random_logits(isa, dtype_name, scoring):
    """Every experts count x k 1..8 over the token counts, ungrouped and grouped, with and without
    bias, renormalize and scaling: the reference's ids and weights."""
    for index in range(len(RANDOM_CASES)):
        x, k, options, expected = random_case(index, dtype_name, scoring)
        context = f"{isa} {dtype_name} {scoring} {case_name(index)}"
        check_result(run(x, k, isa, **options), x, k, context, expected=expected, **options)


def test_deepseek_v3_gate(isa):
    """The DeepSeek-V3 gate on 1000 tokens (float32 and bfloat16 logits), and its softmax twin."""
    for dtype_name in ("float32", "bfloat16"):
        if dtype_name == "bfloat16" and ml_dtypes is None:
            continue
        for scoring in ("sigmoid", "softmax"):
            rng = rng_for("deepseek", dtype_name, scoring)
            x = grid_normal(rng, (1000, 256), SIGMA[scoring]).astype(dtype_of(dtype_name))
            options = {**DEEPSEEK_V3, "scoring": scoring, "correction_bias": random_bias(rng, 256)}
            check_result(run(x, 8, isa, **options), x, 8, f"{isa} DeepSeek-V3 {dtype_name} {scoring}", **options)


def test_bias_changes_choice_not_weights(isa):
    """A large bias on a few experts makes them chosen; their weights stay their unbiased scores."""
    rng = rng_for("bias")
    x = grid_normal(rng, (64, 64), 1.0).astype(np.float32)
    bias = np.zeros(64, np.float32)
    favoured = [3, 17, 40, 63]
    bias[favoured] = [4.0, 3.0, 2.0, 1.0]
    for scoring in ("softmax", "sigmoid"):
        for renormalize in (False, True):
            options = {"scoring": scoring, "renormalize": renormalize, "correction_bias": bias}
            weights, ids = run(x, 4, isa, **options)
            assert (ids == np.array(favoured, np.int32)).all(), f"{isa} {scoring}: {ids[:3]}"
            check_result((weights, ids), x, 4, f"{isa} {scoring} favoured", **options)
            unbiased = scores64(x.astype(np.float64), scoring)[:, favoured]
            if not renormalize:
                assert np.all(ulp_error(weights, unbiased) <= WEIGHT_ULP), f"{isa} {scoring}: weights carry the bias"


def test_float64_bias_with_float32_logits(isa):
    """A float64 correction_bias of float32-exact values gives the float32 bias's results."""
    rng = rng_for("bias64")
    x = grid_normal(rng, (64, 256), 1.0).astype(np.float32)
    bias = random_bias(rng, 256)
    a = run(x, 8, isa, correction_bias=bias, **DEEPSEEK_V3)
    b = run(x, 8, isa, correction_bias=bias.astype(np.float64), **DEEPSEEK_V3)
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[0], b[0])
    check_result(b, x, 8, f"{isa} float64 bias", correction_bias=bias, **DEEPSEEK_V3)


def test_one_group_and_every_group_are_ungrouped(isa):
    """num_expert_group=1 (topk_group=1), and topk_group = num_expert_group without a bias, choose
    as the ungrouped call does."""
    rng = rng_for("groups-trivial")
    x = grid_normal(rng, (64, 128), 2.0).astype(np.float32)
    for scoring in ("softmax", "sigmoid"):
        plain = run(x, 8, isa, scoring=scoring, renormalize=True)
        for groups, topk_group in ((1, 1), (8, 8), (128, 128)):
            grouped = run(x, 8, isa, scoring=scoring, renormalize=True, num_expert_group=groups, topk_group=topk_group)
            np.testing.assert_array_equal(grouped[1], plain[1], err_msg=f"{isa} {scoring} G={groups}")
            np.testing.assert_array_equal(grouped[0], plain[0], err_msg=f"{isa} {scoring} G={groups}")


# ---- 2. Ties ------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype_name", DTYPE_NAMES)
def test_tied_logits(isa, dtype_name):
    """Small-integer logits (many equal scores and group scores) and biases from three values:
    equal (biased) scores go to the lower expert index, equal group scores to the lower group."""
    dtype = dtype_of(dtype_name)
    for scoring in ("softmax", "sigmoid"):
        for experts in EXPERTS:
            rng = rng_for("ties", dtype_name, scoring, experts)
            # (sigmoid: logits >= 0, so that no two pairs of scores have the same sum, as
            # sigmoid(1) + sigmoid(-1) = 2 sigmoid(0) would: equal in exact arithmetic, not in float)
            x = rng.integers(-2 if scoring == "softmax" else 0, 3, (64, experts)).astype(dtype)
            values = np.float32([0, 0.125, 0.5])
            bias = rng.choice(values, experts)
            # With groups, one bias per group: with two biases in the same two groups, sums such as
            # (p1 + 0.5) + (p2 + 0.125) and (p1 + 0.125) + (p2 + 0.5) tie in exact arithmetic only.
            bias4, bias8 = (np.repeat(rng.choice(values, g), experts // g) for g in (4, 8))
            k = min(8, experts)
            for options in (
                {},
                {"renormalize": True, "correction_bias": bias},
                {"num_expert_group": 4, "topk_group": 2, "renormalize": True} if experts % 4 == 0 else None,
                {"num_expert_group": 4, "topk_group": 1, "correction_bias": bias4} if experts % 4 == 0 else None,
                ({"num_expert_group": 8, "topk_group": 4, "correction_bias": bias8}
                 if experts % 8 == 0 and experts > 8 else None),
            ):
                if options is None:
                    continue
                options = {**options, "scoring": scoring}
                kk = min(k, experts // options.get("num_expert_group", 1) * options.get("topk_group", 1))
                check_result(run(x, kk, isa, **options), x, kk, f"{isa} {dtype_name} {scoring} ties {experts}",
                             **options)


def test_all_equal_rows(isa):
    """A row of one repeated value: ids 0..k-1 (grouped: the first groups win), equal weights."""
    for experts in EXPERTS:
        for fill in (0.0, -3.5, 7.0):
            x = np.full((3, experts), fill, np.float32)
            for scoring in ("softmax", "sigmoid"):
                for options in ({}, {"num_expert_group": 4, "topk_group": 2, "correction_bias": np.zeros(experts)}):
                    if "num_expert_group" in options and experts % 4:
                        continue
                    k = min(8, experts if "num_expert_group" not in options else experts // 2)
                    weights, ids = run(x, k, isa, scoring=scoring, **options)
                    np.testing.assert_array_equal(ids, np.broadcast_to(np.arange(k, dtype=np.int32), (3, k)),
                                                  err_msg=f"{isa} {experts} fill={fill} {scoring} {options}")
                    assert np.all(weights == weights[0, 0]), f"{isa} {experts} {fill} {scoring}: {weights}"
                    check_result((weights, ids), x, k, f"{isa} all {fill}", scoring=scoring, **options)


def test_equal_maxima_in_different_lanes(isa):
    """The same best logit at experts in different SIMD lanes, vectors and the tail: the lower
    indices win, in index order."""
    experts = 256
    base = rng_for("lanes").uniform(-5, 0, experts).astype(np.float32)
    spot_sets = [(0, 1), (1, 8), (7, 8), (15, 16), (3, 19, 35), (63, 64), (255, 0), (254, 255),
                 (200, 17, 100, 255), (128, 129, 255), (5, 69, 133, 197, 250)]
    for spots in spot_sets:
        x = np.tile(base, (3, 1))
        x[:, list(spots)] = 3.0
        for scoring in ("softmax", "sigmoid"):
            for k in sorted({1, 2, len(spots), len(spots) + 1}):
                weights, ids = run(x, k, isa, scoring=scoring)
                assert ids[0, : min(k, len(spots))].tolist() == sorted(spots)[:k], f"{isa} {spots} k={k}: {ids[0]}"
                check_result((weights, ids), x, k, f"{isa} maxima at {spots}", scoring=scoring)


# ---- 3. -inf-masked logits and NaN rows ----------------------------------------------------------


@pytest.mark.parametrize("scoring", ["softmax", "sigmoid"])
def test_minus_inf_masked(isa, scoring):
    """-inf logits (score 0) come after every finite one, in index order when k reaches them;
    rows with a single finite logit or k - 1 of them; groups masked whole. With a bias, the masked
    experts' bias is the lowest (-1), so that scores + bias ranks them last too, as vLLM would."""
    for experts in (8, 60, 64, 256):
        rng = rng_for("masked", scoring, experts)
        x = grid_normal(rng, (64, experts), SIGMA[scoring])
        x[rng.random(x.shape) < 0.3] = -np.inf
        x[:8][rng.random((8, experts)) < 0.9] = -np.inf
        x[8] = -np.inf
        x[8, experts // 2] = 0.5  # one finite logit
        x[9] = -np.inf
        x[9, [1, experts - 1, experts // 3]] = [1.0, -1.0, 2.0]
        x[10, :] = -np.inf
        x[10, -1] = 0.0
        x[:, 0][x[:, 0] == -np.inf] = 0.25  # every row keeps a finite logit
        for k in sorted({1, 2, 4, min(8, experts)}):
            for renormalize in (False, True):
                check_result(run(x.astype(np.float32), k, isa, scoring=scoring, renormalize=renormalize),
                             x.astype(np.float32), k, f"{isa} masked {experts} k={k}", scoring=scoring,
                             renormalize=renormalize)
        x64 = x.copy()
        check_result(run(x64, min(8, experts), isa, scoring=scoring), x64, min(8, experts), f"{isa} masked f64",
                     scoring=scoring)

        # With a bias: masked experts within a fixed set whose bias is -1.
        low = rng.choice(experts, experts // 4, replace=False)
        bias = random_bias(rng, experts)
        bias[low] = -1.0
        xb = grid_normal(rng, (64, experts), SIGMA[scoring])
        xb[:, low] = np.where(rng.random((64, low.size)) < 0.6, -np.inf, xb[:, low])
        xb = xb.astype(np.float32)
        for k in sorted({1, 4, min(8, experts)}):
            options = {"scoring": scoring, "correction_bias": bias, "renormalize": True}
            check_result(run(xb, k, isa, **options), xb, k, f"{isa} masked with bias {experts} k={k}", **options)

        if experts % 8 == 0 and experts >= 64:  # groups: some masked whole, the bias case keeps 2 finite per group
            xg = grid_normal(rng, (64, experts), SIGMA[scoring])
            size = experts // 8
            for r in range(0, 64, 3):
                xg[r, (r % 8) * size:(r % 8 + 1) * size] = -np.inf
                xg[r, ((r + 3) % 8) * size:((r + 3) % 8 + 1) * size] = -np.inf
            xg[rng.random(xg.shape) < 0.2] = -np.inf
            xg = xg.astype(np.float32)
            for k in (4, 8):
                options = {"scoring": scoring, "num_expert_group": 8, "topk_group": 3}
                check_result(run(xg, k, isa, **options), xg, k, f"{isa} masked groups {experts} k={k}", **options)
            group_low = np.concatenate([g * size + rng.choice(size, size - 2, replace=False) for g in range(8)])
            bias = random_bias(rng, experts)
            bias[group_low] = -1.0
            xgb = grid_normal(rng, (64, experts), SIGMA[scoring])
            xgb[:, group_low] = np.where(rng.random((64, group_low.size)) < 0.7, -np.inf, xgb[:, group_low])
            xgb = xgb.astype(np.float32)
            options = dict(DEEPSEEK_V3, scoring=scoring, correction_bias=bias)
            check_result(run(xgb, 8, isa, **options), xgb, 8, f"{isa} masked groups with bias {experts}", **options)


def test_minus_inf_after_underflowing_finite(isa):
    """A finite logit whose score underflows to 0 in float32 still comes before a -inf one (without
    a bias, -inf is never chosen ahead of a finite logit)."""
    for scoring in ("softmax", "sigmoid"):
        for dtype in (np.float32, np.float64):
            x = np.array([[0.0, -np.inf, -200.0, -np.inf], [0.0, -np.inf, -np.inf, -300.0]], dtype)
            weights, ids = run(x, 3, isa, scoring=scoring)
            assert ids[0].tolist() == [0, 2, 1], f"{isa} {scoring} {np.dtype(dtype)}: {ids[0]}"
            assert ids[1].tolist() == [0, 3, 1], f"{isa} {scoring} {np.dtype(dtype)}: {ids[1]}"
            check_result((weights, ids), x, 3, f"{isa} underflow {scoring}", scoring=scoring)


def test_minus_inf_with_a_bias_ranks_by_its_bias(isa):
    """vLLM's rule (grouped_topk): a -inf logit scores 0 (softmax and sigmoid alike) and is chosen
    by 0 + its bias like any other expert, so a large enough bias puts it ahead of finite experts,
    with weight 0."""
    x = np.float32([[0.0, -np.inf, 1.0, -1.0]])
    bias = np.float32([0.0, 0.75, 0.0, 0.0])
    for scoring in ("softmax", "sigmoid"):
        weights, ids = run(x, 4, isa, scoring=scoring, correction_bias=bias)
        assert ids[0].tolist() == [1, 2, 0, 3], f"{isa} {scoring}: {ids[0].tolist()}"
        assert weights[0, 0] == 0, f"{isa} {scoring}: {weights[0].tolist()}"


def test_scores_near_and_below_float32_underflow(isa):
    """Logits whose scores are tiny, subnormal or below float32's range: the experts still in
    order of their logits (they are distinct in float32, subnormals included), -inf ones after
    them, and the weights within WEIGHT_ULP of the exact scores counted in subnormal steps."""
    rows = {
        "sigmoid": [-np.inf, -89.0, -np.inf, -95.0, -100.0, -103.0, -50.0, -87.0, -88.5, -120.0],
        "softmax": [-np.inf, -89.0, -np.inf, -95.0, -100.0, -103.0, 0.0, -87.0, -88.5, -120.0],
    }
    for scoring, row in rows.items():
        for dtype in (np.float32, np.float64):
            x = np.array([row, row[::-1]], dtype)
            x64 = x.astype(np.float64)
            s = scores64(x64, scoring)
            for k in (1, 4, 8, 10):
                order = np.lexsort((np.broadcast_to(np.arange(10), x.shape), -np.where(np.isneginf(x64), -np.inf, x64)),
                                   axis=-1)[:, :k]
                weights, ids = run(x, k, isa, scoring=scoring)
                np.testing.assert_array_equal(ids, order, err_msg=f"{isa} {scoring} {np.dtype(dtype)} k={k}")
                expected = np.take_along_axis(s, order, -1)
                err = ulp_error(weights, expected)
                assert float(np.max(err)) <= WEIGHT_ULP, (
                    f"{isa} {scoring} {np.dtype(dtype)} k={k}: weights {weights.tolist()} expected {expected.tolist()}")


def test_strided_inputs(isa):
    """Strided, reversed and Fortran-ordered logits and a strided bias: the results of
    contiguous copies."""
    rng = rng_for("strided", 2)
    base = grid_normal(rng, (130, 512), 1.0).astype(np.float32)
    bias_base = random_bias(rng, 512)
    views = [("every other expert", base[:, ::2]), ("every other token", base[::2, :256]),
             ("reversed experts", base[:, 255::-1]), ("Fortran order", np.asfortranarray(base[:, :256])),
             ("transposed", base[:256, :130].T[:, :128])]
    for name, view in views:
        experts = view.shape[1]
        bias = bias_base[: 2 * experts : 2]  # strided too
        for options in ({"renormalize": True}, dict(DEEPSEEK_V3, correction_bias=bias),
                        {"scoring": "sigmoid", "correction_bias": bias}):
            got = run(view, 8, isa, **options)
            contiguous = dict(options)
            if "correction_bias" in options:
                contiguous["correction_bias"] = np.ascontiguousarray(bias)
            want = run(np.ascontiguousarray(view), 8, isa, **contiguous)
            np.testing.assert_array_equal(got[1], want[1], err_msg=f"{isa} {name} {options}: ids")
            np.testing.assert_array_equal(got[0], want[0], err_msg=f"{isa} {name} {options}: weights")
            check_result(got, view, 8, f"{isa} {name}", **options)


@pytest.mark.parametrize("scoring", ["softmax", "sigmoid"])
def test_nan_rows(isa, scoring):
    """A NaN anywhere in a row: NaN weights and ids 0..k-1 for that row; the other rows as usual."""
    for experts in (8, 60, 256, 512):
        rng = rng_for("nan", scoring, experts)
        x = grid_normal(rng, (40, experts), SIGMA[scoring])
        for r, spot in enumerate([0, 1, experts // 2, experts - 1, experts - 2, 7 % experts]):
            x[3 * r, spot] = np.nan
        x[30] = np.nan
        x[31, ::2] = -np.inf
        x[31, 5] = np.nan
        bias = random_bias(rng, experts)
        for dtype in (np.float32, np.float64, np.float16):
            xd = x.astype(dtype)
            for options in ({}, {"renormalize": True, "correction_bias": bias, "routed_scaling_factor": 2.5},
                            {"num_expert_group": 4, "topk_group": 2, "renormalize": True} if experts % 4 == 0 else None,
                            dict(DEEPSEEK_V3, correction_bias=bias, scoring=scoring) if experts == 256 else None):
                if options is None:
                    continue
                options = {**options, "scoring": scoring}
                k = min(8, experts // options.get("num_expert_group", 1) * options.get("topk_group", 1))
                weights, ids = run(xd, k, isa, **options)
                nan_rows = np.isnan(x).any(axis=-1)
                assert np.isnan(weights[nan_rows]).all(), f"{isa} {options}: {weights[nan_rows][:2]}"
                np.testing.assert_array_equal(ids[nan_rows], np.broadcast_to(np.arange(k), (nan_rows.sum(), k)))
                check_result((weights, ids), xd, k, f"{isa} NaN rows {experts} {np.dtype(dtype)}", **options)


# ---- 4. Threads, types, shapes ------------------------------------------------------------------


@functools.cache
def threads_input(case: str):
    rng = rng_for("threads", case)
    if case == "deepseek":
        x = grid_normal(rng, (1000, 256), 1.0).astype(np.float32)
        x[17, 3] = np.nan
        x[500, ::3] = -np.inf
        options = dict(DEEPSEEK_V3, correction_bias=random_bias(rng, 256))
        k = 8
    else:
        x = grid_normal(rng, (1000, 64), 3.0).astype(np.float32)
        x[::50] = np.round(x[::50])
        options = {"renormalize": True}
        k = 8
    return x, k, options, router_reference(x, k, **options)


@pytest.mark.parametrize("case", ["deepseek", "softmax64"])
def test_threads_one_and_two_identical(isa, case):
    """num_threads 1, 2 and the default: identical results, the reference's."""
    x, k, options, expected = threads_input(case)
    one = run(x, k, isa, num_threads=1, **options)
    two = run(x, k, isa, num_threads=2, **options)
    default = run(x, k, isa, **options)
    for name, got in (("2", two), ("default", default)):
        np.testing.assert_array_equal(got[1], one[1], err_msg=f"{isa} {case}: ids with num_threads={name}")
        np.testing.assert_array_equal(got[0], one[0], err_msg=f"{isa} {case}: weights with num_threads={name}")
    check_result(two, x, k, f"{isa} {case} threads=2", expected=expected, **options)


@pytest.mark.parametrize("dtype_name", DTYPE_NAMES)
def test_result_types_and_shapes(dtype_name):
    """float32 weights and int32 ids of shape (tokens, k), C-contiguous, for every logits dtype."""
    dtype = dtype_of(dtype_name)
    for tokens in TOKENS:
        x = grid_normal(rng_for("types", tokens), (tokens, 60), 2.0).astype(dtype)
        for k in (1, 3, 8):
            weights, ids = fastsoftmax.topk_softmax(x, k)
            assert type(weights) is np.ndarray and type(ids) is np.ndarray
            assert weights.dtype == np.float32 and ids.dtype == np.int32, (weights.dtype, ids.dtype)
            assert weights.shape == (tokens, k) and ids.shape == (tokens, k)
            assert weights.flags.c_contiguous and ids.flags.c_contiguous
            check_result((weights, ids), x, k, f"{dtype_name} {tokens}x60 k={k}")


def test_weights_sum_with_renormalize(isa):
    """renormalize=True: each row's weights sum to routed_scaling_factor (to float32 rounding)."""
    x = grid_normal(rng_for("sums"), (64, 128), 2.0).astype(np.float32)
    for scoring in ("softmax", "sigmoid"):
        for scale in (1.0, 2.5, 16.0):
            weights, _ = run(x, 8, isa, scoring=scoring, renormalize=True, routed_scaling_factor=scale)
            np.testing.assert_allclose(weights.astype(np.float64).sum(axis=-1), scale, rtol=8 * 2.0**-23)


# ---- 5. Argument errors -------------------------------------------------------------------------

X_ERR = np.zeros((4, 64), np.float32)

VALUE_ERRORS = {
    "k=0": {"k": 0},
    "k=-1": {"k": -1},
    "k>experts": {"k": 65},
    "k>topk_group*group size": {"k": 33, "num_expert_group": 8, "topk_group": 4},
    "experts % groups": {"num_expert_group": 5, "topk_group": 2},
    "experts % groups (3)": {"num_expert_group": 3, "topk_group": 1},
    "groups=0": {"num_expert_group": 0, "topk_group": 1},
    "groups=-8": {"num_expert_group": -8, "topk_group": 1},
    "groups>experts": {"num_expert_group": 128, "topk_group": 1},
    "topk_group=0": {"num_expert_group": 8, "topk_group": 0},
    "topk_group>groups": {"num_expert_group": 8, "topk_group": 9},
    "topk_group=-1": {"num_expert_group": 8, "topk_group": -1},
    "only num_expert_group": {"num_expert_group": 8},
    "only topk_group": {"topk_group": 4},
    "bias (63,)": {"correction_bias": np.zeros(63, np.float32)},
    "bias (65,)": {"correction_bias": np.zeros(65, np.float32)},
    "bias (1, 64)": {"correction_bias": np.zeros((1, 64), np.float32)},
    "bias (4, 64)": {"correction_bias": np.zeros((4, 64), np.float32)},
    "bias scalar": {"correction_bias": np.float32(0.0)},
    "scoring Softmax": {"scoring": "Softmax"},
    "scoring relu": {"scoring": "relu"},
    "scoring empty": {"scoring": ""},
    "1-D logits": {"x": np.zeros(64, np.float32)},
    "3-D logits": {"x": np.zeros((2, 4, 64), np.float32)},
    "bad isa": {"isa": "sse9"},
    "num_threads=0": {"num_threads": 0},
}

TYPE_ERRORS = {
    "k float": {"k": 2.0},
    "k str": {"k": "2"},
    "k None": {"k": None},
    "scoring None": {"scoring": None},
    "scoring int": {"scoring": 1},
    "complex logits": {"x": np.zeros((4, 64), np.complex64)},
}


def call_with(case: dict):
    case = dict(case)
    x = case.pop("x", X_ERR)
    k = case.pop("k", 2)
    return fastsoftmax.topk_softmax(x, k, **case)


@pytest.mark.parametrize("name", list(VALUE_ERRORS))
def test_bad_values_raise_value_error(name):
    with pytest.raises(ValueError):
        call_with(VALUE_ERRORS[name])


@pytest.mark.parametrize("name", list(TYPE_ERRORS))
def test_bad_types_raise_type_error(name):
    with pytest.raises(TypeError):
        call_with(TYPE_ERRORS[name])


def test_limits_are_inclusive():
    """The largest k allowed, topk_group = num_expert_group, and groups of one expert are accepted."""
    assert call_with({"k": 64})[1].shape == (4, 64)
    assert call_with({"k": 32, "num_expert_group": 8, "topk_group": 4})[1].shape == (4, 32)
    assert call_with({"k": 64, "num_expert_group": 8, "topk_group": 8})[1].shape == (4, 64)
    assert call_with({"k": 1, "num_expert_group": 64, "topk_group": 1})[1].shape == (4, 1)
    assert call_with({"k": 2, "correction_bias": np.zeros(64, np.float64)})[1].shape == (4, 2)


# ---- 6. Property test ----------------------------------------------------------------------------


@st.composite
def router_cases(draw):
    experts = draw(st.sampled_from([2, 3, 4, 6, 8, 12, 16, 24, 32, 60, 64]))
    tokens = draw(st.integers(1, 12))
    grouped = draw(st.booleans())
    options: dict = {"scoring": draw(st.sampled_from(["softmax", "sigmoid"])),
                     "renormalize": draw(st.booleans()),
                     "routed_scaling_factor": draw(st.sampled_from([1.0, 2.5, 0.5]))}
    with_bias = draw(st.booleans())
    if grouped:
        fits = [g for g in (1, 2, 3, 4, 8) if experts % g == 0 and (experts // g >= 2 or not with_bias)]
        groups = draw(st.sampled_from(fits))
        options["num_expert_group"] = groups
        options["topk_group"] = draw(st.integers(1, groups))
        limit = options["topk_group"] * experts // groups
    else:
        limit = experts
    k = draw(st.integers(1, min(limit, 8)))
    grid = st.integers(-16, 16).map(lambda v: v / 4)  # exact in every dtype; ties likely
    values = draw(st.lists(st.one_of(grid, grid, grid, st.just(-np.inf)), min_size=tokens * experts,
                           max_size=tokens * experts))
    x = np.array(values, np.float64).reshape(tokens, experts)
    x[:, draw(st.integers(0, experts - 1))] = draw(grid)  # one finite logit per row at least
    if with_bias:
        bias = np.array(draw(st.lists(st.integers(-8, 8).map(lambda v: v / 64), min_size=experts, max_size=experts)),
                        np.float32)
        masked_cols = np.isneginf(x).any(axis=0)
        bias[masked_cols] = -1.0  # masked experts rank last with scores + bias too
        if grouped:  # keep two finite logits in every group, so the group score does not involve -inf
            size = experts // options["num_expert_group"]
            for g in range(options["num_expert_group"]):
                x[:, g * size] = np.where(np.isneginf(x[:, g * size]), 0.5, x[:, g * size])
                if size > 1:
                    x[:, g * size + 1] = np.where(np.isneginf(x[:, g * size + 1]), -0.5, x[:, g * size + 1])
        options["correction_bias"] = bias
    if draw(st.booleans()) and tokens > 1:
        x[draw(st.integers(0, tokens - 1)), draw(st.integers(0, experts - 1))] = np.nan
    dtype = draw(st.sampled_from(["float32", "float64", "float16"]))
    return x.astype(dtype), k, options


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=router_cases(), isa=st.sampled_from(fastsoftmax.available_isas()), threads=st.sampled_from([1, 2]))
def test_matches_numpy_reference(case, isa, threads):
    x, k, options = case
    try:
        expected = router_reference(x, k, **options)
    except AmbiguousInput:
        assume(False)
    check_result(run(x, k, isa, num_threads=threads, **options), x, k, f"{isa} x={x.tolist()} k={k} {options}",
                 expected=expected, **options)


# ---- 7. Against PyTorch (vLLM's CPU path) ---------------------------------------------------------


def torch_cases():
    """(name, x, k, options) for the torch comparisons: the routers of well-known models and the
    awkward inputs (ties, -inf with the lowest bias, NaN rows, 16-bit and float64 logits)."""
    rng = rng_for("torch")
    out = []
    models = [  # name, tokens, experts, k, options
        ("Mixtral", 1000, 8, 2, {"renormalize": True}),
        ("Qwen1.5-MoE", 64, 60, 4, {}),
        ("Qwen3-MoE", 64, 128, 8, {"renormalize": True}),
        ("OLMoE", 7, 64, 8, {}),
        ("DeepSeek-V2-like", 64, 64, 6, {"num_expert_group": 8, "topk_group": 3, "routed_scaling_factor": 16.0}),
        ("DeepSeek-V3", 1000, 256, 8, dict(DEEPSEEK_V3, correction_bias=random_bias(rng, 256))),
        ("DeepSeek-V3 softmax", 64, 256, 8,
         dict(DEEPSEEK_V3, scoring="softmax", correction_bias=random_bias(rng, 256))),
        ("512 sigmoid bias", 64, 512, 8,
         {"scoring": "sigmoid", "correction_bias": random_bias(rng, 512), "renormalize": True}),
    ]
    for name, tokens, experts, k, options in models:
        scoring = options.get("scoring", "softmax")
        x = grid_normal(rng, (tokens, experts), SIGMA[scoring]).astype(np.float32)
        out.append((name, x, k, options))
    ties = rng.integers(-2, 3, (64, 256)).astype(np.float32)
    out.append(("ties", ties, 8, dict(DEEPSEEK_V3, correction_bias=rng.choice(np.float32([-0.125, 0, 0.125]), 256))))
    out.append(("ties softmax", ties[:, :64], 8, {"renormalize": True}))
    masked = grid_normal(rng, (64, 64), 3.0)
    masked[rng.random(masked.shape) < 0.8] = -np.inf
    masked[:, 5] = 1.0
    out.append(("masked", masked.astype(np.float32), 8, {}))
    low = np.arange(0, 64, 3)
    bias = random_bias(rng, 64)
    bias[low] = -1.0
    masked_b = grid_normal(rng, (64, 64), 1.0)
    masked_b[:, low] = np.where(rng.random((64, low.size)) < 0.5, -np.inf, masked_b[:, low])
    out.append(("masked with bias", masked_b.astype(np.float32), 8,
                {"scoring": "sigmoid", "correction_bias": bias, "renormalize": True}))
    nan = grid_normal(rng, (16, 256), 1.0)
    nan[[2, 9], [100, 0]] = np.nan
    out.append(("NaN rows", nan.astype(np.float32), 8, dict(DEEPSEEK_V3, correction_bias=random_bias(rng, 256))))
    out.append(("float16", grid_normal(rng, (64, 64), 3.0).astype(np.float16), 8, {"renormalize": True}))
    out.append(("float64", grid_normal(rng, (64, 256), 1.0), 8,
                dict(DEEPSEEK_V3, correction_bias=random_bias(rng, 256))))
    if ml_dtypes is not None:
        out.append(("bfloat16", grid_normal(rng, (64, 256), 1.0).astype(ml_dtypes.bfloat16), 8,
                    dict(DEEPSEEK_V3, correction_bias=random_bias(rng, 256))))
    return out


def test_numpy_reference_matches_torch_reference():
    """router_reference (NumPy) against torch_reference (vLLM's code in PyTorch): the same ids;
    weights equal to float64 rounding when torch computes in float64, and within a few float32
    ULPs when it computes in float32 as vLLM does."""
    torch = pytest.importorskip("torch")
    for name, x, k, options in torch_cases():
        ids, weights = router_reference(x, k, **options)
        t_weights, t_ids = torch_reference(torch, x, k, **options)
        np.testing.assert_array_equal(t_ids, ids, err_msg=f"{name}: ids (torch computing in float32/float64)")
        t64_weights, t64_ids = torch_reference(torch, x, k, compute=torch.float64, **options)
        np.testing.assert_array_equal(t64_ids, ids, err_msg=f"{name}: ids (torch computing in float64)")
        np.testing.assert_allclose(t64_weights, weights, rtol=1e-13, atol=0, err_msg=f"{name}: float64 weights")
        finite = ~np.isnan(weights)
        assert np.array_equal(np.isnan(t_weights), ~finite), name
        err = ulp_error(t_weights[finite].astype(np.float32), weights[finite])
        assert float(np.max(err)) <= 8, f"{name}: torch's float32 weights {float(np.max(err)):.3g} ULP from NumPy's"


def test_matches_torch_reference(isa):
    """fastsoftmax.topk_softmax against torch_reference directly: ids equal to those of vLLM's
    path, weights within WEIGHT_ULP float32 ULPs of that path computed in float64."""
    torch = pytest.importorskip("torch")
    for name, x, k, options in torch_cases():
        _, t_ids = torch_reference(torch, x, k, **options)
        t64_weights, _ = torch_reference(torch, x, k, compute=torch.float64, **options)
        check_result(run(x, k, isa, **options), x, k, f"{isa} {name} (torch)", expected=(t_ids, t64_weights))
