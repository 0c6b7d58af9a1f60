"""fastsoftmax: fast and accurate softmax and log-softmax for NumPy arrays.

Four algorithms (``ALGORITHMS``), each selectable, on the best instruction set of this CPU
(``available_isas()``) or a forced one::

    >>> import numpy as np, fastsoftmax
    >>> fastsoftmax.softmax(np.array([1.0, 2.0, 3.0]))
    array([0.09003057, 0.24472847, 0.66524096])
    >>> fastsoftmax.log_softmax(np.float32([0, 0]), algorithm="two_pass")
    array([-0.6931472, -0.6931472], dtype=float32)

Special values, identical for every algorithm and ISA:

- a NaN anywhere in a row makes the whole row NaN;
- a row containing +inf: the k entries equal to +inf share the probability (1/k each), all other
  entries get 0 (log_softmax: -log(k) and -inf), the limit as those entries grow;
- a row of only -inf: NaN;
- -inf entries in an otherwise finite row give exactly 0 (log_softmax: -inf);
- huge finite values (1e30, the float maximum) never overflow or give NaN.

``softmax_topk`` finds the k largest probabilities of each row and their indices in one pass
over the input, without computing the whole softmax. ``explain`` says which implementation and
kernel a call would run, and why; ``implementations()`` and ``kernels()`` list them.

Every argument is checked once, in the native library, before anything is written.
"""

from __future__ import annotations

import os
from typing import Any, Literal, overload

import numpy as np

from . import _core, _device

__version__: str = _core.__version__

ALGORITHMS: tuple[str, ...] = tuple(_core.algorithm_names())
"""Names accepted by ``algorithm=``: "auto", then the four algorithms."""

ISAS: tuple[str, ...] = tuple(_core.isa_names())
"""Names accepted by ``isa=``: "auto", then every CPU implementation, lowest priority first
(those not in ``available_isas()`` raise ValueError)."""

Explanation = _core.Explanation

__all__ = [
    "ALGORITHMS",
    "ISAS",
    "STATE_FIELDS",
    "Explanation",
    "__version__",
    "active_isa",
    "available_isas",
    "cmake_dir",
    "compiled_isas",
    "cpu_features",
    "cuda_available",
    "explain",
    "get_num_threads",
    "implementations",
    "kernels",
    "log_softmax",
    "log_softmax_from_state",
    "logsumexp",
    "logsumexp_from_state",
    "merge_states",
    "sample",
    "set_num_threads",
    "softmax",
    "softmax_from_state",
    "softmax_state",
    "softmax_topk",
    "topk_softmax",
]


def available_isas() -> list[str]:
    """ISAs compiled into this build and supported by this CPU and OS, best last.

    >>> "scalar" in fastsoftmax.available_isas()
    True
    """
    return _core.supported_isas()


def compiled_isas() -> list[str]:
    """ISAs whose kernels were compiled into this build (some may not run on this CPU)."""
    return _core.compiled_isas()


def active_isa() -> str:
    """The ISA that ``isa="auto"`` runs: ``FASTSOFTMAX_ISA`` if set, else the best available.

    Raises ValueError, naming the variable's value, if ``FASTSOFTMAX_ISA`` names an unknown or
    unavailable ISA.
    """
    return _core.auto_isa()


def implementations() -> list[dict[str, Any]]:
    """Every implementation the planner can choose, lowest priority first.

    Each is a dict: ``name`` (as ``isa=`` takes it), ``backend`` ("cpu", or "cuda" for the CUDA
    backend, listed last where this build has it), ``description``,
    ``required_features`` (space-separated ``cpu_features()`` names), ``priority`` (the higher, the
    earlier ``isa="auto"`` tries it), ``compiled`` and ``supported`` (compiled and usable here).

    >>> [i["name"] for i in fastsoftmax.implementations()][:2]
    ['scalar', 'avx2']
    """
    found = _core.implementations()
    if _core.cuda_compiled:
        found.append(_device.cuda_module().implementation())
    return found


def kernels() -> list[dict[str, str]]:
    """Every kernel compiled into this build: the catalogue.

    Each is a dict: ``name``, one string in the manner of XNNPACK's,
    ``<dtype>-<operation>-<algorithm>-<target>-<exp method>-<tile>[-split]`` (e.g.
    ``f32-softmax-two_pass-avx512-lut16p3-u64``: float32 rows, the two-pass algorithm, AVX-512,
    exp by a 16-entry table and a degree-3 polynomial, 64 elements per unrolled block; ``c64``
    tiles are blocks of 64 adjacent columns, ``-split`` the passes of rows split across threads,
    ``checked`` the checked path), and its fields ``dtype``, ``operation``, ``algorithm``,
    ``target`` and ``layout`` ("rows", "columns" or "split rows"; the CUDA kernels, target
    "cuda": "warp rows", "block rows", "split rows", "top-k rows"). ``explain(...).kernel`` is
    one of these names.
    """
    found = _core.kernels()
    if _core.cuda_compiled:
        found += _device.cuda_module().kernels()
    return found


@overload
def cuda_available(reason: Literal[False] = False) -> bool: ...
@overload
def cuda_available(reason: Literal[True]) -> tuple[bool, str]: ...
def cuda_available(reason: bool = False) -> bool | tuple[bool, str]:
    """Whether device arrays can run here: a CUDA backend in this build, a driver and a device.

    With ``reason=True``, ``(available, why_not)``, ``why_not`` empty when available. Asking
    imports the CUDA extension; ``import fastsoftmax`` alone never does.

    >>> ok, why = fastsoftmax.cuda_available(reason=True)
    """
    if not _core.cuda_compiled:
        answer = (False, _device.NO_CUDA_BACKEND)
    else:
        answer = tuple(_device.cuda_module().available())
    return answer if reason else answer[0]


def cpu_features() -> dict[str, bool]:
    """CPU features relevant to the kernels, detected at run time (cpuid, and xgetbv for OS state)."""
    return _core.cpu_features()


def set_num_threads(threads: int | None) -> None:
    """Set the default thread count of ``softmax``/``log_softmax`` calls with ``num_threads=None``.

    ``None`` restores the automatic default: ``FASTSOFTMAX_NUM_THREADS`` if set, else
    ``OMP_NUM_THREADS``, else the number of CPUs this process may run on (its affinity mask).
    Anything but None or a positive integer raises TypeError or ValueError.

    >>> fastsoftmax.set_num_threads(1)
    >>> fastsoftmax.get_num_threads()
    1
    >>> fastsoftmax.set_num_threads(None)
    """
    _core.set_num_threads(_core.threads_argument(threads))


