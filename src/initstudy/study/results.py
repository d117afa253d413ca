"""Tidy result tables written atomically, and the provenance attached to every result.

Nothing here ever leaves a half-written file: every write goes to a temporary file in the
same folder and is renamed over the target only once complete, so a run that fails or is
killed leaves the earlier file as it was.

Result tables are CSV with one row per measurement (tidy). Timings never go into them (they
live in the provenance), so the same seed and profile on the CPU give byte-identical tables.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "save_table",
    "read_table",
    "read_json",
    "provenance",
    "git_commit",
    "package_versions",
    "PACKAGES",
]

#: Packages whose versions every result records.
PACKAGES = (
    "torch",
    "torchvision",
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "matplotlib",
    "seaborn",
    "papermill",
    "jupyter-book",
    "initstudy",
)


def _file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_MODE = _file_mode()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _MODE)  # mkstemp makes 0600 files; results are ordinary files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(value: Any):
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented, key-sorted JSON atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def save_table(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a tidy table as CSV atomically. Floats are written with full precision
    (``repr``), so reading back gives the same numbers, and equal tables give equal bytes."""
    text = df.to_csv(index=False, float_format="%.17g", lineterminator="\n")
    return atomic_write_text(path, text)


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    return pd.read_csv(path)


def git_commit(root: str | os.PathLike | None = None) -> dict:
    """The git commit of ``root`` (default: the current folder) and whether the work tree
    has uncommitted changes; ``{"commit": None}`` outside a repository."""
    cwd = str(root) if root is not None else None
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd, capture_output=True, text=True, check=True, timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(status.strip())}


def package_versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    versions = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def device_description(device: str = "cpu") -> dict:
    """What the computation ran on: the torch device and, for CUDA, the GPU's name."""
    import torch

    info = {"device": str(device), "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count()}
    if str(device).startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
        info["cuda"] = torch.version.cuda
    return info


def provenance(
    *,
    notebook: str,
    profile: str,
    params: dict,
    device: str = "cpu",
    root: str | os.PathLike | None = None,
) -> dict:
    """Everything needed to say where a result came from: git commit, package versions,
    Python and platform, device, profile, parameters (seeds included) and the start time.
    The wall time is added when the run finishes."""
    return {
        "notebook": notebook,
        "profile": profile,
        "params": params,
        "git": git_commit(root),
        "packages": package_versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        **device_description(device),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
