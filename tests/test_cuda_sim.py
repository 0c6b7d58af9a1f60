"""The CUDA backend's real executor and kernels, run on the host by the simulator of
tests/cuda_sim/ (a thread per CUDA thread; no GPU, no nvcc): every family (warp, block and split
rows, top-k), every algorithm, dtype and operation, misaligned, strided and in-place rows, special
values, ties. The program checks each result against a long double reference and prints a summary.

This checks the kernels' control flow and indexing where no GPU is available; their accuracy to
the last bit is test_cuda_host.py's (the same arithmetic, emulated), and real hardware is
test_cuda_gpu.py's."""

from __future__ import annotations

import sys

import pytest
from test_cpp_consumer import REPO_ROOT, RUN_TIMEOUT, cmake  # noqa: F401  (cmake: the fixture)

SIM_TIMEOUT = 600


@pytest.mark.skipif(sys.platform != "linux", reason="the simulator uses GCC/Clang builtins and std::barrier (Linux CI)")
def test_kernels_in_the_simulator(cmake, tmp_path):  # noqa: F811
    if not (REPO_ROOT / "tests" / "cuda_sim" / "CMakeLists.txt").is_file():
        pytest.skip(f"no fastsoftmax source tree at {REPO_ROOT}")
    build = tmp_path / "sim-build"
    cmake.configure(REPO_ROOT, build, "-DFASTSOFTMAX_CUDA=OFF", "-DFASTSOFTMAX_BUILD_CUDA_SIM=ON",
                    "-DFASTSOFTMAX_INSTALL=OFF", what="the CUDA simulator")
    cmake.run([cmake.executable, "--build", build, "--config", "Release", "--target", "fastsoftmax_cuda_sim"],
              "build the CUDA simulator", SIM_TIMEOUT)
    program = next(p for p in build.rglob("fastsoftmax_cuda_sim*") if p.is_file() and p.suffix in ("", ".exe"))
    output = cmake.run([program, "--quick"], "run the kernels in the simulator", max(RUN_TIMEOUT, SIM_TIMEOUT))
    print(output)
    summary = output.strip().splitlines()[-1]
    cases, failed = int(summary.split()[0]), int(summary.split()[2])
    assert failed == 0 and cases > 300, output
