"""Arrays of other frameworks: CUDA device arrays (to the CUDA backend) and CPU arrays that are not
NumPy's (PyTorch, JAX, ...), both taken zero-copy and answered in the caller's own type.

Device arrays come in through DLPack (``__dlpack__``, versioned capsules first) or
``__cuda_array_interface__`` and run on the producer's current stream (PyTorch's and CuPy's
current stream; the interface's own ``stream``; else the legacy default stream), so results are
ordered with the caller's work without any synchronization. Results are allocated by the
caller's framework (``torch.empty``, ``cupy.empty``, ``numba.cuda.device_array``) or given as
``out=``. ``fastsoftmax._cuda`` is imported only here, on the first device call.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

# DLPack device types (dlpack.h).
_DL_CPU = 1
_DL_CUDA = 2
_DL_CUDA_MANAGED = 13
# DLPack's stream argument for the legacy default stream.
_DL_LEGACY_DEFAULT_STREAM = 1


def _dlpack_device(x: Any) -> tuple[int, int] | None:
    if isinstance(x, np.ndarray) or not hasattr(x, "__dlpack_device__"):
        return None
    try:
        device_type, device_id = x.__dlpack_device__()
    except (TypeError, ValueError, AttributeError, BufferError, RuntimeError):  # a producer that cannot say
        return None
    return int(device_type), int(device_id)


def is_device_array(x: Any) -> bool:
    """True for arrays in CUDA device (or managed) memory."""
    device = _dlpack_device(x)
    if device is not None:
        return device[0] in (_DL_CUDA, _DL_CUDA_MANAGED)
    return not isinstance(x, np.ndarray) and hasattr(x, "__cuda_array_interface__")


def is_foreign_host_array(x: Any) -> bool:
    """True for CPU arrays of other frameworks (PyTorch, JAX, ...) that export DLPack."""
    device = _dlpack_device(x)
    return device is not None and device[0] == _DL_CPU


NO_CUDA_BACKEND = (
    "this build of fastsoftmax has no CUDA backend (it was built with FASTSOFTMAX_CUDA=OFF, or where CMake found no "
    "nvcc that works with the host compiler; rebuild with nvcc on PATH, or FASTSOFTMAX_CUDA=ON to make that an error)"
)


def cuda_module() -> Any:
    """fastsoftmax._cuda, or RuntimeError saying why there is none."""
    try:
        return importlib.import_module("fastsoftmax._cuda")
    except ImportError as error:
        raise RuntimeError(NO_CUDA_BACKEND) from error


def _framework(x: Any) -> str:
    return type(x).__module__.split(".")[0]


def _stream(x: Any) -> int:
    """The stream the producer's work is ordered on, as an integer cudaStream_t (0: legacy default)."""
    framework = _framework(x)
    if framework == "torch":
        import torch

        return int(torch.cuda.current_stream(x.device).cuda_stream)
    if framework == "cupy":
        import cupy

        with x.device:
            return int(cupy.cuda.get_current_stream().ptr)
    interface = getattr(x, "__cuda_array_interface__", None)
    if isinstance(interface, dict) and interface.get("stream"):
        return int(interface["stream"])
    return 0


def export(a: Any, stream: int | None = None, name: str = "x") -> Any:
    """A DLPack capsule of ``a`` (versioned where the producer can): made for the CUDA ``stream``
    of a device array, or with no stream (None) for a CPU array; for a device array without
    ``__dlpack__``, its ``__cuda_array_interface__``. The core's one DLPack consumer reads both."""
    if hasattr(a, "__dlpack__"):
        kwargs = {} if stream is None else {"stream": stream if stream != 0 else _DL_LEGACY_DEFAULT_STREAM}
        try:
            return a.__dlpack__(max_version=(1, 0), **kwargs)
        except TypeError:  # producers of the unversioned protocol only
            return a.__dlpack__(**kwargs)
    interface = getattr(a, "__cuda_array_interface__", None)
    if stream is not None and interface is not None:
        return dict(interface)
    raise TypeError(f"{name} must be an array with __dlpack__ (or, on a CUDA device, __cuda_array_interface__), "
                    f"got {type(a).__name__}")


def writable_export(out: Any) -> Any:
    """out= of another framework as a DLPack capsule to write through; TypeError for the arrays of
    frameworks whose arrays are immutable (JAX), which export their buffers without saying so."""
    if _framework(out) in ("jax", "jaxlib"):
        raise TypeError("out cannot be a JAX array: JAX arrays are immutable (use the returned array instead)")
    return export(out, name="out")


