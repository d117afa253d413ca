"""Sweeps on Dask distributed (loopback only): a real LocalCluster, resume, bad grids."""

import pandas as pd
import pytest
import tiny_book
from conftest import run_cli

from initstudy.study import sweep


def run_tiny(root, results, *args):
    return sweep.main(["tiny", "--profile", "smoke", "--results-dir", str(results), "--no-progress", *args],
                      catalog=tiny_book.CATALOG, root=root)


@pytest.fixture
def tiny(tmp_path):
    return tiny_book.make_root(tmp_path / "book")


def test_local_cluster_runs_a_real_smoke_sweep(tmp_path):
    proc = run_cli("sweep", "xavier_kaiming", "--profile", "smoke", "--grid", "he_depths=6,10", "--seeds", "2",
                   "--workers", "2", "--results-dir", str(tmp_path), "--no-progress", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    agg = tmp_path / "smoke" / "sweeps" / "xavier_kaiming" / "aggregate"
    rows = pd.read_csv(agg / "measurements.csv")
    jobs = pd.read_csv(agg / "jobs.csv")
    assert len(jobs) == 4 and sorted(zip(jobs["he_depths"], jobs["seeds"])) == [(6, 0), (6, 1), (10, 0), (10, 1)]
    assert set(rows["job"]) == set(jobs["job"])  # every job's rows
    per_job = rows.groupby("job")["metric"].nunique()
    assert (per_job == per_job.iloc[0]).all() and per_job.iloc[0] >= 5
    he = rows[rows["metric"] == "he_depth"].set_index("job")["value"]
    assert he.to_dict() == jobs.set_index("job")["he_depths"].astype(float).to_dict()
    finals = pd.read_csv(agg / "tables" / "training_final_accuracy.csv")
    assert set(finals["job"]) == set(jobs["job"]) and {"grid_he_depths", "grid_seeds"} <= set(finals.columns)
    from importlib.metadata import version

    assert jobs["git_commit"].notna().all() and (jobs["torch"] == version("torch")).all()


def test_rerun_of_a_larger_grid_runs_only_the_new_jobs(tiny, tmp_path):
    counter = tmp_path / "count.txt"
    results = tmp_path / "results"
    common = ["--seeds", "2", "--workers", "2", "-p", "counter", str(counter)]
    assert run_tiny(tiny, results, "--grid", "value=1,3", *common) == 0
    assert len(counter.read_text().splitlines()) == 4
    assert run_tiny(tiny, results, "--grid", "value=1,2,3", *common) == 0
    new = counter.read_text().splitlines()[4:]
    assert sorted(new) == ["2 [0]", "2 [1]"]  # only the jobs that had not finished
    agg = results / "smoke" / "sweeps" / "tiny" / "aggregate"
    rows = pd.read_csv(agg / "measurements.csv")
    assert len(rows) == 6 and sorted(rows["value"]) == [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]
    assert run_tiny(tiny, results, "--grid", "value=1,2,3", *common) == 0
    assert len(counter.read_text().splitlines()) == 6  # a third run executes nothing


def test_resume_after_some_jobs_failed(tiny, tmp_path):
    counter = tmp_path / "count.txt"
    results = tmp_path / "results"
    base = ["--seeds", "1", "--engine", "serial", "-p", "counter", str(counter)]
    assert run_tiny(tiny, results, "--grid", "value=1,2", "--grid", "fail=false,true", *base) == 1
    assert len(counter.read_text().splitlines()) == 4
    agg = results / "smoke" / "sweeps" / "tiny" / "aggregate"
    assert len(pd.read_csv(agg / "jobs.csv")) == 2  # the two that finished
    failed = list((results / "smoke" / "sweeps" / "tiny" / "jobs").glob("*.failed.json"))
    assert len(failed) == 2 and "told to fail" in failed[0].read_text()
    # the finished jobs are not executed again; the failing ones are retried (and fail again)
    assert run_tiny(tiny, results, "--grid", "value=1,2", "--grid", "fail=false,true", *base) == 1
    assert len(counter.read_text().splitlines()) == 6


@pytest.mark.parametrize("args, message", [
    (["--grid", "nope=1,2"], "notebook 'xavier_kaiming' has no parameter 'nope'"),
    (["--grid", "he_depths=6,100000"], "parameter 'he_depths' must be a comma-separated list of distinct integers"),
    (["--grid", "he_depths="], "--grid he_depths= has no values"),
    ([], "a sweep needs at least one --grid"),
    (["--grid", "he_depths=6", "--scheduler", "tcp://127.0.0.1:9"], "cannot reach the Dask scheduler"),
    (["--grid", "he_depths=6", "--seeds", "0"], "--seeds must be at least 1"),
    (["--grid", "profile=gpu"], "parameter 'profile' is set by the sweep"),
    (["--grid", "batch_size=64,2000"], "parameters 'batch_size' and 'train_subset': batch_size must be at most "
     "train_subset"),
    (["--grid", "device=cpu,cuda"], "parameter 'device' must be one of auto, cpu, cuda (cuda only where a CUDA "
     "device is visible), got 'cuda'"),
    # on a remote cluster the GPU is the workers' to have: the sweep gets as far as the scheduler
    (["--grid", "device=cpu,cuda", "--scheduler", "tcp://127.0.0.1:9"], "cannot reach the Dask scheduler"),
])
def test_bad_grids_fail_fast(tmp_path, monkeypatch, args, message):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # no GPU, even on a machine that has one
    proc = run_cli("sweep", "xavier_kaiming", "--profile", "smoke", "--results-dir", str(tmp_path), *args,
                   timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "smoke").exists()
