"""initstudy: the library behind the book "Does this init claim actually hold?".

Modules, one concept each: :mod:`~initstudy.core.inits` (initialisers), :mod:`~initstudy.core.data`
(data sets), :mod:`~initstudy.core.models`, :mod:`~initstudy.core.train`, :mod:`~initstudy.core.probes`
(activation and gradient statistics), :mod:`~initstudy.chapters.zero_init` (the zero-init measures),
:mod:`~initstudy.study.results` (atomic tables, provenance), :mod:`~initstudy.study.claims` (the
ledger and verdicts), :mod:`~initstudy.study.figures`, :mod:`~initstudy.study.catalog` (notebooks and
their parameters), :mod:`~initstudy.study.run` (one notebook run), :mod:`~initstudy.study.runner`
and :mod:`~initstudy.book.build` (the command line).
"""

from pathlib import Path as _Path


def _version() -> str:
    """The version in ``pyproject.toml``, its one home: read from the source tree when this
    package is one (an editable install, a checkout), else from the installed distribution's
    metadata (a wheel). Not written here, so that a release does not change the library's
    source hash and re-execute every chapter."""
    import tomllib
    from importlib import metadata

    try:
        with open(_Path(__file__).resolve().parents[2] / "pyproject.toml", "rb") as f:
            project = tomllib.load(f).get("project", {})
        if project.get("name") == "initstudy" and project.get("version"):
            return str(project["version"])
    except (OSError, tomllib.TOMLDecodeError):
        pass
    try:
        return metadata.version("initstudy")
    except metadata.PackageNotFoundError:
        return "0+unknown"


__version__ = _version()
