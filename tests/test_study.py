"""A notebook run's session object, used outside a notebook."""

import json

import pandas as pd
import pytest

from initstudy.study import catalog, claims
from initstudy.study.run import Run, provenance_table


def test_run_validates_records_and_writes(tmp_path):
    ns = {"profile": "smoke", "results_dir": str(tmp_path), "steps": 7, "seeds": [4, 5, 6]}
    run = Run.start("zero_init", ns)
    assert run.params["steps"] == 7 and run.seeds == [4, 5, 6]
    assert run.params["width"] == catalog.NOTEBOOKS["zero_init"].param("width").default("smoke")
    run.table(pd.DataFrame({"a": [1]}), "t")
    assert (tmp_path / "tables" / "t.csv").read_text() == "a\n1\n"
    values = {"zero_units_rel_distance": [0.0] * 3, "zero_max_rank": [1.0] * 3,
              "zero_accuracy_gap": [50.0, 51.0, 52.0], "placebo_accuracy_gap": [0.5, -1.0, 0.3],
              "control_accuracy": [0.8] * 3}
    # seeds 4-6 are among those the changed criterion was written on: its verdict waits for fresh seeds
    j = run.verdict("zero-symmetry", values)
    assert j.verdict == claims.INCONCLUSIVE and j.provisional == claims.REPRODUCED
    assert run.verdict("zero-symmetry", values, seeds=[2004, 2005, 2006]).verdict == claims.REPRODUCED
    assert run.verdict("zero-symmetry", values, seeds=[1004, 1005, 1006]).verdict == claims.INCONCLUSIVE
    rows = json.loads((tmp_path / "claims.json").read_text())
    assert rows[0]["id"] == "zero-symmetry" and rows[0]["seeds"] == [1004, 1005, 1006] and rows[0]["profile"] == "smoke"
    assert rows[0]["provisional"] == claims.REPRODUCED
    table = run.finish()
    prov = json.loads((tmp_path / "provenance.json").read_text())
    assert prov["wall_time_s"] >= 0 and prov["params"]["steps"] == 7
    assert "params.steps" in set(table["what"])
    assert run.verdict_table()["check"].tolist() == ["holds", "holds", "holds"]


def test_run_rejects_bad_parameters_and_foreign_claims(tmp_path):
    with pytest.raises(catalog.ParamError, match="parameter 'steps'"):
        Run.start("zero_init", {"profile": "smoke", "results_dir": str(tmp_path), "steps": "many"})
    with pytest.raises(catalog.ParamError, match="unknown profile"):
        Run.start("zero_init", {"profile": "laptop", "results_dir": str(tmp_path)})
    run = Run.start("zero_init", {"profile": "smoke", "results_dir": str(tmp_path)})
    with pytest.raises(ValueError, match="does not settle claim"):
        run.verdict("lsuv-cheap", {})
    assert run.published_verdicts("nonexistent-profile") is None


def test_provenance_table_flattens():
    t = provenance_table({"a": 1, "git": {"commit": "x"}})
    assert t.to_dict("records") == [{"what": "a", "value": "1"}, {"what": "git.commit", "value": "x"}]
