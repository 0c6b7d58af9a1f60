"""Softmax, log-softmax and logsumexp of Dask arrays: arrays larger than one machine's memory.

``x`` is a ``dask.array.Array`` chunked in any way, along the softmax axis too. Each function is
the two-pass algorithm spread over the chunks, on whatever scheduler runs the graph (threads, or a
``dask.distributed`` cluster of many machines):

1. one tree reduction of normalizer states (``dask.array.reduction``): every chunk gives the
   states of its shards of rows (``fastsoftmax.softmax_state``), and the states are merged
   (``fastsoftmax.merge_states``), a few at a time (``split_every``), in chunk order;
2. one ``map_blocks`` pass: every chunk, with its rows' merged states, is normalized
   (``fastsoftmax.softmax_from_state`` or ``log_softmax_from_state``). ``logsumexp`` stops after
   the reduction (``fastsoftmax.logsumexp_from_state``).

So the input is read twice (once for ``logsumexp``) and never rechunked; what needs to cross the
network between workers is the states, 40 bytes per row and chunk. Special values and masks
give the results of one in-memory call on the whole array (``fastsoftmax.softmax``); the values
agree within 2 ULP.

Needs Dask (``pip install "fastsoftmax[dask]"``); ``import fastsoftmax`` alone never imports it.

    >>> import dask.array as da, numpy as np, fastsoftmax.dask
    >>> x = da.from_array(np.array([[1.0, 2.0, 3.0, 4.0]]), chunks=(1, 2))
    >>> fastsoftmax.dask.softmax(x).compute()
    array([[0.0320586 , 0.08714432, 0.23688282, 0.64391426]])
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
from numpy.lib.recfunctions import structured_to_unstructured, unstructured_to_structured

import fastsoftmax

try:
    import dask.array as da
    from dask.array.utils import validate_axis
except ImportError as error:  # pragma: no cover - the [dask] extra is missing
    raise ImportError('fastsoftmax.dask needs Dask: pip install "fastsoftmax[dask]"') from error

__all__ = ["log_softmax", "logsumexp", "softmax"]

# A row's state as one record (fastsoftmax.STATE_FIELDS), so that the states form a Dask array of
# x's shape with the softmax axis of length 1.
_STATE = np.dtype([(field, np.float64) for field in fastsoftmax.STATE_FIELDS])


def softmax(x: Any, axis: int = -1, *, where: Any = None, temperature: float = 1.0,
            split_every: int | None = None) -> Any:
    """Softmax of a Dask array along ``axis``, however it is chunked: a lazy Dask array.

    Parameters
    ----------
    x : dask.array.Array
        Any chunking, along ``axis`` too (the chunks are never rechunked). float32 and float64
        give results of the same dtype, float16 and bfloat16 too (computed in float32); integer
        and bool inputs give float64 (as ``fastsoftmax.softmax``). Anything but a Dask array
        raises TypeError (use ``fastsoftmax.softmax`` for arrays in memory); an unsupported
        dtype (complex, object, string) raises TypeError.
    axis : int
        The axis to normalize over. Out of range raises ``numpy.exceptions.AxisError``; anything
        but an integer (None, a tuple) raises TypeError.
    where : array_like of bool, optional
        Entries that take part: a Dask or NumPy boolean array broadcastable to ``x`` (its chunks
        are matched to ``x``'s; a NumPy mask goes into the graph). Masked entries give 0 and a
        fully masked row gives 0 everywhere (``jax.nn.softmax(where=)``). Not boolean raises
        TypeError; not broadcastable to ``x`` raises ValueError.
    temperature : float
        Computes ``softmax(x / temperature)``; finite and > 0, else ValueError (a non-number
        TypeError).
    split_every : int, optional
        How many chunks' states one task merges (at least 2); None takes Dask's default
        (``dask.config`` ``split_every``, 4 when unset). Fewer gives a deeper tree of smaller
        tasks; the results differ only by rounding.

    Returns
    -------
    dask.array.Array
        Of ``x``'s shape and chunks, lazy: nothing runs until it is computed or stored. Special
        values are those of ``fastsoftmax.softmax`` on the whole array: a NaN anywhere in a row
        makes it NaN; k entries equal to +inf share the mass (1/k each); a row of only -inf
        (among its unmasked entries) is NaN.

    Raises
    ------
    TypeError, ValueError, numpy.exceptions.AxisError
        As listed above, when the function is called (not later, when the graph runs).

    Examples
    --------
    >>> x = da.from_array(np.float32([[0, 0, 0, 0], [2, np.inf, 5, np.inf]]), chunks=(1, 2))
    >>> fastsoftmax.dask.softmax(x, split_every=2).compute()
    array([[0.25, 0.25, 0.25, 0.25],
           [0.  , 0.5 , 0.  , 0.5 ]], dtype=float32)
    """
    return _normalized("softmax_from_state", x, axis, where, temperature, split_every)


def log_softmax(x: Any, axis: int = -1, *, where: Any = None, temperature: float = 1.0,
                split_every: int | None = None) -> Any:
    """Log-softmax of a Dask array along ``axis``, however it is chunked: a lazy Dask array.

    Parameters, dtypes and errors are those of :func:`softmax`. Masked entries and fully masked
    rows give -inf; in a row with k entries equal to +inf those give -log(k) and the others
    -inf; rows with NaN and rows of only -inf are NaN.

    Examples
    --------
    >>> x = da.from_array(np.array([[0.0, 0.0, 0.0, 0.0]]), chunks=(1, 1))
    >>> fastsoftmax.dask.log_softmax(x).compute()
    array([[-1.38629436, -1.38629436, -1.38629436, -1.38629436]])
    """
    return _normalized("log_softmax_from_state", x, axis, where, temperature, split_every)


def logsumexp(x: Any, axis: int = -1, keepdims: bool = False, *, where: Any = None, temperature: float = 1.0,
              split_every: int | None = None) -> Any:
    """``log(sum(exp(x / temperature), axis))`` of a Dask array, in one tree reduction of states.

    Parameters
    ----------
    x, axis, where, temperature, split_every
        As for :func:`softmax`; the input is read once.
    keepdims : bool
        Keep ``axis`` with length 1 (then the result broadcasts against ``x``).

    Returns
    -------
    dask.array.Array
        ``x``'s shape without ``axis`` (or with length 1 there), in ``x``'s floating dtype
        (integer and bool inputs: float64); lazy. Rows of only -inf, empty or fully masked rows
        give -inf; NaN propagates; +inf gives +inf.

    Examples
    --------
    >>> x = da.from_array(np.array([[0.0, 0.0, 0.0, 0.0], [1.0, 2.0, 3.0, -np.inf]]), chunks=(2, 3))
    >>> fastsoftmax.dask.logsumexp(x).compute()
    array([1.38629436, 3.40760596])
    """
    x, axis, where = _checked(x, axis, where, temperature)
    dtype = fastsoftmax.logsumexp(np.zeros((1,) * x.ndim, x.dtype), axis).dtype
    return da.reduction(
        x, partial(_chunk_states, temperature=temperature), partial(_logsumexp_of_states, dtype=dtype),
        combine=_merge, axis=axis, keepdims=keepdims, dtype=dtype, split_every=split_every, concatenate=False,
        weights=where, meta=np.empty((0,) * (x.ndim if keepdims else x.ndim - 1), dtype), name="fastsoftmax-logsumexp",
    )


def _normalized(function: str, x: Any, axis: Any, where: Any, temperature: Any, split_every: Any) -> Any:
    """``function`` ("softmax_from_state" or "log_softmax_from_state") applied to every chunk of
    ``x`` with its rows' merged states: the two passes of softmax and log_softmax."""
    x, axis, where = _checked(x, axis, where, temperature)
    probe = np.zeros((1,) * x.ndim, x.dtype)
    dtype = getattr(fastsoftmax, function)(probe, fastsoftmax.softmax_state(probe, axis), axis).dtype
    # keepdims: one state record per row, axis of length 1, which map_blocks broadcasts against
    # every chunk of x along axis.
    states = da.reduction(
        x, partial(_chunk_states, temperature=temperature), _aggregate,
        combine=_merge, axis=axis, keepdims=True, dtype=_STATE, split_every=split_every, concatenate=False,
        weights=where, meta=np.empty((0,) * x.ndim, _STATE), name="fastsoftmax-state",
    )
    arrays = [x, states] + ([] if where is None else [where])
    return da.map_blocks(partial(_from_states, function, axis=axis), *arrays, dtype=dtype,
                         meta=np.empty((0,) * x.ndim, dtype))


def _checked(x: Any, axis: Any, where: Any, temperature: Any) -> tuple[Any, int, Any]:
    """The arguments checked now rather than on a worker when the graph runs: axis as a
    non-negative int, where as a boolean Dask array matched to x's chunks (or None)."""
    if not isinstance(x, da.Array):
        raise TypeError(f"x must be a dask.array.Array, got {type(x).__module__}.{type(x).__qualname__} "
                        "(fastsoftmax.softmax takes arrays in memory)")
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"axis must be an int, got {axis!r}")
    axis = validate_axis(int(axis), x.ndim)
    # One call on one element checks the dtype and temperature with the library's own messages.
    fastsoftmax.softmax_state(np.zeros((1,) * x.ndim, x.dtype), axis, temperature=temperature)
    return x, axis, _mask(where, x)


