"""Sphinx configuration: the API reference of fastsoftmax, from its numpydoc docstrings.

Build it with the package installed (``pip install ".[test]"``)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

``tests/test_docs.py`` runs this build with warnings as errors.
"""

import fastsoftmax

project = "fastsoftmax"
author = "fastsoftmax developers"
copyright = "fastsoftmax developers"
release = fastsoftmax.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "numpydoc",  # the docstrings' style: Parameters / Returns / Examples sections
    "myst_parser",  # architecture.md, kept as Markdown beside this file
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# The native classes (pybind11) and the pure-Python functions are documented as the package
# exports them: `fastsoftmax.softmax`, `fastsoftmax.Explanation`.
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # the numpydoc Parameters sections give the types
add_module_names = False

# numpydoc: no autosummary tables of class members (the class directive lists them itself).
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

# Every cross-reference must resolve (`-W` turns a broken one into an error).
nitpicky = True
nitpick_ignore = [
    ("py:class", "array_like"),
    ("py:class", "optional"),
]

html_theme = "alabaster"
html_title = f"fastsoftmax {release}"
