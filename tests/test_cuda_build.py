"""The CUDA backend's build, checked without a GPU.

- A machine with nvcc builds the extension ``fastsoftmax._cuda`` (``FASTSOFTMAX_CUDA=AUTO``), and
  ``_core.cuda_compiled`` says so.
- Without a GPU, ``cuda_available()`` is False and says why; ``import fastsoftmax`` never loads
  ``_cuda`` (CPU users pay nothing for it).
- The machine code of ``_cuda`` (``cuobjdump --dump-sass``, from the CUDA toolkit or the pip
  packages ``nvidia-cuda-cuobjdump`` and ``nvidia-cuda-nvdisasm``), per architecture compiled in:
  every row kernel (``*rows_kernel*``, ``split_*``) reads global memory 16 bytes at a time
  (``LDG.E.128``, ``LDG.E.128.CONSTANT``, ...), the warp and block row kernels reduce with warp
  shuffles (``SHFL.BFLY``, ...), and no function touches local memory (``LDL``/``STL``: spilled
  registers or arrays the compiler could not keep in registers).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import pathlib
import re
import shutil
import subprocess
import sys

import fastsoftmax
import pytest
from fastsoftmax import _core

CUDA_MODULE = "fastsoftmax._cuda"
# CUDA toolkit folders: where the tests look for nvcc besides PATH and CUDACXX (CMake's
# check_language(CUDA) searches $CUDA_PATH/bin; /usr/local/cuda/bin is the toolkit's default
# place), and for cuobjdump.
NVCC_BINS = [os.path.join(os.environ["CUDA_PATH"], "bin")] if os.environ.get("CUDA_PATH") else []
NVCC_BINS.append("/usr/local/cuda/bin")
TOOLKIT_BINS = NVCC_BINS + ([os.path.join(os.environ["CUDA_HOME"], "bin")] if os.environ.get("CUDA_HOME") else [])
# The pip packages that carry the tools (CUDA 13: no -cuXX suffix; CUDA 12: -cu12).
TOOL_PACKAGES = {
    "cuobjdump": ("nvidia-cuda-cuobjdump", "nvidia-cuda-cuobjdump-cu12"),
    "nvdisasm": ("nvidia-cuda-nvdisasm", "nvidia-cuda-nvdisasm-cu12"),
}


def nvcc() -> str | None:
    """The CUDA compiler the build would have found, or None."""
    candidates = [os.environ.get("CUDACXX", ""), shutil.which("nvcc") or ""]
    candidates += [os.path.join(d, "nvcc") for d in NVCC_BINS]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def cuda_module_path() -> pathlib.Path:
    spec = importlib.util.find_spec(CUDA_MODULE)
    if spec is None or spec.origin is None:
        pytest.skip(f"{CUDA_MODULE} is not built (no nvcc at build time, or FASTSOFTMAX_CUDA=OFF)")
    return pathlib.Path(spec.origin)


# ---- The build ---------------------------------------------------------------------------------


def test_nvcc_builds_the_cuda_module():
    compiler = nvcc()
    if compiler is None:
        pytest.skip("no nvcc (PATH, CUDACXX, $CUDA_PATH/bin, /usr/local/cuda/bin): the CUDA module is not expected")
    if os.environ.get("FASTSOFTMAX_CUDA", "").upper() == "OFF":
        pytest.skip("FASTSOFTMAX_CUDA=OFF: the CUDA module is not built")
    assert importlib.util.find_spec(CUDA_MODULE) is not None, (
        f"{compiler} is here, but the installed fastsoftmax ({os.path.dirname(fastsoftmax.__file__)}) has no "
        f"{CUDA_MODULE}: FASTSOFTMAX_CUDA=AUTO should have built it"
    )


def test_cuda_compiled_agrees_with_the_module():
    built = importlib.util.find_spec(CUDA_MODULE) is not None
    assert _core.cuda_compiled == built, f"_core.cuda_compiled is {_core.cuda_compiled}, {CUDA_MODULE} built: {built}"


def test_cuda_available_without_a_gpu():
    available = fastsoftmax.cuda_available()
    available_with_reason = fastsoftmax.cuda_available(reason=True)
    assert isinstance(available, bool)
    assert isinstance(available_with_reason, tuple) and len(available_with_reason) == 2
    flag, why = available_with_reason
    assert isinstance(flag, bool) and isinstance(why, str)
    assert flag == available
    if os.path.exists("/dev/nvidia0"):
        return  # a GPU may be usable here: only the types are this test's business
    assert available is False
    assert flag is False and why.strip(), f"cuda_available(reason=True) gave {available_with_reason!r}: no reason"


def test_importing_fastsoftmax_does_not_load_the_cuda_module(tmp_path):
    code = "import sys, fastsoftmax; print(' '.join(sorted(m for m in sys.modules if m.startswith('fastsoftmax'))))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120, cwd=tmp_path
    )
    loaded = result.stdout.split()
    assert "fastsoftmax._core" in loaded, f"the listing of sys.modules failed: {loaded}"
    assert CUDA_MODULE not in loaded, f"import fastsoftmax loaded {CUDA_MODULE}"


# ---- The machine code --------------------------------------------------------------------------

# One SASS instruction: /*0140*/  [@!P0 ]LDG.E.128.CONSTANT R4, desc[UR4][R4.64] ;  /* 0x...7981 */
INSTRUCTION = re.compile(r"^\s*/\*[0-9a-f]+\*/\s+(?:@!?\w+\s+)?([A-Z][A-Z0-9_]*(?:\.[A-Z0-9_]+)*)")
FUNCTION = re.compile(r"^\s*Function\s*:\s*(\S+)\s*$")
ARCH = re.compile(r"^\s*arch\s*=\s*(\S+)\s*$")
# cuobjdump --dump-elf-symbols: "FUNC  WEAK  DEFAULT  ENTRY  <name>" for a kernel (__global__).
ENTRY_SYMBOL = re.compile(r"^\s*FUNC\s.*\sENTRY\s+(\S+)\s*$")

ROW_KERNEL_MARKS = ("rows_kernel", "split_")
SHUFFLE_FAMILIES = ("warp_rows", "block_rows")


def parse_sass(text: str) -> dict[tuple[str, str], list[str]]:
    """{(architecture, function): the mnemonics of its instructions} from ``cuobjdump --dump-sass``.

    A function met twice for one architecture (two ELF images) gets both bodies.
    """
    functions: dict[tuple[str, str], list[str]] = {}
    arch, current = "?", None
    for line in text.splitlines():
        if match := ARCH.match(line):
            arch, current = match.group(1), None
        elif line.startswith("Fatbin"):
            current = None  # a new image; its "arch =" follows
        elif match := FUNCTION.match(line):
            current = functions.setdefault((arch, match.group(1)), [])
        elif current is not None and (match := INSTRUCTION.match(line)):
            current.append(match.group(1))
    return functions


def parse_entries(text: str) -> set[str]:
    """The kernels (ENTRY functions) in ``cuobjdump --dump-elf-symbols``."""
    return {match.group(1) for line in text.splitlines() if (match := ENTRY_SYMBOL.match(line))}


def base_name(symbol: str) -> str:
    """A function's own name, without namespaces, template arguments or parameter types.

    ``_ZN11fastsoftmax4cuda16warp_rows_kernelILi4EEEvPKfPNS0_11split_stateE`` -> ``warp_rows_kernel``
    (its parameter type ``split_state`` must not make it a split kernel); an unmangled (extern "C")
    name is itself. ptxas's ``$1`` suffixes of local functions are dropped.
    """
    symbol = re.sub(r"\$\d+$", "", symbol)
    if symbol.startswith("_ZN"):
        rest = re.sub(r"^[rVKRO]*", "", symbol[3:])  # cv- and ref-qualifiers of a member function
    elif symbol.startswith("_Z"):
        rest = symbol[2:]
    else:
        return symbol
    name = symbol
    while match := re.match(r"L?(\d+)", rest):  # <length><identifier>, until E (end) or I (template args)
        length, start = int(match.group(1)), match.end()
        name, rest = rest[start : start + length], rest[start + length :]
        if not symbol.startswith("_ZN"):
            break
    return name


def is_wide_global_load(mnemonic: str) -> bool:
    """A load of 16 (or 32) bytes from global memory: LDG.E.128[.CONSTANT|.STRONG.GPU|...], or an
    asynchronous copy of 16 bytes to shared memory (LDGSTS.E.BYPASS.128). Width modifiers are
    whole dot-separated fields (``LTC128B`` is an L2 prefetch hint, not a width)."""
    opcode, *modifiers = mnemonic.split(".")
    return opcode in ("LDG", "LDGSTS") and bool({"128", "256"} & set(modifiers))


def is_local_memory(mnemonic: str) -> bool:
    return mnemonic.split(".")[0] in ("LDL", "STL")


def is_shuffle(mnemonic: str) -> bool:
    return mnemonic.split(".")[0] == "SHFL"


def package_tool(tool: str) -> str | None:
    """The path of ``tool`` in its installed pip package (nvidia/cu13/bin/<tool>), or None."""
    for package in TOOL_PACKAGES[tool]:
        try:
            distribution = importlib.metadata.distribution(package)
        except importlib.metadata.PackageNotFoundError:
            continue
        for file in distribution.files or []:
            if file.name == tool and file.parent.name == "bin":
                path = str(distribution.locate_file(file))
                if os.access(path, os.X_OK):
                    return path
    return None


def find_tool(tool: str) -> str | None:
    candidates = [shutil.which(tool)] + [os.path.join(d, tool) for d in TOOLKIT_BINS] + [package_tool(tool)]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def cuobjdump() -> tuple[str, dict[str, str]]:
    """cuobjdump and the environment it runs in (it runs nvdisasm for --dump-sass: found next to
    it, on PATH, or in the folder NVDISASM_PATH names)."""
    tool = find_tool("cuobjdump")
    if tool is None:
        pytest.skip(
            "cuobjdump is not installed (PATH, CUDA toolkit, or pip: nvidia-cuda-cuobjdump and nvidia-cuda-nvdisasm)"
        )
    env = dict(os.environ)
    if not os.access(os.path.join(os.path.dirname(tool), "nvdisasm"), os.X_OK):
        disassembler = find_tool("nvdisasm")
        if disassembler is None:
            pytest.skip(f"{tool} needs nvdisasm for --dump-sass, which is not installed (pip: nvidia-cuda-nvdisasm)")
        env["NVDISASM_PATH"] = os.path.dirname(disassembler)
    return tool, env


def inspect(module: pathlib.Path) -> tuple[dict[tuple[str, str], list[str]], set[str], dict[str, str]]:
    """(the SASS functions, the kernel names, {symbol: readable name}) of ``module``."""
    tool, env = cuobjdump()
    outputs = []
    for option in ("--dump-sass", "--dump-elf-symbols"):
        result = subprocess.run(
            [tool, option, str(module)], capture_output=True, text=True, timeout=600, env=env, check=False
        )
        text = result.stdout + result.stderr
        assert "does not contain device code" not in text, f"{module} holds no device code: {text.strip()}"
        assert result.returncode == 0, f"{tool} {option} {module} failed ({result.returncode}):\n{text[-2000:]}"
        outputs.append(result.stdout)
    functions = parse_sass(outputs[0])
    names = sorted({name for _, name in functions})
    readable = dict(zip(names, names))
    if names and (cxxfilt := shutil.which("c++filt")):
        plain = [re.sub(r"\$\d+$", "", name) for name in names]
        demangled = subprocess.run(
            [cxxfilt], input="\n".join(plain), capture_output=True, text=True, timeout=60, check=False
        )
        if demangled.returncode == 0 and len(demangled.stdout.splitlines()) == len(names):
            readable = dict(zip(names, demangled.stdout.splitlines()))
    return functions, parse_entries(outputs[1]), readable


@pytest.fixture(scope="module")
def sass():
    functions, entries, readable = inspect(cuda_module_path())
    assert functions, "cuobjdump --dump-sass listed no function with machine code (only PTX in the module?)"
    return functions, entries, readable


def kernels_named(sass, marks: tuple[str, ...]) -> dict[tuple[str, str], list[str]]:
    """The kernels whose own name contains one of ``marks``, per architecture. Device functions
    that were not inlined are not kernels (their code is checked with every function)."""
    functions, entries, _ = sass
    # Without symbols (an unexpected listing), every function counts as a kernel.
    return {
        (arch, name): body
        for (arch, name), body in functions.items()
        if (name in entries or not entries) and any(mark in base_name(name) for mark in marks)
    }


def describe(sass, key: tuple[str, str]) -> str:
    arch, name = key
    return f"{arch} {sass[2].get(name, name)} ({name})"


def test_row_kernels_load_16_bytes(sass):
    row_kernels = kernels_named(sass, ROW_KERNEL_MARKS)
    kernels = ", ".join(sorted({base_name(name) for name in sass[1]}))
    assert row_kernels, f"no kernel named *{'* or *'.join(ROW_KERNEL_MARKS)}* in {CUDA_MODULE}; kernels: {kernels}"
    narrow = [
        f"{describe(sass, key)}: global loads {', '.join(sorted({m for m in body if m.startswith('LDG')})) or 'none'}"
        for key, body in sorted(row_kernels.items())
        if not any(is_wide_global_load(m) for m in body)
    ]
    assert not narrow, "row kernels without a 16-byte global load (LDG.E.128...):\n" + "\n".join(narrow)


@pytest.mark.parametrize("family", SHUFFLE_FAMILIES)
def test_warp_and_block_row_kernels_shuffle(sass, family):
    kernels = kernels_named(sass, (family,))
    assert kernels, f"no kernel named *{family}* in {CUDA_MODULE}"
    missing = [describe(sass, key) for key, body in sorted(kernels.items()) if not any(map(is_shuffle, body))]
    assert not missing, "kernels without a warp shuffle (SHFL):\n" + "\n".join(missing)


def test_no_local_memory(sass):
    functions = sass[0]
    spills = []
    for key, body in sorted(functions.items()):
        local = sorted({m for m in body if is_local_memory(m)})
        if local:
            count = sum(map(is_local_memory, body))
            spills.append(f"{describe(sass, key)}: {count} local memory instructions ({', '.join(local)})")
    assert not spills, "functions using local memory (spills or stack arrays):\n" + "\n".join(spills)


# ---- The parser, on cuobjdump 13's output (runs everywhere) -------------------------------------

SAMPLE_SASS = """
Fatbin elf code:
================
arch = sm_90
code version = [1,8]
host = linux
compile_size = 64bit

	code for sm_90
		Function : _ZN2fs12split_helperEPK6float4i$1
	.headerflags	@"EF_CUDA_SM90 EF_CUDA_VIRTUAL_SM(EF_CUDA_SM90)"
        /*0000*/                   LDL R0, [R1] ;                                     /* 0x0000000001007983 */
                                                                                      /* 0x000fe20000000800 */
		Function : _ZN2fs17block_rows_kernelILi4EEEvPK6float4PfPNS_11split_stateE
	.headerflags	@"EF_CUDA_SM90 EF_CUDA_VIRTUAL_SM(EF_CUDA_SM90)"
        /*0140*/              @!P0 LDG.E.128.CONSTANT R4, desc[UR4][R4.64] ;          /* 0x0000000404047981 */
        /*0190*/                   SHFL.BFLY PT, R3, R0, 0x10, 0x1f ;                  /* 0x0e001f0000037f89 */
        /*01a0*/                   STG.E.128 desc[UR4][R2.64], R8 ;                    /* 0x0000000802007986 */
		..........