def _mask(where: Any, x: Any) -> Any:
    """where as a boolean Dask array whose blocks broadcast against x's (None stays None)."""
    if where is None:
        return None
    if not isinstance(where, da.Array):
        where = np.asarray(where)
    if where.dtype != np.bool_:
        raise TypeError(f"where must be a boolean array, got dtype {where.dtype}")
    try:
        broadcast = np.broadcast_shapes(where.shape, x.shape)
    except ValueError:
        broadcast = None
    if broadcast != x.shape:
        raise ValueError(f"where of shape {where.shape} does not broadcast to x's shape {x.shape}")
    # x's chunks along the axes where the mask has x's length, one block where it has length 1:
    # Dask then pairs every block of x with the block of the mask that broadcasts against it, and
    # only the mask is ever rechunked.
    lead = x.ndim - where.ndim
    chunks = tuple(x.chunks[lead + i] if n == x.shape[lead + i] else (n,) for i, n in enumerate(where.shape))
    return where.rechunk(chunks) if isinstance(where, da.Array) else da.from_array(where, chunks=chunks)


# ---- The tasks: these run on the workers ------------------------------------------------------
# dask.array.reduction calls them with axis as a tuple of one axis; its weights= (an array it
# broadcasts to x, block by block) carries the mask.


def _chunk_states(block: np.ndarray, where: np.ndarray | None = None, *, axis: tuple[int], keepdims: bool,
                  temperature: float) -> np.ndarray:
    """The states of one chunk's shards of rows: its shape without axis, + (5,)."""
    return fastsoftmax.softmax_state(block, axis[0], where=where, temperature=temperature)


