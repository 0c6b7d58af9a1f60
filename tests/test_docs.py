"""The API reference (docs/, Sphinx with autodoc and numpydoc) builds without a warning and
documents every public name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import fastsoftmax
import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.fixture(scope="module")
def html(tmp_path_factory) -> Path:
    """The HTML build of docs/, warnings as errors, with the fastsoftmax this test imports."""
    if not (DOCS / "conf.py").is_file():
        pytest.fail(f"no Sphinx project at {DOCS}")
    out = tmp_path_factory.mktemp("html")
    env = dict(os.environ)
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(fastsoftmax.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", "-q", str(DOCS), str(out)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, f"sphinx-build failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    assert proc.stderr.strip() == "", proc.stderr  # -q: only warnings and errors are printed
    return out


def test_docs_build_warning_free(html: Path):
    assert (html / "index.html").is_file()
    assert "The layers" in (html / "architecture.html").read_text(encoding="utf-8")


def test_every_public_name_is_documented(html: Path):
    api = (html / "api.html").read_text(encoding="utf-8")
    missing = [name for name in fastsoftmax.__all__ if f'id="fastsoftmax.{name}"' not in api]
    assert not missing, f"api.rst documents no entry for {missing}"
    properties = [name for name in dir(fastsoftmax.Explanation) if not name.startswith("_")]
    assert properties
    missing = [name for name in properties if f'id="fastsoftmax.Explanation.{name}"' not in api]
    assert not missing, f"Explanation members missing from the reference: {missing}"
    assert "Parameters" in api and "Returns" in api  # numpydoc turned the sections into fields
