"""The runner: bad input (exit 2, one line, nothing touched), missing data (exit 3), the
cache, failed and killed runs (earlier results intact), and reproducibility."""

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
import tiny_book
from conftest import ROOT, run_cli

from initstudy.core import data
from initstudy.study import execution, runner


@pytest.mark.parametrize("args, message", [
    (["nope"], "unknown notebook 'nope'; allowed: zero_init"),
    (["--profile", "fast"], "unknown profile 'fast'; allowed: smoke, cpu, gpu"),
    (["-p", "nope", "1"], "notebook 'zero_init' has no parameter 'nope'"),
    (["-p", "steps", "abc"], "parameter 'steps' must be an integer in [1, 1000000], got 'abc'"),
    (["-p", "steps", "0"], "parameter 'steps' must be an integer in [1, 1000000], got 0"),
    (["-p", "lr", "-1"], "parameter 'lr' must be a number in [1e-06, 10], got -1.0"),
    (["-p", "dataset", "cifar10"], "parameter 'dataset' must be one of digits, mnist-5k, fashion-mnist, mnist"),
    (["-p", "activations", "relu,gelu"], "parameter 'activations' must be a comma-separated list"),
    (["-p", "seeds", "0"], "parameter 'seeds' must be a seed count"),
    (["-p", "profile", "gpu"], "parameter 'profile' is set by the runner"),
    (["-p", "steps"], "expected 2 arguments"),
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--jobs", "0"], "--jobs must be at least 1"),
])
def test_bad_input_exits_2_with_one_line_and_touches_nothing(tmp_path, args, message):
    earlier = tmp_path / "smoke" / "zero_init" / "run.json"
    earlier.parent.mkdir(parents=True)
    earlier.write_text('{"cache_key": "earlier"}')
    proc = run_cli("run", "--profile", "smoke", "--results-dir", str(tmp_path), *args, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert message in lines[0]
    assert earlier.read_text() == '{"cache_key": "earlier"}'
    assert not (tmp_path / "smoke" / ".staging").exists()


def test_list_shows_every_parameter_with_its_defaults():
    proc = run_cli("run", "--list")
    assert proc.returncode == 0
    assert "zero_init" in proc.stdout and "profiles: smoke, cpu, gpu" in proc.stdout
    assert "steps          smoke=60, cpu=600, gpu=3000" in proc.stdout


def test_unknown_command():
    proc = run_cli("fly")
    assert proc.returncode == 2 and "unknown command 'fly'" in proc.stderr


def test_missing_data_exits_3_and_says_how_to_get_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "nowhere")
    monkeypatch.setenv("INITSTUDY_DATA", str(tmp_path))
    code = runner.main(["zero_init", "--profile", "smoke", "-p", "dataset", "fashion-mnist",
                        "--results-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 3
    assert "apt-get install -y dataset-fashion-mnist" in err and "torchvision" in err
    assert not (tmp_path / "smoke").exists()


# ---------------------------------------------------------------- the tiny book


@pytest.fixture
def tiny(tmp_path):
    return tiny_book.make_root(tmp_path / "book")


def run_tiny(root, *args):
    return runner.main(["--profile", "smoke", "--no-progress", *args], catalog=tiny_book.CATALOG, root=root)


def values(root):
    return (root / "results" / "smoke" / "tiny" / "tables" / "values.csv").read_text()


def test_cache_force_and_parameter_changes(tiny, capsys):
    assert run_tiny(tiny) == 0
    out = capsys.readouterr().out
    assert "tiny [smoke]: executed" in out
    nb = tiny / "results" / "smoke" / "tiny" / "tiny.ipynb"
    stamp = nb.stat().st_mtime_ns
    assert run_tiny(tiny) == 0
    assert "cached" in capsys.readouterr().out and nb.stat().st_mtime_ns == stamp
    assert run_tiny(tiny, "--force") == 0
    assert "executed" in capsys.readouterr().out and nb.stat().st_mtime_ns != stamp
    assert run_tiny(tiny, "-p", "value", "7") == 0  # new parameters: a new key
    assert "executed" in capsys.readouterr().out and "7" in values(tiny)
    # the summary of the profile is written after every run
    assert (tiny / "results" / "smoke" / "claims.json").is_file()


def test_publishing_or_sweeping_reruns_the_chapter_that_reads_them(tiny, capsys):
    """The published results and the sweep aggregate of a chapter are inputs of its notebook:
    changing either re-executes it; results of another chapter or profile do not."""
    assert run_tiny(tiny) == 0
    capsys.readouterr()
    published = tiny / "published" / "gpu" / "tiny"
    published.mkdir(parents=True)
    (published / "claims.json").write_text("[]")
    assert run_tiny(tiny) == 0
    assert "tiny [smoke]: executed" in capsys.readouterr().out
    (published / "claims.json").write_text('[{"id": "x"}]')  # a published table changes
    assert run_tiny(tiny) == 0
    assert "tiny [smoke]: executed" in capsys.readouterr().out
    other = tiny / "published" / "gpu" / "other"
    other.mkdir()
    (other / "claims.json").write_text("[]")
    (tiny / "results" / "cpu" / "sweeps" / "tiny" / "aggregate").mkdir(parents=True)
    (tiny / "results" / "cpu" / "sweeps" / "tiny" / "aggregate" / "jobs.csv").write_text("job\n")
    assert run_tiny(tiny) == 0
    assert "cached" in capsys.readouterr().out  # another chapter's, another profile's: not inputs
    aggregate = tiny / "results" / "smoke" / "sweeps" / "tiny" / "aggregate"
    aggregate.mkdir(parents=True)
    (aggregate / "measurements.csv").write_text("job,value\na,1\n")
    assert run_tiny(tiny) == 0
    assert "tiny [smoke]: executed" in capsys.readouterr().out
    assert run_tiny(tiny) == 0
    assert "cached" in capsys.readouterr().out


def test_cache_key_covers_notebook_params_profile_and_source(tmp_path):
    nb = tmp_path / "a.ipynb"
    nb.write_text("{}")
    key = execution.cache_key(nb, {"x": 1}, "smoke", "src")
    assert key == execution.cache_key(nb, {"x": 1}, "smoke", "src")
    assert key != execution.cache_key(nb, {"x": 2}, "smoke", "src")
    assert key != execution.cache_key(nb, {"x": 1}, "cpu", "src")
    assert key != execution.cache_key(nb, {"x": 1}, "smoke", "src2")
    assert key != execution.cache_key(nb, {"x": 1}, "smoke", "src", inputs="published")
    nb.write_text('{"cells": []}')
    assert key != execution.cache_key(nb, {"x": 1}, "smoke", "src")
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "m.py").write_text("a = 1\n")
    h = execution.source_hash(pkg)
    (pkg / "m.py").write_text("a = 2\n")
    assert execution.source_hash(pkg) != h


def test_failed_run_keeps_earlier_results(tiny, capsys):
    assert run_tiny(tiny) == 0
    before = values(tiny)
    assert run_tiny(tiny, "-p", "value", "9", "-p", "fail", "true") == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "told to fail" in out
    assert values(tiny) == before
    failed = tiny / "results" / "smoke" / ".failed" / "tiny" / "tiny.ipynb"
    assert failed.is_file()
    assert not any((tiny / "results" / "smoke" / ".staging").iterdir())


def test_killed_run_keeps_earlier_results(tiny):
    assert run_tiny(tiny) == 0
    before = values(tiny)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tiny_book", str(tiny), "--profile", "smoke", "--no-progress",
         "-p", "value", "5", "-p", "sleep", "60"],
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    staging = tiny / "results" / "smoke" / ".staging"
    deadline = time.time() + 120
    while time.time() < deadline and not (staging.is_dir() and any(staging.iterdir())):
        time.sleep(0.2)
    assert staging.is_dir() and any(staging.iterdir()), "the run never started"
    time.sleep(1.0)
    family = [proc.pid] + [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
    os.killpg(proc.pid, signal.SIGKILL)
    for pid in family:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=30)
    assert values(tiny) == before  # the earlier results are intact
    assert any(staging.iterdir())  # the killed run left only its staging folder
    assert run_tiny(tiny) == 0  # the next run (cached) removes it
    assert not any(staging.iterdir())
    assert values(tiny) == before


