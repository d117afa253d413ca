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