def get_num_threads() -> int:
    """The default thread count of calls with ``num_threads=None`` (see :func:`set_num_threads`)."""
    return _core.get_num_threads()


def cmake_dir() -> str:
    """Folder holding ``fastsoftmaxConfig.cmake``, for ``find_package(fastsoftmax CONFIG)``.

    Pass it as ``-Dfastsoftmax_DIR=$(python -c 'import fastsoftmax; print(fastsoftmax.cmake_dir())')``.
    """
    here = os.path.dirname(os.path.abspath(__file__))
    for lib in ("lib", "lib64"):
        path = os.path.join(here, lib, "cmake", "fastsoftmax")
        if os.path.isfile(os.path.join(path, "fastsoftmaxConfig.cmake")):
            return path
    raise FileNotFoundError("this installation of fastsoftmax carries no CMake package")


# ---- The operations: each hands its arguments to the native library, which checks them -------


def softmax(
    x: Any,
    axis: int | tuple[int, ...] | None = -1,
    *,
    algorithm: str = "auto",
    isa: str = "auto",
    out: Any = None,
    num_threads: int | None = None,
    temperature: float = 1.0,
    dtype: Any = None,
    casting: str = "safe",
    where: Any = None,
) -> Any:
    """Softmax along ``axis``: ``exp(x) / sum(exp(x), axis)``, computed without overflow.

    Parameters
    ----------
    x : array_like
        float32 and float64 are computed natively and returned in the same dtype. float16 and
        bfloat16 (``ml_dtypes.bfloat16`` arrays; for a uint16 array holding bfloat16 bits, pass
        ``x.view(ml_dtypes.bfloat16)``) are converted to float32 in registers as they are
        loaded, computed in float32, and rounded back to their own dtype as they are stored: no
        temporary (beyond a row at a time along a strided axis, as for every dtype). Integer and
        bool inputs become float64.

        Arrays of other frameworks are taken without a copy and the result is of the caller's
        type: CPU arrays that export DLPack (PyTorch, JAX, NumPy; float32, float64, float16 and
        bfloat16, e.g. ``torch.bfloat16``), read by the library's own DLPack consumer and
        returned through the framework's ``from_dlpack``; CUDA device arrays (PyTorch, CuPy, anything with ``__dlpack__`` or
        ``__cuda_array_interface__``) on the CUDA backend, on the producer's current stream,
        the result allocated by the caller's framework (or ``out=``, an array of the same
        framework). On the device: float32, float16 and bfloat16 (bfloat16 only through
        DLPack), computed in float32 (float64 raises ValueError: never copied to the host);
        the elements along ``axis`` must be adjacent in memory (other axes may be strided);
        ``isa`` and ``num_threads`` must be left as they are. ``cuda_available()`` says
        whether this machine can run them.
        Complex, object and string dtypes raise TypeError. Any strides work; when ``axis`` has
        unit stride (the usual C-contiguous last axis) nothing is copied.
    axis : int, tuple of ints or None
        The axis to normalize over; out of range raises ``numpy.exceptions.AxisError``. A tuple
        normalizes over those axes together, and None over every axis (SciPy's convention):
        adjacent axes whose strides allow it are read as one without a copy; others are moved
        together first (a copy). Only NumPy arrays (and array_likes) take tuples and None.
    algorithm : str
        One of ``ALGORITHMS``: "auto" (fastest for the row length, see README), "two_pass",
        "three_pass_reload", "three_pass_recompute", "online".
    isa : str
        One of ``ISAS``: "auto" (``FASTSOFTMAX_ISA`` if set, else the best the CPU has), "scalar",
        "avx2", "avx512", "avx512_bf16" (avx512 with bfloat16 outputs rounded by AVX512_BF16's
        instruction: the same bits). An ISA not in ``available_isas()`` raises ValueError saying
        why (not compiled into this build, or not supported by this CPU). ``explain`` says which
        implementation and kernel a call runs, and why.
    out : array, optional
        Where to write the result: a NumPy array or another framework's CPU array (DLPack), of
        ``x``'s shape, writable, of a float dtype that ``casting`` allows from the result's, else
        ValueError/TypeError (raised before anything is written). A wider ``out`` (a float16 ``x``
        into float32) is computed in ``out``'s dtype, from ``x``'s exact values. May be ``x``
        itself (in place). The computation cannot fail part-way, so ``out`` is never left
        half-written.
    num_threads : int, optional
        Threads for this call: None uses ``get_num_threads()`` (all CPUs the process may use by
        default), 1 the calling thread only. Capped at the CPUs available; small work (under
        about 256 KiB per thread) stays on the calling thread, and so does a call made while
        another call of this process is using threads. Many rows are shared out by rows; a few
        long rows are each split across the threads, their sums merged. Results do not depend
        on it beyond the rounding bounds. A non-positive or non-integer value raises ValueError
        or TypeError.
    temperature : float
        Computes ``softmax(x / temperature)``: below 1 sharpens, above 1 flattens. Must be finite
        and > 0 (else ValueError; a non-number TypeError). Fused into the kernels: no extra pass,
        no temporary, and ``x / temperature`` is never rounded, so results keep the accuracy of
        temperature 1 (within 2 ULP). float32 temperatures outside [2**-20, 2**20] run the
        scalar kernels.
    dtype : dtype, optional
        PyTorch's ``dtype=``: ``x`` is converted to it before the computation and the result has
        it. float32, float64, float16 or bfloat16: anything ``numpy.dtype`` takes (``"f4"``,
        ``float`` is float64), ``"bfloat16"``, ``ml_dtypes.bfloat16`` or a framework's dtype
        (``torch.bfloat16``); else TypeError. None: ``x``'s own (integers and bools: float64).
        (JAX without its x64 mode turns float64 results into float32.)
    casting : str
        How ``out``'s dtype may differ from the result's, by NumPy's names: "safe" (default:
        only to a wider float, e.g. float16 into float32), "same_kind" or "unsafe" (any float:
        float64 into float32 rounds the float64 result), "no" or "equiv" (the same dtype).
    where : array_like of bool, optional
        A mask broadcastable to ``x`` (``jax.nn.softmax``'s ``where``): entries where it is False
        take no part in the normalization and get 0. A row with every entry masked gives 0
        everywhere, never NaN; a row whose unmasked entries are all -inf gives NaN there (as a
        row of only -inf does). Read beside ``x`` by the kernels (no copy of ``x``; a row at a
        time where the mask is strided along ``axis``). Not boolean: TypeError; not
        broadcastable: ValueError (before anything is written). Not for CUDA device arrays.

    Returns
    -------
    array
        ``out`` if given, else a new C-contiguous array of ``x``'s type (a NumPy array, or the
        caller's framework's). A 0-d input gives 1.0 (an empty array an
        empty result). Special values follow the rules in the module docstring: NaN rows are NaN,
        +inf entries share the mass, all -inf rows are NaN, -inf entries give 0.

    Examples
    --------
    >>> fastsoftmax.softmax([[1, 2], [3, 3]])
    array([[0.26894142, 0.73105858],
           [0.5       , 0.5       ]])
    >>> fastsoftmax.softmax(np.float32([1, np.inf, np.inf]))
    array([0. , 0.5, 0.5], dtype=float32)
    """
    if axis is None or isinstance(axis, tuple):
        return _over_axes(_core.softmax, x, axis, where, out, algorithm, isa, num_threads, temperature, dtype, casting)
    if type(x) is np.ndarray and (out is None or type(out) is np.ndarray):  # the common case, checked in C++
        name = None if dtype is None else _dtype_name(dtype)
        return _core.softmax(x, axis, algorithm, isa, out, num_threads, temperature, name, casting, where)
    return _rowwise("softmax", x, axis, algorithm, isa, out, num_threads, temperature, dtype, casting, where)


