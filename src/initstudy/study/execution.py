"""The one execution core of ``run`` and ``sweep``: cache keys, one papermill call, executors.

``python -m initstudy run`` executes chapters into ``results/<profile>/`` (through a staging
folder, promoted on success); ``python -m initstudy sweep`` executes one chapter over a grid on
Dask workers that share no file system. Both build their keys with :func:`cache_key`, execute
a notebook with :func:`execute_notebook` and hand their jobs to an :class:`Executor`:
:class:`SerialExecutor` (one after another, here), :class:`PoolExecutor` (a local process
pool, ``run --jobs N``) or :class:`DaskExecutor` (a Dask cluster, ``sweep``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from abc import ABC, abstractmethod
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, TypeVar

__all__ = ["INSTALL_TAG", "source_hash", "notebook_bytes_for_key", "cache_key", "execute_notebook", "Executor",
           "SerialExecutor", "PoolExecutor", "DaskExecutor", "UsageError", "CommandParser"]

T = TypeVar("T")
R = TypeVar("R")

#: The tag of the first cell of every chapter notebook, the Colab install cell
#: (:func:`initstudy.book.release.render_install_cell`). Cache keys leave the cell out, so that a
#: release does not re-execute every chapter.
INSTALL_TAG = "colab-install"


class UsageError(Exception):
    """Bad input, reported on one line with exit status 2."""


class CommandParser(argparse.ArgumentParser):
    """argparse whose errors are :class:`UsageError` (one line, exit status 2), for ``run`` and
    ``sweep``."""

    def error(self, message: str):  # noqa: D401 - argparse API
        raise UsageError(message)


# ------------------------------------------------------------------------ cache keys


def source_hash(package_dir: Path | None = None, extra: Sequence[Path] = ()) -> str:
    """SHA-256 over the library's source files (paths and contents), not its version, and over
    ``extra`` files (chapters registered from outside the package,
    :func:`initstudy.chapters.extra_source_files`)."""
    package_dir = package_dir or Path(__file__).resolve().parents[1]  # the whole initstudy package
    h = hashlib.sha256()
    for path in sorted(package_dir.rglob("*.py")):
        h.update(path.relative_to(package_dir).as_posix().encode())
        h.update(b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    for path in extra:
        h.update(Path(path).name.encode() + b"\0" + Path(path).read_bytes() + b"\0")
    return h.hexdigest()


def notebook_bytes_for_key(notebook_path: Path) -> bytes:
    """The notebook's bytes as its cache key reads them: without its Colab install cell, which
    does nothing outside Colab and names the release's version, so that a release (a new
    version in that cell) re-executes no chapter. The notebook without the cell is written as
    nbformat writes notebooks, so that its key is the one it had before it had the cell. A
    notebook without that cell, or not written as nbformat writes it, is read as it is."""
    raw = Path(notebook_path).read_bytes()
    try:
        nb = json.loads(raw)
    except ValueError:
        return raw
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list):
        return raw

    def written(notebook) -> bytes:
        return (json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()

    kept = [c for c in cells if INSTALL_TAG not in ((c.get("metadata") or {}).get("tags") or [])]
    if len(kept) == len(cells) or written(nb) != raw:
        return raw
    return written({**nb, "cells": kept})


def cache_key(notebook_path: Path, params: Mapping[str, Any], profile: str, src_hash: str, inputs: str = "") -> str:
    """The key under which a notebook's outputs are cached: the notebook (see
    :func:`notebook_bytes_for_key`), its resolved parameters, the profile, the library's source
    hash and ``inputs``, a digest of the other files it reads
    (:meth:`initstudy.study.layout.Layout.inputs_digest`)."""
    h = hashlib.sha256()
    h.update(hashlib.sha256(notebook_bytes_for_key(notebook_path)).hexdigest().encode())
    payload = {"params": params, "profile": profile, "src": src_hash}
    if inputs:
        payload["inputs"] = inputs
    h.update(json.dumps(payload, sort_keys=True).encode())
    return h.hexdigest()


# ------------------------------------------------------------------------ one execution


def execute_notebook(source: Path, output: Path, parameters: Mapping[str, Any], cwd: Path,
                     env: Mapping[str, str] | None = None) -> tuple[str | None, float]:
    """Execute ``source`` with papermill into ``output``; return ``(error, wall seconds)``,
    the error ``None`` on success or the failing cell's ``"Name: message"``. The kernel gets
    ``env`` on top of this process's environment, progress bars off and a fixed hash seed."""
    import papermill as pm

    # the kernel inherits this process's environment: set it for the call, then restore it
    kernel_env = {"TQDM_DISABLE": "1", "PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED", "0"), **(env or {})}
    saved = {k: os.environ.get(k) for k in kernel_env}
    os.environ.update(kernel_env)
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(str(source), str(output), parameters=dict(parameters), kernel_name="python3",
                            cwd=str(cwd), progress_bar=False, log_output=False,
                            # the kernel talks to papermill over loopback only; keep its start-up chatter out
                            extra_arguments=["--IPKernelApp.log_level=ERROR"])
    except Exception as err:  # papermill's execution error carries the cell's exception
        message = f"{getattr(err, 'ename', type(err).__name__)}: {getattr(err, 'evalue', err)}"
        return message.strip(), time.perf_counter() - t0
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return None, time.perf_counter() - t0


