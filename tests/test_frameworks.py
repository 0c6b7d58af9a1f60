"""CPU arrays of other frameworks: anything that exports DLPack on the CPU is read without a copy
and answered in its own type (through its module's ``from_dlpack``); ``out=`` of that type is
written in place. A minimal producer defined here stands in for a framework (so CI needs none);
PyTorch, where installed, is checked the same way."""

from __future__ import annotations

import ctypes

import fastsoftmax
import numpy as np
import pytest
from reference import assert_matches_reference


class Producer:
    """A framework's array in miniature: NumPy memory behind the DLPack protocol."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def __dlpack__(self, stream=None, max_version=None, **kwargs):
        if max_version is None:
            return self.array.__dlpack__()
        return self.array.__dlpack__(max_version=max_version)

    def __dlpack_device__(self):
        return self.array.__dlpack_device__()

    @property
    def shape(self):
        return self.array.shape


def from_dlpack(x) -> Producer:
    """This 'framework's' from_dlpack: fastsoftmax returns results through it."""
    return Producer(np.from_dlpack(x))


def test_producer_in_producer_out():
    x = np.random.default_rng(0).standard_normal((5, 33)).astype(np.float32)
    y = fastsoftmax.softmax(Producer(x))
    assert isinstance(y, Producer)
    assert_matches_reference(y.array, x)
    assert np.array_equal(fastsoftmax.log_softmax(Producer(x), axis=0).array, fastsoftmax.log_softmax(x, axis=0))


def test_producer_out_is_written_in_place():
    if tuple(int(p) for p in np.__version__.split(".")[:2]) < (2, 1):
        pytest.skip("NumPy < 2.1 exports no versioned DLPack: its arrays read back through DLPack are read-only")
    x = np.random.default_rng(1).standard_normal((3, 100)).astype(np.float32)
    memory = np.zeros_like(x)
    out = Producer(memory)
    assert fastsoftmax.softmax(Producer(x), out=out) is out
    assert np.array_equal(memory, fastsoftmax.softmax(x))


def test_producer_topk():
    x = np.float32([[1, 3, 2, 3], [0, 0, 5, 1]])
    values, indices = fastsoftmax.softmax_topk(Producer(x), 2)
    assert isinstance(values, Producer) and isinstance(indices, Producer)
    expected = fastsoftmax.softmax_topk(x, 2)
    assert np.array_equal(values.array, expected[0]) and np.array_equal(indices.array, expected[1])


def test_producer_explain_plans_the_cpu_call():
    x = np.zeros((4, 1000), np.float32)
    assert fastsoftmax.explain(Producer(x)).kernel == fastsoftmax.explain(x).kernel


def test_torch_cpu_tensors_are_taken_without_a_copy():
    torch = pytest.importorskip("torch")
    x = torch.randn(4, 257, dtype=torch.float32)
    y = fastsoftmax.softmax(x)
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float32
    assert_matches_reference(y.numpy(), x.numpy())
    out = torch.empty_like(x)
    assert fastsoftmax.log_softmax(x, out=out) is out
    assert torch.equal(out, torch.from_numpy(fastsoftmax.log_softmax(x.numpy())))
    # In place: out is x itself, through the same memory.
    pointer = x.data_ptr()
    fastsoftmax.softmax(x, out=x)
    assert x.data_ptr() == pointer and torch.allclose(x.sum(-1), torch.ones(4))
    values, indices = fastsoftmax.softmax_topk(torch.tensor([[1.0, 3.0, 2.0]]), 2)
    assert isinstance(values, torch.Tensor) and indices.dtype == torch.int64
    assert indices.tolist() == [[1, 2]]


# ---- bfloat16 through DLPack (NumPy has no bfloat16 to export): a producer written with ctypes ----


class _DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class _DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", _DLDevice), ("ndim", ctypes.c_int32), ("dtype", _DLDataType),
                ("shape", ctypes.POINTER(ctypes.c_int64)), ("strides", ctypes.POINTER(ctypes.c_int64)),
                ("byte_offset", ctypes.c_uint64)]


class _DLManagedTensor(ctypes.Structure):
    pass


