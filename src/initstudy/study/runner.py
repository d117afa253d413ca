"""``python -m initstudy run``: execute the book's notebooks with papermill, per profile.

Every input is validated before any work starts; a bad notebook, profile, parameter name,
type or range exits with status 2 and a one-line message naming it (no traceback). Missing
data exits with status 3 and says how to get it. A notebook that fails exits with status 1.

Outputs of a profile live in ``results/<profile>/<notebook>/`` (the executed notebook,
``tables/``, ``figures/``, ``claims.json``, ``provenance.json`` and ``run.json``). A run
executes into ``results/<profile>/.staging/`` and replaces the earlier folder only once the
notebook has succeeded; a failed run's notebook is kept under ``.failed/`` for reading and
never replaces earlier results; a killed run leaves only a staging folder, removed by the
next run.

A notebook whose cache key (its content, its resolved parameters, the profile, a hash of
the library's source code and of the other files it reads: its published results and its
sweep's aggregate) matches the key stored with its results is not executed again; ``--force``
bypasses the cache.

Keys, the papermill call and the executors (one process, or a local process pool with
``--jobs``) come from :mod:`initstudy.study.execution`, shared with ``sweep``; every path from
:mod:`initstudy.study.layout`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from initstudy import chapters
from initstudy.study import catalog as catalog_mod
from initstudy.study.catalog import PROFILES, NotebookSpec, ParamError
from initstudy.study.execution import (INSTALL_TAG, CommandParser, Executor, PoolExecutor, SerialExecutor, UsageError,
                                       cache_key, execute_notebook, source_hash)
from initstudy.study.layout import DEFAULT_PROFILE, RESULTS_ENV, Layout
from initstudy.study.results import atomic_write_json, read_json

__all__ = ["main", "Job", "Outcome", "plan", "execute", "promote"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_DATA, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class MissingDataError(Exception):
    """Data a notebook needs is missing, reported with exit status 3."""


# ------------------------------------------------------------------------------ jobs


@dataclass
class Job:
    """One notebook execution: what to run, with which parameters, and where outputs go."""

    name: str
    profile: str
    params: dict
    source: Path
    layout: Layout
    key: str

    @property
    def final_dir(self) -> Path:
        return self.layout.chapter_dir(self.profile, self.name)

    @property
    def staging_root(self) -> Path:
        return self.layout.staging_dir(self.profile)


@dataclass
class Outcome:
    job: Job
    status: str  # "executed", "cached", "failed"
    wall_s: float = 0.0
    error: str | None = None
    staging: Path | None = None
    extra: dict = field(default_factory=dict)


def execute(job: Job) -> Outcome:
    """Execute one job with papermill into a fresh staging folder. Never touches the
    job's final folder; :func:`promote` does that on success."""
    staging = job.staging_root / f"{job.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    (staging / "owner.pid").write_text(str(os.getpid()))
    out_nb = staging / f"{job.name}.ipynb"
    error, wall = execute_notebook(job.source, out_nb,
                                   {"profile": job.profile, "results_dir": str(staging), **job.params},
                                   cwd=job.layout.root,
                                   env={"INITSTUDY_RUNNER": "1", RESULTS_ENV: str(job.layout.results)})
    if error is not None:
        return Outcome(job, "failed", wall, error, staging)
    _tidy_executed(out_nb, staging, job)
    atomic_write_json(
        staging / "run.json",
        {"notebook": job.name, "profile": job.profile, "params": job.params, "cache_key": job.key,
         "wall_time_s": round(wall, 3)},
    )
    return Outcome(job, "executed", wall, None, staging)


