"""Multi-threading: the num_threads argument, the default thread count (set_num_threads /
get_num_threads, FASTSOFTMAX_NUM_THREADS, OMP_NUM_THREADS, CPU affinity), results independent of
the thread count (rows shared out, long rows split with their reductions merged, special values
in any one slice of a split row), concurrent calls from many Python threads, and fork safety.

Results are compared with the extended-precision reference within the single-threaded bounds;
references are computed once per input and reused for every algorithm, ISA and thread count.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import textwrap
import threading
import time

import fastsoftmax
import numpy as np
import pytest
from reference import SOFTMAX_ULP_F32_LONG, assert_matches_reference, reference

pytestmark = pytest.mark.usefixtures("fail_instead_of_hanging")

FUNCS = {"softmax": fastsoftmax.softmax, "log_softmax": fastsoftmax.log_softmax}
TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
THREAD_COUNTS = (1, 2, 3)
SPLIT_THREAD_COUNTS = (2, 3)  # a row is only split with more than one thread
LONG_ROW = 300_000  # float32 elements: a few such rows are each split across the threads


def sample(shape, dtype=np.float32, seed=0, scale=10.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, scale, shape).astype(dtype)


@pytest.fixture(autouse=True)
def restore_default_threads():
    """Every test here leaves the process-wide default as it found it (the automatic one)."""
    yield
    fastsoftmax.set_num_threads(None)


# ---- Inputs, with references computed once ---------------------------------------------------


def _shapes() -> dict:
    return {
        # many short rows: shared out among the threads by rows
        "64x3000": lambda: sample((64, 3000), seed=1),
        # few long rows (3 rows for 2 threads: each row split)
        "3x200003": lambda: sample((3, 200_003), seed=2),
        # one long row of odd length, split across the threads
        "1x300001": lambda: sample((1, LONG_ROW + 1), seed=3, scale=3.0),
        # one 1M row (1-D)
        "1M": lambda: sample(1_000_000, seed=4, scale=4.0),
        # float64: many rows; one long row of N(0, 100) (out= tests) and one of N(0, 10)
        "f64-48x2000": lambda: sample((48, 2000), np.float64, seed=5),
        "f64-1x300000-N(0,100)": lambda: sample((1, LONG_ROW), np.float64, seed=6, scale=100.0),
        "f64-1x300000-N(0,10)": lambda: sample((1, LONG_ROW), np.float64, seed=7, scale=10.0),
    }


SHAPES = _shapes()


def _special_rows() -> dict:
    """One 300K-element float32 row each, the special value(s) in one slice of a split row."""
    n = LONG_ROW
    base = sample(n, seed=8)

    def with_values(**at):
        row = base.copy()
        for where, value in at.items():
            row[{"start": 0, "second": 1, "middle": n // 2, "third": n // 3 + 1, "end": n - 1}[where]] = value
        return row

    def neg_inf_but(i: int, value: float = 1.5):
        row = np.full(n, -np.inf, np.float32)
        row[i] = value
        return row

    # Slices with very different maxima: the merged sums must be rescaled correctly. One half is
    # 40 lower than the other, whose maximum is 60 at its far end: the lower half's outputs are
    # tiny, many of them subnormal.
    max_at_end = base.copy()
    max_at_end[: n // 2] -= 40.0
    max_at_end[-1] = 60.0
    max_at_start = base.copy()
    max_at_start[n // 2 :] -= 40.0
    max_at_start[0] = 60.0
    return {
        "nan-at-end": lambda: with_values(end=np.nan),
        "inf-in-middle": lambda: with_values(middle=np.inf),
        "inf-in-first-and-last-slice": lambda: with_values(second=np.inf, end=np.inf),
        "neg-inf-but-one-near-end": lambda: neg_inf_but(n - 3),
        "all-neg-inf": lambda: np.full(n, -np.inf, np.float32),
        # a huge value (beyond the kernels' fast range) only in the last slice, -inf in another
        "huge-at-end-neg-inf-in-second-slice": lambda: with_values(start=-3e38, third=-np.inf, end=1e30),
        "two-scales-max-at-end": lambda: max_at_end,
        "two-scales-max-at-start": lambda: max_at_start,
    }


SPECIAL_ROWS = _special_rows()


@functools.cache
def case(table: str, name: str) -> np.ndarray:
    x = {"shapes": SHAPES, "special": SPECIAL_ROWS}[table][name]()
    x.flags.writeable = False  # shared by many tests
    return x


@functools.cache
def case_reference(table: str, name: str, log: bool) -> np.ndarray:
    return reference(case(table, name), log=log)


def check(func_name, table, name, y, context="", bound=None) -> None:
    log = func_name == "log_softmax"
    x = case(table, name)
    if bound is None and not log and x.dtype == np.float32 and x.shape[-1] >= 1_000_000:
        bound = SOFTMAX_ULP_F32_LONG  # as test_accuracy.py for its rows of 2^20
    assert_matches_reference(y, x, log=log, bound=bound, context=f"{func_name} {name} {context}",
                             ref=case_reference(table, name, log))


# ---- num_threads validation ------------------------------------------------------------------

BAD_THREADS = [0, -1, -8, 1.5, 2.0, "2", True, False, [2], np.float64(2.0), 1 + 0j]


@pytest.mark.parametrize("value", BAD_THREADS, ids=repr)
@pytest.mark.parametrize("shape", [(4, 300), (), (0,)], ids=["2d", "0d", "empty"])
def test_bad_num_threads_raise(func_name, value, shape):
    """0, negative and non-integer num_threads raise ValueError/TypeError; out is not written."""
    x = sample(shape)
    out = np.full(shape, -12345.0, np.float32)
    with pytest.raises((ValueError, TypeError)):
        FUNCS[func_name](x, num_threads=value)
    with pytest.raises((ValueError, TypeError)):
        FUNCS[func_name](x, num_threads=value, out=out)
    assert np.all(out == -12345.0)


@pytest.mark.parametrize("value", BAD_THREADS, ids=repr)
def test_bad_set_num_threads_raise(value):
    """set_num_threads rejects what num_threads rejects and keeps the default it had."""
    fastsoftmax.set_num_threads(3)
    with pytest.raises((ValueError, TypeError)):
        fastsoftmax.set_num_threads(value)
    assert fastsoftmax.get_num_threads() == 3


@pytest.mark.parametrize("value", [1, 2, 3, 4, 7, 64, 1000, 2**31 - 1, np.int64(2), np.int32(3)], ids=repr)
def test_valid_num_threads(func_name, value):
    """Any positive integer works (more threads than CPUs included) and gives correct results."""
    y = FUNCS[func_name](case("shapes", "1x300001"), num_threads=value)
    check(func_name, "shapes", "1x300001", y, f"num_threads={value!r}")


def test_num_threads_beyond_c_int(func_name):
    """'Any positive int': a value beyond 32 bits is capped like any other, not an error."""
    y = FUNCS[func_name](case("shapes", "64x3000"), num_threads=2**40)
    check(func_name, "shapes", "64x3000", y, "num_threads=2**40")


def test_num_threads_none_is_default(func_name):
    y = FUNCS[func_name](case("shapes", "64x3000"), num_threads=None)
    check(func_name, "shapes", "64x3000", y, "num_threads=None")


# ---- set_num_threads / get_num_threads -------------------------------------------------------


def test_set_get_round_trip():
    auto = fastsoftmax.get_num_threads()
    assert type(auto) is int and auto >= 1
    for n in (1, 2, 3, 5, 1000, np.int64(4)):
        fastsoftmax.set_num_threads(n)
        got = fastsoftmax.get_num_threads()
        assert type(got) is int and got == n, (n, got)
    fastsoftmax.set_num_threads(None)
    assert fastsoftmax.get_num_threads() == auto
    fastsoftmax.set_num_threads(2)
    fastsoftmax.set_num_threads(None)
    assert fastsoftmax.get_num_threads() == auto


@pytest.mark.parametrize("default", [1, 2, 3])
def test_calls_use_the_default(func_name, default):
    """With set_num_threads(n), calls with num_threads=None (or omitted) stay correct."""
    fastsoftmax.set_num_threads(default)
    for name in ("64x3000", "1x300001"):
        x = case("shapes", name)
        check(func_name, "shapes", name, FUNCS[func_name](x), f"default={default}")
        check(func_name, "shapes", name, FUNCS[func_name](x, num_threads=None, algorithm="two_pass"),
              f"default={default}, two_pass")


# ---- Environment (subprocesses: the variables are read by a fresh process) -------------------


def run_python(code: str, env_set: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if k not in ("FASTSOFTMAX_NUM_THREADS", "OMP_NUM_THREADS", "FASTSOFTMAX_ISA")}
    env.update(env_set)
    prelude = f"import sys; sys.path.insert(0, {TESTS_DIR!r})\n"
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], check=False, env=env,
                          capture_output=True, text=True, timeout=timeout)


ENV_CHECK = """
    import numpy as np, fastsoftmax
    from reference import assert_matches_reference
    n = fastsoftmax.get_num_threads()
    x = np.random.default_rng(0).normal(0, 10, (64, 3000)).astype(np.float32)
    assert_matches_reference(fastsoftmax.softmax(x), x)
    fastsoftmax.set_num_threads(1)
    assert fastsoftmax.get_num_threads() == 1
    fastsoftmax.set_num_threads(None)
    print(n, fastsoftmax.get_num_threads())