_DELETER = ctypes.CFUNCTYPE(None, ctypes.POINTER(_DLManagedTensor))
_DLManagedTensor._fields_ = [("dl_tensor", _DLTensor), ("manager_ctx", ctypes.c_void_p), ("deleter", _DELETER)]
_deleted: list[int] = []
_NOTE_DELETION = _DELETER(lambda tensor: _deleted.append(1))  # the memory belongs to the producer
_capsule_new = ctypes.pythonapi.PyCapsule_New
_capsule_new.restype = ctypes.py_object
_capsule_new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
_DL_BFLOAT = 4


class BFloat16Producer:
    """A bfloat16 array of a framework in miniature: uint16 bits in NumPy memory, exported through
    unversioned DLPack capsules with DLPack's bfloat16 type code, strides in elements."""

    def __init__(self, bits: np.ndarray) -> None:
        assert bits.dtype == np.uint16
        self.bits = bits
        self._kept: list = []  # what each exported capsule points into

    @property
    def shape(self):
        return self.bits.shape

    def __dlpack_device__(self):
        return (1, 0)

    def __dlpack__(self, stream=None, max_version=None, **kwargs):
        ndim = self.bits.ndim
        shape = (ctypes.c_int64 * ndim)(*self.bits.shape)
        strides = (ctypes.c_int64 * ndim)(*(s // 2 for s in self.bits.strides))
        managed = _DLManagedTensor()
        managed.dl_tensor = _DLTensor(self.bits.ctypes.data, _DLDevice(1, 0), ndim, _DLDataType(_DL_BFLOAT, 16, 1),
                                      shape, strides, 0)
        managed.deleter = _NOTE_DELETION
        self._kept.append((managed, shape, strides))
        return _capsule_new(ctypes.addressof(managed), b"dltensor", None)


def bfloat16_bits(values: np.ndarray) -> np.ndarray:
    """float32 values rounded to bfloat16 (to nearest even), as bits."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    return values.astype(np.float32).astype(ml_dtypes.bfloat16).view(np.uint16)


def test_bfloat16_producer_with_out():
    """bfloat16 in and out through DLPack, strided (a transposed view), without NumPy knowing the type."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    bits = bfloat16_bits(np.random.default_rng(2).standard_normal((40, 6)) * 4).T  # (6, 40), strided
    out = BFloat16Producer(np.zeros((6, 40), np.uint16))
    before = len(_deleted)
    for function in (fastsoftmax.softmax, fastsoftmax.log_softmax):
        assert function(BFloat16Producer(bits), out=out) is out
        expected = function(bits.view(ml_dtypes.bfloat16))
        assert np.array_equal(out.bits, expected.view(np.uint16)), function.__name__
    assert len(_deleted) - before == 4, "each consumed capsule's deleter runs once"
    wide = np.zeros((6, 40), np.float32)
    fastsoftmax.softmax(BFloat16Producer(bits), out=wide)  # a wider NumPy out=: computed in float32
    assert np.array_equal(wide, fastsoftmax.softmax(bits.view(ml_dtypes.bfloat16).astype(np.float32)))
    assert fastsoftmax.explain(BFloat16Producer(bits)).kernel.startswith("bf16-softmax")


def test_bfloat16_result_that_from_dlpack_cannot_take_is_numpy():
    """A bfloat16 result NumPy cannot export through DLPack comes back as ml_dtypes.bfloat16."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    bits = bfloat16_bits(np.arange(6, dtype=np.float32))
    y = fastsoftmax.softmax(BFloat16Producer(bits))
    assert isinstance(y, np.ndarray) and y.dtype == ml_dtypes.bfloat16
    assert np.array_equal(y.view(np.uint16), fastsoftmax.softmax(bits.view(ml_dtypes.bfloat16)).view(np.uint16))


class Wrapped:
    """A DLPack producer whose module (this test's __main__-like class, looked up by its module
    name) is given no from_dlpack: results come back as NumPy arrays."""

    __module__ = "fastsoftmax_test_no_from_dlpack"

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def __dlpack__(self, stream=None, max_version=None, **kwargs):
        return self.array.__dlpack__()

    def __dlpack_device__(self):
        return self.array.__dlpack_device__()


def test_producer_without_from_dlpack_gets_numpy(monkeypatch):
    import sys
    import types

    monkeypatch.setitem(sys.modules, Wrapped.__module__, types.ModuleType(Wrapped.__module__))
    x = np.float32([[1, 2, 3], [0, 0, 5]])
    y = fastsoftmax.softmax(Wrapped(x))
    assert isinstance(y, np.ndarray) and np.array_equal(y, fastsoftmax.softmax(x))
    values, indices = fastsoftmax.softmax_topk(Wrapped(x), 1)
    assert isinstance(values, np.ndarray) and indices.tolist() == [[2], [2]]


# ---- PyTorch and JAX, where installed -----------------------------------------------------------


def test_torch_bfloat16_in_and_out():
    torch = pytest.importorskip("torch")
    x = torch.randn(5, 300, dtype=torch.bfloat16) * 3
    for function, reference in ((fastsoftmax.softmax, torch.softmax), (fastsoftmax.log_softmax, torch.log_softmax)):
        y = function(x)
        assert isinstance(y, torch.Tensor) and y.dtype == torch.bfloat16 and y.shape == x.shape
        exact = reference(x.double(), -1)
        assert (y.double() - exact).abs().max() <= exact.abs().max() * 2**-7  # within a bfloat16 ULP
        out = torch.empty(5, 300, dtype=torch.bfloat16)
        assert function(x, out=out) is out and torch.equal(out, y)
        wide = torch.empty(5, 300, dtype=torch.float32)  # computed in float32 from x's exact values
        assert function(x, out=wide) is wide
        assert torch.equal(wide, function(x.float()))
    assert fastsoftmax.softmax(x, dtype=torch.float32).dtype == torch.float32
    values, indices = fastsoftmax.softmax_topk(x, 4)
    assert values.dtype == torch.bfloat16 and indices.dtype == torch.int64
    ties_to_lower_index = np.argsort(-x.float().numpy(), axis=-1, kind="stable")[:, :4]
    assert np.array_equal(indices.numpy(), ties_to_lower_index)


def test_torch_out_casting():
    torch = pytest.importorskip("torch")
    x = torch.randn(3, 50, dtype=torch.float64)
    out = torch.full((3, 50), 7.0, dtype=torch.float32)
    with pytest.raises(TypeError, match="casting='same_kind'"):
        fastsoftmax.softmax(x, out=out)
    assert bool((out == 7).all())
    fastsoftmax.softmax(x, out=out, casting="same_kind")
    assert torch.equal(out, fastsoftmax.softmax(x).float())
    # A NumPy x into a tensor out=, and a tensor x into a NumPy out=.
    numpy_out = np.zeros((3, 50))
    assert fastsoftmax.softmax(x, out=numpy_out) is numpy_out
    tensor_out = torch.empty(3, 50, dtype=torch.float64)
    assert fastsoftmax.softmax(x.numpy(), out=tensor_out) is tensor_out
    assert np.array_equal(tensor_out.numpy(), numpy_out)


def test_jax_arrays_in_their_own_type():
    jnp = pytest.importorskip("jax.numpy")
    x = jnp.asarray(np.random.default_rng(3).standard_normal((4, 70)), dtype=jnp.float32)
    y = fastsoftmax.softmax(x)
    assert type(y) is type(x) and y.dtype == jnp.float32
    assert np.array_equal(np.asarray(y), fastsoftmax.softmax(np.asarray(x)))
    b = x.astype(jnp.bfloat16)
    yb = fastsoftmax.log_softmax(b)
    assert type(yb) is type(x) and yb.dtype == jnp.bfloat16
    assert np.array_equal(np.asarray(yb).view(np.uint16), fastsoftmax.log_softmax(np.asarray(b)).view(np.uint16))


def test_jax_array_as_out_is_refused():
    """JAX arrays are immutable (though their DLPack export does not say so): never written."""
    jnp = pytest.importorskip("jax.numpy")
    out = jnp.zeros(3, jnp.float32)
    with pytest.raises(TypeError, match="immutable"):
        fastsoftmax.softmax(np.ones(3, np.float32), out=out)
    assert not np.asarray(out).any()
