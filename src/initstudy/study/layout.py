"""Where everything lives: the repository root, the results layout and the default profile.

The one home of these paths. The commands that read or write results (``run``, ``sweep``,
``book``, ``publish``), the notebooks' :class:`~initstudy.study.run.Run` and the book's Sphinx
extension (its generated pages) ask a :class:`Layout` instead of joining path pieces themselves,
so ``--results-dir`` is honoured everywhere. (The data sets' folder is
:func:`initstudy.core.data.default_root`'s: ``$INITSTUDY_DATA`` or ``./data``.) A kernel started by the runner learns the results folder from ``INITSTUDY_RESULTS``
and the book's build learns the profile from ``INITSTUDY_PROFILE``: the commands set both.

::

    <results>/<profile>/<notebook>/          executed notebook, tables/, figures/, claims.json, ...
    <results>/<profile>/.staging/            runs in progress (promoted on success)
    <results>/<profile>/.failed/<notebook>/  the executed notebook of a failed run
    <results>/<profile>/sweeps/<notebook>/   a sweep's jobs/ and aggregate/
    <root>/published/<profile>/<notebook>/   small tables committed from a run made elsewhere

>>> lay = Layout(Path("/book"))
>>> lay.chapter_dir("cpu", "fixup").as_posix(), lay.sweep_dir("gpu", "fixup").as_posix()
('/book/results/cpu/fixup', '/book/results/gpu/sweeps/fixup')
>>> lay.published_dir("gpu", "lsuv").as_posix()
'/book/published/gpu/lsuv'
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_PROFILE", "PROFILE_ENV", "RESULTS_ENV", "Layout", "repo_root"]

#: The profile of the published book and of every command's ``--profile`` default.
DEFAULT_PROFILE = "cpu"
#: How the book's build learns the profile (``python -m initstudy book`` sets it).
PROFILE_ENV = "INITSTUDY_PROFILE"
#: How a kernel started by the runner learns the results folder.
RESULTS_ENV = "INITSTUDY_RESULTS"
#: Overrides the repository root (the tests point it at a temporary book).
ROOT_ENV = "INITSTUDY_ROOT"


def repo_root(start: str | os.PathLike | None = None) -> Path:
    """The book's root: $INITSTUDY_ROOT, else the nearest folder upwards (from ``start`` or
    the current folder) holding ``_toc.yml`` and ``notebooks/``, else the current folder."""
    if os.environ.get(ROOT_ENV):
        return Path(os.environ[ROOT_ENV]).resolve()
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").is_file() and (folder / "notebooks").is_dir():
            return folder
    return here


@dataclass(frozen=True)
class Layout:
    """The folders of one book: its root and where its results go (``<root>/results`` unless
    told otherwise)."""

    root: Path
    results: Path | None = None

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))
        object.__setattr__(self, "results", Path(self.results) if self.results else self.root / "results")

    @classmethod
    def find(cls, root: str | os.PathLike | None = None, results: str | os.PathLike | None = None) -> "Layout":
        """The layout of the book at ``root`` (default: :func:`repo_root`); ``results`` from the
        argument, else ``$INITSTUDY_RESULTS``, else ``<root>/results``."""
        root = Path(root).resolve() if root else repo_root()
        results = results or os.environ.get(RESULTS_ENV) or None
        return cls(root, Path(results).resolve() if results else None)

    def profile_dir(self, profile: str) -> Path:
        return self.results / profile

    def chapter_dir(self, profile: str, notebook: str) -> Path:
        return self.results / profile / notebook

    def executed_notebook(self, profile: str, notebook: str) -> Path:
        return self.chapter_dir(profile, notebook) / f"{notebook}.ipynb"

    def staging_dir(self, profile: str) -> Path:
        return self.results / profile / ".staging"

    def failed_dir(self, profile: str, notebook: str) -> Path:
        return self.results / profile / ".failed" / notebook

    def manual_dir(self, profile: str, notebook: str) -> Path:
        """Where a notebook run by hand (not by the runner) writes."""
        return self.results / profile / "manual" / notebook

    def sweep_dir(self, profile: str, notebook: str) -> Path:
        return self.results / profile / "sweeps" / notebook

    def published_dir(self, profile: str, notebook: str | None = None) -> Path:
        base = self.root / "published" / profile
        return base / notebook if notebook else base

    def notebook_source(self, path: str) -> Path:
        return self.root / path

    def inputs_digest(self, profile: str, notebook: str) -> str:
        """SHA-256 over what a chapter reads besides its parameters and the library: its
        published results (``published/*/<notebook>/``) and its sweep's aggregate at this
        profile. Part of the cache key, so publishing or sweeping re-executes the chapter."""
        h = hashlib.sha256()
        published = self.root / "published"
        folders = [(f"published/{f.parent.name}", f) for f in sorted(published.glob(f"*/{notebook}"))] \
            if published.is_dir() else []
        folders.append(("sweep", self.sweep_dir(profile, notebook) / "aggregate"))
        for tag, folder in folders:
            if not folder.is_dir():
                continue
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                h.update(f"{tag}/{path.relative_to(folder).as_posix()}".encode())
                h.update(b"\0")
                h.update(hashlib.sha256(path.read_bytes()).digest())
        return h.hexdigest()
