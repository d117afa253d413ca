"""``make bench``'s work table: read from a run's provenance, against a given matmul rate."""

import json
import subprocess
import sys
from pathlib import Path

from initstudy.study import bench

ROOT = Path(__file__).resolve().parents[1]


def test_work_table_from_provenance(tmp_path):
    work = {"member_steps": 1000, "train_gflop": 300.0, "eval_gflop": 100.0, "seconds": 8.0,
            "member_steps_per_s": 125.0, "gflop_per_s": 50.0}
    (tmp_path / "zero_init").mkdir()
    (tmp_path / "zero_init" / "provenance.json").write_text(json.dumps({"wall_time_s": 20.0, "training_core": work}))
    (tmp_path / "lsuv").mkdir()  # a run from before the work was recorded: left out
    (tmp_path / "lsuv" / "provenance.json").write_text(json.dumps({"wall_time_s": 5.0}))
    rows = []
    bench.work_bench(lambda *a, **kw: rows.append(bench._row(*a, **kw)), tmp_path, rate=200.0)
    assert [r["what"] for r in rows] == ["zero_init: training core (1,000 member-steps)", "every chapter: training core"]
    assert rows[0]["median_s"] == 8.0
    # 400 GFLOP at 50 GFLOP/s is 25 % of 200 GFLOP/s; at 200 GFLOP/s they take 2 s
    assert "0.40 TFLOP at 50.0 GFLOP/s = 25% of the matmul rate; floor 2 s; chapter 20 s" in rows[0]["note"]
    assert rows[1]["note"] == "floor at the matmul rate 2 s; chapters 20 s, of which 12 s outside the training core"


def test_work_option_refuses_a_missing_folder(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "initstudy.study.bench", "--work", str(tmp_path / "none")],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"bench: --work '{tmp_path / 'none'}' is not a folder; give a profile's results, e.g. results/cpu"]
