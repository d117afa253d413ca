"""A chapter is one unit: a module declaring its parameters, claims and measurements, plus its
notebook. A tiny chapter registered from outside the package joins the catalog, the ledger,
``run`` (with validation before any work), the verdicts and the generated pages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

import initstudy.chapters as chapters
from initstudy.book import pages
from initstudy.study import catalog, claims


def test_the_chapter_order_is_the_books_reading_order():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [c["file"] for part in toc["parts"] for c in part["chapters"] if c["file"].startswith("results/")]
    assert [f.rsplit("/", 1)[1] for f in files] == list(chapters.ORDER) == list(catalog.NOTEBOOKS)
    for name in chapters.ORDER:
        assert (ROOT / "notebooks" / f"{name}.ipynb").is_file()


def test_declarations_are_wired_and_checked():
    import types

    good = types.ModuleType("x.ok")
    good.SPEC = catalog.NotebookSpec("ok", "OK")
    good.CLAIMS = (claims.Claim("c-1", "s", "a", "m", claims.Criterion(())),)
    spec, ledger = chapters.wire(good)
    assert spec.claims == ("c-1",) and ledger[0].notebook == "ok"
    bad = types.ModuleType("x.other")
    bad.SPEC, bad.CLAIMS = good.SPEC, good.CLAIMS
    with pytest.raises(ValueError, match="declares the notebook 'ok'"):
        chapters.wire(bad)
    twice = types.ModuleType("x.ok")
    twice.SPEC, twice.CLAIMS = good.SPEC, good.CLAIMS * 2
    with pytest.raises(ValueError, match="declared twice"):
        chapters.wire(twice)


@pytest.fixture
def tiny_root(tmp_path, monkeypatch):
    import tiny_chapter

    root = tmp_path / "book"
    (root / "notebooks").mkdir(parents=True)
    (root / "_toc.yml").write_text("format: jb-book\nroot: intro\n")
    tiny_chapter.write_notebook(root / "notebooks" / "tiny_chapter.ipynb")
    # the chapter module is this book's own copy, so that a test may edit it
    (root / "lib").mkdir()
    (root / "lib" / "tiny_chapter.py").write_text(Path(tiny_chapter.__file__).read_text())
    monkeypatch.setenv(chapters.EXTRA_ENV, "tiny_chapter")
    return root


def _run(root, *args):
    path = os.pathsep.join([str(root / "lib"), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "INITSTUDY_ROOT": str(root), "PYTHONPATH": path}
    return subprocess.run([sys.executable, "-m", "initstudy", *args], capture_output=True, text=True, env=env,
                          timeout=600, cwd=root)


def test_a_tiny_chapter_registered_outside_the_package_runs_end_to_end(tiny_root):
    listed = _run(tiny_root, "run", "--list")
    assert listed.returncode == 0 and "tiny_chapter: A tiny chapter  [claims: tiny-at-least-one]" in listed.stdout
    # its parameters are validated before any work, as every chapter's
    bad = _run(tiny_root, "run", "tiny_chapter", "--profile", "smoke", "-p", "value", "-1")
    assert bad.returncode == 2 and "parameter 'value' must be a number in [0, 100], got -1.0" in bad.stderr
    for value, verdict in (("2", claims.REPRODUCED), ("0.25", claims.NOT_REPRODUCED)):
        proc = _run(tiny_root, "run", "tiny_chapter", "--profile", "smoke", "--no-progress", "-p", "value", value)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        rows = json.loads((tiny_root / "results" / "smoke" / "tiny_chapter" / "claims.json").read_text())
        assert [(r["id"], r["verdict"], r["seeds"], r["samples"]) for r in rows] == [
            ("tiny-at-least-one", verdict, [0, 1, 2], {"tiny_value": 3, "tiny_control": 3})]
        assert rows[0]["checks"][0]["control"]["status"] == claims.FAILS  # its negative control fails the rule
    summary = json.loads((tiny_root / "results" / "smoke" / "claims.json").read_text())
    by_id = {r["id"]: r for r in summary}
    assert len(summary) == len(claims.LEDGER) and by_id["tiny-at-least-one"]["verdict"] == claims.NOT_REPRODUCED
    assert by_id["zero-symmetry"]["verdict"] == claims.NOT_MEASURED


def test_editing_a_registered_chapters_module_reruns_it(tiny_root):
    """The cache key covers the source of a chapter registered from outside the package."""
    args = ("run", "tiny_chapter", "--profile", "smoke", "--no-progress")
    assert _run(tiny_root, *args).returncode == 0
    again = _run(tiny_root, *args)
    assert again.returncode == 0 and "tiny_chapter [smoke]: cached" in again.stdout
    module = tiny_root / "lib" / "tiny_chapter.py"
    module.write_text(module.read_text() + "\n# an edit to the chapter's code\n")
    edited = _run(tiny_root, *args)
    assert edited.returncode == 0 and "tiny_chapter [smoke]: executed" in edited.stdout, edited.stdout


def test_the_generated_pages_list_a_registered_chapter(tiny_root):
    specs = chapters.specs()
    assert list(specs)[-1] == "tiny_chapter" and specs["tiny_chapter"].claims == ("tiny-at-least-one",)
    assert list(chapters.ledger())[-1] == "tiny-at-least-one"
    # the catalog and the ledger every command reads see it too, though loaded before it was registered
    assert list(catalog.NOTEBOOKS) == list(specs) and list(claims.LEDGER)[-1] == "tiny-at-least-one"
    listing = pages.chapter_list(lambda n: f"/results/cpu/{n}/{n}", specs)
    assert listing.splitlines()[-1] == "7. {doc}`A tiny chapter </results/cpu/tiny_chapter/tiny_chapter>` " \
                                       "({ref}`tiny-at-least-one <verdict-tiny-at-least-one>`)."
    rerun = pages.rerun_commands(specs)
    assert "python -m initstudy run tiny_chapter --profile cpu" in rerun and "| `value` |" in rerun


def test_every_claim_has_advice_for_each_verdict():
    """The one page a new chapter must add to by hand: advice per claim, written per verdict."""
    import re

    text = (ROOT / "book" / "advice.md").read_text()
    blocks = dict(re.findall(r"```\{by-verdict\} ([a-z0-9-]+)\n(.*?)```", text, flags=re.S))
    for cid in claims.LEDGER:
        assert cid in blocks, f"book/advice.md has no {{by-verdict}} block for {cid}"
        for label in ("reproduced:", "partly reproduced:", "not reproduced:", "inconclusive:"):
            assert re.search(rf"^{label}", blocks[cid], flags=re.M), (cid, label)


def test_the_stability_run_reruns_a_chapter_on_fresh_seeds_and_compares(tiny_root):
    """``stability`` reruns on seeds from 2000 (as many as the profile runs) into its own folder,
    never touching the profile's results, and says per claim whether the verdict stayed."""
    assert _run(tiny_root, "run", "tiny_chapter", "--profile", "smoke", "--no-progress").returncode == 0
    own = tiny_root / "results" / "smoke" / "tiny_chapter" / "claims.json"
    before = own.read_text()
    proc = _run(tiny_root, "stability", "tiny_chapter", "--profile", "smoke", "--no-progress")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    fresh = tiny_root / "results" / "fresh-seeds" / "smoke"
    rows = json.loads((fresh / "tiny_chapter" / "claims.json").read_text())
    assert rows[0]["seeds"] == [2000, 2001, 2002] and rows[0]["fresh_seeds"] is True
    assert own.read_text() == before
    report = {r["id"]: r for r in json.loads((fresh / "stability.json").read_text())}
    assert report["tiny-at-least-one"]["same"] == "yes"
    assert report["tiny-at-least-one"]["fresh_seeds"] == [2000, 2001, 2002]
    assert report["zero-symmetry"]["same"] == "not run"
    assert "tiny-at-least-one" in proc.stdout and "fragile" not in proc.stdout
    sentence = pages.fresh_seeds_sentence(tiny_root / "results" / "smoke", "tiny-at-least-one", "smoke")
    assert sentence.startswith("*On fresh seeds* (2000-2002): the same verdict, reproduced")
    # bad input: one line, exit 2, nothing run
    bad = _run(tiny_root, "stability", "--profile", "smoke", "--first-seed", "5")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--first-seed must be in [100" in bad.stderr
    seen = _run(tiny_root, "stability", "--profile", "smoke", "--first-seed", "1000")  # seen when the criteria changed
    assert seen.returncode == 2 and seen.stderr.count("\n") == 1 and "tuning seeds 1000-1002" in seen.stderr


def test_every_claim_shows_its_fresh_seed_result_in_its_chapter():
    """Each verdict paragraph of a chapter carries the fresh-seed run's result for its claim
    (the ``{fresh-seeds}`` directive), so a fragile verdict is marked where it is read."""
    import nbformat

    for name, spec in catalog.NOTEBOOKS.items():
        text = "\n".join(c.source for c in nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4).cells
                         if c.cell_type == "markdown")
        for cid in spec.claims:
            assert f"```{{fresh-seeds}} {cid}\n```" in text, (name, cid)