def _merge(states: list[np.ndarray] | np.ndarray, axis: tuple[int], keepdims: bool) -> np.ndarray:
    """Consecutive chunks' states (a list, in chunk order; one state without a list) merged."""
    return fastsoftmax.merge_states(states if isinstance(states, list) else [states])


def _aggregate(states: list[np.ndarray] | np.ndarray, axis: tuple[int], keepdims: bool) -> np.ndarray:
    """The rows' merged states as records, the reduced axis kept with length 1."""
    return np.expand_dims(unstructured_to_structured(_merge(states, axis, keepdims), dtype=_STATE), axis)


def _logsumexp_of_states(states: list[np.ndarray] | np.ndarray, axis: tuple[int], keepdims: bool,
                         dtype: np.dtype) -> np.ndarray:
    result = fastsoftmax.logsumexp_from_state(_merge(states, axis, keepdims)).astype(dtype)
    return np.expand_dims(result, axis) if keepdims else result


def _from_states(function: str, block: np.ndarray, states: np.ndarray, where: np.ndarray | None = None, *,
                 axis: int) -> np.ndarray:
    """Pass 2 on one chunk, with its rows' state records (as _aggregate made them)."""
    return getattr(fastsoftmax, function)(block, structured_to_unstructured(np.squeeze(states, axis)), axis,
                                          where=where)
