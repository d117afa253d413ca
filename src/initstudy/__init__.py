"""initstudy: the library behind the book "Does this init claim actually hold?".

Modules, one concept each: :mod:`~initstudy.inits` (initialisers), :mod:`~initstudy.data`
(data sets), :mod:`~initstudy.models`, :mod:`~initstudy.train`, :mod:`~initstudy.probes`
(activation and gradient statistics), :mod:`~initstudy.symmetry` (the zero-init measures),
:mod:`~initstudy.results` (atomic tables, provenance), :mod:`~initstudy.claims` (the
ledger and verdicts), :mod:`~initstudy.figures`, :mod:`~initstudy.catalog` (notebooks and
their parameters), :mod:`~initstudy.study` (one notebook run), :mod:`~initstudy.runner`
and :mod:`~initstudy.book` (the command line).
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