def log_softmax(
    x: Any,
    axis: int | tuple[int, ...] | None = -1,
    *,
    algorithm: str = "auto",
    isa: str = "auto",
    out: Any = None,
    num_threads: int | None = None,
    temperature: float = 1.0,
    dtype: Any = None,
    casting: str = "safe",
    where: Any = None,
) -> Any:
    """Log-softmax along ``axis``: ``x - log(sum(exp(x), axis))``, computed without overflow.

    Parameters and dtype, ``axis``, ``out``, ``temperature`` (``log_softmax(x / temperature)``),
    ``dtype``, ``casting``, ``where`` (masked entries give -inf; a fully masked row -inf) and
    error rules are those of :func:`softmax`. A 0-d input gives 0.0. Special values: NaN rows
    are NaN; in a row with k entries equal to +inf those get -log(k) and the others -inf; all
    -inf rows are NaN; -inf entries give -inf.

    Examples
    --------
    >>> fastsoftmax.log_softmax([0.0, 0.0, 0.0, 0.0])
    array([-1.38629436, -1.38629436, -1.38629436, -1.38629436])
    """
    if axis is None or isinstance(axis, tuple):
        return _over_axes(_core.log_softmax, x, axis, where, out, algorithm, isa, num_threads, temperature, dtype, casting)
    if type(x) is np.ndarray and (out is None or type(out) is np.ndarray):  # the common case, checked in C++
        name = None if dtype is None else _dtype_name(dtype)
        return _core.log_softmax(x, axis, algorithm, isa, out, num_threads, temperature, name, casting, where)
    return _rowwise("log_softmax", x, axis, algorithm, isa, out, num_threads, temperature, dtype, casting, where)


