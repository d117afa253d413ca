"""The chapters of the book: one module per notebook, in reading order.

A chapter is one unit: ``notebooks/<name>.ipynb`` and the module ``initstudy.chapters.<name>``,
which declares

- ``SPEC``, the notebook's parameters (:class:`initstudy.study.catalog.NotebookSpec`; its
  ``claims`` are filled in here from ``CLAIMS``);
- ``CLAIMS``, the claims it settles (:class:`initstudy.study.claims.Claim`: criterion, negative
  control; their ``notebook`` is filled in here);
- its measurement functions, summaries and figures, which the notebook calls.

:data:`ORDER` lists the modules in reading order (the order of ``_toc.yml``; a test checks it).
The catalog (:data:`initstudy.study.catalog.NOTEBOOKS`) and the ledger
(:data:`initstudy.study.claims.LEDGER`) are read from here; every page that lists chapters or
claims is generated from them. ``CONTRIBUTING.md`` gives the steps to add a chapter.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Callable, Mapping

__all__ = ["ORDER", "EXTRA_ENV", "module_names", "extra_source_files", "modules", "specs", "ledger", "wire",
           "Declared"]

#: The chapter modules, in reading order.
ORDER: tuple[str, ...] = ("zero_init", "signal_depth", "xavier_kaiming", "fixup", "lsuv", "transfer")

#: Further chapter modules, importable dotted names separated by commas, read after :data:`ORDER`:
#: a chapter kept outside this package (a draft, or a test's tiny chapter) joins the catalog,
#: the ledger, ``run``, ``sweep``, the generated pages and the book's table of contents (after
#: the book's own chapters) this way, and its notebook's ``Run.start`` finds it, since the
#: kernel inherits the variable.
EXTRA_ENV = "INITSTUDY_CHAPTERS"


def module_names() -> tuple[str, ...]:
    extra = [n.strip() for n in os.environ.get(EXTRA_ENV, "").split(",") if n.strip()]
    return tuple(f"{__name__}.{name}" for name in ORDER) + tuple(extra)


def extra_source_files() -> list[Path]:
    """The source files of the chapters registered through :data:`EXTRA_ENV` (outside this
    package): part of the cache key with the package's own source."""
    files = []
    for name in module_names()[len(ORDER):]:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.origin:
            raise ValueError(f"{EXTRA_ENV} names the module {name!r}, which cannot be imported")
        files.append(Path(spec.origin))
    return files


def modules(names: tuple[str, ...] | None = None) -> list[ModuleType]:
    return [importlib.import_module(name) for name in (module_names() if names is None else names)]


def wire(module: ModuleType):
    """A chapter module's declarations, joined: its spec with its claims' ids, and its claims
    with its notebook's name. Raises ``ValueError`` when they do not fit together."""
    spec = module.SPEC
    claims = tuple(module.CLAIMS)
    ids = [c.id for c in claims]
    if len(set(ids)) != len(ids):
        raise ValueError(f"chapter {spec.name}: a claim id is declared twice: {ids}")
    if spec.claims and tuple(spec.claims) != tuple(ids):
        raise ValueError(f"chapter {spec.name}: SPEC.claims {spec.claims} differ from CLAIMS {ids}")
    if module.__name__.rpartition(".")[2] != spec.name:
        raise ValueError(f"chapter module {module.__name__} declares the notebook {spec.name!r}")
    constraints = tuple(spec.constraints) + tuple(contrast_constraint(c, k) for c in claims for k in c.contrasts)
    return (replace(spec, claims=tuple(ids), constraints=constraints),
            [replace(c, notebook=spec.name) for c in claims])


def contrast_constraint(claim, contrast):
    """A claim's contrast (:class:`initstudy.study.claims.Contrast`) as a constraint on its
    notebook's parameters: a value that leaves the comparison without an arm is refused before
    any work, with one line naming the parameter, the claim and what it needs."""
    from initstudy.study.catalog import Constraint

    def test(params) -> bool:
        return contrast.missing(params) is None

    text = f"{claim.id} compares {contrast.what}, so {contrast.param} {contrast.missing_text()}"
    return Constraint((contrast.param,), text, test)


@lru_cache(maxsize=None)
def _wired(names: tuple[str, ...]) -> tuple[dict, dict]:
    specs, ledger = {}, {}
    for module in modules(names):
        spec, claims = wire(module)
        specs[spec.name] = spec
        for c in claims:
            if c.id in ledger:
                raise ValueError(f"claim {c.id} is declared by two chapters")
            ledger[c.id] = c
    return specs, ledger


def specs() -> dict:
    """Every chapter's parameters, in reading order."""
    return dict(_wired(module_names())[0])


def ledger() -> dict:
    """Every chapter's claims, in reading order."""
    return dict(_wired(module_names())[1])


class Declared(Mapping):
    """A read-only view of what the chapters declare (``load``: :func:`specs` or :func:`ledger`),
    loaded on first use (the chapter modules import the catalog and the claims engine for their
    types) and again whenever the registered chapters change (:data:`EXTRA_ENV`)."""

    def __init__(self, load: Callable[[], dict]):
        self._load, self._items, self._names = load, None, None

    def _all(self) -> dict:
        names = module_names()
        if self._items is None or names != self._names:
            self._items, self._names = self._load(), names
        return self._items

    def __getitem__(self, key):
        return self._all()[key]

    def __iter__(self):
        return iter(self._all())

    def __len__(self):
        return len(self._all())

    def __repr__(self):
        return f"<declared: {', '.join(self)}>"