def _tidy_executed(notebook: Path, staging: Path, job: Job) -> None:
    """Make the executed notebook fit to publish: the injected ``results_dir`` shows the
    folder the results end up in, relative to the repository (``results/<profile>/<name>``),
    not this machine's staging path; and the book shows the parameters the run used (papermill's
    injected cell, folded like every code cell), not the notebook's cell of ``None`` defaults,
    which is removed from the page (``remove-cell``; the cell stays in the notebook). The Colab
    install cell (tagged ``colab-install``) is removed from the page too, with no outputs."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    try:
        final = job.final_dir.relative_to(job.layout.root)
    except ValueError:
        final = Path("results") / job.profile / job.name
    for cell in nb.cells:
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        if INSTALL_TAG in tags:
            if "remove-cell" not in tags:
                tags.append("remove-cell")  # the Colab install cell: nothing for the book's reader
            cell.outputs = []
        elif "injected-parameters" in tags:
            cell.source = cell.source.replace(str(staging), final.as_posix())
            if "hide-input" not in tags:
                tags.append("hide-input")  # plumbing: folded, one click away
        elif "parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
    nbformat.write(nb, notebook)


def promote(outcome: Outcome) -> None:
    """Replace the job's final folder by its staging folder (success), or keep the staging
    folder under ``.failed/`` (failure). Earlier results are removed only after the new
    folder is in place."""
    job = outcome.job
    if outcome.status != "executed":
        failed = job.layout.failed_dir(job.profile, job.name)
        shutil.rmtree(failed, ignore_errors=True)
        failed.parent.mkdir(parents=True, exist_ok=True)
        if outcome.staging is not None and outcome.staging.exists():
            (outcome.staging / "owner.pid").unlink(missing_ok=True)
            outcome.staging.rename(failed)
            outcome.extra["failed_dir"] = str(failed)
        return
    (outcome.staging / "owner.pid").unlink(missing_ok=True)
    final = job.final_dir
    old = job.staging_root / f"{job.name}-old-{uuid.uuid4().hex[:8]}"
    if final.exists():
        final.rename(old)
    outcome.staging.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def clean_stale_staging(staging: Path, own: bool = False) -> None:
    """Remove staging folders left by runs that were killed (their process is gone), and
    with ``own=True`` those of this process too (after an interruption)."""
    if not staging.is_dir():
        return
    for folder in staging.iterdir():
        pid_file = folder / "owner.pid"
        alive = False
        if own and pid_file.is_file() and pid_file.read_text().strip() == str(os.getpid()):
            alive = False
        elif pid_file.is_file():
            try:
                os.kill(int(pid_file.read_text()), 0)
                alive = True
            except (OSError, ValueError):
                alive = False
        if not alive:
            shutil.rmtree(folder, ignore_errors=True)


# ----------------------------------------------------------------------- the command




def build_parser() -> argparse.ArgumentParser:
    p = CommandParser(prog="python -m initstudy run", description="Execute the book's notebooks with papermill.")
    p.add_argument("notebooks", nargs="*", metavar="NOTEBOOK", help="notebooks to run (default: all)")
    p.add_argument("--profile", default=DEFAULT_PROFILE, help=f"smoke | cpu | gpu (default: {DEFAULT_PROFILE})")
    p.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="override a parameter (repeatable)")
    p.add_argument("--force", action="store_true", help="execute even when cached results match")
    p.add_argument("--list", action="store_true", help="list notebooks, profiles and parameters, then exit")
    p.add_argument("--jobs", type=int, default=1, help="notebooks executed at once (default 1)")
    p.add_argument("--results-dir", default=None, help="where profile folders go (default: <root>/results)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def plan(
    names: Sequence[str],
    profile: str,
    raw_params: Sequence[tuple[str, str]],
    catalog: Mapping[str, NotebookSpec],
    layout: Layout,
) -> list[Job]:
    """Validate everything and build the job list; raise :class:`UsageError` on bad input."""
    if profile not in PROFILES:
        raise UsageError(f"unknown profile '{profile}'; allowed: {', '.join(PROFILES)}")
    names = list(names) or list(catalog)
    specs = []
    for name in names:
        name = Path(name).stem if name.endswith(".ipynb") else name
        if name not in catalog:
            raise UsageError(f"unknown notebook '{name}'; allowed: {', '.join(catalog)}")
        specs.append(catalog[name])
    src_hash = source_hash(extra=chapters.extra_source_files())
    jobs = []
    for spec in specs:
        try:
            params = catalog_mod.resolve(spec, profile, parse_overrides(spec, raw_params))
        except ParamError as err:
            raise UsageError(f"{err} (notebook '{spec.name}')") from None
        source = layout.notebook_source(spec.path)
        if not source.is_file():
            raise UsageError(f"notebook '{spec.name}' has no file {source}")
        inputs = layout.inputs_digest(profile, spec.name)
        jobs.append(Job(spec.name, profile, params, source, layout, cache_key(source, params, profile, src_hash,
                                                                              inputs)))
    return jobs


def parse_overrides(spec: NotebookSpec, raw_params: Sequence[tuple[str, str]], here: bool = True) -> dict[str, Any]:
    """``-p NAME VALUE`` pairs parsed and validated by the notebook's declarations (``here=False``:
    the work runs on another machine, whose own conditions are checked there)."""
    overrides: dict[str, Any] = {}
    for pname, text in raw_params:
        if pname in catalog_mod.SYSTEM_PARAMS:
            raise UsageError(f"parameter '{pname}' is set by the runner; use --profile / --results-dir")
        try:
            overrides[pname] = spec.param(pname).parse(text, here=here)
        except ParamError as err:
            raise UsageError(f"{err} (notebook '{spec.name}')") from None
    return overrides


def check_data(runs: Iterable[tuple[str, Mapping[str, Any]]], catalog: Mapping[str, NotebookSpec]) -> None:
    """Raise :class:`MissingDataError` if a (notebook, parameters) run needs data that is missing."""
    from initstudy.core import data

    for name, params in runs:
        spec = catalog[name]
        for dataset in [params[p] for p in spec.data_params] + list(spec.datasets):
            message = data.available(dataset, params.get("data_source", "auto"))
            if message:
                raise MissingDataError(f"notebook '{name}': {message}")


def is_cached(job: Job) -> bool:
    run_file = job.final_dir / "run.json"
    if not run_file.is_file() or not (job.final_dir / f"{job.name}.ipynb").is_file():
        return False
    try:
        return read_json(run_file).get("cache_key") == job.key
    except (OSError, ValueError):
        return False


def list_text(catalog: Mapping[str, NotebookSpec]) -> str:
    lines = [f"profiles: {', '.join(PROFILES)}", ""]
    for spec in catalog.values():
        lines.append(f"{spec.name}: {spec.title}  [claims: {', '.join(spec.claims)}]")
        for p in spec.params:
            defaults = ", ".join(f"{prof}={_show(p.default(prof))}" for prof in PROFILES)
            lines.append(f"  {p.name:<14} {defaults}")
            lines.append(f"  {'':<14} {p.help}; {p.allowed()}")
        for c in spec.constraints:
            lines.append(f"  constraint     {c.text}")
        lines.append("")
    return "\n".join(lines)


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value).lower() if isinstance(value, bool) else str(value)


def main(
    argv: Sequence[str] | None = None,
    catalog: Mapping[str, NotebookSpec] | None = None,
    root: Path | None = None,
    executor: Executor | None = None,
) -> int:
    catalog = catalog_mod.NOTEBOOKS if catalog is None else catalog
    try:
        args = build_parser().parse_args(argv)
        if args.list:
            print(list_text(catalog))
            return EXIT_OK
        if args.jobs < 1:
            raise UsageError(f"--jobs must be at least 1, got {args.jobs}")
        layout = Layout.find(root, args.results_dir)
        jobs = plan(args.notebooks, args.profile, args.param, catalog, layout)
        check_data([(job.name, job.params) for job in jobs], catalog)
    except (UsageError, ParamError) as err:
        print(f"initstudy run: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except MissingDataError as err:
        print(f"initstudy run: missing data: {err}", file=sys.stderr)
        return EXIT_DATA

    for staging in {job.staging_root for job in jobs}:
        clean_stale_staging(staging)
    todo = [job for job in jobs if args.force or not is_cached(job)]
    for job in jobs:
        if job not in todo:
            print(f"{job.name} [{job.profile}]: cached (key {job.key[:12]}), not executed")
    outcomes: list[Outcome] = []
    if todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc=f"notebooks ({args.profile})", unit="nb", disable=args.no_progress)

        def on_done(outcome: Outcome) -> None:
            promote(outcome)
            if outcome.status == "executed":
                msg = f"{outcome.job.name} [{outcome.job.profile}]: executed in {outcome.wall_s:.1f} s"
            else:
                msg = (f"{outcome.job.name} [{outcome.job.profile}]: FAILED after {outcome.wall_s:.1f} s: "
                       f"{outcome.error} (executed notebook kept in {outcome.extra.get('failed_dir')}; "
                       f"earlier results left as they were)")
            bar.write(msg)
            bar.update(1)

        executor = executor or (SerialExecutor() if args.jobs == 1 else PoolExecutor(args.jobs))
        try:
            outcomes = executor.run(todo, execute, on_done)
        except KeyboardInterrupt:
            bar.close()
            print("initstudy run: interrupted; earlier results left as they were", file=sys.stderr)
            for staging in {job.staging_root for job in todo}:
                clean_stale_staging(staging, own=True)
            return EXIT_INTERRUPTED
        bar.close()
    from initstudy.study.summary import write_summary

    for profile in sorted({job.profile for job in jobs}):
        write_summary(layout.profile_dir(profile), catalog)
    failed = [o for o in outcomes if o.status != "executed"]
    return EXIT_FAILED if failed else EXIT_OK
