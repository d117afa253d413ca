"""``python -m initstudy sweep``: a notebook over a parameter grid, fanned out to Dask.

::

    python -m initstudy sweep NOTEBOOK --profile P --grid NAME=V1,V2,... [--grid ...]
        [--seeds N] [-p NAME VALUE ...] [--scheduler tcp://HOST:PORT] [--workers N]
        [--threads N] [--engine dask|serial]

The grid is expanded into jobs, one papermill execution each (``--seeds N`` adds seeds
0..N-1 as a dimension, one seed per job; for a list-valued parameter a grid value V means the
list [V]). Every combination is validated before anything starts, by the same declarations
and with the same messages as ``run`` (exit status 2); an unreachable scheduler also exits 2.
On an existing cluster what depends on the machine (a GPU for ``device cuda``, the data) is
the workers': each job's kernel checks it, and a job that finds it missing fails on its own.

Without ``--scheduler`` a Dask ``LocalCluster`` is started on this machine (processes, one
thread each, ``--workers`` of them, default: the number of cores) and closed at the end; with
``--scheduler tcp://HOST:PORT`` the same command runs on an existing cluster whose workers
have the same environment (the package and the data; see the README).

No shared file system is needed: each job executes in a temporary folder on its worker and
returns its executed notebook, tables, claims, figures and provenance through its future;
the client writes them atomically under ``results/<profile>/sweeps/<notebook>/jobs/<key>/``.
A job's key is a hash of the notebook's content, its parameters, the profile and the
library's source, so a rerun of the same sweep skips the jobs already finished; killing the
client or a worker loses only unfinished jobs. A job that raises is recorded with its error
(``jobs/<key>.failed.json``) and does not stop the others; the exit status is 1 if any job
failed. The sweep's measurements are aggregated into one tidy table,
``aggregate/measurements.csv`` (one row per job x claim metric x seed), beside every result
table concatenated over jobs (``aggregate/tables/<name>.csv``) and one provenance row per job
(``aggregate/jobs.csv``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any, Mapping, Sequence

from initstudy import chapters
from initstudy.study import catalog as catalog_mod
from initstudy.study.catalog import PROFILES, NotebookSpec, ParamError
from initstudy.study.execution import (CommandParser, DaskExecutor, SerialExecutor, UsageError, cache_key,
                                       execute_notebook, source_hash)
from initstudy.study.layout import DEFAULT_PROFILE, Layout
from initstudy.study.results import atomic_write_bytes, atomic_write_json, atomic_write_text, read_json
from initstudy.study.runner import EXIT_DATA, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, MissingDataError
from initstudy.study.runner import check_data, parse_overrides

__all__ = ["SweepJob", "expand", "run_job", "aggregate", "read_aggregate", "engine_overhead", "main"]


@dataclass
class SweepJob:
    """One papermill execution of a sweep; everything a worker needs travels with it."""

    notebook: str
    profile: str
    params: dict
    grid: dict  # the grid values of this job (for the aggregate's columns)
    source_text: str  # the notebook itself: workers need no copy of the repository
    key: str
    threads: int = 1

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def parse_grid(spec: NotebookSpec, grid_args: Sequence[str], here: bool = True) -> dict[str, list]:
    """``NAME=V1,V2`` arguments into {name: [validated values]}; a list-valued parameter gets
    one single-element list per value."""
    grid: dict[str, list] = {}
    for arg in grid_args:
        name, sep, values = arg.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"--grid takes NAME=V1,V2,..., got '{arg}'")
        if name in catalog_mod.SYSTEM_PARAMS:
            raise UsageError(f"parameter '{name}' is set by the sweep; use --profile / --seeds")
        if name in grid:
            raise UsageError(f"parameter '{name}' appears in two --grid arguments")
        items = [v.strip() for v in values.split(",") if v.strip()]
        if not items:
            raise UsageError(f"--grid {name}= has no values; give at least one, as {name}=V1,V2")
        try:
            param = spec.param(name)
        except ParamError as err:
            raise UsageError(f"{err} (notebook '{spec.name}')") from None
        parsed = []
        for item in items:
            try:
                parsed.append(param.parse(item, here=here))  # a list type parses "V" as [V]
            except ParamError as err:
                raise UsageError(f"{err} (notebook '{spec.name}', --grid {name})") from None
        grid[name] = parsed
    return grid


def expand(spec: NotebookSpec, profile: str, grid: Mapping[str, list], seeds: int | None,
           overrides: Mapping[str, Any], threads: int = 1, root: Path | None = None,
           here: bool = True) -> list[SweepJob]:
    """Every combination of the grid (x seeds), validated, as jobs with keys."""
    if profile not in PROFILES:
        raise UsageError(f"unknown profile '{profile}'; allowed: {', '.join(PROFILES)}")
    if "seeds" in grid and seeds is not None:
        raise UsageError("give the seeds either as --seeds N or as --grid seeds=..., not both")
    dims = dict(grid)
    if seeds is not None:
        dims["seeds"] = [[s] for s in range(seeds)]
    names = list(dims)
    source = Layout.find(root).notebook_source(spec.path)
    source_text = source.read_text(encoding="utf-8")
    src_hash = source_hash(extra=chapters.extra_source_files())
    jobs = []
    for combo in product(*(dims[n] for n in names)) if names else [()]:
        values = dict(zip(names, combo))
        try:
            params = catalog_mod.resolve(spec, profile, {**overrides, **values}, here=here)
        except ParamError as err:
            raise UsageError(f"{err} (notebook '{spec.name}')") from None
        # the run's key (without the chapter's other inputs: a job must not depend on its own sweep's aggregate)
        jobs.append(SweepJob(spec.name, profile, params, values, source_text,
                             cache_key(source, params, profile, src_hash)[:24], threads))
    return jobs


# ---------------------------------------------------------------------- on the worker


def run_job(job: dict) -> dict:
    """Execute one job in a temporary folder and return everything it produced (runs on a
    worker: it needs the package and the data, not the repository)."""
    import platform

    with tempfile.TemporaryDirectory(prefix="initstudy-job-") as tmp:
        tmp = Path(tmp)
        source = tmp / "source.ipynb"
        source.write_text(job["source_text"], encoding="utf-8")
        out_dir = tmp / "out"
        out_dir.mkdir()
        # the job's own failure is recorded, never raised to the client
        error, wall = execute_notebook(
            source, out_dir / f"{job['notebook']}.ipynb",
            {"profile": job["profile"], "results_dir": str(out_dir), **job["params"]}, cwd=tmp,
            env={"INITSTUDY_RUNNER": "1", "OMP_NUM_THREADS": str(job["threads"]),
                 "MKL_NUM_THREADS": str(job["threads"])})
        files = {p.relative_to(out_dir).as_posix(): p.read_bytes() for p in sorted(out_dir.rglob("*")) if p.is_file()}
    return {"key": job["key"], "status": "ok" if error is None else "failed", "error": error,
            "wall_s": round(wall, 3), "worker": platform.node(), "pid": os.getpid(), "files": files}


def _lost(job: dict, err: Exception) -> dict:
    """The result of a job whose worker was lost mid-job: that job only is lost."""
    return {"key": job["key"], "status": "failed", "error": f"{type(err).__name__}: {err}", "wall_s": None,
            "files": {}}


# ---------------------------------------------------------------------- the client's side


def is_done(folder: Path, key: str) -> bool:
    meta = folder / "jobs" / key / "job.json"
    try:
        return meta.is_file() and read_json(meta).get("status") == "ok"
    except (OSError, ValueError):
        return False


def store(folder: Path, job: SweepJob, result: dict) -> None:
    """Write one job's outputs atomically: into a staging folder, then renamed into place."""
    jobs = folder / "jobs"
    jobs.mkdir(parents=True, exist_ok=True)
    meta = {"key": job.key, "notebook": job.notebook, "profile": job.profile, "params": job.params,
            "grid": job.grid, "status": result["status"], "error": result.get("error"),
            "wall_time_s": result.get("wall_s"), "worker": result.get("worker")}
    if result["status"] != "ok":
        atomic_write_json(jobs / f"{job.key}.failed.json", meta)
        return
    staging = jobs / f".staging-{job.key}-{uuid.uuid4().hex[:8]}"
    for rel, data in result["files"].items():
        atomic_write_bytes(staging / rel, data)
    atomic_write_json(staging / "job.json", meta)
    final = jobs / job.key
    if final.exists():
        shutil.rmtree(final)
    staging.rename(final)
    (jobs / f"{job.key}.failed.json").unlink(missing_ok=True)