def test_same_seed_and_profile_give_identical_tables(smoke_results, tmp_path):
    proc = run_cli("run", "zero_init", "--profile", "smoke", "--force", "--no-progress",
                   "--results-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    first = sorted((smoke_results / "zero_init" / "tables").glob("*.csv"))
    assert first
    for table in first:
        again = tmp_path / "smoke" / "zero_init" / "tables" / table.name
        assert again.read_bytes() == table.read_bytes(), table.name
    a = (smoke_results / "zero_init" / "claims.json").read_text()
    b = (tmp_path / "smoke" / "zero_init" / "claims.json").read_text()
    assert a == b


def test_the_catalog_loads_the_chapters_on_first_use_only():
    """Importing the runner and the catalog loads no chapter module (nor torch, which the chapters
    import); the first look at the catalog loads them all. (Every command looks at it, so a
    command pays torch's import once; importing the machinery alone does not.)"""
    code = ("import sys, initstudy.study.runner, initstudy.study.catalog as c\n"
            "before = ('torch' in sys.modules, 'initstudy.chapters.fixup' in sys.modules)\n"
            "names = list(c.NOTEBOOKS)\n"
            "print(before, ('torch' in sys.modules, 'initstudy.chapters.fixup' in sys.modules), len(names))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT).stdout
    assert out.strip() == "(False, False) (True, True) 6"


@pytest.mark.parametrize("notebook, args, message", [
    ("fixup", ["-p", "fig3_depths", "9"], "parameter 'fig3_depths' must be a comma-separated list of distinct "
     "integers in [8, 100000], each of the form 6n + 2 (8, 14, 20, 26, 32 and so on), got [9] (notebook 'fixup')"),
    ("fixup", ["-p", "ablation_depth", "21"], "parameter 'ablation_depth' must be an integer in [8, 100000] of the "
     "form 6n + 2"),
    ("fixup", ["-p", "device", "cuda"], "parameter 'device' must be one of auto, cpu, cuda (cuda only where a CUDA "
     "device is visible), got 'cuda'"),
    ("lsuv", ["-p", "batch_sizes", "8,2000"], "parameters 'batch_sizes' and 'train_subset': batch_sizes must be at "
     "most train_subset unless train_subset is 0 (all examples), got batch_sizes=[8, 2000], train_subset=1000 "
     "(notebook 'lsuv')"),
    ("transfer", ["-p", "label_counts", "5,112"], "parameter 'label_counts' must be a comma-separated list of "
     "distinct integers in [1, 111]"),
])
def test_values_the_experiment_cannot_use_exit_2_before_any_work(tmp_path, monkeypatch, notebook, args, message):
    """Values that pass their type but not the experiment (a depth that is not 6n + 2, a GPU that
    is not there, a batch larger than its data) fail before the kernel starts: one line, exit 2."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # no GPU, even on a machine that has one
    t0 = time.perf_counter()
    proc = run_cli("run", notebook, "--profile", "smoke", "--results-dir", str(tmp_path), *args, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert message in lines[0]
    assert not (tmp_path / "smoke").exists()
    assert time.perf_counter() - t0 < 60  # no kernel was started (a smoke run of fixup takes minutes)
