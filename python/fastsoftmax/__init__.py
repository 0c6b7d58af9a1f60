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
over the input, without computing the whole softmax.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
from numpy.exceptions import AxisError

from . import _core

__version__: str = _core.__version__

ALGORITHMS: tuple[str, ...] = ("auto", "two_pass", "three_pass_reload", "three_pass_recompute", "online")
"""Names accepted by ``algorithm=``."""

ISAS: tuple[str, ...] = ("auto", "scalar", "avx2", "avx512")
"""Names accepted by ``isa=`` (those not in ``available_isas()`` raise ValueError)."""

__all__ = [
    "ALGORITHMS",
    "ISAS",
    "__version__",
    "active_isa",
    "available_isas",
    "cmake_dir",
    "compiled_isas",
    "cpu_features",
    "get_num_threads",
    "log_softmax",
    "set_num_threads",
    "softmax",
    "softmax_topk",
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

    Raises ValueError if ``FASTSOFTMAX_ISA`` names an unknown or unavailable ISA.
    """
    try:
        return _core.auto_isa()
    except ValueError:
        forced = os.environ.get("FASTSOFTMAX_ISA", "")
        raise ValueError(
            f"FASTSOFTMAX_ISA={forced!r} is not available here; choose one of {available_isas()} or 'auto'"
        ) from None


def cpu_features() -> dict[str, bool]:
    """CPU features relevant to the kernels, detected at run time (cpuid, and xgetbv for OS state)."""
    return _core.cpu_features()


def set_num_threads(threads: int | None) -> None:
    """Set the default thread count of ``softmax``/``log_softmax`` calls with ``num_threads=None``.

    ``None`` restores the automatic default: ``FASTSOFTMAX_NUM_THREADS`` if set, else
    ``OMP_NUM_THREADS``, else the number of CPUs this process may run on (its affinity mask).

    >>> fastsoftmax.set_num_threads(1)
    >>> fastsoftmax.get_num_threads()
    1
    >>> fastsoftmax.set_num_threads(None)
    """
    _core.set_num_threads(0 if threads is None else _positive_threads(threads))


def get_num_threads() -> int:
    """The default thread count of calls with ``num_threads=None`` (see :func:`set_num_threads`)."""
    return _core.get_num_threads()


def _positive_threads(threads: Any) -> int:
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)):
        raise TypeError(f"num_threads must be a positive integer or None, got {type(threads).__name__}")
    if threads < 1:
        raise ValueError(f"num_threads must be a positive integer or None, got {threads}")
    return min(int(threads), _MAX_THREADS)  # the library caps it at the CPUs anyway


_MAX_THREADS = 1 << 16


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


# ---- softmax / log_softmax ------------------------------------------------------------------

_SUPPORTED_ISAS = frozenset(_core.supported_isas())
_ALGORITHM_NAMES = frozenset(ALGORITHMS)


def _dtypes(dtype: np.dtype) -> tuple[np.dtype, np.dtype]:
    """(dtype computed in, dtype returned) for an input dtype; TypeError if unsupported."""
    rule = _DTYPE_RULES.get(dtype)
    if rule is not None:
        return rule
    if dtype.kind == "f" and dtype.itemsize in (2, 4, 8):  # non-native byte order
        native = dtype.newbyteorder("=")
        return native, native
    if dtype.name == "bfloat16" and dtype.itemsize == 2:  # ml_dtypes.bfloat16, imported by the caller
        return dtype, dtype
    if dtype.kind in "biu":
        return np.dtype(np.float64), np.dtype(np.float64)
    raise TypeError(
        f"softmax does not support dtype {dtype}; use float16, bfloat16 (ml_dtypes), float32, float64, integer or bool"
    )


_F16, _F32, _F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
# The common cases, looked up before the general rules.
_DTYPE_RULES: dict[np.dtype, tuple[np.dtype, np.dtype]] = {_F32: (_F32, _F32), _F64: (_F64, _F64), _F16: (_F16, _F16)}


def _check_names(algorithm: str, isa: str) -> None:
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r}; expected one of {ALGORITHMS}")
    _check_isa(isa)


def _check_isa(isa: str) -> None:
    if isa == "auto":
        return
    if isa not in ISAS:
        raise ValueError(f"unknown isa {isa!r}; expected one of {ISAS}")
    if isa not in _SUPPORTED_ISAS:
        raise ValueError(
            f"isa {isa!r} is not available here (compiled in: {compiled_isas()}, "
            f"supported by this CPU: {available_isas()})"
        )


def _check_out(out: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != shape:
        raise ValueError(f"out has shape {out.shape}; expected {shape}, the shape of x")
    if out.dtype != dtype:
        raise TypeError(f"out has dtype {out.dtype}; expected {dtype}, the result dtype for this input")
    if not out.flags.writeable:
        raise ValueError("out is read-only; expected a writable array")
    return out


def _normalize_axis(axis: Any, ndim: int) -> int:
    """``axis`` as an index in ``range(ndim)``; TypeError or AxisError if it is not one."""
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"axis must be an integer, got {type(axis).__name__}")
    if not -ndim <= axis < ndim:
        raise AxisError(int(axis), ndim)
    return int(axis) % ndim


def _same_view(a: np.ndarray, b: np.ndarray) -> bool:
    return (
        a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
        and a.strides == b.strides
        and a.shape == b.shape
        and a.dtype == b.dtype
    )


def _check_temperature(temperature: Any) -> float:
    """``temperature`` as a float; TypeError unless a real number, ValueError unless finite and > 0."""
    if isinstance(temperature, (bool, np.bool_)) or not isinstance(temperature, (int, float, np.integer, np.floating)):
        raise TypeError(f"temperature must be a real number, got {type(temperature).__name__}")
    value = float(temperature)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"temperature must be finite and > 0, got {temperature}")
    return value


def _plain_call(x: Any, axis: Any, isa: Any, num_threads: Any, temperature: Any) -> bool:
    """Whether a call needs no conversion or check beyond this: an aligned native float32,
    float64 or float16 array of at least one dimension, the last axis, a known ISA, a plain
    thread count and temperature. The fast paths of the public functions start here; anything
    else, including every error, takes their general paths."""
    return (
        type(x) is np.ndarray
        and (x.dtype is _F32 or x.dtype is _F64 or x.dtype is _F16)
        and axis == -1
        and x.ndim > 0
        and x.flags.aligned
        and (isa == "auto" or isa in _SUPPORTED_ISAS)
        and (num_threads is None or (type(num_threads) is int and 0 < num_threads <= _MAX_THREADS))
        and type(temperature) is float
        and 0.0 < temperature < math.inf
    )


def _apply(
    x: Any,
    axis: int,
    algorithm: str,
    isa: str,
    out: np.ndarray | None,
    num_threads: int | None,
    temperature: float,
    log: bool,
) -> np.ndarray:
    # The common calls first (see _plain_call), with a known algorithm and a new result or a
    # valid out= of x's dtype that is x itself or apart from it.
    if algorithm in _ALGORITHM_NAMES and _plain_call(x, axis, isa, num_threads, temperature):
        threads = num_threads or 0
        if out is None:
            result = np.empty(x.shape, x.dtype)
            _core.compute(x, result, algorithm, isa, log, threads, temperature)
            return result
        if (
            type(out) is np.ndarray
            and out.dtype is x.dtype
            and out.shape == x.shape
            and out.flags.writeable
            and out.flags.aligned
            and (out is x or not np.may_share_memory(x, out))
        ):
            _core.compute(x, out, algorithm, isa, log, threads, temperature)
            return out
    _check_names(algorithm, isa)
    threads = 0 if num_threads is None else _positive_threads(num_threads)
    temperature = _check_temperature(temperature)
    x = np.asarray(x)
    compute_dtype, result_dtype = _dtypes(x.dtype)
    axis = _normalize_axis(axis, max(x.ndim, 1))  # a 0-d array is a row of one element
    if out is not None:
        _check_out(out, x.shape, result_dtype)
    if x.size == 0:
        return out if out is not None else np.empty(x.shape, dtype=result_dtype)

    # The array the kernels read: x itself (a view) unless its dtype, byte order or alignment
    # needs a converted copy.
    xc = x.reshape(1) if x.ndim == 0 else x
    if xc.dtype != compute_dtype or not xc.flags.aligned:
        xc = xc.astype(compute_dtype, order="K")
    # Moving the softmax axis last is a view. It keeps the other axes in order, so the softmaxes
    # of a C-contiguous array stay next to each other for the column kernels.
    last = axis in (-1, xc.ndim - 1)
    x_rows = xc if last else np.moveaxis(xc, axis, -1)

    result = out if out is not None else np.empty(x.shape, dtype=result_dtype)
    target = result.reshape(1) if result.ndim == 0 else result
    y_rows = target if last else np.moveaxis(target, axis, -1)
    # Kernels write y directly when it has the compute dtype and is x itself or apart from x;
    # otherwise (a partial overlap, or a converted input) they write a temporary that is then copied over.
    direct = y_rows.dtype == compute_dtype and y_rows.flags.aligned and (
        not np.may_share_memory(x_rows, y_rows) or _same_view(x_rows, y_rows)
    )
    if direct:
        _core.compute(x_rows, y_rows, algorithm, isa, log, threads, temperature)
    else:
        temp = np.empty(x_rows.shape, dtype=compute_dtype)
        _core.compute(x_rows, temp, algorithm, isa, log, threads, temperature)
        y_rows[...] = temp
    return result


def softmax(
    x: Any,
    axis: int = -1,
    *,
    algorithm: str = "auto",
    isa: str = "auto",
    out: np.ndarray | None = None,
    num_threads: int | None = None,
    temperature: float = 1.0,
) -> np.ndarray:
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
        Complex, object and string dtypes raise TypeError. Any strides work; when ``axis`` has
        unit stride (the usual C-contiguous last axis) nothing is copied.
    axis : int
        The axis to normalize over; out of range raises ``numpy.exceptions.AxisError``.
    algorithm : str
        One of ``ALGORITHMS``: "auto" (fastest for the row length, see README), "two_pass",
        "three_pass_reload", "three_pass_recompute", "online".
    isa : str
        One of ``ISAS``: "auto" (``FASTSOFTMAX_ISA`` if set, else the best the CPU has), "scalar",
        "avx2", "avx512". An ISA not in ``available_isas()`` raises ValueError.
    out : numpy.ndarray, optional
        Where to write the result: same shape as ``x`` and the result dtype, writable, else
        ValueError/TypeError (raised before anything is written). May be ``x`` itself (in place).
        The computation itself cannot fail part-way, so ``out`` is never left half-written.
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

    Returns
    -------
    numpy.ndarray
        ``out`` if given, else a new C-contiguous array. A 0-d input gives 1.0 (an empty array an
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
    return _apply(x, axis, algorithm, isa, out, num_threads, temperature, log=False)


def log_softmax(
    x: Any,
    axis: int = -1,
    *,
    algorithm: str = "auto",
    isa: str = "auto",
    out: np.ndarray | None = None,
    num_threads: int | None = None,
    temperature: float = 1.0,
) -> np.ndarray:
    """Log-softmax along ``axis``: ``x - log(sum(exp(x), axis))``, computed without overflow.

    Parameters and dtype, ``out``, ``temperature`` (``log_softmax(x / temperature)``) and error
    rules are those of :func:`softmax`. A 0-d input gives 0.0. Special values: NaN rows are NaN;
    in a row with k entries equal to +inf those get -log(k) and the others -inf; all -inf rows
    are NaN; -inf entries give -inf.

    Examples
    --------
    >>> fastsoftmax.log_softmax([0.0, 0.0, 0.0, 0.0])
    array([-1.38629436, -1.38629436, -1.38629436, -1.38629436])
    """
    return _apply(x, axis, algorithm, isa, out, num_threads, temperature, log=True)


def softmax_topk(
    x: Any,
    k: int,
    axis: int = -1,
    *,
    temperature: float = 1.0,
    sorted: bool = True,
    isa: str = "auto",
    num_threads: int | None = None,
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
    if (
        _plain_call(x, axis, isa, num_threads, temperature)
        and type(k) is int
        and 1 <= k <= x.shape[-1]
        and type(sorted) is bool
    ):
        shape = x.shape[:-1] + (k,)
        values, indices = np.empty(shape, x.dtype), np.empty(shape, np.int64)
        if values.size:
            _core.topk(x, values, indices, k, sorted, isa, num_threads or 0, temperature)
        return values, indices
    _check_isa(isa)
    threads = 0 if num_threads is None else _positive_threads(num_threads)
    temperature = _check_temperature(temperature)
    x = np.asarray(x)
    compute_dtype, result_dtype = _dtypes(x.dtype)
    if x.ndim == 0:
        raise ValueError("softmax_topk needs an array of at least one dimension")
    axis = _normalize_axis(axis, x.ndim)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an integer, got {type(k).__name__}")
    n = x.shape[axis]
    if not 1 <= k <= n:
        raise ValueError(f"k must be in 1..{n} (the length of axis {axis}), got {k}")
    k = int(k)
    if not isinstance(sorted, (bool, np.bool_)):
        raise TypeError(f"sorted must be a bool, got {type(sorted).__name__}")

    x_rows = np.moveaxis(x, axis, -1)
    if x_rows.dtype != compute_dtype or not x_rows.flags.aligned:
        x_rows = x_rows.astype(compute_dtype)
    shape = x_rows.shape[:-1] + (k,)
    values = np.empty(shape, dtype=compute_dtype)
    indices = np.empty(shape, dtype=np.int64)
    if values.size:
        _core.topk(x_rows, values, indices, k, bool(sorted), isa, threads, temperature)
    if result_dtype != compute_dtype:
        values = values.astype(result_dtype)
    return np.moveaxis(values, -1, axis), np.moveaxis(indices, -1, axis)