def aggregate(folder: Path, jobs: Sequence[SweepJob]) -> dict[str, int]:
    """Build the sweep's tidy tables from the finished jobs of ``jobs``."""
    import pandas as pd

    rows, prov, tables = [], [], {}
    for job in jobs:
        job_dir = folder / "jobs" / job.key
        if not is_done(folder, job.key):
            continue
        grid_cols = {k: (v[0] if isinstance(v, list) and len(v) == 1 else json.dumps(v)) for k, v in job.grid.items()}
        for claim in read_json(job_dir / "claims.json"):
            for metric, values in claim["measurements"].items():
                for i, value in enumerate(values):
                    rows.append({"job": job.key, **grid_cols, "claim": claim["id"], "metric": metric, "index": i,
                                 "value": value, "verdict": claim["verdict"]})
        p = read_json(job_dir / "provenance.json") if (job_dir / "provenance.json").is_file() else {}
        prov.append({"job": job.key, **grid_cols, "params": json.dumps(job.params, sort_keys=True),
                     "wall_time_s": p.get("wall_time_s"), "device": p.get("device"),
                     "git_commit": (p.get("git") or {}).get("commit"), "torch": (p.get("packages") or {}).get("torch"),
                     "started": p.get("started")})
        for table in sorted((job_dir / "tables").glob("*.csv")):
            df = pd.read_csv(table)
            for i, (k, v) in enumerate(grid_cols.items()):
                df.insert(i, f"grid_{k}", v)
            df.insert(0, "job", job.key)
            tables.setdefault(table.stem, []).append(df)
    out = folder / "aggregate"
    atomic_write_text(out / "measurements.csv", pd.DataFrame(rows).to_csv(index=False, lineterminator="\n"))
    atomic_write_text(out / "jobs.csv", pd.DataFrame(prov).to_csv(index=False, lineterminator="\n"))
    for name, frames in tables.items():
        atomic_write_text(out / "tables" / f"{name}.csv",
                          pd.concat(frames, ignore_index=True).to_csv(index=False, lineterminator="\n"))
    return {"jobs": len(prov), "rows": len(rows)}


