"""``make bench``'s work table: read from a run's provenance, against a given matmul rate."""

import json
import subprocess
import sys
from pathlib import Path

from initstudy.study import bench

ROOT = Path(__file__).resolve().parents[1]


def test_work_table_from_provenance(tmp_path):
    work = {"member_steps": 1000, "uncounted_steps": 0, "train_gflop": 300.0, "eval_gflop": 100.0, "seconds": 8.0,
            "record_seconds": 0.0, "member_steps_per_s": 125.0, "gflop_per_s": 50.0}
    (tmp_path / "zero_init").mkdir()
    (tmp_path / "zero_init" / "provenance.json").write_text(json.dumps({"wall_time_s": 20.0, "training_core": work}))
    (tmp_path / "lsuv").mkdir()  # a run from before the work was recorded: left out
    (tmp_path / "lsuv" / "provenance.json").write_text(json.dumps({"wall_time_s": 5.0}))
    rows = []
    bench.work_bench(lambda *a, **kw: rows.append(bench._row(*a, **kw)), tmp_path, rate=200.0)
    assert [r["what"] for r in rows] == ["zero_init: training core (1,000 member-steps)", "every chapter: training core"]
    assert rows[0]["median_s"] == 8.0
    # 400 GFLOP at 50 GFLOP/s is 25 % of 200 GFLOP/s; at 200 GFLOP/s they take 2 s
    assert "0.40 TFLOP at 50.0 GFLOP/s = 25% of the matmul rate; at the matmul rate 2 s; chapter 20 s" in rows[0]["note"]
    assert rows[1]["note"] == "at the matmul rate 2 s; chapters 20 s, of which 12 s outside the training core"


def test_work_rows_with_unknown_rates_show_a_dash(tmp_path):
    """A chapter that never trained (no seconds) or whose FLOPs were not all counted: no rate,
    no time at the matmul rate, and no crash."""
    none = {"member_steps": 0, "uncounted_steps": 0, "train_gflop": 0.0, "eval_gflop": 0.0, "seconds": 0.0,
            "record_seconds": 0.0, "member_steps_per_s": None, "gflop_per_s": None}
    (tmp_path / "lsuv").mkdir()
    (tmp_path / "lsuv" / "provenance.json").write_text(json.dumps({"wall_time_s": 3.0, "training_core": none}))
    rows = []
    bench.work_bench(lambda *a, **kw: rows.append(bench._row(*a, **kw)), tmp_path, rate=200.0)
    assert rows[0]["note"] == "– member-steps/s; FLOPs not counted for every member-step; chapter 3 s"
    assert rows[1]["note"].startswith("–; chapters 3 s")


def _bench(*args):
    return subprocess.run([sys.executable, "-m", "initstudy.study.bench", *args], capture_output=True, text=True,
                          cwd=ROOT)


def test_work_option_refuses_what_cannot_work(tmp_path):
    """Each refusal: exit 2, one line that names the option, no traceback."""
    (tmp_path / "old" / "fixup").mkdir(parents=True)  # a run of an older version: no work recorded
    (tmp_path / "old" / "fixup" / "provenance.json").write_text(json.dumps({"wall_time_s": 1.0}))
    cases = [
        (["--work", str(tmp_path / "none")], f"--work '{tmp_path / 'none'}' is not a folder"),
        (["--work", str(tmp_path / "old")], "no chapter's provenance there records the training core's work"),
        (["--device", "cuda"], "--device only applies to --work"),
        (["--work", str(tmp_path / "old"), "--device", "tpu"], "--device must be cpu or cuda, got 'tpu'"),
    ]
    for args, message in cases:
        proc = _bench(*args)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("bench: ") and message in lines[0], (args, lines)


def test_work_option_refuses_another_devices_rate(tmp_path):
    work = {"member_steps": 10, "uncounted_steps": 0, "train_gflop": 1.0, "eval_gflop": 1.0, "seconds": 1.0,
            "record_seconds": 0.0, "member_steps_per_s": 10.0, "gflop_per_s": 2.0}
    (tmp_path / "zero_init").mkdir()
    (tmp_path / "zero_init" / "provenance.json").write_text(
        json.dumps({"wall_time_s": 2.0, "device": "cuda", "training_core": work}))
    proc = _bench("--work", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"bench: --work '{tmp_path}' was run on cuda: compare it with that device's rate "
                                   "(--device cuda), not cpu's")


def test_the_micro_benchmarks_run_on_three_split_data():
    """The micro-benchmarks build their own random data sets in the library's three splits (a
    ``Dataset`` without validation tensors once broke ``make bench``); one repeat of the cheapest
    runs here, never timed."""
    from initstudy.study import bench

    rows = []
    bench.lsuv_bench(lambda *a, **kw: rows.append(bench._row(*a, **kw)), repeats=1)
    data = bench._random_data(16, 4, (1, 14, 14), __import__("torch").Generator().manual_seed(0))
    assert len(rows) == 3 and all(r["median_s"] > 0 for r in rows)
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (16, 4, 4)
    assert not data.x_val.equal(data.x_test)
