"""The gpu profile's prepared script: what it refuses before any work, and its report."""

import json

import pytest
import torch

from initstudy.study import gpu_run


def test_unknown_chapter_and_bad_budget_are_refused_before_any_work(capsys):
    assert gpu_run.main(["nope"]) == 2
    assert "unknown notebook 'nope'" in capsys.readouterr().err
    assert gpu_run.main(["--budget", "0"]) == 2
    assert "--budget must be a positive number" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without a GPU")
def test_without_a_gpu_it_refuses(capsys):
    assert gpu_run.main(["fixup"]) == 2
    assert "no CUDA device here" in capsys.readouterr().err


def test_chapter_report_reads_the_provenance_and_marks_a_failed_chapter(tmp_path):
    (tmp_path / "fixup").mkdir()
    work = {"train_gflop": 2_000_000.0, "eval_gflop": 500_000.0, "gflop_per_s": 41_000.0, "member_steps_per_s": 350.0}
    (tmp_path / "fixup" / "provenance.json").write_text(json.dumps({"wall_time_s": 61.5, "training_core": work,
                                                                     "device": "cuda"}))
    row = gpu_run.chapter_report(tmp_path, "fixup", 0, 70.0)
    assert (row["tflop"], row["tflop_per_s"], row["notebook_s"]) == (2500.0, 41.0, 61.5)
    failed = gpu_run.chapter_report(tmp_path, "fixup", 1, 5.0)
    assert "tflop" not in failed and failed["rc"] == 1
    assert "–" in gpu_run.report_text([failed]).split("\n")[1]


def test_the_plan_runs_without_a_gpu_in_plan_mode(tmp_path, monkeypatch, capsys):
    """--plan needs no GPU: each chapter runs at the gpu profile on the CPU in the training
    core's plan mode, into its own results folder; the report sums the planned TFLOP."""
    from initstudy.core.ensemble import PLAN_ENV

    calls = []

    class Done:
        returncode = 0

    def fake_run(cmd):
        import os

        calls.append((cmd, os.environ.get(PLAN_ENV)))
        prov = tmp_path / "gpu" / cmd[4] / "provenance.json"
        prov.parent.mkdir(parents=True, exist_ok=True)
        prov.write_text(json.dumps({"wall_time_s": 3.0, "training_core": {
            "planned_train_gflop": 1500.0, "planned_eval_gflop": 500.0}}))
        return Done()

    monkeypatch.setattr(gpu_run.subprocess, "run", fake_run)
    monkeypatch.setenv(PLAN_ENV, "0")  # recorded, so that main's setting it is undone after the test
    assert gpu_run.main(["fixup", "transfer", "--plan", "--results-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert [c[0][4] for c in calls] == ["fixup", "transfer"] and {c[1] for c in calls} == {"1"}
    assert all(c[0][-4:] == ["-p", "device", "cpu", "--force"] and "gpu" in c[0] for c in calls)
    assert "every chapter: 4.0 TFLOP planned" in out
    saved = json.loads((tmp_path / "gpu" / "gpu_plan.json").read_text())
    assert [r["planned_tflop"] for r in saved["chapters"]] == [2.0, 2.0] and saved["gpu"] is None


def test_plan_mode_writes_no_results_and_the_book_refuses_them(tmp_path, monkeypatch):
    """Plan-mode numbers are not results: a notebook refuses to start in plan mode outside a
    folder named plan, and the book refuses a profile with a chapter run in plan mode."""
    from initstudy.book.build import build
    from initstudy.core.ensemble import PLAN_ENV
    from initstudy.study.run import Run

    monkeypatch.setenv(PLAN_ENV, "1")
    with pytest.raises(ValueError, match="writes only under a folder named plan"):
        Run.start("zero_init", {"profile": "smoke", "results_dir": str(tmp_path / "results" / "smoke" / "zero_init")})
    monkeypatch.setenv(PLAN_ENV, "0")
    chapter = tmp_path / "results" / "smoke" / "fixup"
    chapter.mkdir(parents=True)
    (chapter / "provenance.json").write_text(json.dumps({"training_core": {"plan_mode": True}}))
    with pytest.raises(SystemExit, match="fixup .* ran in plan mode"):
        build("smoke", results_dir=tmp_path / "results")