def build_parser() -> argparse.ArgumentParser:
    p = CommandParser(prog="python -m initstudy sweep", description="Run a notebook over a parameter grid on Dask.")
    p.add_argument("notebook", metavar="NOTEBOOK")
    p.add_argument("--profile", default=DEFAULT_PROFILE)
    p.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2,...")
    p.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1, one per job")
    p.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="a fixed parameter for every job")
    p.add_argument("--scheduler", default=None, help="tcp://HOST:PORT of an existing Dask scheduler")
    p.add_argument("--workers", type=int, default=None, help="LocalCluster workers (default: the cores)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per job (default 1)")
    p.add_argument("--engine", default="dask", choices=("dask", "serial"))
    p.add_argument("--results-dir", default=None)
    p.add_argument("--no-progress", action="store_true")
    return p


def plan(args, catalog: Mapping[str, NotebookSpec], root: Path | None = None) -> list[SweepJob]:
    name = Path(args.notebook).stem if args.notebook.endswith(".ipynb") else args.notebook
    if name not in catalog:
        raise UsageError(f"unknown notebook '{name}'; allowed: {', '.join(catalog)}")
    spec = catalog[name]
    if not args.grid:
        raise UsageError("a sweep needs at least one --grid NAME=V1,V2,...")
    if args.seeds is not None and args.seeds < 1:
        raise UsageError(f"--seeds must be at least 1, got {args.seeds}")
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    if args.threads < 1:
        raise UsageError(f"--threads must be at least 1, got {args.threads}")
    # on a remote cluster the workers' machine decides what it has (a GPU): their kernels check it
    here = not (args.scheduler and args.engine == "dask")
    overrides = parse_overrides(spec, args.param, here=here)
    grid = parse_grid(spec, args.grid, here=here)
    return expand(spec, args.profile, grid, args.seeds, overrides, args.threads, root, here=here)