def softmax_topk(
    x: Any,
    k: int,
    axis: int = -1,
    *,
    temperature: float = 1.0,
    sorted: bool = True,
    isa: str = "auto",
    num_threads: int | None = None,
    where: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest probabilities of ``softmax(x / temperature, axis)`` and their indices.

    Fused softmax and top-k (Milakov & Gimelshein 2018, Alg. 4): one pass over each row keeps
    the online normalizer (running maximum and rescaled running sum) and a running top-k of the
    inputs; only the k winners' probabilities are then computed. The softmax itself is never
    written, so this is much faster than ``softmax`` followed by a top-k. The probabilities are
    within 2 ULP of the correctly rounded softmax.

    Parameters
    ----------
    x : array_like
        At least one dimension. float32, float64, float16 and bfloat16 (``ml_dtypes.bfloat16``)
        give values of the same dtype, the 16-bit types computed in float32 with in-register
        conversion (as for :func:`softmax`); integer and bool inputs become float64. Any strides
        work (rows along a strided axis are gathered a row at a time, never the whole array).
    k : int
        How many results per row, ``1 <= k <= x.shape[axis]``; anything else raises ValueError
        (k is never clamped).
    axis : int
        The axis to normalize over and select along.
    temperature : float
        As for :func:`softmax`: finite and > 0, fused into the pass. It changes the values, never
        which entries are selected or their order.
    sorted : bool
        True (default): results in order of decreasing probability; for equal inputs, the lower
        index first. Ties are always broken by the lower index: of several equal inputs, those
        with the lowest indices are the ones returned. Entries whose probabilities both round
        to 0 still come in order of their inputs. False: the same results in an unspecified
        order (skips the final sort).
    isa, num_threads
        As for :func:`softmax`: many rows are shared out among threads whole, a few long rows
        are split across them (each thread selects in its slice; the results are merged).
    where : array_like of bool, optional
        As for :func:`softmax`: masked entries take no part; they are treated as -inf (each
        masked row is copied, a row at a time, with them as -inf), so they come after every
        finite entry, with probability 0. A fully masked row gives probabilities 0 at indices
        0..k-1.

    Returns
    -------
    (values, indices) : tuple of numpy.ndarray
        The shape of ``x`` with ``axis`` of length ``k``; ``values`` in the result dtype,
        ``indices`` int64 positions along ``axis``. Special values follow softmax: a row with
        NaN gives NaN values with indices 0..k-1; entries equal to +inf come first, sharing the
        mass (1/count each), then the others with 0; a row of only -inf gives NaN values with
        indices 0..k-1.

    Examples
    --------
    >>> values, indices = fastsoftmax.softmax_topk(np.float32([1, 3, 2, 3]), 2)
    >>> values
    array([0.3994863, 0.3994863], dtype=float32)
    >>> indices
    array([1, 3])
    """
    if _device.is_device_array(x):
        if where is not None:
            raise ValueError("where= is not supported for CUDA device arrays")
        return _device.topk(x, k, axis, temperature, sorted, isa, num_threads)
    if _device.is_foreign_host_array(x):
        values, indices = _core.softmax_topk(_device.export(x), k, axis, temperature, sorted, isa, num_threads, where)
        return _device.like(x, values), _device.like(x, indices)
    return _core.softmax_topk(x, k, axis, temperature, sorted, isa, num_threads, where)


def topk_softmax(
    router_logits: Any,
    k: int,
    *,
    renormalize: bool = False,
    scoring: str = "softmax",
    num_expert_group: int | None = None,
    topk_group: int | None = None,
    correction_bias: Any = None,
    routed_scaling_factor: float = 1.0,
    isa: str = "auto",
    num_threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The top-k gate of a mixture of experts: each token's k experts and their weights.

    vLLM's ``topk_softmax`` (its CPU path: ``torch.topk(torch.softmax(x.float(), -1), k)``, then
    renormalized) and DeepSeek-V3's grouped top-k (vLLM's ``grouped_topk``), in one call over
    every token, threads over tokens.

    Parameters
    ----------
    router_logits : array_like
        (tokens, experts): float32, float16, bfloat16 (``ml_dtypes``) or float64; computed in
        extended precision (double; long double for float64). Another number of dimensions
        raises ValueError.
    k : int
        Experts per token: 1 <= k <= experts (with groups: at most the experts of ``topk_group``
        groups), else ValueError.
    renormalize : bool
        Divide each token's k weights by their sum.
    scoring : str
        "softmax" (over the experts) or "sigmoid" (of each expert), else ValueError.
    num_expert_group, topk_group : int, optional
        Both or neither (ValueError): the experts split into ``num_expert_group`` groups of
        consecutive experts (it must divide them), each scored by its largest score (with
        ``correction_bias``: the sum of its two largest biased scores); only the experts of the
        ``topk_group`` best groups (ties: the lower group) can be chosen.
    correction_bias : array_like, optional
        (experts,) floats (else ValueError): experts are chosen by score + bias, but weighted by
        their unbiased scores (DeepSeek-V3's auxiliary-loss-free balancing).
    routed_scaling_factor : float
        Every weight is multiplied by it, after ``renormalize``.
    isa, num_threads
        As for :func:`softmax` (the router runs portable code on every ISA).

    Returns
    -------
    (weights, ids) : tuple of numpy.ndarray
        (tokens, k): float32 weights and int32 expert ids, in order of decreasing (biased) score,
        ties to the lower expert index. A -inf logit scores 0: without a bias it comes after every
        finite one; with a bias it is ranked by its bias, as vLLM does. A token whose logits hold
        a NaN (or, under softmax, only -inf) gets NaN weights at ids 0..k-1.

    Examples
    --------
    >>> weights, ids = fastsoftmax.topk_softmax(np.float32([[1.0, 3.0, 2.0, 3.0]]), 2, renormalize=True)
    >>> weights, ids
    (array([[0.5, 0.5]], dtype=float32), array([[1, 3]], dtype=int32))
    """
    logits = router_logits if type(router_logits) is np.ndarray else _host(router_logits)
    return _core.topk_softmax(logits, k, renormalize, scoring, num_expert_group, topk_group, correction_bias,
                              routed_scaling_factor, isa, num_threads)


# ---- Sampling from logits --------------------------------------------------------------------------

_NAN_ROW = -1  # the ids the core gives rows it cannot draw from (kSampleNanRow, kSampleEmptyRow)
_EMPTY_ROW = -2


def sample(
    logits: Any,
    *,
    temperature: Any = 1.0,
    top_k: Any = None,
    top_p: Any = None,
    min_p: Any = None,
    seed: int | None = None,
    generator: np.random.Generator | None = None,
    return_probs: bool = False,
    where: Any = None,
    isa: str = "auto",
    num_threads: int | None = None,
) -> Any:
    """Draw one token id per row of logits, as vLLM's sampler does, without sorting the vocabulary.

    Each row's logits are divided by its temperature, then filtered in this order, each step on
    the distribution the previous one left (renormalized):

    1. ``top_k``: the k largest logits are kept, and every logit equal to the k-th (vLLM masks
       the logits below the k-th largest, so ties at the k-th are kept);
    2. ``top_p``: the smallest set of the largest probabilities whose sum reaches ``top_p`` is
       kept (taken in decreasing order of logit, the probabilities' order; equal logits the
       lower index first);
    3. ``min_p``: the probabilities at least ``min_p`` times the largest are kept;

    and a token is drawn from what is left. A temperature below 1e-5 (0 included) is greedy: the
    first largest logit, whatever the filters (vLLM's argmax).

    How: with temperature alone, one read of each row: chunk by chunk, the chunk's normalizer
    (the two-pass algorithm's first pass) joins the row's running one, and the token moves into
    the chunk with the chunk's share of the mass so far. With filters, two reads: the normalizer
    (with ``top_k``, the fused softmax + top-k pass, which also finds the k-th largest logit),
    then the entries the filters may keep are collected (a bound on each filter says which), and
    the filters run on those alone (``top_p`` by a weighted selection, not a sort). The filters
    and the draw are computed in double (long double for float64 logits).

    Random numbers: Philox4x64-10 (Salmon et al. 2011; the generator of ``numpy.random.Philox``),
    key ``(seed, 0)``, counter ``(draw, row, 0, 0)``: a row's token depends only on the seed, the
    row's index and its logits, so any ``num_threads`` gives the same tokens, and so does any
    ISA except where the kernels' rounding (a relative 1e-7) moves a draw across a boundary.

    Parameters
    ----------
    logits : array_like
        ``(vocab,)`` or ``(batch, vocab)``: float32, float16, bfloat16 (``ml_dtypes``) or
        float64 (computed in long double: much slower), any strides, or any DLPack CPU tensor
        (the ids then come back as the caller's type); integers and bools become float64. Other
        numbers of dimensions raise ValueError.
    temperature : float or array_like
        A scalar, or one per row (shape ``logits.shape[:-1]``, as vLLM passes them per request):
        finite and >= 0.
    top_k : int or array_like of int, optional
        Keep the k largest; None, 0 or -1 keep all (vLLM's spellings); k >= vocab keeps all.
    top_p : float or array_like, optional
        In (0, 1]; None or 1 keep all.
    min_p : float or array_like, optional
        In [0, 1]; None or 0 keep all.
    seed : int, optional
        In [0, 2**64): the same seed gives the same tokens. Neither ``seed`` nor ``generator``:
        a seed from the operating system's entropy.
    generator : numpy.random.Generator, optional
        The seed is its next 64-bit draw (so successive calls with one generator differ, and
        reproduce from the generator's seed). Not with ``seed``.
    return_probs : bool
        Also return each token's probability in the distribution it was drawn from (after the
        temperature and the filters; 1 for greedy rows), as float32.
    where : array_like of bool, optional
        Broadcastable to ``logits``: entries whose value is False are never drawn (as -inf),
        e.g. a grammar's mask of allowed tokens.
    isa, num_threads
        As for :func:`softmax`: rows are shared out among threads whole.

    Returns
    -------
    ids : numpy.ndarray (or the caller's type)
        int64 token ids of shape ``logits.shape[:-1]`` (a 0-d array for one row); with
        ``return_probs``, ``(ids, probs)``.

    Raises
    ------
    ValueError
        A parameter out of its range (nothing is computed), or a row with a NaN or with no entry
        above -inf (every logit -inf or masked): the error names the rows, rather than give a
        silent token 0. Entries equal to +inf share the mass, as in :func:`softmax`: the draw
        is among them.

    Examples
    --------
    >>> logits = np.float32([[2.0, 1.0, 0.5, -1.0], [0.0, 3.0, 0.0, 0.0]])
    >>> fastsoftmax.sample(logits, temperature=0.0)
    array([0, 1])
    >>> ids = fastsoftmax.sample(logits, top_k=2, top_p=0.9, seed=1)
    >>> ids.shape, bool(np.all(ids < 2) or ids[1] == 1)
    ((2,), True)
    """
    foreign = _device.is_foreign_host_array(logits)
    ids, probs, failed = _core.sample(_host(logits), temperature, top_k, top_p, min_p, _sampling_seed(seed, generator),
                                      where, isa, num_threads)
    if failed:
        nan_rows = np.flatnonzero(ids == _NAN_ROW).tolist()
        empty_rows = np.flatnonzero(ids == _EMPTY_ROW).tolist()
        reasons = ([f"rows {nan_rows} hold a NaN"] if nan_rows else []) + (
            [f"rows {empty_rows} have no entry above -inf (all -inf or masked)"] if empty_rows else [])
        raise ValueError("sample: cannot draw a token where " + " and ".join(reasons))
    if foreign:
        ids, probs = _device.like(logits, ids), _device.like(logits, probs)
    return (ids, probs) if return_probs else ids


def _sampling_seed(seed: int | None, generator: np.random.Generator | None) -> int:
    """The Philox key of a sample call: seed, a generator's next 64-bit draw, or fresh entropy."""
    if seed is not None and generator is not None:
        raise ValueError("give seed or generator, not both")
    if generator is not None:
        if not isinstance(generator, np.random.Generator):
            raise TypeError(f"generator must be a numpy.random.Generator, got {type(generator).__name__}")
        return int(generator.integers(0, 2**64, dtype=np.uint64))
    if seed is None:
        return int.from_bytes(os.urandom(8), "little")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__}")
    if not 0 <= int(seed) < 2**64:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    return int(seed)


