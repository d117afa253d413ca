"""The ``>>>`` examples of the library's docstrings run as tests (under the network guard),
so an example that stops matching the code fails the suite."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import initstudy

MODULES = sorted(m.name for m in pkgutil.walk_packages(initstudy.__path__, "initstudy.")
                 if not m.name.endswith("__main__"))


def _examples(name: str) -> list[doctest.DocTest]:
    module = importlib.import_module(name)
    return [t for t in doctest.DocTestFinder(exclude_empty=True).find(module, name) if t.examples]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in _examples(name):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed (output above)"


def test_the_library_has_examples_and_this_test_finds_them():
    counts = {name: sum(len(t.examples) for t in _examples(name)) for name in MODULES}
    assert sum(counts.values()) >= 40, counts
    for name in ("initstudy.core.inits", "initstudy.study.claims", "initstudy.study.layout", "initstudy.study.catalog"):
        assert counts[name] > 0, name
