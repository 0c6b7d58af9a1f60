"""The installed C++ library works for a downstream CMake project (tests/cpp_consumer/).

The consumer calls ``find_package(fastsoftmax 0.1 CONFIG REQUIRED)`` and links
``fastsoftmax::fastsoftmax``; its program checks softmax/log_softmax results on every supported
ISA and algorithm, ``Options::temperature``, ``softmax_topk`` (indices, order and values), float16
and bfloat16 rows given as their bits, and the error statuses, against a long-double reference,
and prints "consumer ok". It is built against

- the installed Python package: once through ``-Dfastsoftmax_DIR=fastsoftmax.cmake_dir()`` and
  once through ``-DCMAKE_PREFIX_PATH=<package folder>`` (the folder the ``cmake.root`` entry
  point names, which scikit-build-core consumers get automatically);
- a plain CMake build of the repository installed with ``cmake --install`` into a temporary
  prefix (GNUInstallDirs layout), found through ``CMAKE_PREFIX_PATH``.

Needs cmake >= 3.18 (on PATH or the ``cmake`` package of the [test] extra) and a C++ compiler;
skips otherwise. Uses Ninja when available.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import fastsoftmax
from fastsoftmax import _core
import pytest

HERE = Path(__file__).resolve().parent
CONSUMER_SOURCE = HERE / "cpp_consumer"
REPO_ROOT = HERE.parent
MIN_CMAKE = (3, 18)
CONFIGURE_TIMEOUT = 600  # seconds
BUILD_TIMEOUT = 1800  # the library build compiles every kernel set
RUN_TIMEOUT = 300


# ---- Tools -------------------------------------------------------------------------------------


def _tool_candidates(name: str, module: str, attribute: str) -> list[str]:
    """Where ``name`` may be: PATH, this interpreter's scripts folder, the PyPI package's bin dir."""
    candidates = [shutil.which(name), shutil.which(name, path=sysconfig.get_path("scripts"))]
    try:
        bin_dir = getattr(__import__(module), attribute)
        candidates.append(shutil.which(name, path=str(bin_dir)))
    except Exception:  # not installed, or an unexpected layout
        pass
    unique = []
    for candidate in candidates:
        if candidate and candidate not in unique:
            unique.append(candidate)
    return unique


def _version_output(executable: str) -> str | None:
    """``executable --version`` output, or None if it does not run (e.g. a dangling pyenv shim)."""
    try:
        result = subprocess.run([executable, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout if result.returncode == 0 else None


def _find_cmake() -> tuple[str | None, str]:
    """(cmake executable, "") or (None, why none is usable)."""
    seen = []
    for candidate in _tool_candidates("cmake", "cmake", "CMAKE_BIN_DIR"):
        output = _version_output(candidate)
        match = re.search(r"version (\d+)\.(\d+)", output or "")
        if match is None:
            seen.append(f"{candidate} (does not run)")
            continue
        version = (int(match.group(1)), int(match.group(2)))
        if version >= MIN_CMAKE:
            return candidate, ""
        seen.append(f"{candidate} (version {version[0]}.{version[1]})")
    wanted = ".".join(map(str, MIN_CMAKE))
    return None, f"no cmake >= {wanted} found (looked at: {', '.join(seen) or 'nothing on PATH'}); " \
        "install the [test] extra or put cmake on PATH"


def _find_ninja() -> str | None:
    for candidate in _tool_candidates("ninja", "ninja", "BIN_DIR"):
        if _version_output(candidate) is not None:
            return candidate
    return None


def _find_cxx_compiler() -> tuple[str | None, str]:
    """(compiler, "") or (None, why none was found). CMake itself picks the compiler the same way."""
    cxx = os.environ.get("CXX", "").strip()
    if cxx:
        compiler = shutil.which(shlex.split(cxx)[0])
        return (compiler, "") if compiler else (None, f"CXX={cxx!r} is not an executable")
    names = ("c++", "g++", "clang++", "cl") if sys.platform == "win32" else ("c++", "g++", "clang++")
    for name in names:
        compiler = shutil.which(name)
        if compiler:
            return compiler, ""
    if sys.platform == "win32":  # Visual Studio generators locate MSVC without it being on PATH
        return "msvc", ""
    return None, f"no C++ compiler found (CXX unset; none of {', '.join(names)} on PATH)"


class CMake:
    """Runs cmake steps, keeping the output of each for failure messages."""

    def __init__(self, executable: str, ninja: str | None) -> None:
        self.executable = executable
        self.generator_args = ["-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}"] if ninja else []
        self.env = dict(os.environ)
        # The consumer's auto-ISA checks must not depend on the caller's forced ISA.
        self.env.pop("FASTSOFTMAX_ISA", None)
        self.log: list[str] = []

    def run(self, args: list[str], what: str, timeout: float) -> str:
        command = [str(a) for a in args]
        header = f"---- {what}\n$ {shlex.join(command)}"
        try:
            result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    env=self.env, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as error:
            output = error.stdout if isinstance(error.stdout, str) else (error.stdout or b"").decode(errors="replace")
            self.log.append(f"{header}\n{output}\n(timed out after {timeout} s)")
            self._fail(f"{what} timed out after {timeout} s")
        self.log.append(f"{header}\n{result.stdout}\n(exit {result.returncode})")
        if result.returncode != 0:
            self._fail(f"{what} failed with exit status {result.returncode}")
        return result.stdout

    def _fail(self, message: str) -> None:
        full_log = "\n".join(self.log)
        pytest.fail(f"{message}\n\nbuild log:\n{full_log}", pytrace=False)

    def configure(self, source: Path, build: Path, *defines: str, what: str) -> str:
        return self.run([self.executable, "-S", source, "-B", build, *self.generator_args,
                         "-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF", *defines],
                        f"configure {what}", CONFIGURE_TIMEOUT)

    def build(self, build: Path, what: str) -> str:
        return self.run([self.executable, "--build", build, "--config", "Release",
                         "--parallel", str(os.cpu_count() or 2)], f"build {what}", BUILD_TIMEOUT)


@pytest.fixture(scope="module")
def cmake() -> CMake:
    executable, why = _find_cmake()
    if executable is None:
        pytest.skip(why)
    compiler, why = _find_cxx_compiler()
    if compiler is None:
        pytest.skip(why)
    return CMake(executable, _find_ninja())


# ---- The consumer ------------------------------------------------------------------------------


def _cached_package_dir(build: Path) -> Path:
    """The fastsoftmax_DIR that find_package settled on, from the consumer's CMakeCache.txt."""
    cache = (build / "CMakeCache.txt").read_text(encoding="utf-8", errors="replace")
    match = re.search(r"^fastsoftmax_DIR:[A-Z]+=(.*)$", cache, re.MULTILINE)
    assert match, "fastsoftmax_DIR is not in the consumer's CMakeCache.txt"
    return Path(match.group(1).strip()).resolve()