def explain(
    x: Any,
    axis: int = -1,
    *,
    function: str = "softmax",
    k: int | None = None,
    algorithm: str = "auto",
    isa: str = "auto",
    num_threads: int | None = None,
    temperature: float = 1.0,
) -> Explanation:
    """Which implementation and kernel ``function(x, axis, ...)`` would run, and why; runs nothing.

    Parameters
    ----------
    x, axis, algorithm, isa, num_threads, temperature
        As for :func:`softmax`; the call is planned exactly as it would run.
    function : str
        "softmax" (default), "log_softmax", "softmax_topk" or "topk_softmax" (then ``k`` is
        required; topk_softmax with its default options), "logsumexp", "softmax_state",
        "softmax_from_state" or "log_softmax_from_state" (along one ``axis``; without ``b`` or
        ``where``), or "sample" (rows along the last axis, its default parameters).
    k : int, optional
        For ``function="softmax_topk"``.

    Returns
    -------
    Explanation
        ``implementation`` (e.g. "avx512"), ``kernel`` (a name from :func:`kernels`),
        ``algorithm`` (never "auto"), ``schedule`` ("rows", "short rows", "columns", "split rows" or "one
        element"), ``threads``, and ``reasons``, a dict giving the reason for each of these
        choices; ``str()`` prints them one a line. A call that would be refused gives
        ``ok == False`` and its ``error`` message instead of raising it. Arguments of the wrong
        type still raise TypeError, as the call would.

    Examples
    --------
    >>> e = fastsoftmax.explain(np.zeros(1000, np.float32), isa="scalar")
    >>> e.kernel, e.algorithm
    ('f32-softmax-three_pass_reload-scalar-libm-u1', 'three_pass_reload')
    >>> fastsoftmax.explain(np.zeros(5), temperature=-1.0).error
    'temperature must be finite and > 0, got -1'
    """
    if _device.is_device_array(x):
        return _device.explain(function, x, axis, k, algorithm, temperature)
    if _device.is_foreign_host_array(x):
        x = _device.export(x)
    return _core.explain(x, axis, function, k, algorithm, isa, num_threads, temperature)


# The names dtype= takes.
_DTYPE_NAMES = ("float32", "float64", "float16", "bfloat16")


def _dtype_name(dtype: Any) -> str:
    """dtype= as a name the core takes: anything ``numpy.dtype`` takes ("float", "f4", float),
    "bfloat16" and ``ml_dtypes.bfloat16`` (JAX's ``jnp.bfloat16``), and the framework dtypes
    whose name ends in one (``torch.bfloat16``, ``torch.half``)."""
    try:
        name = "bfloat16" if isinstance(dtype, str) and dtype == "bfloat16" else np.dtype(dtype).name
    except TypeError:
        name = str(dtype).rsplit(".", 1)[-1]
    if name not in _DTYPE_NAMES:
        raise TypeError(f"dtype must be None or one of {', '.join(_DTYPE_NAMES)} (or their dtype objects), got {dtype!r}")
    return name


