"""sample: one token id per row of logits, as vLLM's sampler draws it, against a NumPy reference.

The semantics (``fastsoftmax.sample``'s docstring; ``SamplingParams`` in fastsoftmax.h), per row:

1. a temperature below 1e-5 (0 included) is greedy: the first index of the largest logit,
   whatever the filters, probability 1;
2. otherwise the weights are exp((x - max) / T) (a row with +inf entries: 1 for each of them, 0
   for the rest), then, each step on what the previous one kept:
   ``top_k``: keep every logit >= the k-th largest (ties at the k-th kept; None, 0, -1 or k >= n:
   all); ``top_p``: order by decreasing logit, equal ones the lower index first, keep the smallest
   prefix whose weight reaches top_p times the weight of what top_k kept; ``min_p``: keep the
   weights >= min_p times the largest;
3. a token is drawn from what is kept, renormalized; ``return_probs`` gives its probability there.

``reference`` computes that distribution in float64 from the values actually passed (after the
dtype's rounding and the ``where`` mask) and also returns its *margin*: how close (relative) the
deciding comparisons of top_p and min_p came to their thresholds. Random inputs must have a
margin above ``MARGIN`` (else the input itself is ambiguous under float32 rounding, and the test
says so); the adversarial exact cases (ties at the top_p boundary, min_p = 1 with tied maxima) are
built so that the comparison is exact in any precision.

Technique: a batch of R identical rows (``np.broadcast_to``: row stride 0, no copy) gives R
independent draws in one call, since each row index has its own Philox counter. The draws are
checked three ways: no token outside the reference's kept set; every kept token whose expected
count is >= ``MIN_EXPECTED`` drawn at least once; and each returned probability equal to the
reference probability of its token within ``PROB_RTOL`` (any difference in the kept set changes the
renormalizing mass, hence every probability). Distributions are tested by Pearson's chi-square
over >= 1e5 draws per case against the exact filtered distribution, cells of expected count < 5
pooled; with fixed seeds the tests are deterministic, and a case fails if its p-value is below
``CHI2_ALPHA`` = 1e-4.

Covered: adversarial small rows (ties at the top_p boundary and inside tie groups beyond the
sorted-nucleus size, top_p = 1 and tiny, top_k = 1 / n / > n with ties at the k-th, min_p with
ties, combinations, -inf entries, per-row parameters); tie groups and random rows of 3000 (more
than the 1024 collected entries beyond which the library bins the nucleus by logit); vocabularies
around the 2048-element chunk (2047, 2048, 2049, 4096, 4097, 5000) and 32000, temperature-only and
filtered, chunks of only -inf; temperatures from just above greedy to 1e300 on every ISA;
chi-square for temperature only (vocab 50 and 5000 spread over chunks), top_k, top_p, min_p, all
three, temperature != 1, float64 / float16 / bfloat16 input, where= and +inf rows; greedy rows
for every dtype; every ISA (valid draws, and for every dtype >= 99% of the ids of isa="scalar");
reproducibility (seeds, generators, threads, row independence, the documented Philox stream);
NaN, all -inf, +inf (also with top_p beyond the binned size), -inf, one-element, huge-logit and
empty rows (an empty vocabulary: an expected failure until the library raises for it); strided,
negative-stride, Fortran-order, unaligned and byte-swapped inputs; torch tensors; argument
errors; explain(function="sample"); and Philox4x64-10 against numpy.random.Philox.
"""

from __future__ import annotations

import re

import fastsoftmax
import numpy as np
import pytest
from scipy import stats

try:
    import ml_dtypes
except ImportError:  # pragma: no cover - ml_dtypes is in the [test] extra
    ml_dtypes = None

pytestmark = pytest.mark.usefixtures("fail_instead_of_hanging")

SEED = 20250611
MARGIN = 1e-6  # random inputs: top_p / min_p decisions at least this far (relative) from the threshold
MIN_EXPECTED = 20  # kept tokens expected at least this often must be drawn
PROB_RTOL = 1e-5  # returned probabilities against the float64 reference
CHI2_DRAWS = 100_000
CHI2_ALPHA = 1e-4
GREEDY_TEMPERATURE = 1e-5
CHUNK = 2048  # the library's temperature-only chunk (sampler.cc kChunkElements)

DTYPES = {"f32": np.float32, "f64": np.float64, "f16": np.float16}
if ml_dtypes is not None:
    DTYPES["bf16"] = ml_dtypes.bfloat16


def dtype_of(name: str):
    """The NumPy dtype of a dtype name; bfloat16 skips without ml_dtypes."""
    if name not in DTYPES:
        pytest.skip("ml_dtypes is not installed")
    return DTYPES[name]


class AmbiguousInput(AssertionError):
    """A random test input whose filters' decisions are too close to a threshold to be checked."""


# ---- The reference ----------------------------------------------------------------------------


def reference(x, temperature=1.0, top_k=None, top_p=None, min_p=None, where=None):
    """The final distribution of one row (float64, zeros outside the kept set) and its margin.

    ``x`` holds the values as passed (any dtype); masked entries (``where`` False) count as -inf.
    The margin is the smallest relative distance between a deciding sum or weight and the top_p
    or min_p threshold (inf when neither filter decides anything).
    """
    v = np.asarray(x).astype(np.float64).copy()
    if where is not None:
        v[~np.broadcast_to(where, v.shape)] = -np.inf
    n = v.size
    assert not np.isnan(v).any() and (v > -np.inf).any(), "the reference takes rows that can be drawn from"
    p = np.zeros(n)
    if temperature < GREEDY_TEMPERATURE:
        p[np.argmax(v)] = 1.0  # np.argmax: the first index of the maximum
        return p, np.inf
    if np.isposinf(v).any():
        w = np.isposinf(v).astype(np.float64)
    else:
        w = np.exp((v - v.max()) / temperature)
    keep = v > -np.inf
    margin = np.inf
    if top_k is not None and 0 < top_k < n:
        kth = np.sort(v)[::-1][top_k - 1]
        keep &= v >= kth
    if top_p is not None and top_p < 1:
        order = np.lexsort((np.arange(n), -v))  # decreasing logit, the lower index first
        order = order[keep[order]]
        cum = np.cumsum(w[order])
        target = top_p * cum[-1]
        reached = np.flatnonzero(cum >= target)
        count = reached[0] + 1 if reached.size else order.size
        margin = abs(cum[count - 1] - target) / cum[-1]
        if count >= 2:
            margin = min(margin, abs(target - cum[count - 2]) / cum[-1])
        keep = np.zeros(n, bool)
        keep[order[:count]] = True
    if min_p is not None and min_p > 0:
        largest = w[keep].max()
        threshold = min_p * largest
        margin = min(margin, np.min(np.abs(w[keep] - threshold)) / largest)
        keep &= w >= threshold
    keep &= w > 0
    p[keep] = w[keep]
    return p / p.sum(), margin