"""


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"FASTSOFTMAX_NUM_THREADS": "1"}, 1),
        ({"FASTSOFTMAX_NUM_THREADS": "3"}, 3),
        ({"OMP_NUM_THREADS": "1"}, 1),
        ({"OMP_NUM_THREADS": "3"}, 3),
        ({"FASTSOFTMAX_NUM_THREADS": "3", "OMP_NUM_THREADS": "1"}, 3),
        ({"FASTSOFTMAX_NUM_THREADS": "1", "OMP_NUM_THREADS": "3"}, 1),
    ],
    ids=["fs=1", "fs=3", "omp=1", "omp=3", "fs=3,omp=1", "fs=1,omp=3"],
)
def test_environment_sets_default(env, expected):
    """FASTSOFTMAX_NUM_THREADS, else OMP_NUM_THREADS, is the automatic default (also after
    set_num_threads(None))."""
    proc = run_python(ENV_CHECK, env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.split() == [str(expected), str(expected)], proc.stdout


def _cpus_available() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def test_default_is_cpus_available():
    """Neither variable set: the default is the number of CPUs this process may run on."""
    proc = run_python(ENV_CHECK, {})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.split() == [str(_cpus_available())] * 2, proc.stdout


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no os.sched_setaffinity here")
def test_default_honours_cpu_affinity():
    """A process restricted to one CPU defaults to one thread."""
    code = "import os\nos.sched_setaffinity(0, {min(os.sched_getaffinity(0))})\n" + textwrap.dedent(ENV_CHECK)
    proc = run_python(code, {})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.split() == ["1", "1"], proc.stdout


@pytest.mark.parametrize("value", ["0", "-2", "abc"])
def test_unusable_environment_value_does_not_crash(value):
    """An unusable FASTSOFTMAX_NUM_THREADS may be ignored or reported, never crash the process;
    if calls work, the default is still >= 1 and results are correct."""
    code = """
        import numpy as np, fastsoftmax
        from reference import assert_matches_reference
        try:
            n = fastsoftmax.get_num_threads()
            x = np.random.default_rng(0).normal(0, 10, (64, 3000)).astype(np.float32)
            assert_matches_reference(fastsoftmax.softmax(x), x)
        except (ValueError, RuntimeError) as exc:
            print("error", exc)
        else:
            assert type(n) is int and n >= 1, n
            print("ok", n)
    """
    proc = run_python(code, {"FASTSOFTMAX_NUM_THREADS": value})
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ---- Thread-count invariance -----------------------------------------------------------------


def test_thread_count_invariance(algorithm, isa, func_name):
    """Many short rows (1, 2, 3 threads), three long rows (2 threads) and one long row of odd
    length (2, 3 threads; 1 thread is test_accuracy.py's subject): within the single-threaded
    bounds."""
    for name, thread_counts in (("64x3000", THREAD_COUNTS), ("3x200003", (2,)), ("1x300001", SPLIT_THREAD_COUNTS)):
        x = case("shapes", name)
        for threads in thread_counts:
            y = FUNCS[func_name](x, algorithm=algorithm, isa=isa, num_threads=threads)
            assert y.dtype == x.dtype and y.shape == x.shape
            check(func_name, "shapes", name, y, f"{algorithm}/{isa} num_threads={threads}")


def test_one_million_row(algorithm, func_name):
    """One row of 10^6 float32 elements split across 2 and 3 threads (the best ISA)."""
    x = case("shapes", "1M")
    for threads in SPLIT_THREAD_COUNTS:
        y = FUNCS[func_name](x, algorithm=algorithm, num_threads=threads)
        check(func_name, "shapes", "1M", y, f"{algorithm} num_threads={threads}")


@pytest.mark.parametrize("name", ["f64-48x2000", "f64-1x300000-N(0,10)"])
def test_float64_thread_count_invariance(algorithm, func_name, name):
    """float64 (the scalar long-double kernels on every ISA, so the best ISA only): many rows, one
    long row; 1, 2, 3 threads within the float64 bounds."""
    x = case("shapes", name)
    for threads in THREAD_COUNTS:
        y = FUNCS[func_name](x, algorithm=algorithm, num_threads=threads)
        assert y.dtype == np.float64
        check(func_name, "shapes", name, y, f"{algorithm} num_threads={threads}")


@pytest.mark.parametrize("name", list(SPECIAL_ROWS))
def test_special_values_in_one_slice_of_a_split_row(algorithm, isa, func_name, name):
    """A 300K row split across 2 or 3 threads keeps the special-value rules wherever the value is:
    NaN anywhere -> all NaN; +inf entries share the mass; only -inf -> NaN; -inf -> exactly 0."""
    x = case("special", name)
    for threads in SPLIT_THREAD_COUNTS:
        y = FUNCS[func_name](x, algorithm=algorithm, isa=isa, num_threads=threads)
        check(func_name, "special", name, y, f"{algorithm}/{isa} num_threads={threads}")


@pytest.mark.parametrize("threads", SPLIT_THREAD_COUNTS)
def test_special_rows_among_long_rows(func_name, isa, threads):
    """A few long rows, each with a different special value in a different place, in one call."""
    names = ["nan-at-end", "inf-in-middle", "neg-inf-but-one-near-end", "two-scales-max-at-end"]
    x = np.stack([case("special", n) for n in names])
    y = FUNCS[func_name](x, isa=isa, num_threads=threads)
    for i, name in enumerate(names):
        check(func_name, "special", name, y[i], f"row {i} of {len(names)}, {isa} num_threads={threads}")


@pytest.mark.parametrize("threads", SPLIT_THREAD_COUNTS)
def test_out_and_in_place_with_threads(func_name, dtype, threads):
    """out= (contiguous and a strided view) and out=x, with threads, on many rows and a long row."""
    func = FUNCS[func_name]
    names = ("64x3000", "1x300001") if dtype == np.float32 else ("f64-48x2000", "f64-1x300000-N(0,100)")
    for name in names:
        x = case("shapes", name).astype(dtype)
        ref = case_reference("shapes", name, func_name == "log_softmax")
        out = np.empty_like(x)
        assert func(x, out=out, num_threads=threads) is out
        assert_matches_reference(out, x, log=func_name == "log_softmax", context=f"{name} out", ref=ref)
        buf = np.full((x.shape[0] * 2, x.shape[1] * 2), -7.0, dtype)
        view = buf[::2, ::-2]
        assert func(x, out=view, num_threads=threads) is view
        assert_matches_reference(view, x, log=func_name == "log_softmax", context=f"{name} out view", ref=ref)
        mask = np.ones(buf.shape, bool)
        mask[::2, ::-2] = False
        assert np.all(buf[mask] == -7.0), "elements outside the out view were written"
        inplace = x.copy()
        assert func(inplace, out=inplace, num_threads=threads) is inplace
        assert_matches_reference(inplace, x, log=func_name == "log_softmax", context=f"{name} in place", ref=ref)


# ---- Concurrency -----------------------------------------------------------------------------


def _concurrency_jobs():
    """(x, axis, (softmax reference, log_softmax reference)) of mixed shapes, axes and dtypes;
    the first four are big enough for threads."""
    isas = fastsoftmax.available_isas()
    inputs = [
        (sample((48, 3000), seed=10), -1),  # many rows, threaded
        (sample(270_000, seed=11, scale=3.0), 0),  # one long row, split
        (sample((1024, 157), seed=12), 0),  # non-last axis, threaded (3 blocks of columns)
        (sample((16, 5000), np.float64, seed=17), -1),  # float64, threaded
        (sample((7, 100), seed=13), -1),
        (sample((33, 300), seed=14), 1),
        (sample((3, 5, 400), seed=15), 1),
        (sample(1000, seed=16), -1),
        (sample((40, 101), seed=18)[:, ::-2], 0),
        (sample((9, 13, 17), seed=19).T, -2),
    ]
    inputs[4][0][2, 5] = np.inf
    inputs[5][0][4, :] = -np.inf
    inputs[7][0][999] = np.nan
    jobs = []
    for x, axis in inputs:
        x.flags.writeable = False
        refs = (reference(x, axis), reference(x, axis, log=True))
        jobs.append((x, axis, refs))
    return jobs, isas


def test_concurrent_calls_from_python_threads():
    """8 Python threads x 200 calls of mixed shapes/axes/algorithms/ISAs/num_threads: every result
    is correct and every thread finishes."""
    jobs, isas = _concurrency_jobs()
    n_threads, n_calls = 8, 200
    big = {0, 1, 2, 3}  # the threaded jobs are taken one call in 8, to bound the checking time
    errors: list[str] = []
    done = [0] * n_threads
    barrier = threading.Barrier(n_threads)

    def work(t: int) -> None:
        rng = np.random.default_rng(1000 + t)
        try:
            barrier.wait(timeout=30)
            for i in range(n_calls):
                j = int(rng.integers(0, len(big))) if i % 8 == 0 else int(rng.integers(len(big), len(jobs)))
                x, axis, refs = jobs[j]
                log = bool(rng.integers(0, 2))
                kwargs = {
                    "algorithm": fastsoftmax.ALGORITHMS[int(rng.integers(0, len(fastsoftmax.ALGORITHMS)))],
                    "isa": ["auto", *isas][int(rng.integers(0, len(isas) + 1))],
                    "num_threads": [None, 1, 2, 3, 4][int(rng.integers(0, 5))],
                }
                func = fastsoftmax.log_softmax if log else fastsoftmax.softmax
                use_out = j not in big and i % 3 == 0
                out = np.empty(x.shape, x.dtype) if use_out else None
                y = func(x, axis=axis, out=out, **kwargs)
                if use_out:
                    assert y is out
                assert_matches_reference(y, x, axis=axis, log=log, ref=refs[log],
                                         context=f"thread {t} call {i} job {j} {kwargs}")
                done[t] += 1
        except BaseException as exc:  # reported by the main thread
            errors.append(f"thread {t}: {type(exc).__name__}: {exc}"[:2000])

    threads = [threading.Thread(target=work, args=(t,), daemon=True) for t in range(n_threads)]
    for th in threads:
        th.start()
    deadline = time.monotonic() + 120
    for th in threads:
        th.join(timeout=max(0.0, deadline - time.monotonic()))
    hung = [t for t, th in enumerate(threads) if th.is_alive()]
    assert not hung, f"threads {hung} did not finish within the timeout (calls done: {done})"
    assert not errors, "\n".join(errors[:5])
    assert done == [n_calls] * n_threads


def test_concurrent_set_num_threads():
    """set_num_threads from one thread while others compute: calls stay correct, nothing hangs."""
    x = case("shapes", "1x300001")
    ref = case_reference("shapes", "1x300001", False)
    errors: list[str] = []
    stop = threading.Event()

    def compute(t: int) -> None:
        try:
            for _ in range(8):
                assert_matches_reference(fastsoftmax.softmax(x), x, ref=ref, context=f"thread {t}")
        except BaseException as exc:
            errors.append(f"thread {t}: {type(exc).__name__}: {exc}"[:2000])

    def toggle() -> None:
        n = 0
        while not stop.is_set():
            fastsoftmax.set_num_threads([1, 2, 3, None][n % 4])
            n += 1

    workers = [threading.Thread(target=compute, args=(t,), daemon=True) for t in range(3)]
    toggler = threading.Thread(target=toggle, daemon=True)
    toggler.start()
    for th in workers:
        th.start()
    deadline = time.monotonic() + 120
    for th in workers:
        th.join(timeout=max(0.0, deadline - time.monotonic()))
    stop.set()
    toggler.join(timeout=30)
    assert not any(th.is_alive() for th in [*workers, toggler]), "a thread did not finish"
    assert not errors, "\n".join(errors[:5])


# ---- Fork safety (in a subprocess, so that pytest itself never forks) -------------------------

FORK_SCRIPT = """
    import os, signal, sys, threading, time, traceback
    import numpy as np, fastsoftmax
    from reference import assert_matches_reference, reference

    BUSY = {busy}
    rng = np.random.default_rng(0)
    x = rng.normal(0, 10, (2, 300_000)).astype(np.float32)  # few long rows
    row = rng.normal(0, 3, 600_000).astype(np.float32)  # one long row
    many = rng.normal(0, 10, (256, 1000)).astype(np.float32)  # many rows
    refs = {{id(a): reference(a) for a in (x, row, many)}}

    def check_all(who, thread_counts):
        for a in (x, row, many):
            for nt in thread_counts:
                y = fastsoftmax.softmax(a, num_threads=nt)
                assert_matches_reference(y, a, ref=refs[id(a)], context=f"{{who}} num_threads={{nt}}")

    # The parent's pool exists (and has run) before the fork.
    check_all("parent before fork", (2,))

    stop = threading.Event()
    def busy():
        while not stop.is_set():
            fastsoftmax.softmax(x, num_threads=2)
    if BUSY:  # another thread of the parent is computing with the pool while we fork
        worker = threading.Thread(target=busy, daemon=True)
        worker.start()
        time.sleep(0.05)

    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            check_all("child", (None, 2, 3))
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush(); sys.stderr.flush()
            os._exit(code)

    deadline = time.monotonic() + 45
    status = None
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        print("child hung")
        sys.exit(3)
    stop.set()
    if BUSY:
        worker.join(timeout=30)
    check_all("parent after fork", (2,))
    print("child exit", os.waitstatus_to_exitcode(status))
    sys.exit(0 if os.waitstatus_to_exitcode(status) == 0 else 2)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork on this platform")
@pytest.mark.parametrize("busy", [False, True], ids=["idle-pool", "busy-pool"])
def test_fork_safety(busy):
    """After the parent has used threads, a forked child computes correctly with threads
    (num_threads=None, 2, 3) and exits; the parent's threads keep working. busy-pool: another
    thread of the parent is computing with threads while it forks."""
    proc = run_python(FORK_SCRIPT.format(busy=busy), {}, timeout=90)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "child exit 0" in proc.stdout, proc.stdout + proc.stderr