def _rowwise(operation: str, x: Any, axis: Any, algorithm: Any, isa: Any, out: Any, num_threads: Any,
             temperature: Any, dtype: Any, casting: Any, where: Any) -> Any:
    """softmax or log_softmax of anything but a NumPy array with a NumPy (or no) out=: device arrays
    go to the CUDA backend; other frameworks' CPU arrays (x or out) are read and written through
    DLPack, without a copy, and the result is of x's type."""
    if _device.is_device_array(x) or _device.is_device_array(out):
        if dtype is not None or where is not None:
            raise ValueError("dtype= and where= are not supported for CUDA device arrays")
        return _device.rowwise(operation, x, axis, algorithm, isa, out, num_threads, temperature)
    foreign_x = _device.is_foreign_host_array(x)
    host_x = _device.export(x) if foreign_x else x
    host_out = _device.writable_export(out) if _device.is_foreign_host_array(out) else out
    name = None if dtype is None else _dtype_name(dtype)
    function = _core.softmax if operation == "softmax" else _core.log_softmax
    result = function(host_x, axis, algorithm, isa, host_out, num_threads, temperature, name, casting, where)
    if out is not None:
        return out
    return _device.like(x, result) if foreign_x else result


# ---- Several axes at once (axis None or a tuple) -------------------------------------------------


def _normalize_axes(axis: Any, ndim: int) -> tuple[int, ...]:
    """axis None (every axis) or a tuple, as sorted non-negative axes (numpy's AxisError, ValueError
    for repeated axes)."""
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, tuple) else (axis,)
    normalized = []
    for a in axes:
        if not isinstance(a, (int, np.integer)) or isinstance(a, bool):
            raise TypeError(f"axis must be an int, a tuple of ints or None, got {axis!r}")
        if not -ndim <= a < max(ndim, 1):
            raise _AxisError(f"axis {a} is out of bounds for array of dimension {ndim}")
        normalized.append(int(a) % max(ndim, 1))
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"repeated axis in {axis!r}")
    return tuple(sorted(normalized))


_AxisError = getattr(np, "exceptions", np).AxisError


class _MergedAxes:
    """An array's axes `axes` moved last (in order) and read as one: ``merge(a)`` gives the view
    (or, where the strides do not allow one, a copy) and ``split(y)`` puts a result of the merged
    shape back in the array's shape and axis order."""

    def __init__(self, shape: tuple[int, ...], axes: tuple[int, ...]):
        others = [d for d in range(len(shape)) if d not in axes]
        self.order = others + list(axes)
        self.moved_shape = tuple(shape[d] for d in self.order)
        self.merged_shape = self.moved_shape[: len(others)] + (int(np.prod([shape[d] for d in axes], dtype=np.int64)),)
        self.inverse = list(np.argsort(self.order))

    def merge(self, a: np.ndarray) -> np.ndarray:
        return a.transpose(self.order).reshape(self.merged_shape)

    def split(self, y: np.ndarray) -> np.ndarray:
        return y.reshape(self.moved_shape).transpose(self.inverse)


def _over_axes(function: Any, x: Any, axis: Any, where: Any, out: Any, algorithm: Any, isa: Any, num_threads: Any,
               temperature: Any, dtype: Any, casting: Any) -> Any:
    """softmax or log_softmax over several axes (None: all): the axes merged into one (a view where
    their strides allow it), the result put back in x's shape (C-contiguous), into out= if given."""
    if _device.is_device_array(x) or _device.is_foreign_host_array(x):
        raise TypeError("axis=None or a tuple of axes takes NumPy arrays (and array_likes); pass an int axis for "
                        "other frameworks' arrays")
    array = x if isinstance(x, np.ndarray) else np.asarray(x)
    if array.ndim == 0:
        array = array.reshape(1)
    merged = _MergedAxes(array.shape, _normalize_axes(axis, array.ndim))
    mask = None if where is None else merged.merge(np.broadcast_to(_mask_argument(where), array.shape))
    name = None if dtype is None else _dtype_name(dtype)
    if out is not None and not isinstance(out, np.ndarray):
        raise TypeError("out= with axis=None or a tuple of axes must be a NumPy array")
    if out is not None and out.shape != np.shape(x):
        raise ValueError(f"out has shape {out.shape}; expected {np.shape(x)}, the shape of x")
    if out is not None:
        merged_out = merged.merge(out.reshape(array.shape))
        if np.may_share_memory(merged_out, out):  # out's axes merge as x's do: written directly
            function(merged.merge(array), -1, algorithm, isa, merged_out, num_threads, temperature, name, casting, mask)
            return out
    result = merged.split(function(merged.merge(array), -1, algorithm, isa, None, num_threads, temperature, name,
                                   "safe", mask))
    result = np.ascontiguousarray(result).reshape(np.shape(x))
    if out is None:
        return result
    np.copyto(out, result, casting=casting)
    return out


def _mask_argument(where: Any) -> np.ndarray:
    """where= as a boolean array (TypeError otherwise)."""
    mask = np.asarray(where)
    if mask.dtype != np.bool_:
        raise TypeError(f"where must be a boolean array (True: the entry takes part), got dtype {mask.dtype}")
    return mask


def _broadcast(name: str, value: Any, shape: tuple[int, ...]) -> np.ndarray:
    """value broadcast to shape, or ValueError naming the argument."""
    try:
        return np.broadcast_to(value, shape)
    except ValueError:
        raise ValueError(f"{name} has shape {np.shape(value)}, which does not broadcast to {shape}") from None


# ---- logsumexp and the normalizer states ---------------------------------------------------------

STATE_FIELDS: tuple[str, ...] = ("max", "sum", "sum_low", "count", "temperature")
"""The fields of a normalizer state, in order along a state array's last axis (see softmax_state)."""
assert len(STATE_FIELDS) == _core.state_fields  # the native NormalizerState's doubles