def reference_rows(x, temperature=1.0, top_k=None, top_p=None, min_p=None, where=None, check_margin=True):
    """``reference`` of each row of a 2-D x with per-row (broadcast) parameters: (probs, margins)."""
    x = np.asarray(x)
    rows = x.shape[0]
    params = [np.broadcast_to(np.asarray(a, dtype=object), (rows,)) for a in (temperature, top_k, top_p, min_p)]
    mask = None if where is None else np.broadcast_to(where, x.shape)
    probs = np.zeros(x.shape)
    margins = np.zeros(rows)
    for r in range(rows):
        t, k, tp, mp = (a[r] for a in params)
        probs[r], margins[r] = reference(x[r], t, k, tp, mp, None if mask is None else mask[r])
    if check_margin and margins.min() < MARGIN:
        raise AmbiguousInput(f"rows {np.flatnonzero(margins < MARGIN).tolist()} are within {MARGIN} of a threshold")
    return probs, margins


def assert_draws(ids, probs, expected, min_expected=MIN_EXPECTED):
    """Draws of R rows against their reference distributions ``expected`` (one row's for all, or
    (R, n)): nothing outside the kept set, every well-expected token drawn, probabilities equal."""
    ids = np.asarray(ids).reshape(-1)
    expected = np.asarray(expected)
    assert ids.dtype == np.int64
    assert ids.min() >= 0 and ids.max() < expected.shape[-1]
    if expected.ndim == 1:
        groups = [(expected, ids)]
        at_ids = expected[ids]
    else:  # rows with equal distributions share their expected counts
        at_ids = expected[np.arange(ids.size), ids]
        _, first, inverse = np.unique(np.ascontiguousarray(expected).view(np.dtype((np.void, expected.shape[1] * 8))),
                                      return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
        groups = [(expected[r], ids[inverse == g]) for g, r in enumerate(first)]
    outside = at_ids == 0
    assert not outside.any(), (
        f"{outside.sum()} draws outside the kept set: tokens {np.unique(ids[outside])[:20].tolist()} "
        f"(rows {np.flatnonzero(outside)[:10].tolist()})"
    )
    for distribution, drawn in groups:
        must = np.flatnonzero(distribution * drawn.size >= min_expected)
        missing = np.setdiff1d(must, drawn)
        assert missing.size == 0, (
            f"tokens {missing[:20].tolist()} (expected counts {(distribution[missing[:5]] * drawn.size).tolist()}) "
            f"never drawn in {drawn.size} draws"
        )
    np.testing.assert_allclose(np.asarray(probs, np.float64).reshape(-1), at_ids, rtol=PROB_RTOL, atol=0)


def draw_repeated(row, draws, seed=SEED, **kwargs):
    """``draws`` draws from one row: sample() of the row broadcast to (draws, n), row stride 0."""
    row = np.asarray(row)
    batch = np.broadcast_to(row, (draws, row.size))
    assert batch.strides[0] == 0
    return fastsoftmax.sample(batch, seed=seed, return_probs=True, **kwargs)


def check_row(row, draws=4000, exact=False, seed=SEED, isa="auto", **params):
    """Draws from one row against the reference of its parameters (margin-checked unless exact)."""
    expected, margin = reference(row, **params)
    if not exact and margin < MARGIN:
        raise AmbiguousInput(f"margin {margin} below {MARGIN}")
    ids, probs = draw_repeated(row, draws, seed=seed, isa=isa, **params)
    assert_draws(ids, probs, expected)
    return ids, expected


def chi_square_pvalue(ids, expected):
    """Pearson's chi-square p-value of the draws ``ids`` against the distribution ``expected``
    (after checking that none lies outside it): cells of expected count < 5 pooled into one,
    which joins the smallest other cell if it is still below 5."""
    ids = np.asarray(ids).reshape(-1)
    counts = np.bincount(ids, minlength=expected.size)
    assert counts[expected == 0].sum() == 0, f"draws outside the kept set: {np.flatnonzero(counts * (expected == 0))}"
    kept = np.flatnonzero(expected > 0)
    e = ids.size * expected[kept]
    o = counts[kept].astype(np.float64)
    order = np.argsort(e, kind="stable")
    e, o = e[order], o[order]
    small = e < 5
    cells_e, cells_o = list(e[~small]), list(o[~small])
    if small.any():
        if e[small].sum() >= 5 or not cells_e:
            cells_e.append(e[small].sum())
            cells_o.append(o[small].sum())
        else:
            cells_e[0] += e[small].sum()
            cells_o[0] += o[small].sum()
    cells_e, cells_o = np.array(cells_e), np.array(cells_o)
    assert cells_e.size >= 2, "a chi-square test needs two cells"
    statistic = np.sum((cells_o - cells_e) ** 2 / cells_e)
    return stats.chi2.sf(statistic, cells_e.size - 1)


def random_logits(rng, n, scale=2.0, dtype=np.float32):
    """Normal logits, rounded to the dtype."""
    return (rng.standard_normal(n) * scale).astype(dtype)


# ---- Philox4x64-10 --------------------------------------------------------------------------


def plus_one(counter):
    """counter + 1 as a 256-bit little-endian number of four 64-bit words."""
    value = sum(int(c) << (64 * i) for i, c in enumerate(counter)) + 1
    return [(value >> (64 * i)) & (2**64 - 1) for i in range(4)]


@pytest.mark.parametrize(
    "counter, key",
    [
        ((0, 0, 0, 0), (0, 0)),
        ((0, 5, 0, 0), (SEED, 0)),
        ((3, 7, 11, 13), (1, 2)),
        ((2**64 - 1, 0, 0, 0), (12345, 0)),  # the increment carries into word 1
        ((2**64 - 1, 2**64 - 1, 2**64 - 1, 0), (2**64 - 1, 2**64 - 1)),  # carries into word 3
        ((0x0123456789ABCDEF, 0xFEDCBA9876543210, 0xDEADBEEF, 0xCAFEBABE), (0x9E3779B97F4A7C15, 42)),
    ],
)
def test_philox_matches_numpy(counter, key):
    """_philox4x64_10(c + 1, key) is numpy.random.Philox(key=key, counter=c)'s first 4 raw words
    (NumPy increments its counter before each block)."""
    bit_generator = np.random.Philox(key=np.array(key, np.uint64), counter=np.array(counter, np.uint64))
    expected = [int(w) for w in bit_generator.random_raw(8)]
    assert list(fastsoftmax._core._philox4x64_10(plus_one(counter), list(key))) == expected[:4]
    assert list(fastsoftmax._core._philox4x64_10(plus_one(plus_one(counter)), list(key))) == expected[4:]


def test_temperature_only_draws_follow_the_documented_stream():
    """Key (seed, 0), counter (draw, row, 0, 0), 53-bit uniforms: a temperature-only row of two
    logits (one chunk) takes token 1 exactly when the chunk's second uniform is >= p(token 0)."""
    rng = np.random.default_rng(SEED)
    rows = 3000
    x = rng.normal(0, 1.5, (rows, 2)).astype(np.float32)
    for seed in (0, 7, 2**64 - 1):
        ids = fastsoftmax.sample(x, seed=seed)
        x64 = x.astype(np.float64)
        p0 = 1 / (1 + np.exp(x64[:, 1] - x64[:, 0]))
        u = np.array([(fastsoftmax._core._philox4x64_10([0, r, 0, 0], [seed, 0])[1] >> 11) * 2.0**-53
                      for r in range(rows)])
        clear = np.abs(u - p0) > 1e-6  # rounding decides the others
        assert clear.mean() > 0.99
        np.testing.assert_array_equal(ids[clear], (u >= p0).astype(np.int64)[clear])


# ---- Kept sets on adversarial small rows ------------------------------------------------------


def boundary_in_tie_group(row, position, top_k=None):
    """A top_p putting the nucleus boundary halfway through the entry at sorted ``position`` (the
    result keeps positions 0..position): the reference's order, decreasing logit, lower index first."""
    v = np.asarray(row).astype(np.float64)
    p, _ = reference(row, top_k=top_k)
    order = np.lexsort((np.arange(v.size), -v))
    order = order[p[order] > 0]
    cum = np.cumsum(p[order])
    return (cum[position] - 0.5 * p[order[position]]) / cum[-1], order[: position + 1]


ADVERSARIAL = {
    # name: (logits, params, exact, the kept indices when the case pins them)
    "uniform_top_p_half_exact": ([0.0] * 8, {"top_p": 0.5}, True, [0, 1, 2, 3]),
    "uniform_top_p_just_above_half": ([1.5] * 8, {"top_p": 0.5000001}, True, [0, 1, 2, 3, 4]),
    "ties_after_lower_index": ([0.0, 2.0, 1.0, 2.0, 1.0, 2.0], {"top_p": 0.45}, False, [1, 3]),
    "tiny_top_p_first_max": ([0.0, 3.0, 1.0, 3.0], {"top_p": 1e-9}, False, [1]),
    "top_p_one_keeps_all": ([0.0, -30.0, 5.0, 2.0, -60.0], {"top_p": 1.0}, True, [0, 1, 2, 3, 4]),
    "top_k1_tied_maxima": ([0.0, 3.0, 1.0, 3.0], {"top_k": 1}, True, [1, 3]),
    "top_k_ties_at_kth": ([5.0, 4.0, 4.0, 4.0, 3.0, 3.0, 0.0], {"top_k": 2}, True, [0, 1, 2, 3]),
    "top_k_ties_at_kth_5": ([5.0, 4.0, 4.0, 4.0, 3.0, 3.0, 0.0], {"top_k": 5}, True, [0, 1, 2, 3, 4, 5]),
    "top_k_equals_vocab": ([1.0, 0.0, -1.0, 2.0], {"top_k": 4}, True, [0, 1, 2, 3]),
    "top_k_above_vocab": ([1.0, 0.0, -1.0, 2.0], {"top_k": 100}, True, [0, 1, 2, 3]),
    "top_k_minus_one": ([1.0, 0.0, -1.0, 2.0], {"top_k": -1}, True, [0, 1, 2, 3]),
    "top_k_zero": ([1.0, 0.0, -1.0, 2.0], {"top_k": 0}, True, [0, 1, 2, 3]),
    "top_k_then_top_p": ([5.0, 4.0, 4.0, 4.0, 3.0, 3.0, 0.0], {"top_k": 2, "top_p": 0.75}, False, [0, 1, 2]),
    "min_p_one_tied_maxima": ([2.0, 1.0, 2.0, 0.0, 2.0], {"min_p": 1.0}, True, [0, 2, 4]),
    "min_p_between": ([0.0, np.log(0.3), np.log(0.2), np.log(0.1)], {"min_p": 0.25}, False, [0, 1]),
    "min_p_after_top_p": ([3.0, 2.0, 2.0, 1.0, 0.0], {"top_p": 0.8, "min_p": 0.3}, False, [0, 1, 2]),
    "all_three": ([4.0, 3.0, 3.0, 3.0, 2.0, 1.0, 3.0], {"top_k": 3, "top_p": 0.8, "min_p": 0.3}, False, [0, 1, 2, 3]),
    "minus_inf_entries": ([-np.inf, 1.0, -np.inf, 0.5, -np.inf], {"top_k": 3, "top_p": 0.95}, False, [1, 3]),
    "minus_inf_top_k_beyond_finite": ([-np.inf, 1.0, -np.inf, 0.5], {"top_k": 3}, True, [1, 3]),
    "temperature_sharpens_top_p": ([2.0, 1.0, 0.0, -1.0], {"temperature": 0.25, "top_p": 0.99}, False, [0, 1]),
    "temperature_flattens_top_p": ([2.0, 1.0, 0.0, -1.0], {"temperature": 4.0, "top_p": 0.7}, False, [0, 1, 2]),
}


@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("case", list(ADVERSARIAL))
def test_adversarial_kept_sets(case, dtype_name):
    """Hand-made rows (ties at the top_p boundary and the k-th value, min_p ties, -inf, ...):
    exactly the kept set the semantics give, each with its probability."""
    logits, params, exact, kept = ADVERSARIAL[case]
    row = np.array(logits, dtype_of(dtype_name))
    expected, _ = reference(row, **params)
    np.testing.assert_array_equal(np.flatnonzero(expected), kept)  # the case is what it says
    check_row(row, exact=exact, **params)


@pytest.mark.parametrize("n", [40, 1000, 3000])
@pytest.mark.parametrize("with_top_k", [False, True])
def test_top_p_boundary_inside_tie_groups(n, with_top_k):
    """Rows of a few distinct values (long tie groups, more than the sorted-nucleus size of 32; with
    n = 3000 more than the 1024 entries above which the library bins the entries by logit, the
    values on bin edges): the nucleus ends halfway through a tie group and keeps that group's
    lower indices."""
    rng = np.random.default_rng(SEED + n)
    row = rng.integers(0, 4, n).astype(np.float32) * np.float32(0.25)
    top_k = n // 2 if with_top_k else None
    p, _ = reference(row, top_k=top_k)
    alive = np.count_nonzero(p)
    for position in (1, alive // 3, alive // 2 + 1, alive - 2):
        top_p, kept = boundary_in_tie_group(row, position, top_k)
        expected, _ = reference(row, top_k=top_k, top_p=top_p)
        np.testing.assert_array_equal(np.flatnonzero(expected), np.sort(kept))
        ids, _ = check_row(row, draws=min(max(4000, 40 * position), 10000), top_k=top_k, top_p=top_p)
        # The kept tie group's entries are the lower indices of their value.
        boundary_value = row[kept[-1]]
        drawn_in_group = np.unique(ids[row[ids] == boundary_value])
        assert drawn_in_group.max() <= kept[-1]


@pytest.mark.parametrize("n, distinct", [(200, 25), (3000, 8)])
def test_top_p_nucleus_of_random_rows(n, distinct):
    """Random rows with random top_p (and some top_k and min_p) per row: the kept set of every
    row (R = 60 rows of each, one call), against the reference (3000: the binned nucleus)."""
    rng = np.random.default_rng(SEED + n)
    copies = 60
    base = rng.normal(0, 1.5, (distinct, n)).astype(np.float32)
    top_p = rng.uniform(0.05, 0.99, distinct)
    top_k = rng.choice([0, 0, 5, 30, n * 3 // 4], distinct)
    min_p = rng.choice([0.0, 0.0, 0.01, 0.2], distinct)
    x = np.repeat(base, copies, axis=0)
    expected, _ = reference_rows(base, 1.0, top_k, top_p, min_p)
    ids, probs = fastsoftmax.sample(x, top_k=np.repeat(top_k, copies), top_p=np.repeat(top_p, copies),
                                    min_p=np.repeat(min_p, copies), seed=SEED, return_probs=True)
    assert_draws(ids, probs, np.repeat(expected, copies, axis=0))


def test_per_row_parameters_mix_greedy_and_sampling():
    """Per-row temperature, top_k, top_p and min_p (greedy rows among sampled ones) over one
    batch: each row follows its own parameters."""
    rng = np.random.default_rng(SEED)
    n = 64
    logits = rng.integers(-8, 8, n).astype(np.float32) / np.float32(4)
    sets = [  # (temperature, top_k, top_p, min_p)
        (0.0, 0, 1.0, 0.0),
        (1.0, 0, 1.0, 0.0),
        (1e-6, 5, 0.5, 0.5),
        (0.7, 5, 1.0, 0.0),
        (1.3, -1, 0.8, 0.0),
        (1.0, 10, 0.9, 0.1),
        (GREEDY_TEMPERATURE, 1, 1.0, 0.0),  # not greedy: top_k 1 keeps the tied maxima
        (2.0, 0, 1.0, 0.3),
    ]
    copies = 1500
    params = np.array(sets * copies, dtype=object)
    temperature, top_k, top_p, min_p = (params[:, i] for i in range(4))
    x = np.broadcast_to(logits, (len(params), n))
    expected, _ = reference_rows(logits[None, :].repeat(len(sets), 0), *(params[: len(sets), i] for i in range(4)))
    ids, probs = fastsoftmax.sample(x, temperature=temperature.astype(float), top_k=top_k.astype(np.int64),
                                    top_p=top_p.astype(float), min_p=min_p.astype(float), seed=SEED,
                                    return_probs=True)
    assert_draws(ids, probs, np.tile(expected, (copies, 1)))
    greedy = temperature.astype(float) < GREEDY_TEMPERATURE
    assert np.all(ids[greedy] == np.argmax(logits)) and np.all(probs[greedy] == 1)
    assert np.unique(ids[6 :: len(sets)]).size > 1  # T = 1e-5 with top_k 1 draws among tied maxima


# ---- Vocabularies around the chunk, and long rows ---------------------------------------------

CHUNK_SIZES = [2047, 2048, 2049, 4096, 4097, 5000]
FILTERS = {
    "temperature_only": {},
    "temperature_0.6": {"temperature": 0.6},
    "top_k": {"top_k": 50},
    "top_p": {"top_p": 0.9},
    "min_p": {"min_p": 0.03},
    "all_three": {"top_k": 300, "top_p": 0.8, "min_p": 0.01, "temperature": 1.2},
}


def spiked_logits(rng, n, dtype=np.float32):
    """Normal logits with large ones at the chunk edges and in the last chunk (so the running
    maximum changes between chunks and the edge tokens carry mass)."""
    x = rng.normal(0, 1.0, n)
    spikes = [i for i in (0, CHUNK - 1, CHUNK, 2 * CHUNK - 1, 2 * CHUNK, n - 1) if i < n]
    x[spikes] = np.linspace(3.0, 5.0, len(spikes))
    return x.astype(dtype)


@pytest.mark.parametrize("params", list(FILTERS))
@pytest.mark.parametrize("n", CHUNK_SIZES)
def test_vocab_around_chunk(n, params):
    """Vocabularies at and around the 2048-element chunk, temperature only and filtered."""
    row = spiked_logits(np.random.default_rng(SEED + n), n)
    check_row(row, draws=3000, **FILTERS[params])


@pytest.mark.parametrize("params", ["temperature_only", "top_k", "top_p", "all_three"])
def test_vocab_32000(params):
    """A 32000-token vocabulary (a LLaMA-2 row), temperature only and filtered."""
    rng = np.random.default_rng(SEED)
    row = rng.normal(0, 2.0, 32000).astype(np.float32)
    row[[5, 17000, 31999]] = [9.0, 9.5, 8.5]
    check_row(row, draws=3000, **FILTERS[params])


def test_huge_finite_logits():
    """Logits near float32's limit, with a temperature that makes their differences matter
    (differences of the logits overflow float32): the reference distribution."""
    rng = np.random.default_rng(SEED)
    row = (rng.standard_normal(50) * 1e37).astype(np.float32)
    row[3] = np.float32(3e38)
    row[4] = np.float32(-3e38)
    for params in ({"temperature": 2e37}, {"temperature": 2e37, "top_p": 0.7}, {"temperature": 3e37, "top_k": 10}):
        check_row(row, **params)


@pytest.mark.parametrize("temperature", [1.1e-5, 1e-4, 0.05, 50.0, 1e4, 1e300])
def test_extreme_temperatures(isa, temperature):
    """Temperatures just above greedy and very large (beyond the SIMD kernels' range on either
    side), temperature only and filtered, on every ISA."""
    row = random_logits(np.random.default_rng(SEED), 3000, 1.0)
    filters = [{}, {"top_k": 5}, {"min_p": 0.5}]
    if temperature < 1e4:  # (larger ones leave a near-uniform row, ambiguous for top_p)
        filters.append({"top_p": 0.9})
    for params in filters:
        check_row(row, draws=3000, temperature=temperature, isa=isa, **params)


@pytest.mark.parametrize("params", [{}, {"top_p": 0.9}, {"top_k": 5}, {"min_p": 0.05}, {"top_k": 4000}])
def test_chunks_of_only_minus_inf(params):
    """Rows whose first chunk, or a middle one, is all -inf (skipped by the chunked draw)."""
    rng = np.random.default_rng(SEED)
    first = random_logits(rng, 5000, 1.0)
    first[:CHUNK] = -np.inf
    first[3000:3100] = -np.inf
    middle = random_logits(rng, 5000, 1.0)
    middle[CHUNK : 2 * CHUNK] = -np.inf
    for row in (first, middle):
        check_row(row, draws=3000, **params)


# ---- Chi-square -------------------------------------------------------------------------------


def chi2_case(name):
    """(row, params, where) of a chi-square case."""
    rng = np.random.default_rng(SEED + sum(map(ord, name)))
    if name == "temperature_only_50":
        return random_logits(rng, 50, 1.0), {}, None
    if name == "temperature_only_5000":
        # Mass spread over the three chunks, the largest logits in the last one.
        row = rng.normal(0, 0.5, 5000)
        row[CHUNK : 2 * CHUNK] += 0.5
        row[2 * CHUNK :] += 1.0
        return row.astype(np.float32), {}, None
    # The filtered cases read every kept candidate in double: 2500 entries keep them quick.
    row = rng.normal(0, 1.0, 2500).astype(np.float32)
    if name == "top_k":
        return row, {"top_k": 40}, None
    if name == "top_p":
        return row, {"top_p": 0.5}, None
    if name == "min_p":
        return row, {"min_p": 0.05}, None
    if name == "all_three":
        return row, {"top_k": 400, "top_p": 0.7, "min_p": 0.1, "temperature": 0.8}, None
    if name == "temperature_0.5":
        return row, {"temperature": 0.5, "top_p": 0.9}, None
    if name == "temperature_2.5":
        return row, {"temperature": 2.5}, None
    if name == "float64":  # (computed in long double, about 30x slower than float32: a shorter row)
        return row[:200].astype(np.float64), {"temperature": 0.7}, None
    if name == "float16":
        return row[:1000].astype(np.float16), {"temperature": 0.8, "top_p": 0.95}, None
    if name == "bfloat16":
        return row.astype(dtype_of("bf16")), {"temperature": 0.8, "min_p": 0.05}, None
    if name == "where":
        return row, {"top_k": 200}, rng.random(row.size) < 0.5
    if name == "where_temperature_only":
        return row, {}, rng.random(row.size) < 0.3
    raise KeyError(name)


CHI2_CASES = ["temperature_only_50", "temperature_only_5000", "top_k", "top_p", "min_p", "all_three",
              "temperature_0.5", "temperature_2.5", "float64", "float16", "bfloat16", "where",
              "where_temperature_only"]


@pytest.mark.parametrize("name", CHI2_CASES)
def test_chi_square(name):
    """1e5 draws (fixed seed) against the exact filtered distribution: p-value >= 1e-4."""
    row, params, where = chi2_case(name)
    expected, margin = reference(row, where=where, **params)
    assert margin >= MARGIN
    ids, probs = draw_repeated(row, CHI2_DRAWS, where=where, **params)
    assert_draws(ids, probs, expected)
    assert chi_square_pvalue(ids, expected) >= CHI2_ALPHA


def test_chi_square_detects_a_wrong_distribution():
    """The chi-square check has power: the draws of one case fail against a slightly different
    distribution (temperature 1.03 instead of 1)."""
    row, params, _ = chi2_case("temperature_only_50")
    ids, _ = draw_repeated(row, CHI2_DRAWS, **params)
    wrong, _ = reference(row, temperature=1.03)
    assert chi_square_pvalue(ids, wrong) < CHI2_ALPHA


def test_plus_inf_entries_share_the_mass_uniformly():
    """+inf entries: the draws are among them only, uniform (chi-square), probability 1/m."""
    row = np.zeros(30, np.float32)
    row[[3, 7, 8, 20]] = np.inf
    row[[0, 9]] = -np.inf
    row[[1, 2]] = 1e30
    ids, probs = draw_repeated(row, 40_000)
    expected, _ = reference(row)
    np.testing.assert_array_equal(np.flatnonzero(expected), [3, 7, 8, 20])
    assert_draws(ids, probs, expected)
    assert np.all(probs == np.float32(0.25))
    assert chi_square_pvalue(ids, expected) >= CHI2_ALPHA


@pytest.mark.parametrize(
    "params, kept",
    [
        ({"top_p": 0.5}, [3, 7]),  # the smallest prefix by index reaching half
        ({"top_p": 0.6}, [3, 7, 8]),
        ({"top_p": 1e-6}, [3]),
        ({"top_k": 2}, [3, 7, 8, 20]),  # ties at the k-th (+inf) kept
        ({"top_k": 6}, [3, 7, 8, 20]),  # finite entries weigh 0 next to +inf
        ({"min_p": 0.5}, [3, 7, 8, 20]),
        ({"temperature": 3.0, "top_p": 0.7}, [3, 7, 8]),
        ({"temperature": 0.0}, [3]),
    ],
)
def test_plus_inf_entries_with_filters(params, kept):
    """+inf entries with filters: top_p keeps the first ceil(top_p * m) of them by index."""
    row = np.zeros(30, np.float32)
    row[[3, 7, 8, 20]] = np.inf
    row[[1, 2]] = 5.0
    expected, _ = reference(row, **params)
    np.testing.assert_array_equal(np.flatnonzero(expected), kept)
    check_row(row, exact=True, **params)


@pytest.mark.parametrize("n", [1025, 5000])
@pytest.mark.parametrize("params", [{"top_p": 0.5}, {"top_p": 0.3, "temperature": 0.7}, {"top_p": 0.9, "top_k": 2000},
                                    {"top_p": 0.99, "min_p": 0.5}])
def test_plus_inf_rows_with_top_p_beyond_the_binned_size(n, params):
    """+inf rows with more than 1024 entries and top_p (whose nucleus the library bins by logit for
    finite rows; +inf rows once crashed it: a NaN bin of inf - inf): the first ceil(top_p * m)
    +inf entries by index."""
    rng = np.random.default_rng(SEED + n)
    row = rng.normal(0, 1, n).astype(np.float32)
    infinite = np.sort(rng.choice(n, 10, replace=False))
    row[infinite] = np.inf
    row[rng.choice(n, n // 10, replace=False)] = -np.inf
    row[infinite] = np.inf
    expected, _ = reference(row, **params)
    assert np.all(np.isposinf(row[expected > 0]))
    check_row(row, draws=3000, exact=True, **params)


def test_minus_inf_entries_never_drawn():
    """-inf entries (and masked ones) are never drawn, even at a high temperature that spreads
    the mass over every finite entry."""
    rng = np.random.default_rng(SEED)
    row = rng.normal(0, 1, 300).astype(np.float32)
    dead = rng.random(300) < 0.5
    row[dead] = -np.inf
    masked = rng.random(300) < 0.2
    for params in ({"temperature": 100.0}, {"temperature": 100.0, "top_p": 0.999}, {"temperature": 50.0, "top_k": 250}):
        ids, _ = check_row(row, draws=20000, where=~masked, **params)
        assert not np.any(dead[ids] | masked[ids])
        assert np.unique(ids).size == np.count_nonzero(~dead & ~masked)


# ---- Greedy -------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [0.0, 1e-6, 9.99e-6])
@pytest.mark.parametrize("dtype_name", list(DTYPES))
def test_greedy_is_first_argmax(dtype_name, temperature):
    """Temperatures below 1e-5: the first index of the largest logit, whatever the filters, with
    probability 1; ties, -inf and +inf entries included."""
    dtype = dtype_of(dtype_name)
    rng = np.random.default_rng(SEED)
    x = rng.integers(-4, 4, (400, 37)).astype(np.float64)  # many tied maxima
    x[50:100][rng.random((50, 37)) < 0.5] = -np.inf
    x[100:110, 5] = np.inf
    x[100:110, 20] = np.inf
    x[110:120, -1] = np.inf
    x[120:130] = -np.inf
    x[120:130, 30] = -1.0  # one finite entry
    x = x.astype(dtype)
    expected = np.argmax(x.astype(np.float64), axis=1)
    for params in ({}, {"top_k": 3}, {"top_p": 0.1, "min_p": 0.9}, {"top_k": 1, "top_p": 0.5, "min_p": 1.0}):
        ids, probs = fastsoftmax.sample(x, temperature=temperature, seed=SEED, return_probs=True, **params)
        np.testing.assert_array_equal(ids, expected)
        assert np.all(probs == 1)
    # The where mask applies to greedy rows too.
    where = rng.random(37) < 0.6
    masked = np.where(where, x.astype(np.float64), -np.inf)
    ok = (masked > -np.inf).any(axis=1)
    ids = fastsoftmax.sample(x[ok], temperature=temperature, where=where, seed=SEED)
    np.testing.assert_array_equal(ids, np.argmax(masked[ok], axis=1))


def test_greedy_threshold_is_exclusive():
    """Temperature exactly 1e-5 samples (tied maxima both drawn); just below is greedy."""
    x = np.broadcast_to(np.float32([1.0, 1.0, 0.0]), (500, 3))
    assert set(fastsoftmax.sample(x, temperature=GREEDY_TEMPERATURE, seed=SEED).tolist()) == {0, 1}
    assert set(fastsoftmax.sample(x, temperature=np.nextafter(GREEDY_TEMPERATURE, 0), seed=SEED).tolist()) == {0}


# ---- ISAs -------------------------------------------------------------------------------------


def isa_batch(dtype, rows=2000, n=300):
    """Random rows with random per-row parameters (greedy rows among them)."""
    rng = np.random.default_rng(SEED)
    x = rng.normal(0, 2, (rows, n)).astype(dtype)
    temperature = rng.choice([0.0, 0.5, 1.0, 1.7], rows)
    top_k = rng.choice([0, 1, 5, 50, 299, 300], rows)
    top_p = rng.choice([1.0, 0.9, 0.5], rows)
    min_p = rng.choice([0.0, 0.0, 0.05], rows)
    return x, {"temperature": temperature, "top_k": top_k, "top_p": top_p, "min_p": min_p}


@pytest.mark.parametrize("dtype_name", list(DTYPES))
def test_every_isa_valid_and_close_to_scalar(isa, dtype_name):
    """Every ISA: valid draws (in the kept set, the reference probability), and >= 99% of the
    ids isa="scalar" gives (the kernels' rounding may move a draw across a boundary)."""
    x, params = isa_batch(dtype_of(dtype_name))
    expected, margins = reference_rows(x, check_margin=False, **params)
    clear = margins >= MARGIN
    assert clear.mean() > 0.97
    ids, probs = fastsoftmax.sample(x, seed=SEED, isa=isa, return_probs=True, **params)
    assert_draws(ids[clear], probs[clear], expected[clear], min_expected=np.inf)
    scalar = fastsoftmax.sample(x, seed=SEED, isa="scalar", **params)
    assert np.mean(ids == scalar) >= 0.99


# ---- Reproducibility ---------------------------------------------------------------------------


def repro_batch(rows=4000, n=1000):
    rng = np.random.default_rng(SEED)
    return rng.normal(0, 1, (rows, n)).astype(np.float32)


@pytest.mark.parametrize("params", [{}, {"top_p": 0.9, "top_k": 100}, {"min_p": 0.1}])
def test_same_seed_same_ids(params):
    """The same seed gives the same ids; different seeds differ in most rows."""
    x = repro_batch()
    a = fastsoftmax.sample(x, seed=123, **params)
    np.testing.assert_array_equal(fastsoftmax.sample(x, seed=123, **params), a)
    b = fastsoftmax.sample(x, seed=124, **params)
    assert np.mean(a == b) < 0.5


@pytest.mark.parametrize("params", [{}, {"top_p": 0.9, "top_k": 100, "temperature": 0.8}])
def test_threads_one_and_two_identical(params):
    """num_threads=1 and 2 give the same ids (rows whole, counters by row index)."""
    x = repro_batch()
    if fastsoftmax.explain(x, function="sample", num_threads=2).threads < 2:
        pytest.skip("two threads are not available here")
    one = fastsoftmax.sample(x, seed=SEED, num_threads=1, return_probs=True, **params)
    two = fastsoftmax.sample(x, seed=SEED, num_threads=2, return_probs=True, **params)
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])


def test_row_depends_only_on_seed_index_and_logits():
    """A row's id depends on the seed, its index and its logits only: changing other rows (or
    their parameters) leaves it, a prefix of the batch and the 1-D call of row 0 agree, and
    identical rows at different indices draw differently."""
    x = repro_batch(rows=500, n=200)
    top_p = np.full(500, 0.9)
    ids = fastsoftmax.sample(x, seed=SEED, top_p=top_p)
    y = x.copy()
    y[1::2] = np.random.default_rng(1).normal(0, 3, y[1::2].shape)
    other_top_p = top_p.copy()
    other_top_p[1::2] = 0.3
    np.testing.assert_array_equal(fastsoftmax.sample(y, seed=SEED, top_p=other_top_p)[::2], ids[::2])
    np.testing.assert_array_equal(fastsoftmax.sample(x[:100], seed=SEED, top_p=0.9), ids[:100])
    assert fastsoftmax.sample(x[0], seed=SEED, top_p=0.9) == ids[0]
    same = fastsoftmax.sample(np.broadcast_to(x[0], (100, 200)), seed=SEED)
    assert np.unique(same).size > 20


def test_generator_advances_and_reproduces():
    """generator=: successive calls differ; a generator seeded alike reproduces them, and the
    seed used is the generator's next 64-bit draw."""
    x = repro_batch(rows=1000, n=100)
    g = np.random.default_rng(5)
    first = fastsoftmax.sample(x, generator=g)
    second = fastsoftmax.sample(x, generator=g)
    assert np.mean(first == second) < 0.5
    g2 = np.random.default_rng(5)
    np.testing.assert_array_equal(fastsoftmax.sample(x, generator=g2), first)
    np.testing.assert_array_equal(fastsoftmax.sample(x, generator=g2), second)
    seed = int(np.random.default_rng(5).integers(0, 2**64, dtype=np.uint64))
    np.testing.assert_array_equal(fastsoftmax.sample(x, seed=seed), first)


def test_seed_none_uses_fresh_entropy():
    """seed=None (and no generator) works, and two such calls differ."""
    x = np.zeros((1000, 100), np.float32)
    a, probs = fastsoftmax.sample(x, return_probs=True)
    b = fastsoftmax.sample(x)
    assert a.min() >= 0 and a.max() < 100
    np.testing.assert_allclose(probs, 0.01, rtol=1e-6)
    assert np.mean(a == b) < 0.1


def test_seed_extremes():
    """Seeds 0 and 2**64 - 1 (also as numpy integers) are accepted and differ."""
    x = repro_batch(rows=500, n=100)
    top = fastsoftmax.sample(x, seed=2**64 - 1)
    np.testing.assert_array_equal(fastsoftmax.sample(x, seed=np.uint64(2**64 - 1)), top)
    assert np.mean(fastsoftmax.sample(x, seed=0) == top) < 0.5


# ---- Special rows and layouts ---------------------------------------------------------------


def test_nan_rows_named():
    """A row with a NaN raises ValueError naming the rows (with the all -inf rows, if any)."""
    x = np.zeros((6, 10), np.float32)
    x[1, 3] = np.nan
    x[4, 9] = np.nan
    with pytest.raises(ValueError, match=r"rows \[1, 4\] hold a NaN"):
        fastsoftmax.sample(x, seed=SEED)
    with pytest.raises(ValueError, match=r"rows \[1, 4\] hold a NaN"):
        fastsoftmax.sample(x, seed=SEED, temperature=0.0)
    with pytest.raises(ValueError, match=r"rows \[1, 4\] hold a NaN"):
        fastsoftmax.sample(x, seed=SEED, top_k=2, top_p=0.5)
    x[2] = -np.inf
    with pytest.raises(ValueError, match=r"rows \[1, 4\] hold a NaN and rows \[2\] have no entry above -inf"):
        fastsoftmax.sample(x, seed=SEED)
    with pytest.raises(ValueError, match=r"rows \[0\] hold a NaN"):
        fastsoftmax.sample(np.float32([1.0, np.nan]), seed=SEED)


@pytest.mark.parametrize("params", [{}, {"temperature": 0.0}, {"top_p": 0.5}])
def test_masked_nan_is_ignored(params):
    """A NaN where ``where`` is False is masked (as -inf, like softmax's where=): no error, and
    the draws follow the rest of the row."""
    row = np.float32([np.nan, 1.0, 2.0, 0.5])
    where = np.array([False, True, True, True])
    expected, _ = reference(row[1:], **params)
    ids, probs = draw_repeated(row, 4000, where=where, **params)
    assert_draws(ids - 1, probs, expected)


@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("params", [{}, {"temperature": 0.0}, {"top_k": 3, "min_p": 0.1}, {"top_p": 0.5}])
def test_all_minus_inf_or_masked_rows(dtype_name, params):
    """Rows of only -inf, or fully masked by where, raise ValueError naming them."""
    x = np.zeros((5, 3000), dtype_of(dtype_name))
    x[3] = -np.inf
    with pytest.raises(ValueError, match=r"rows \[3\] have no entry above -inf"):
        fastsoftmax.sample(x, seed=SEED, **params)
    where = np.ones((5, 3000), bool)
    where[0] = False
    x[3] = 0
    with pytest.raises(ValueError, match=r"rows \[0\] have no entry above -inf"):
        fastsoftmax.sample(x, where=where, seed=SEED, **params)


@pytest.mark.parametrize("shape, rows", [((0,), "[0]"), ((3, 0), "[0, 1, 2]")])
def test_empty_vocabulary_raises(shape, rows):
    """A vocabulary of 0 entries has no entry above -inf: ValueError naming the rows, not a token id."""
    with pytest.raises(ValueError, match=rf"rows {re.escape(rows)} have no entry above -inf"):
        fastsoftmax.sample(np.zeros(shape, np.float32), seed=SEED)


def test_empty_batch():
    """No rows: empty ids and probabilities."""
    ids, probs = fastsoftmax.sample(np.zeros((0, 7), np.float32), seed=SEED, return_probs=True)
    assert ids.shape == (0,) and ids.dtype == np.int64 and probs.shape == (0,) and probs.dtype == np.float32


@pytest.mark.parametrize("value", [-3.0, 0.0, 1e30, np.inf])
def test_one_element_rows(value):
    """One-element rows: id 0, probability 1, whatever the parameters."""
    x = np.full((6, 1), value, np.float32)
    ids, probs = fastsoftmax.sample(x, temperature=[0.0, 1.0, 0.5, 1.0, 2.0, 1.0], top_k=[0, 1, 5, -1, 1, 0],
                                    top_p=[1.0, 0.1, 1.0, 1e-9, 0.5, 1.0], min_p=[0.0, 0.0, 1.0, 0.5, 0.0, 1.0],
                                    seed=SEED, return_probs=True)
    np.testing.assert_array_equal(ids, 0)
    np.testing.assert_array_equal(probs, 1)
    one, p = fastsoftmax.sample(np.float32([value]), seed=SEED, return_probs=True)
    assert one.shape == () and one == 0 and p == 1


def test_result_types_and_shapes():
    """int64 ids of logits.shape[:-1] (0-d for one row), float32 probabilities."""
    x = np.zeros((3, 5), np.float32)
    ids = fastsoftmax.sample(x, seed=SEED)
    assert isinstance(ids, np.ndarray) and ids.shape == (3,) and ids.dtype == np.int64
    ids, probs = fastsoftmax.sample(x[0], seed=SEED, return_probs=True)
    assert ids.shape == () and ids.dtype == np.int64 and probs.shape == () and probs.dtype == np.float32
    ids = fastsoftmax.sample([[0.0, 1.0], [2.0, 0.0]], seed=SEED)  # a nested list
    assert ids.shape == (2,) and ids.dtype == np.int64


def layouts(x):
    """Non-contiguous, negative-stride, Fortran-order, unaligned and byte-swapped views of x, each
    with the contiguous copy it must agree with."""
    yield "every_other_column", x[:, ::2]
    yield "reversed_rows", x[::-1]
    yield "reversed_columns", x[:, ::-1]
    yield "rows_and_columns", x[::3, 1::3]
    yield "fortran", np.asfortranarray(x)
    buffer = np.zeros(x.nbytes + 1, np.uint8)
    unaligned = np.ndarray(x.shape, x.dtype, buffer=buffer, offset=1)
    unaligned[...] = x
    assert not unaligned.flags.aligned
    yield "unaligned", unaligned
    if x.dtype.byteorder != "|" and x.dtype in (np.float32, np.float64, np.float16):
        yield "byteswapped", x.astype(x.dtype.newbyteorder())


@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("params", [{}, {"top_k": 20, "top_p": 0.8}, {"temperature": 0.0}])
def test_strided_inputs_match_contiguous_copies(dtype_name, params):
    """Strided, negative-stride, Fortran-order, unaligned and byte-swapped logits give the same
    ids and probabilities as their contiguous copies (also with where=)."""
    rng = np.random.default_rng(SEED)
    x = rng.normal(0, 2, (60, 4500)).astype(dtype_of(dtype_name))
    for name, view in layouts(x):
        copy = np.ascontiguousarray(view)
        where = rng.random(view.shape[1]) < 0.7
        for mask in (None, where):
            got = fastsoftmax.sample(view, seed=SEED, where=mask, return_probs=True, **params)
            want = fastsoftmax.sample(copy, seed=SEED, where=mask, return_probs=True, **params)
            np.testing.assert_array_equal(got[0], want[0], err_msg=name)
            np.testing.assert_array_equal(got[1], want[1], err_msg=name)


def test_where_broadcasts_and_never_draws_masked():
    """where= of shape (vocab,) and (rows, vocab): masked tokens are never drawn, and the draws
    follow the masked reference."""
    rng = np.random.default_rng(SEED)
    x = np.broadcast_to(rng.normal(0, 1, 100).astype(np.float32), (6000, 100))
    row_mask = rng.random(100) < 0.5
    full_mask = np.broadcast_to(row_mask, x.shape).copy()
    full_mask[::2, :10] = False
    expected_row, _ = reference(x[0], where=row_mask, top_k=30)
    ids, probs = fastsoftmax.sample(x, where=row_mask, top_k=30, seed=SEED, return_probs=True)
    assert_draws(ids, probs, expected_row)
    expected, _ = reference_rows(x[:2], where=full_mask[:2], top_k=30)
    ids, probs = fastsoftmax.sample(x, where=full_mask, top_k=30, seed=SEED, return_probs=True)
    assert_draws(ids, probs, np.tile(expected, (3000, 1)))
    assert not np.any(ids[::2] < 10)


def test_torch_tensor_in_torch_tensor_out():
    """A torch CPU tensor gives torch tensors (int64 ids, float32 probabilities), equal to the
    ids of the same NumPy array."""
    torch = pytest.importorskip("torch")
    x = repro_batch(rows=50, n=300)
    ids, probs = fastsoftmax.sample(torch.from_numpy(x), seed=SEED, top_p=0.9, return_probs=True)
    assert isinstance(ids, torch.Tensor) and ids.dtype == torch.int64 and tuple(ids.shape) == (50,)
    assert isinstance(probs, torch.Tensor) and probs.dtype == torch.float32
    want_ids, want_probs = fastsoftmax.sample(x, seed=SEED, top_p=0.9, return_probs=True)
    np.testing.assert_array_equal(ids.numpy(), want_ids)
    np.testing.assert_array_equal(probs.numpy(), want_probs)
    # A non-contiguous tensor and a bfloat16 one.
    xt = torch.from_numpy(np.ascontiguousarray(x.T)).T
    np.testing.assert_array_equal(fastsoftmax.sample(xt, seed=SEED).numpy(), fastsoftmax.sample(x, seed=SEED))
    greedy = fastsoftmax.sample(torch.from_numpy(x).to(torch.bfloat16), temperature=0.0, seed=SEED)
    np.testing.assert_array_equal(greedy.numpy(), torch.from_numpy(x).to(torch.bfloat16).float().argmax(1).numpy())


# ---- Errors -----------------------------------------------------------------------------------

X = np.float32([[2.0, 1.0, 0.5, -1.0], [0.0, 3.0, 0.0, 0.0]])

BAD_VALUES = {
    "negative_temperature": {"temperature": -1.0},
    "nan_temperature": {"temperature": np.nan},
    "inf_temperature": {"temperature": np.inf},
    "one_bad_row_temperature": {"temperature": [1.0, -0.5]},
    "top_k_minus_two": {"top_k": -2},
    "one_bad_row_top_k": {"top_k": [3, -5]},
    "top_k_too_large": {"top_k": np.uint64(2**63)},
    "top_p_zero": {"top_p": 0.0},
    "top_p_above_one": {"top_p": 1.5},
    "top_p_negative": {"top_p": -0.1},
    "top_p_nan": {"top_p": np.nan},
    "min_p_negative": {"min_p": -0.1},
    "min_p_above_one": {"min_p": 1.1},
    "min_p_nan": {"min_p": np.nan},
    "params_shape": {"temperature": [1.0, 1.0, 1.0]},
    "seed_negative": {"seed": -1},
    "seed_2_64": {"seed": 2**64},
    "seed_and_generator": {"seed": 1, "generator": np.random.default_rng(0)},
    "where_shape": {"where": np.ones(3, bool)},
    "unknown_isa": {"isa": "bogus"},
    "negative_threads": {"num_threads": -1},
}
BAD_TYPES = {
    "top_k_float": {"top_k": 1.5},
    "top_k_float_array": {"top_k": np.array([1.0, 2.0])},
    "top_k_bool": {"top_k": True},
    "temperature_string": {"temperature": "1"},
    "temperature_complex": {"temperature": 1 + 1j},
    "seed_float": {"seed": 1.5},
    "seed_bool": {"seed": True},
    "seed_string": {"seed": "1"},
    "generator_random_state": {"generator": np.random.RandomState(0)},
    "generator_int": {"generator": 0},
    "where_int": {"where": np.ones(4, int)},
}


@pytest.mark.parametrize("name", list(BAD_VALUES))
def test_bad_values_raise_value_error(name):
    """Parameters out of range: ValueError, and no result."""
    kwargs = {"seed": SEED, **BAD_VALUES[name]}
    if "generator" in BAD_VALUES[name] and "seed" not in BAD_VALUES[name]:
        del kwargs["seed"]
    with pytest.raises(ValueError):
        fastsoftmax.sample(X, **kwargs)


@pytest.mark.parametrize("name", list(BAD_TYPES))
def test_bad_types_raise_type_error(name):
    """Parameters of the wrong type: TypeError."""
    kwargs = dict(BAD_TYPES[name])
    if "generator" not in kwargs and "seed" not in kwargs:
        kwargs["seed"] = SEED
    with pytest.raises(TypeError):
        fastsoftmax.sample(X, **kwargs)


def test_out_of_range_message_names_the_row():
    """The range error names the row and the parameter's range."""
    with pytest.raises(ValueError, match=r"row 1 .*top_p 1\.5 \(in \(0, 1\]\)"):
        fastsoftmax.sample(X, top_p=[0.5, 1.5], seed=SEED)


@pytest.mark.parametrize("shape", [(), (2, 2, 2)])
def test_bad_dimensions(shape):
    """Logits of 0 or 3 dimensions: ValueError."""
    with pytest.raises(ValueError, match="1 or 2 dimensions"):
        fastsoftmax.sample(np.zeros(shape, np.float32), seed=SEED)


def test_limits_are_inclusive():
    """The ends of the ranges are accepted: temperature 0, top_k -1 / 0 / huge, top_p 1, min_p 0
    and 1, seed 0."""
    for kwargs in ({"temperature": 0.0}, {"top_k": -1}, {"top_k": 0}, {"top_k": 2**62}, {"top_p": 1.0},
                   {"top_p": np.nextafter(0, 1)}, {"min_p": 0.0}, {"min_p": 1.0}, {"seed": 0}):
        ids = fastsoftmax.sample(X, **{"seed": SEED, **kwargs})
        assert ids.shape == (2,) and np.all((ids >= 0) & (ids < 4))


# ---- explain --------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype_name", list(DTYPES))
def test_explain_sample(isa, dtype_name):
    """explain(x, function="sample") plans a "-sample-" kernel of the dtype listed by kernels()."""
    x = np.zeros((3, 100), dtype_of(dtype_name))
    e = fastsoftmax.explain(x, function="sample", isa=isa)
    assert e.ok
    assert "-sample-" in e.kernel
    assert e.kernel.startswith({"f32": "f32-", "f64": "f64-", "f16": "f16-", "bf16": "bf16-"}[dtype_name])
    assert e.kernel in {k["name"] for k in fastsoftmax.kernels()}
    assert e.implementation == isa
