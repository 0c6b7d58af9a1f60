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
    axis: int = -1,
    *,
    algorithm: str = "auto",
    isa: str = "auto",
    out: Any = None,
    num_threads: int | None = None,
    temperature: float = 1.0,
    dtype: Any = None,
    casting: str = "safe",
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
    axis : int
        The axis to normalize over; out of range raises ``numpy.exceptions.AxisError``.
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
    if type(x) is np.ndarray and (out is None or type(out) is np.ndarray):  # the common case, checked in C++
        name = None if dtype is None else _dtype_name(dtype)
        return _core.softmax(x, axis, algorithm, isa, out, num_threads, temperature, name, casting)
    return _rowwise("softmax", x, axis, algorithm, isa, out, num_threads, temperature, dtype, casting)


def log_softmax(
    x: Any,
    axis: int = -1,
    *,
    algorithm: str = "auto",
    isa: str = "auto",
    out: Any = None,
    num_threads: int | None = None,
    temperature: float = 1.0,
    dtype: Any = None,
    casting: str = "safe",
) -> Any:
    """Log-softmax along ``axis``: ``x - log(sum(exp(x), axis))``, computed without overflow.

    Parameters and dtype, ``out``, ``temperature`` (``log_softmax(x / temperature)``), ``dtype``,
    ``casting`` and error rules are those of :func:`softmax`. A 0-d input gives 0.0. Special values: NaN rows are NaN;
    in a row with k entries equal to +inf those get -log(k) and the others -inf; all -inf rows
    are NaN; -inf entries give -inf.

    Examples
    --------
    >>> fastsoftmax.log_softmax([0.0, 0.0, 0.0, 0.0])
    array([-1.38629436, -1.38629436, -1.38629436, -1.38629436])
    """
    if type(x) is np.ndarray and (out is None or type(out) is np.ndarray):  # the common case, checked in C++
        name = None if dtype is None else _dtype_name(dtype)
        return _core.log_softmax(x, axis, algorithm, isa, out, num_threads, temperature, name, casting)
    return _rowwise("log_softmax", x, axis, algorithm, isa, out, num_threads, temperature, dtype, casting)


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
    if _device.is_device_array(x):
        return _device.topk(x, k, axis, temperature, sorted, isa, num_threads)
    if _device.is_foreign_host_array(x):
        values, indices = _core.softmax_topk(_device.export(x), k, axis, temperature, sorted, isa, num_threads)
        return _device.like(x, values), _device.like(x, indices)
    return _core.softmax_topk(x, k, axis, temperature, sorted, isa, num_threads)


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
        "softmax" (default), "log_softmax" or "softmax_topk" (then ``k`` is required).
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
             temperature: Any, dtype: Any, casting: Any) -> Any:
    """softmax or log_softmax of anything but a NumPy array with a NumPy (or no) out=: device arrays
    go to the CUDA backend; other frameworks' CPU arrays (x or out) are read and written through
    DLPack, without a copy, and the result is of x's type."""
    if _device.is_device_array(x) or _device.is_device_array(out):
        if dtype is not None:
            raise ValueError("dtype= is not supported for CUDA device arrays: convert the array first")
        return _device.rowwise(operation, x, axis, algorithm, isa, out, num_threads, temperature)
    foreign_x = _device.is_foreign_host_array(x)
    host_x = _device.export(x) if foreign_x else x
    host_out = _device.writable_export(out) if _device.is_foreign_host_array(out) else out
    name = None if dtype is None else _dtype_name(dtype)
    function = _core.softmax if operation == "softmax" else _core.log_softmax
    result = function(host_x, axis, algorithm, isa, host_out, num_threads, temperature, name, casting)
    if out is not None:
        return out
    return _device.like(x, result) if foreign_x else result
