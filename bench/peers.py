"""The peers the benchmark scripts of bench/ measure fastsoftmax against, set up once here."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnxruntime
from onnx import TensorProto, helper


def onnx_softmax(x: np.ndarray, y: np.ndarray, axis: int, threads: int) -> Callable[[], object]:
    """ONNX Runtime's Softmax (its MLAS kernels) of x along axis into y, input and output bound
    (no allocation per call), on `threads` intra-op threads."""
    graph = helper.make_graph(
        [helper.make_node("Softmax", ["x"], ["y"], axis=axis)], "softmax",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(y.shape))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 9
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    # Its idle pool threads would otherwise spin after each run and take the CPUs of whatever
    # candidate runs next (fastsoftmax's and PyTorch's sleep when idle, see OMP_WAIT_POLICY).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    binding = session.io_binding()
    binding.bind_cpu_input("x", x)
    binding.bind_output("y", "cpu", 0, y.dtype, y.shape, y.ctypes.data)

    def run() -> None:
        session.run_with_iobinding(binding)

    run.arrays = (x, y)  # type: ignore[attr-defined]  # the binding holds raw pointers into them
    return run