def _consumer_executable(build: Path) -> Path:
    for relative in ("consumer", "consumer.exe", "Release/consumer", "Release/consumer.exe"):
        path = build / relative
        if path.is_file():
            return path
    pytest.fail(f"the consumer executable was not found under {build}")


def build_and_run_consumer(cmake: CMake, build: Path, *defines: str, expected_dir: Path,
                           expect_cuda: bool = _core.cuda_compiled) -> str:
    """Configures, builds and runs tests/cpp_consumer; returns the program's output."""
    cmake.configure(CONSUMER_SOURCE, build, *defines, what="the consumer")
    found = _cached_package_dir(build)
    assert found == expected_dir.resolve(), (
        f"find_package used {found}, not the package under test {expected_dir}\n" + "\n".join(cmake.log))
    cmake.build(build, "the consumer")
    output = cmake.run([_consumer_executable(build)], "run the consumer", RUN_TIMEOUT)
    print(output)
    assert "consumer ok" in output, "\n".join(cmake.log)
    # The CUDA backend's consumer, built where the package has fastsoftmax::fastsoftmax_cuda.
    cuda_consumer = [build / name for name in ("consumer_cuda", "consumer_cuda.exe", "Release/consumer_cuda.exe")]
    built = [path for path in cuda_consumer if path.is_file()]
    if expect_cuda:
        assert built, "the package has the CUDA backend, but the consumer did not build consumer_cuda"
    else:
        assert not built, "a package without the CUDA backend gave the consumer fastsoftmax::fastsoftmax_cuda"
    for path in built:
        cuda_output = cmake.run([path], "run the CUDA consumer", RUN_TIMEOUT)
        print(cuda_output)
        assert "cuda consumer ok" in cuda_output, cuda_output
    return output


# ---- Against the installed Python package ------------------------------------------------------


@pytest.fixture(scope="module")
def package_cmake_dir() -> Path:
    try:
        return Path(fastsoftmax.cmake_dir())
    except FileNotFoundError as error:
        pytest.fail(f"the installed fastsoftmax package ({fastsoftmax.__file__}) has no CMake package: {error}")