def check_scheduler(address: str) -> None:
    """Fail fast (exit 2) when the scheduler cannot be reached."""
    import socket
    from urllib.parse import urlparse

    url = urlparse(address if "://" in address else f"tcp://{address}")
    if url.scheme not in ("tcp", "tls") or not url.hostname or not url.port:
        raise UsageError(f"--scheduler must look like tcp://HOST:PORT, got '{address}'")
    try:
        socket.create_connection((url.hostname, url.port), timeout=3).close()
    except OSError as err:
        raise UsageError(f"cannot reach the Dask scheduler at {address} ({err.__class__.__name__})") from None


def main(argv: Sequence[str] | None = None, catalog: Mapping[str, NotebookSpec] | None = None,
         root: Path | None = None, executor=None) -> int:
    catalog = catalog_mod.NOTEBOOKS if catalog is None else catalog
    try:
        args = build_parser().parse_args(argv)
        layout = Layout.find(root, args.results_dir)
        jobs = plan(args, catalog, layout.root)
        if args.scheduler and args.engine == "dask":
            check_scheduler(args.scheduler)  # the workers have their own data: a job without it fails there
        else:
            check_data([(j.notebook, j.params) for j in jobs], catalog)
    except (UsageError, ParamError) as err:
        print(f"initstudy sweep: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except MissingDataError as err:
        print(f"initstudy sweep: missing data: {err}", file=sys.stderr)
        return EXIT_DATA

    folder = layout.sweep_dir(args.profile, jobs[0].notebook)
    todo = [j for j in jobs if not is_done(folder, j.key)]
    print(f"sweep {jobs[0].notebook} [{args.profile}]: {len(jobs)} jobs, {len(jobs) - len(todo)} already finished, "
          f"{len(todo)} to run", flush=True)
    failed = []
    if todo:
        from tqdm.auto import tqdm

        by_key = {j.key: j for j in todo}
        bar = tqdm(total=len(todo), desc="jobs", unit="job", disable=args.no_progress)
        counts = {"done": 0, "failed": 0}

        def on_done(result: dict) -> None:
            job = by_key[result["key"]]
            store(folder, job, result)
            counts["done" if result["status"] == "ok" else "failed"] += 1
            if result["status"] != "ok":
                failed.append(result)
                bar.write(f"job {job.key} {job.grid}: FAILED: {result.get('error')}")
            bar.update(1)
            bar.set_postfix(done=counts["done"], failed=counts["failed"],
                            remaining=len(todo) - counts["done"] - counts["failed"])

        executor = executor or (SerialExecutor() if args.engine == "serial"
                                else DaskExecutor(args.scheduler, args.workers, lost=_lost, key=lambda j: j["key"]))
        try:
            executor.run([j.as_dict() for j in todo], run_job, on_done)
        except UsageError as err:
            bar.close()
            print(f"initstudy sweep: error: {err}", file=sys.stderr)
            return EXIT_USAGE
        except KeyboardInterrupt:
            bar.close()
            print("initstudy sweep: interrupted; finished jobs are kept, a rerun completes the rest", file=sys.stderr)
            return EXIT_INTERRUPTED
        bar.close()
    summary = aggregate(folder, jobs)
    print(f"aggregated {summary['jobs']} finished jobs, {summary['rows']} measurement rows, into "
          f"{folder / 'aggregate'}")
    return EXIT_FAILED if failed or summary["jobs"] < len(jobs) else EXIT_OK



def read_aggregate(profile: str, notebook: str, table: str = "measurements",
                   results_dir: str | os.PathLike | None = None):
    """A sweep's aggregated table ("measurements", "jobs", or "tables/<name>"), or ``None``
    when no sweep of ``notebook`` has been run at ``profile``: what a chapter reads to draw
    paper-scale figures from a sweep run elsewhere."""
    import pandas as pd

    path = Layout.find(results=results_dir).sweep_dir(profile, notebook) / "aggregate" / f"{table}.csv"
    return pd.read_csv(path) if path.is_file() else None


def engine_overhead(tasks: int = 40, workers: int = 2) -> list[float]:
    """Round-trip seconds of no-op tasks on a LocalCluster: the engine's per-job overhead."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, silence_logs=40) as cluster, Client(cluster) as client:
        client.submit(_noop, -1, pure=False).result()
        times = []
        for i in range(tasks):
            t0 = time.perf_counter()
            client.submit(_noop, i, pure=False).result()
            times.append(time.perf_counter() - t0)
    return times


def _noop(i: int) -> int:
    return i
