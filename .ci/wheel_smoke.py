"""Smoke test of an installed fastsoftmax: import it, compute softmax, log_softmax and
softmax_topk on every ISA this build and CPU can run, and compare with a NumPy float64 reference.

Used by .ci/run's wheel job (with --no-compiler: fails if a C or C++ compiler is on PATH, to show
that the installed wheel needs none) and by cibuildwheel's test-command (pyproject.toml). Run it
from outside the source tree, so that `import fastsoftmax` finds the installed package.
"""

from __future__ import annotations

import shutil
import sys

import numpy as np

import fastsoftmax


def reference_softmax(x: np.ndarray) -> np.ndarray:
    shifted = x.astype(np.float64) - x.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


def reference_log_softmax(x: np.ndarray) -> np.ndarray:
    shifted = x.astype(np.float64) - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def main(argv: list[str]) -> int:
    if "--no-compiler" in argv:
        found = {name: shutil.which(name) for name in ("c++", "g++", "gcc", "cc", "clang", "clang++")}
        on_path = {name: path for name, path in found.items() if path}
        assert not on_path, f"a compiler is on PATH: {on_path}"
    print(f"fastsoftmax {fastsoftmax.__version__} from {fastsoftmax.__file__}")
    print(f"NumPy {np.__version__}; ISAs available here: {fastsoftmax.available_isas()}")

    rng = np.random.default_rng(0)
    for dtype, rtol in ((np.float32, 2e-6), (np.float64, 1e-13)):
        # Row lengths around and beyond the SIMD blocks, and a batch of short rows.
        for shape in ((1,), (3,), (17,), (1000,), (5, 64), (64, 7)):
            x = (rng.standard_normal(shape) * 10).astype(dtype)
            want = reference_softmax(x)
            want_log = reference_log_softmax(x)
            for isa in ["auto", *fastsoftmax.available_isas()]:
                y = fastsoftmax.softmax(x, isa=isa)
                assert y.dtype == dtype and y.shape == x.shape, (isa, y.dtype, y.shape)
                np.testing.assert_allclose(y, want, rtol=rtol, atol=0, err_msg=f"softmax {isa} {dtype} {shape}")
                log_y = fastsoftmax.log_softmax(x, isa=isa)
                np.testing.assert_allclose(log_y, want_log, rtol=rtol, atol=rtol,
                                           err_msg=f"log_softmax {isa} {dtype} {shape}")
                k = min(3, shape[-1])
                values, indices = fastsoftmax.softmax_topk(x, k, isa=isa)
                order = np.argsort(-want, axis=-1, kind="stable")[..., :k]
                np.testing.assert_array_equal(indices, order, err_msg=f"softmax_topk {isa} {dtype} {shape}")
                np.testing.assert_allclose(values, np.take_along_axis(want, order, axis=-1), rtol=rtol, atol=0,
                                           err_msg=f"softmax_topk {isa} {dtype} {shape}")
    print(fastsoftmax.softmax(np.float32([1, 2, 3])))
    print("wheel smoke test ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