def test_consumer_with_fastsoftmax_dir(cmake, package_cmake_dir, tmp_path):
    """-Dfastsoftmax_DIR=fastsoftmax.cmake_dir(), as the README documents."""
    output = build_and_run_consumer(cmake, tmp_path / "consumer", f"-Dfastsoftmax_DIR={package_cmake_dir}",
                                    expected_dir=package_cmake_dir)
    assert f"fastsoftmax {fastsoftmax.__version__} " in output
    supported = re.search(r"^supported ISAs: (.*)$", output, re.MULTILINE)
    assert supported and supported.group(1).split() == fastsoftmax.available_isas()
    # C++'s cpu_features() and Python's agree (f16c included).
    features = re.search(r"^cpu features: (.*)$", output, re.MULTILINE)
    assert features, output
    seen = {name: value == "1" for name, value in (item.split("=") for item in features.group(1).split())}
    python_features = fastsoftmax.cpu_features()
    assert seen == {name: python_features[name] for name in seen}


def test_consumer_with_package_prefix(cmake, package_cmake_dir, tmp_path):
    """-DCMAKE_PREFIX_PATH=<package folder>: the folder the cmake.root entry point names."""
    entry_points = [ep for ep in importlib.metadata.entry_points(group="cmake.root") if ep.name == "fastsoftmax"]
    assert entry_points, "the installed distribution declares no cmake.root entry point named fastsoftmax"
    module = entry_points[0].load()
    prefix = Path(module.__file__).resolve().parent
    assert prefix == Path(fastsoftmax.__file__).resolve().parent
    output = build_and_run_consumer(cmake, tmp_path / "consumer", f"-DCMAKE_PREFIX_PATH={prefix}",
                                    expected_dir=package_cmake_dir)
    assert f"fastsoftmax {fastsoftmax.__version__} " in output


# ---- Against a plain `cmake --install` of the repository ---------------------------------------


def test_consumer_with_cmake_install(cmake, tmp_path):
    """Builds the library from the repository root (default options), installs it into a
    temporary prefix and builds the consumer against that prefix."""
    if not (REPO_ROOT / "CMakeLists.txt").is_file() or not (REPO_ROOT / "cpp" / "CMakeLists.txt").is_file():
        pytest.skip(f"no fastsoftmax source tree at {REPO_ROOT}")
    library_build = tmp_path / "library-build"
    prefix = tmp_path / "prefix"
    # CPU only: the library builds and installs without the CUDA backend too (and CI's time
    # goes to one CUDA build, the package's).
    cmake.configure(REPO_ROOT, library_build, f"-DCMAKE_INSTALL_PREFIX={prefix}", "-DFASTSOFTMAX_CUDA=OFF",
                    what="the library")
    cmake.build(library_build, "the library")
    cmake.run([cmake.executable, "--install", library_build, "--config", "Release"], "install the library",
              CONFIGURE_TIMEOUT)

    # The GNUInstallDirs layout, not the wheel's fastsoftmax/ sub-folder.
    assert (prefix / "include" / "fastsoftmax" / "fastsoftmax.h").is_file()
    assert (prefix / "include" / "fastsoftmax" / "version.h").is_file()
    assert not (prefix / "fastsoftmax").exists(), "a plain install must not use the wheel's fastsoftmax/ prefix"
    config_dirs = [d for d in prefix.glob("lib*/cmake/fastsoftmax") if (d / "fastsoftmaxConfig.cmake").is_file()]
    assert len(config_dirs) == 1, f"expected one lib*/cmake/fastsoftmax/fastsoftmaxConfig.cmake under {prefix}"
    libraries = list(config_dirs[0].parent.parent.glob("*fastsoftmax.*"))
    assert any(p.suffix in (".a", ".lib") for p in libraries), f"no static library next to {config_dirs[0]}"

    build_and_run_consumer(cmake, tmp_path / "consumer", f"-DCMAKE_PREFIX_PATH={prefix}",
                           expected_dir=config_dirs[0], expect_cuda=False)


def test_ignored_status_warns(package_cmake_dir, tmp_path):
    """Status is [[nodiscard]]: ignoring what any function returns draws a compiler warning."""
    compiler, why = _find_cxx_compiler()
    if compiler is None or compiler == "msvc":
        pytest.skip(why or "the check reads GCC/Clang diagnostics")
    source = CONSUMER_SOURCE / "ignored_status.cc"
    include = package_cmake_dir.parents[2] / "include"
    result = subprocess.run([compiler, "-std=c++17", "-fsyntax-only", f"-I{include}", str(source)],
                            capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)
    ignored = [number for number, line in enumerate(source.read_text().splitlines(), 1) if "// IGNORED" in line]
    warned = {int(m.group(1)) for m in re.finditer(r"ignored_status\.cc:(\d+):\d+: warning: .*nodiscard", result.stderr)}
    assert len(ignored) >= 19
    assert warned == set(ignored), result.stderr
