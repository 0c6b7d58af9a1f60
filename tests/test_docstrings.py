"""The examples in the docstrings of the public API run as doctests, each docstring its own test.

Covered: the package docstring and every function and class of ``fastsoftmax.__all__`` (a class
with its methods and properties). The examples show true output on any machine: they use
arrays rather than NumPy scalars (whose repr differs between NumPy 1 and 2), name the ISA
where a result depends on it, and print under fixed NumPy print options.
"""

from __future__ import annotations

import doctest
import inspect

import fastsoftmax
import numpy as np
import pytest

OPTIONS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS

# NumPy's default print options, fixed so that a caller's settings cannot change the output.
PRINT_OPTIONS = dict(
    precision=8, threshold=1000, edgeitems=3, linewidth=75, suppress=False, nanstr="nan", infstr="inf",
    sign="-", floatmode="maxprec", legacy=False,
)

# At least this many examples must be found, so that the suite cannot pass by finding none.
MIN_EXAMPLES = 15


def _doctests() -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder()
    found = finder.find(fastsoftmax, "fastsoftmax", module=fastsoftmax, globs={})
    tests = [t for t in found if t.name == "fastsoftmax"]  # the package docstring alone
    for name in fastsoftmax.__all__:
        obj = getattr(fastsoftmax, name)
        if inspect.isroutine(obj) or inspect.isclass(obj):
            # module=False: a class's members count wherever they were defined (the native ones too).
            tests += finder.find(obj, f"fastsoftmax.{name}", module=False, globs={})
    return sorted((t for t in tests if t.examples), key=lambda t: t.name)


DOCTESTS = _doctests()


def test_examples_are_found():
    """The collection is not vacuous: the documented API carries examples."""
    assert sum(len(t.examples) for t in DOCTESTS) >= MIN_EXAMPLES, [t.name for t in DOCTESTS]
    names = {t.name for t in DOCTESTS}
    for expected in ("fastsoftmax", "fastsoftmax.softmax", "fastsoftmax.log_softmax", "fastsoftmax.softmax_topk",
                     "fastsoftmax.explain"):
        assert expected in names


@pytest.mark.parametrize("test", DOCTESTS, ids=[t.name for t in DOCTESTS])
def test_docstring_examples(test: doctest.DocTest):
    test.globs = {"np": np, "fastsoftmax": fastsoftmax}
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    report: list[str] = []
    with np.printoptions(**PRINT_OPTIONS):
        result = runner.run(test, out=report.append, clear_globs=True)
    assert result.attempted == len(test.examples)
    assert result.failed == 0, "".join(report)
