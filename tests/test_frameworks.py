"""CPU arrays of other frameworks: anything that exports DLPack on the CPU is read without a copy
and answered in its own type (through its module's ``from_dlpack``); ``out=`` of that type is
written in place. A minimal producer defined here stands in for a framework (so CI needs none);
PyTorch, where installed, is checked the same way."""

from __future__ import annotations

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
