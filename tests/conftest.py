"""Shared fixtures. Every test runs without network: the guard in tests/netguard is loaded
here and, through PYTHONPATH, in every Python subprocess (papermill kernels included)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUARD = Path(__file__).resolve().parent / "netguard"
HELPERS = Path(__file__).resolve().parent / "helpers"

os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(GUARD), str(HELPERS)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
)
sys.path.insert(0, str(GUARD))
sys.path.insert(0, str(HELPERS))
import sitecustomize  # noqa: E402,F401  (installs the guard in this process)

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ["INITSTUDY_ROOT"] = str(ROOT)
# Data fetched by torchvision (never here) would go to a folder the tests own.
os.environ.setdefault("INITSTUDY_DATA", str(ROOT / "data"))


def run_cli(*args: str, timeout: float = 900, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """``python -m initstudy ARGS`` in a subprocess; returns the completed process."""
    return subprocess.run(
        [sys.executable, "-m", "initstudy", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="session")
def smoke_results() -> Path:
    """Every notebook executed once at the smoke profile into results/smoke (forced)."""
    proc = run_cli("run", "--profile", "smoke", "--force", "--no-progress")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return ROOT / "results" / "smoke"


@pytest.fixture
def tmp_results(tmp_path) -> Path:
    return tmp_path / "results"


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