Fatbin ptx code:
================
arch = sm_90
"""
SAMPLE_SYMBOLS = """
symbols:
FUNC          LOCAL   DEFAULT    -             _ZN2fs12split_helperEPK6float4i$1
FUNC          WEAK    DEFAULT    ENTRY         _ZN2fs17block_rows_kernelILi4EEEvPK6float4PfPNS_11split_stateE
"""


def test_parser_reads_cuobjdump_output():
    kernel = "_ZN2fs17block_rows_kernelILi4EEEvPK6float4PfPNS_11split_stateE"
    helper = "_ZN2fs12split_helperEPK6float4i$1"
    functions = parse_sass(SAMPLE_SASS)
    assert functions == {
        ("sm_90", helper): ["LDL"],
        ("sm_90", kernel): ["LDG.E.128.CONSTANT", "SHFL.BFLY", "STG.E.128"],
    }
    assert parse_entries(SAMPLE_SYMBOLS) == {kernel}
    assert base_name(kernel) == "block_rows_kernel" and base_name(helper) == "split_helper"
    assert base_name("_Z16warp_rows_kernelPKf") == "warp_rows_kernel" and base_name("c_kernel") == "c_kernel"
    assert base_name("_ZNK2fs5Split8split_atEv") == "split_at"
    # The helper is a device function, not a kernel; the kernel's split_state parameter is no split kernel.
    sample = (functions, parse_entries(SAMPLE_SYMBOLS), {})
    assert list(kernels_named(sample, ROW_KERNEL_MARKS)) == [("sm_90", kernel)]
    assert is_wide_global_load("LDG.E.128") and is_wide_global_load("LDGSTS.E.BYPASS.128")
    assert not is_wide_global_load("LDG.E.64") and not is_wide_global_load("LDG.E.LTC128B.CONSTANT")
    assert is_local_memory("LDL.LU.64") and is_local_memory("STL.128") and not is_local_memory("LDG.E")
