"""The layering of the C++ sources (docs/architecture.md): kernels are leaves.

A kernel file (cpp/src/kernels/) includes only other kernel headers and the public types of
fastsoftmax.h, never the layers above it (planning, the CPU execution layer, the checked path):
kernels report declined rows and partial states instead of calling up. Skips outside a source tree.
"""

from __future__ import annotations

import pathlib
import re

import pytest

KERNELS = pathlib.Path(__file__).resolve().parent.parent / "cpp" / "src" / "kernels"
ALLOWED = re.compile(r'^(kernels/.+|fastsoftmax/fastsoftmax\.h)$')


def test_kernel_files_include_only_kernels():
    files = sorted(p for p in KERNELS.rglob("*") if p.suffix in (".h", ".cc"))
    if not files:
        pytest.skip(f"no source tree at {KERNELS}")
    above = [
        f"{path.relative_to(KERNELS.parent)}: #include \"{name}\""
        for path in files
        for name in re.findall(r'^\s*#\s*include\s+"([^"]+)"', path.read_text(encoding="utf-8"), re.MULTILINE)
        if not ALLOWED.match(name)
    ]
    assert not above, "kernel files include layers above them:\n" + "\n".join(above)