def logsumexp(
    a: Any,
    axis: int | tuple[int, ...] | None = None,
    b: Any = None,
    keepdims: bool = False,
    return_sign: bool = False,
    *,
    where: Any = None,
    temperature: float = 1.0,
    out: Any = None,
    isa: str = "auto",
    num_threads: int | None = None,
) -> Any:
    """``log(sum(b * exp(a / temperature), axis))``, computed in one pass and without overflow.

    ``scipy.special.logsumexp``'s meaning for every argument it shares, and more accurate: each
    row is reduced in one pass (the two-pass algorithm's first pass: sums as (mantissa,
    exponent) pairs, no maximum pass), and results near 0 keep the terms far below the
    maximum (``logsumexp(np.float32([0, -40]))`` is 4.248e-18, not 0).

    Parameters
    ----------
    a : array_like
        float32, float64, float16 or bfloat16 (``ml_dtypes``), or integers and bools (as float64).
    axis : int, tuple of ints or None
        The axes to reduce; None (default) reduces every axis, as SciPy.
    b : array_like, optional
        Scale factors broadcastable to ``a``, possibly negative: with ``return_sign`` the sign of
        the sum is returned, without it a negative sum gives NaN (SciPy's convention). Entries
        with ``b == 0`` take no part. Not broadcastable:
        ValueError. With ``b`` the rows take the checked path (two passes in extended precision,
        every ISA alike).
    keepdims : bool
        Keep the reduced axes with length 1.
    return_sign : bool
        Return ``(result, sign)``: the sign of the sum (1, -1, 0 for a sum of 0, NaN for NaN).
    where : array_like of bool, optional
        As for :func:`softmax`: masked entries take no part; a fully masked row gives -inf.
    temperature : float
        ``logsumexp(a / temperature)``, the log of the normalizer of ``softmax(a, temperature=
        temperature)``; finite and > 0.
    out : numpy.ndarray, optional
        Where to write the result (its shape, a dtype NumPy's "same_kind" casting allows);
        checked before anything is written.
    isa, num_threads
        As for :func:`softmax`.

    Returns
    -------
    result : ndarray or scalar
        In ``a``'s float dtype (with ``b``: NumPy's promotion of both). A row of only -inf, or
        an empty one, gives -inf; NaN propagates; +inf gives +inf. Accuracy: within 2 ULP of the
        correctly rounded result, or 2 ULP of ``max(|result|, 1)`` in absolute terms.
    sign : ndarray or scalar
        Only with ``return_sign``.

    Examples
    --------
    >>> float(fastsoftmax.logsumexp(np.float32([0, -40])))
    4.248354...e-18
    >>> lse, sign = fastsoftmax.logsumexp([1.0, 2.0], b=[1.0, -1.0], return_sign=True)
    >>> round(float(lse), 12), float(sign)
    (1.541324854613, -1.0)
    """
    array = a if isinstance(a, np.ndarray) else np.asarray(a)
    if array.ndim == 0:
        array = array.reshape(1)
    axes = _normalize_axes(axis, array.ndim)
    merged = _MergedAxes(array.shape, axes)
    floating = array.dtype.kind == "f" or array.dtype.name == "bfloat16"
    if isinstance(b, (int, float)) and not isinstance(b, bool) and floating:
        b = np.asarray(b, array.dtype)  # a Python number is weak, as in NumPy's promotion: a's dtype stays
    weights = None if b is None else merged.merge(_broadcast("b", np.asarray(b), array.shape))
    mask = None if where is None else merged.merge(_broadcast("where", _mask_argument(where), array.shape))
    lse, sign = _core.logsumexp(merged.merge(array), -1, weights, mask, temperature, isa, num_threads)
    if not return_sign and b is not None:
        lse[sign < 0] = np.nan  # the log of a negative sum (SciPy's convention)
    if keepdims:
        kept = tuple(1 if d in axes else n for d, n in enumerate(array.shape))[: np.ndim(a)]
        lse, sign = lse.reshape(kept), sign.reshape(kept)
    sign = sign[()] if sign.ndim == 0 else sign
    if out is not None:
        if not isinstance(out, np.ndarray):
            raise TypeError("out must be a numpy.ndarray")
        if out.shape != lse.shape:
            raise ValueError(f"out has shape {out.shape}; expected {lse.shape}")
        np.copyto(out, lse, casting="same_kind")
        return (out, sign) if return_sign else out
    lse = lse[()] if lse.ndim == 0 else lse
    return (lse, sign) if return_sign else lse


def softmax_state(
    x: Any,
    axis: int = -1,
    *,
    where: Any = None,
    temperature: float = 1.0,
    isa: str = "auto",
    num_threads: int | None = None,
) -> np.ndarray:
    """The softmax normalizer of each row (or shard of a row) of ``x`` along ``axis``, mergeable.

    The state of the online-normalizer paper (Milakov & Gimelshein's (m, d) pair), found in one
    pass over each row. States of the shards of a row, computed anywhere (other processes,
    machines: they pickle and travel as plain float64 arrays), merge with :func:`merge_states`
    into the state of the whole row; :func:`softmax_from_state` then gives each shard's part of
    the softmax, equal to one call on the whole row within the library's bounds and with the
    same special values.

    Parameters
    ----------
    x : array_like
        As for :func:`softmax`.
    axis : int
        The axis of the rows.
    where : array_like of bool, optional
        As for :func:`softmax`: masked entries take no part (and are not counted).
    temperature : float
        The states of ``softmax(x / temperature)``; kept in the state.
    isa, num_threads
        As for :func:`softmax`.

    Returns
    -------
    numpy.ndarray
        float64, of ``x``'s shape without ``axis`` and a last axis of length 5, the fields of
        ``STATE_FIELDS``:

        - ``max``: the largest entry taking part, in ``x``'s units; -inf if none does (an empty
          or fully masked shard) or all are -inf; NaN if one is NaN; +inf if one is +inf;
        - ``sum``: ``sum(exp((x - max) / temperature))`` over the entries taking part (>= 1 for a
          finite max); 0 for max -inf; the number of +inf entries for max +inf; NaN for NaN;
        - ``sum_low``: the rest of that sum below float64's precision (``sum + sum_low``):
          float64 rows keep their sums in long double, so that sharded float64 results stay
          within 2 ULP (0 for the other dtypes, and where long double is double);
        - ``count``: how many entries took part;
        - ``temperature``.

    Examples
    --------
    >>> fastsoftmax.softmax_state(np.float32([0.0, 0.0, -np.inf]))
    array([0., 2., 0., 3., 1.])
    """
    return _core.softmax_state(_host(x), axis, where, temperature, isa, num_threads)