def _empty_like(x: Any, shape: tuple[int, ...], indices: bool = False) -> Any:
    """A new array of the caller's framework on x's device: x's dtype, or int64 for indices."""
    framework = _framework(x)
    if framework == "torch":
        import torch

        return torch.empty(shape, dtype=torch.int64 if indices else x.dtype, device=x.device)
    if framework == "cupy":
        import cupy

        with x.device:
            return cupy.empty(shape, dtype=cupy.int64 if indices else x.dtype)
    if framework == "numba":
        from numba import cuda

        return cuda.device_array(shape, dtype=np.int64 if indices else x.dtype)
    raise TypeError(
        f"fastsoftmax cannot allocate a result for a {type(x).__module__}.{type(x).__name__} device array: "
        "pass out= (an array of the same framework)"
    )


def _check_cpu_options(isa: str, num_threads: int | None) -> None:
    if isa != "auto":
        raise ValueError(f"isa='{isa}' names a CPU implementation, but x is in CUDA device memory")
    if num_threads is not None:
        raise ValueError("num_threads applies to CPU calls; x is in CUDA device memory")


def rowwise(operation: str, x: Any, axis: Any, algorithm: Any, isa: str, out: Any, num_threads: Any,
            temperature: Any) -> Any:
    """softmax or log_softmax of a device array (the package's functions call this)."""
    cuda = cuda_module()
    _check_cpu_options(isa, num_threads)
    if out is None:
        out = _empty_like(x, tuple(x.shape))
    stream = _stream(x)
    cuda.run(operation, export(x, stream, "x"), export(out, stream, "out"), None, axis, algorithm, temperature,
             None, True, stream)
    return out


def topk(x: Any, k: Any, axis: Any, temperature: Any, sorted: Any, isa: str, num_threads: Any) -> tuple[Any, Any]:
    """softmax_topk of a device array: (values, indices) of the caller's framework."""
    cuda = cuda_module()
    _check_cpu_options(isa, num_threads)
    # The results' shape: x's with k along the axis. Arguments the library refuses (checked in
    # the call, before anything is written) get a stand-in shape here.
    shape = list(x.shape)
    ndim = len(shape)
    valid_k = isinstance(k, (int, np.integer)) and not isinstance(k, bool)
    if valid_k and isinstance(axis, (int, np.integer)) and -ndim <= axis < ndim:
        a = int(axis) % ndim
        shape[a] = min(max(int(k), 1), shape[a])
    values = _empty_like(x, tuple(shape))
    indices = _empty_like(x, tuple(shape), indices=True)
    stream = _stream(x)
    cuda.run("softmax_topk", export(x, stream, "x"), export(values, stream, "values"),
             export(indices, stream, "indices"), axis, "auto", temperature, k, sorted, stream)
    return values, indices


def explain(function: str, x: Any, axis: Any, k: Any, algorithm: Any, temperature: Any) -> Any:
    cuda = cuda_module()
    return cuda.explain(function, export(x, _stream(x), "x"), axis, algorithm, temperature, k)


# ---- CPU arrays of other frameworks ----------------------------------------------------------------


def like(x: Any, result: np.ndarray) -> Any:
    """``result`` (made by the core for x) as x's type, through its framework's ``from_dlpack``
    without a copy, or as the NumPy array itself where the framework has no ``from_dlpack``.
    bfloat16 results come as their uint16 bits (NumPy has no bfloat16) and are reinterpreted by
    the framework (PyTorch's ``view``, JAX through ml_dtypes), else shown as ``ml_dtypes.bfloat16``."""
    framework = _framework(x)
    bfloat16 = result.dtype == np.uint16
    if framework == "torch":
        import torch

        tensor = torch.from_dlpack(result)
        return tensor.view(torch.bfloat16) if bfloat16 else tensor
    if framework in ("jax", "jaxlib"):
        import jax.numpy as jnp

        if bfloat16:
            import ml_dtypes  # a dependency of JAX

            return jnp.asarray(result.view(ml_dtypes.bfloat16))
        return jnp.from_dlpack(result)
    from_dlpack = getattr(importlib.import_module(framework), "from_dlpack", None)
    if from_dlpack is not None and not bfloat16:
        return from_dlpack(result)
    if not bfloat16:
        return result
    try:
        import ml_dtypes
    except ImportError as error:
        raise TypeError(
            f"the bfloat16 result for a {type(x).__module__}.{type(x).__name__} comes back as a NumPy array, which "
            "needs ml_dtypes (pip install ml_dtypes); or pass out= (an array of that type)"
        ) from error
    return result.view(ml_dtypes.bfloat16)
