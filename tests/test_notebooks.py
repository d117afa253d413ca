"""Committed notebooks are stripped and declare exactly their parameters; every notebook runs
at the smoke profile through papermill and leaves well-formed results and claims rows."""

import ast
import json
import math
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT

from initstudy.study import catalog, claims
from initstudy.study.figures import FIGURE_ID, captions_from_notebook, read_manifest

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_every_declared_notebook_exists_and_no_other():
    assert sorted(p.stem for p in NOTEBOOKS) == sorted(catalog.NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_is_stripped_and_declares_its_parameters(path):
    nb = json.loads(path.read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    for cell in code:
        assert cell.get("outputs") == [] and cell.get("execution_count") is None
    tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1
    tree = ast.parse("".join(tagged[0]["source"]))
    names = [t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets]
    spec = catalog.NOTEBOOKS[path.stem]
    assert names == ["profile", "results_dir"] + [p.name for p in spec.params]
    values = {t.id: ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
              for t in node.targets}
    # defaults live in the declaration only: the notebook leaves every parameter at None
    assert all(values[p.name] is None for p in spec.params)


@pytest.mark.parametrize("name", sorted(catalog.NOTEBOOKS))
def test_smoke_run_results_are_well_formed(smoke_results, name):
    folder = smoke_results / name
    spec = catalog.NOTEBOOKS[name]
    executed = json.loads((folder / f"{name}.ipynb").read_text())
    errors = [o for c in executed["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    # fit to publish: the run's parameters folded and without this machine's paths, the cell of
    # None defaults off the page
    injected = [c for c in executed["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert len(injected) == 1 and "hide-input" in injected[0]["metadata"]["tags"]
    assert f'results_dir = "results/smoke/{name}"' in "".join(injected[0]["source"])
    defaults = [c for c in executed["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert all("remove-cell" in c["metadata"]["tags"] for c in defaults)
    # the Colab install cell ran and did nothing (not on Colab), and is off the page
    install = executed["cells"][0]
    assert "colab-install" in install["metadata"]["tags"] and "remove-cell" in install["metadata"]["tags"]
    assert install["outputs"] == []
    run = json.loads((folder / "run.json").read_text())
    assert run["profile"] == "smoke" and len(run["cache_key"]) == 64
    prov = json.loads((folder / "provenance.json").read_text())
    for key in ("git", "packages", "device", "profile", "params", "wall_time_s"):
        assert key in prov
    assert prov["params"]["seeds"] == spec.param("seeds").default("smoke")
    tables = list((folder / "tables").glob("*.csv"))
    assert tables
    for table in tables:
        df = pd.read_csv(table)
        assert len(df) > 0
    rows = json.loads((folder / "claims.json").read_text())
    assert sorted(r["id"] for r in rows) == sorted(spec.claims)
    for row in rows:
        assert row["verdict"] in claims.VERDICTS and row["profile"] == "smoke" and row["notebook"] == name
        ledger = claims.LEDGER[row["id"]]
        assert [c["metric"] for c in row["checks"]] == [c.metric for c in ledger.criterion.checks]
        # the claim's own seeds: an experiment may have its own seed list (LSUV's batch-size one,
        # 2 seeds at smoke against the run's 3, so that a count taken from the wrong list fails)
        if row["id"] == "lsuv-batch-size":
            assert row["seeds"] == list(range(prov["params"]["batch_seeds"])) != catalog.seeds_list(
                prov["params"]["seeds"])
        checks = list(ledger.criterion.checks) + [c.requires for c in ledger.criterion.checks if c.requires]
        for check in checks:
            for metric in filter(None, (check.metric, check.control)):  # the negative control too
                values = row["measurements"][metric]
                # the recorded sample count is the judge's n (counted apart, by the interval)
                judged = {c["metric"]: c["n"] for c in row["checks"]}
                if metric in judged:
                    assert row["samples"][metric] == judged[metric], metric
                # one value per seed of the claim; an exact quantity has a single value; unseeded
                # measurements (wall-time repeats) have no seeds
                assert (len(values) == len(row["seeds"]) or (check.scale == "exact" and len(values) == 1)
                        or (row["seeds"] == [] and len(values) >= 1)), metric
                assert all(isinstance(v, float) and not math.isinf(v) for v in values), metric
        assert all("control" in c for c in row["checks"])  # each check records its negative control
    manifest = read_manifest(folder / "figures")
    captions = captions_from_notebook(folder / f"{name}.ipynb")
    assert {e["id"] for e in manifest} == set(captions)  # every figure shown with a caption, and only those
    for entry in manifest:
        assert FIGURE_ID.match(entry["id"])
        for fmt in ("png", "svg"):
            assert (folder / "figures" / entry["files"][fmt]).stat().st_size > 1000
        # the plotted data beside every figure, and only the parameters the figure used
        assert entry.get("data") and (folder / "figures" / entry["data"]).stat().st_size > 0, entry["id"]
        assert set(entry["params"]) - {"profile"} <= set(prov["params"]), entry["id"]
    for row in rows:
        assert set(row["figures"]) <= {e["id"] for e in manifest}


def test_zero_init_smoke_measures_exact_symmetry(smoke_results):
    """Whatever the profile, all-zero weights give bitwise-identical units (the theory is exact)."""
    rows = {r["id"]: r for r in json.loads((smoke_results / "zero_init" / "claims.json").read_text())}
    assert rows["zero-symmetry"]["measurements"]["zero_units_rel_distance"] == [0.0, 0.0, 0.0]
    assert rows["zero-symmetry"]["measurements"]["zero_max_rank"] == [1.0, 1.0, 1.0]
    grads = pd.read_csv(smoke_results / "zero_init" / "tables" / "zero_init_max_gradient_norms.csv")
    dead = grads[grads["activation"].isin(["tanh", "relu"]) & (grads["layer"] != "out")]
    assert (dead[["weight_grad_norm", "bias_grad_norm"]].to_numpy() == 0.0).all()
    out = grads[grads["activation"].isin(["tanh", "relu"]) & (grads["layer"] == "out")]
    assert (out["weight_grad_norm"] == 0.0).all() and (out["bias_grad_norm"] > 0.0).all()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_verdict_has_a_label_the_landing_page_links_to(path):
    text = "".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "markdown")
    for cid in catalog.NOTEBOOKS[path.stem].claims:
        assert f"(verdict-{cid})=" in text, cid


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_plumbing_cells_are_hidden(path):
    """Every code cell but the parameters cell is hidden or removed in the book (QuantEcon's way)."""
    for cell in json.loads(path.read_text())["cells"]:
        if cell["cell_type"] != "code":
            continue
        tags = set(cell.get("metadata", {}).get("tags", []))
        assert tags & {"parameters", "hide-input", "remove-input", "remove-cell"}, "".join(cell["source"])[:80]


#: The most lines a notebook's code cell may have (its parameters and Colab install cells apart):
#: notebooks stay thin; analysis and figures live in the chapter module.
MAX_CELL_LINES = 15


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_are_thin(path):
    long = []
    for i, cell in enumerate(json.loads(path.read_text())["cells"]):
        tags = set(cell.get("metadata", {}).get("tags", []))
        if cell["cell_type"] != "code" or tags & {"parameters", "colab-install"}:
            continue
        lines = "".join(cell["source"]).splitlines()
        if len(lines) > MAX_CELL_LINES:
            long.append(f"cell {i}: {len(lines)} lines, starting {lines[0][:60]!r}")
    assert not long, f"{path.name} has code cells over {MAX_CELL_LINES} lines: " + "; ".join(long)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_type_no_claim_id_in_code(path):
    """Verdicts and the papers' numbers come from the chapter's declarations (run.verdicts,
    run.spec.claims), not from ids typed in a cell; figure ids (fig-<claim>-<what>) are names."""
    import re

    ids = "|".join(re.escape(c) for c in claims.LEDGER)
    for cell in json.loads(path.read_text())["cells"]:
        if cell["cell_type"] != "code":
            continue
        src = "".join(cell["source"])
        assert "run.verdict(" not in src, src[:80]
        for m in re.finditer(rf"[\"']({ids})[\"']", src):
            line = src[:m.end()].rsplit("\n", 1)[-1]
            raise AssertionError(f"{path.name}: claim id {m.group(1)} typed in: {line.strip()}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_figure_word_before_a_figure_reference(path):
    """{numref} renders "Figure N" itself: "figure {numref}" reads "figure Figure N"."""
    import re

    text = "".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "markdown")
    found = re.findall(r"(?<![A-Za-z])[Ff]igures?\s+\{numref\}", text)
    assert not found, found


#: The chapters that choose something on validation (``run.selection``): a learning rate, a weight
#: scale, the best init. They run a second time with the test labels shuffled.
CHOOSING = ("signal_depth", "xavier_kaiming", "lsuv", "transfer")


@pytest.fixture(scope="session")
def shuffled_test_results(tmp_path_factory) -> Path:
    """The choosing chapters at the smoke profile again, with every data set's test labels
    permuted (:data:`initstudy.core.data.SHUFFLE_TEST_ENV`)."""
    import os
    import subprocess
    import sys

    from initstudy.core.data import SHUFFLE_TEST_ENV

    results = tmp_path_factory.mktemp("shuffled-test")
    env = {**os.environ, SHUFFLE_TEST_ENV: "1"}
    proc = subprocess.run([sys.executable, "-m", "initstudy", "run", *CHOOSING, "--profile", "smoke", "--force",
                           "--no-progress", "--results-dir", str(results)], cwd=ROOT, capture_output=True, text=True,
                          timeout=1200, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return results / "smoke"


def test_no_choice_reads_the_test_split(smoke_results, shuffled_test_results):
    """Every choice a chapter makes (its ``selections/`` tables) comes out the same when the test
    labels are shuffled, while the test numbers the checks judge change (the negative control:
    the shuffle did reach the test split)."""
    for name in CHOOSING:
        chosen = sorted((smoke_results / name / "selections").glob("*.csv"))
        assert chosen, f"{name} records no selection"
        for path in chosen:
            again = shuffled_test_results / name / "selections" / path.name
            assert again.read_text() == path.read_text(), f"{name}: {path.name} moved with the test labels"
        before = {r["id"]: r["measurements"] for r in json.loads((smoke_results / name / "claims.json").read_text())}
        after = {r["id"]: r["measurements"] for r in
                 json.loads((shuffled_test_results / name / "claims.json").read_text())}
        assert before != after, f"{name}: shuffling the test labels changed no measurement"
