"""No shared symbols from the target translation units.

Each SIMD target is compiled with its own instruction-set flags into its own namespace
(fastsoftmax::avx2, ::avx512, ::avx512_bf16). A weak or global symbol that such a unit emits
outside its namespace (a std:: template instantiated there, an inline function of a shared
header) could be the copy the linker keeps for the baseline code too, which would then die with
SIGILL on a CPU without those instructions. This inspects the installed static library with
binutils: every global or weak function that contains AVX instructions is in a target namespace,
and the object files that contain such code define nothing global or weak outside it.
"""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess

import fastsoftmax
import pytest

TARGETS = [i["name"] for i in fastsoftmax.implementations() if i["name"] != "scalar"]
# The mangled prefix of a target's namespace, e.g. "11fastsoftmax4avx2" (_ZN... or _ZNK...), also
# for the local entities (lambdas) of its functions, _ZZN... (_ZZZN... nested), which are as
# specific to the target as their enclosing function.
TARGET_NAMESPACE = re.compile(r"^_Z+N[KVR]*11fastsoftmax(?:" + "|".join(f"{len(t)}{t}" for t in TARGETS) + r")")
# An instruction with a VEX or EVEX encoding: AVX, AVX2, FMA, F16C, AVX-512 (x86-64 AT&T syntax).
AVX_INSTRUCTION = re.compile(r"^\s*[0-9a-f]+:\s+v[a-z0-9]+\s|%[yz]mm\d|%k[0-7]\b")
GLOBAL_TYPES = set("TWVDRBuiv")  # nm: defined global (upper case) or weak/unique symbols


def static_library() -> pathlib.Path:
    lib = pathlib.Path(fastsoftmax.cmake_dir()).parent.parent
    candidates = sorted(lib.glob("*fastsoftmax.a"))
    if not candidates:
        pytest.skip(f"no static library next to {fastsoftmax.cmake_dir()}")
    return candidates[0]


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} (binutils) is not on PATH")
    return path


def run(*command: str) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=True, timeout=300).stdout


def functions_with_avx(library: pathlib.Path) -> dict[str, set[str]]:
    """{object file: names of the functions whose disassembly has AVX instructions}."""
    found: dict[str, set[str]] = {}
    member, function = "", ""
    for line in run(tool("objdump"), "-d", "--no-show-raw-insn", str(library)).splitlines():
        if match := re.match(r"^(\S+\.o):\s+file format", line):
            member = match.group(1)
        elif match := re.match(r"^[0-9a-f]+ <(.+)>:$", line):
            function = match.group(1)
        elif function and AVX_INSTRUCTION.search(line):
            found.setdefault(member, set()).add(function)
    return found


def global_symbols(library: pathlib.Path) -> dict[str, dict[str, str]]:
    """{object file: {symbol: nm type}} of the defined global and weak symbols."""
    symbols: dict[str, dict[str, str]] = {}
    for line in run(tool("nm"), "-A", "--defined-only", str(library)).splitlines():
        match = re.match(r"^[^:]+:([^:]+\.o):\s*[0-9a-f]*\s+(\S)\s+(\S+)$", line)
        if match and match.group(2) in GLOBAL_TYPES:
            symbols.setdefault(match.group(1), {})[match.group(3)] = match.group(2)
    return symbols


def test_target_units_export_only_their_namespace():
    if not TARGETS or not any(t in fastsoftmax.compiled_isas() for t in TARGETS):
        pytest.skip("no SIMD target is compiled into this build")
    library = static_library()
    with_avx = functions_with_avx(library)
    symbols = global_symbols(library)
    # Not vacuous: the targets' kernels are found, with AVX code and in their namespaces.
    kernels = {name for names in with_avx.values() for name in names if TARGET_NAMESPACE.match(name)}
    assert kernels, f"no AVX function in a target namespace was found in {library}"

    leaks = []
    for member, names in with_avx.items():
        for name in names:
            if symbols.get(member, {}).get(name) and not TARGET_NAMESPACE.match(name):
                leaks.append(f"{member}: {name} ({symbols[member][name]}) has AVX instructions")
        # A unit compiled with target flags: nothing global or weak outside its namespace at all.
        if any(TARGET_NAMESPACE.match(name) for name in names):
            for symbol, kind in symbols.get(member, {}).items():
                if not TARGET_NAMESPACE.match(symbol):
                    leaks.append(f"{member}: {symbol} ({kind}) is global or weak outside the target namespaces")
    demangled = run(tool("c++filt"), *[leak.split(": ")[1].split(" ")[0] for leak in leaks]) if leaks else ""
    assert not leaks, "\n".join(leaks) + "\n" + demangled