# ------------------------------------------------------------------------ executors


class Executor(ABC):
    """Runs ``work`` on each job and reports each result as it arrives."""

    @abstractmethod
    def run(self, jobs: Sequence[T], work: Callable[[T], R], on_done: Callable[[R], None]) -> list[R]: ...


class SerialExecutor(Executor):
    """One job after another, in this process."""

    def run(self, jobs, work, on_done):
        results = []
        for job in jobs:
            result = work(job)
            on_done(result)
            results.append(result)
        return results


class PoolExecutor(Executor):
    """Jobs spread over a local pool of worker processes."""

    def __init__(self, workers: int):
        self.workers = workers

    def run(self, jobs, work, on_done):
        results = []
        with ProcessPoolExecutor(max_workers=self.workers) as pool:
            for fut in as_completed([pool.submit(work, job) for job in jobs]):
                result = fut.result()
                on_done(result)
                results.append(result)
        return results


class DaskExecutor(Executor):
    """Jobs submitted to a Dask cluster: an existing one at ``address``, or a LocalCluster of
    ``workers`` processes with one thread each, started and closed here. A job whose worker is
    lost is reported through ``lost(job, error)`` (that job only is lost)."""

    def __init__(self, address: str | None = None, workers: int | None = None,
                 lost: Callable[[Any, Exception], Any] | None = None, key: Callable[[Any], str] | None = None):
        self.address, self.workers, self.lost, self.key = address, workers, lost, key

    def connect(self):
        from distributed import Client, LocalCluster

        if self.address:
            try:
                return Client(self.address, timeout="5s"), None
            except (OSError, TimeoutError) as err:
                raise UsageError(f"cannot reach the Dask scheduler at {self.address} ({type(err).__name__})") from None
        cluster = LocalCluster(n_workers=self.workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None, silence_logs=40)
        return Client(cluster), cluster

    def run(self, jobs, work, on_done, client=None):
        from distributed import as_completed as dask_completed

        own = client is None
        cluster = None
        if own:
            client, cluster = self.connect()
        results = []
        try:
            futures = {client.submit(work, job, pure=False,
                                     **({"key": f"initstudy-{self.key(job)}"} if self.key else {})): job
                       for job in jobs}
            for fut in dask_completed(list(futures)):
                try:
                    result = fut.result()
                except Exception as err:  # a worker lost mid-job
                    if self.lost is None:
                        raise
                    result = self.lost(futures[fut], err)
                on_done(result)
                results.append(result)
        finally:
            if own:
                client.close()
                if cluster is not None:
                    cluster.close()
        return results