def merge_states(states: Any, axis: int = 0) -> np.ndarray:
    """Merge the states of a row's shards (from :func:`softmax_state`) into the row's state.

    Parameters
    ----------
    states : array_like or sequence of array_like
        float64 states, last axis of length 5 (``STATE_FIELDS``); a sequence of state arrays of one shape is
        stacked along a new axis 0.
    axis : int
        The axis of the parts to merge (never the last, the fields'). They are merged in one
        canonical order, whatever their order along ``axis``: any permutation of the same parts
        gives the same bits (grouping them differently, ``((a, b), c)`` against ``(a, (b, c))``,
        agrees within rounding). Counts add; a NaN part makes the row NaN; +inf parts share the
        mass; empty, fully masked or all -inf parts add nothing but their counts.

    Returns
    -------
    numpy.ndarray
        The merged states: ``states``' shape without ``axis``.

    Raises
    ------
    ValueError
        The last axis is not the fields of a state, ``axis`` is the last one, or the parts'
        temperatures differ.
    TypeError
        The states are not floating-point.

    Examples
    --------
    >>> x = np.float32([1.0, 2.0, 3.0, 4.0])
    >>> parts = [fastsoftmax.softmax_state(x[:1]), fastsoftmax.softmax_state(x[1:])]
    >>> np.allclose(fastsoftmax.merge_states(parts), fastsoftmax.softmax_state(x))
    True
    """
    array = np.stack([np.asarray(s) for s in states]) if isinstance(states, (list, tuple)) else np.asarray(states)
    parts = _state_array(array, "states")
    if parts.ndim < 2:
        raise ValueError(f"states has shape {parts.shape}; expected parts along an axis and the fields last")
    along = _normalize_axes(axis, parts.ndim)[0]
    if along == parts.ndim - 1:
        raise ValueError("axis must not be the last one: that axis holds the fields of each state")
    moved = np.moveaxis(parts, along, -2)
    merged = _core.merge_state_rows(np.ascontiguousarray(moved.reshape(-1, moved.shape[-2], len(STATE_FIELDS))))
    return merged.reshape(moved.shape[:-2] + (len(STATE_FIELDS),))


def logsumexp_from_state(state: Any) -> Any:
    """``log(sum(exp(x / temperature)))`` of the rows whose states these are: ``max /
    temperature + log(sum)``; -inf for an empty or all -inf row, +inf, NaN.

    Returns a float64 array of the states' shape without the last axis (a scalar for one state).

    >>> float(fastsoftmax.logsumexp_from_state(fastsoftmax.softmax_state(np.float32([0, 0]))))
    0.693147...
    """
    states = _state_array(np.asarray(state), "state")
    flat = np.ascontiguousarray(states.reshape(-1, len(STATE_FIELDS)))
    lse = _core.logsumexp_state_rows(flat).reshape(states.shape[:-1])
    return lse[()] if lse.ndim == 0 else lse


def softmax_from_state(
    x: Any,
    state: Any,
    axis: int = -1,
    *,
    where: Any = None,
    out: Any = None,
    isa: str = "auto",
    num_threads: int | None = None,
) -> Any:
    """The second pass for one shard ``x`` of rows whose merged states are ``state``:
    ``exp((x - max) / temperature) / sum``, at each state's own temperature.

    Parameters
    ----------
    x : array_like
        The shard, at least one dimension, as for :func:`softmax`.
    state : numpy.ndarray
        float64 states (TypeError otherwise) of shape ``x``'s shape without ``axis`` + (5,)
        (ValueError otherwise): usually :func:`merge_states` of every shard's
        :func:`softmax_state`.
    axis : int
        The axis of the rows.
    where : array_like of bool, optional
        The shard's mask, as given to :func:`softmax_state`: masked entries get 0.
    out : array, optional
        ``x``'s shape and dtype; may be ``x`` (in place).
    isa, num_threads
        As for :func:`softmax`.

    Returns
    -------
    array
        ``x``'s shape and dtype. Special values as one call on the whole row: a NaN max gives
        NaN; a +inf max gives ``1/sum`` at the +inf entries and 0 elsewhere; a max of -inf with
        a count > 0 (a row of only -inf) gives NaN; a count of 0 (every entry masked) gives 0.

    Examples
    --------
    >>> x = np.float32([1.0, 2.0, 3.0, 4.0])
    >>> state = fastsoftmax.merge_states([fastsoftmax.softmax_state(x[:2]), fastsoftmax.softmax_state(x[2:])])
    >>> fastsoftmax.softmax_from_state(x[:2], state)
    array([0.0320586 , 0.08714432], dtype=float32)
    """
    return _from_state(_core.softmax_from_state, x, state, axis, where, out, isa, num_threads)


def log_softmax_from_state(
    x: Any,
    state: Any,
    axis: int = -1,
    *,
    where: Any = None,
    out: Any = None,
    isa: str = "auto",
    num_threads: int | None = None,
) -> Any:
    """The second pass of log_softmax for one shard: ``(x - max) / temperature - log(sum)``.

    As :func:`softmax_from_state`; masked entries (and a fully masked row) give -inf, a +inf
    max gives ``-log(sum)`` at the +inf entries and -inf elsewhere.
    """
    return _from_state(_core.log_softmax_from_state, x, state, axis, where, out, isa, num_threads)


def _from_state(function: Any, x: Any, state: Any, axis: Any, where: Any, out: Any, isa: Any,
                num_threads: Any) -> Any:
    foreign = _device.is_foreign_host_array(x)
    result = function(_host(x), state, axis, where, out, isa, num_threads)
    if out is not None:
        return out
    return _device.like(x, result) if foreign else result


def _host(x: Any) -> Any:
    """x as the core takes it: another framework's CPU array as its DLPack capsule (TypeError for
    device arrays: these operations run on the CPU)."""
    if _device.is_device_array(x):
        raise TypeError("this operation runs on the CPU: pass a host array")
    return _device.export(x) if _device.is_foreign_host_array(x) else x


def _state_array(array: np.ndarray, name: str) -> np.ndarray:
    """States as float64, last axis 4 (TypeError for non-floats, ValueError for the shape)."""
    if array.dtype.kind != "f":
        raise TypeError(f"{name} must be a float64 array of normalizer states, got dtype {array.dtype}")
    if array.ndim == 0 or array.shape[-1] != len(STATE_FIELDS):
        raise ValueError(f"{name} has shape {array.shape}; expected a last axis of the {len(STATE_FIELDS)} fields "
                         f"{STATE_FIELDS}")
    return array.astype(np.float64, copy=False)
