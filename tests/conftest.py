"""Shared fixtures: every algorithm and every ISA (unavailable ISAs skip, never fail)."""

from __future__ import annotations

import faulthandler
import os
import sys

import fastsoftmax
import numpy as np
import pytest

# Let test modules import the reference helpers as `reference`.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:  # a settings profile for the property tests; no example database in the source tree
    from hypothesis import settings

    settings.register_profile("fastsoftmax", database=None, deadline=None)
    settings.load_profile("fastsoftmax")
except ImportError:  # pragma: no cover - hypothesis is in the [test] extra
    pass

ALGORITHMS = fastsoftmax.ALGORITHMS  # "auto" and the four named algorithms
ISAS = fastsoftmax.ISAS[1:]  # every concrete ISA; those this CPU lacks are skipped


def skip_unless_available(isa: str) -> None:
    """pytest.skip unless this build and CPU can run ``isa``."""
    if isa not in fastsoftmax.available_isas():
        pytest.skip(f"ISA {isa!r} is not available here (available: {fastsoftmax.available_isas()})")


@pytest.fixture(params=ALGORITHMS)
def algorithm(request) -> str:
    """Every algorithm name, "auto" included."""
    return request.param


@pytest.fixture(params=ISAS)
def isa(request) -> str:
    """Every concrete ISA; skips those not in available_isas()."""
    skip_unless_available(request.param)
    return request.param


@pytest.fixture(params=["softmax", "log_softmax"])
def func_name(request) -> str:
    """ "softmax" or "log_softmax"."""
    return request.param


@pytest.fixture(params=[np.float32, np.float64], ids=["f32", "f64"])
def dtype(request):
    """The two natively computed dtypes."""
    return request.param


# A test using fail_instead_of_hanging that runs longer than this is taken to be deadlocked.
HANG_TIMEOUT_S = 240


@pytest.fixture(scope="session")
def real_stderr(pytestconfig):
    """The process's stderr as it was before pytest captured it (output capture is undone around
    the dup), for reports that must survive the process ending."""
    capman = pytestconfig.pluginmanager.getplugin("capturemanager")
    if capman is not None:
        with capman.global_and_fixture_disabled():
            fd = os.dup(2)
    else:
        fd = os.dup(2)
    with os.fdopen(fd, "w") as f:
        yield f


@pytest.fixture
def fail_instead_of_hanging(real_stderr):
    """A test still running after HANG_TIMEOUT_S (threads deadlocked in the library, say) writes
    every Python thread's traceback to stderr and ends the test process (exit status 1), rather
    than hanging the run."""
    faulthandler.dump_traceback_later(HANG_TIMEOUT_S, exit=True, file=real_stderr)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture
def isa_env_unset():
    """For tests whose expectations assume FASTSOFTMAX_ISA is not forcing an ISA in this process."""
    if os.environ.get("FASTSOFTMAX_ISA"):
        pytest.skip("FASTSOFTMAX_ISA is set for this test run")


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` skip, saying why, where no CUDA device is usable."""
    gpu_tests = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_tests:
        return
    usable, why = fastsoftmax.cuda_available(reason=True)
    if not usable:
        skip = pytest.mark.skip(reason=f"no usable CUDA device: {why}")
        for item in gpu_tests:
            item.add_marker(skip)
