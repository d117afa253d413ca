"""Generated pages (pure functions) and the published-results folder."""

import json

import pytest
from conftest import ROOT, run_cli

from initstudy.book import build as book, pages, publish
from initstudy.study import catalog, claims
from initstudy.study.layout import Layout


def fake_profile(tmp_path, verdict=claims.REPRODUCED):
    folder = tmp_path / "cpu"
    (folder / "zero_init" / "tables").mkdir(parents=True)
    (folder / "zero_init" / "figures").mkdir()
    row = {"id": "zero-symmetry", "verdict": verdict, "explanation": "e", "criterion": "c",
           "checks": [{"metric": "zero_units_rel_distance", "mean": 0.0, "low": 0.0, "high": 0.0, "n": 3,
                       "status": "holds", "scale": "log", "rule": "zero_units_rel_distance <= 0.0001",
                       "control": {"metric": "random_units_rel_distance", "status": "fails", "n": 3,
                                   "mean": 0.9, "low": 0.8, "high": 1.0, "scale": "log"}}],
           "measurements": {}, "profile": "cpu", "seeds": [0, 1, 2], "notebook": "zero_init",
           "figures": ["fig-zero-symmetry-distance"]}
    (folder / "zero_init" / "claims.json").write_text(json.dumps([row]))
    (folder / "zero_init" / "tables" / "small.csv").write_text("a,b\n1,2\n")
    (folder / "zero_init" / "tables" / "big.csv").write_text("x\n" + "1\n" * 600_000)
    (folder / "zero_init" / "provenance.json").write_text(json.dumps({
        "profile": "cpu", "git": {"commit": "abc", "dirty": False}, "packages": {"torch": "2.14.1"},
        "wall_time_s": 12.5, "device": "cpu", "python": "3.11.7", "platform": "linux", "machine": "x86_64",
        "cpu_count": 2, "started": "2026-11-29T00:00:00+00:00", "torch_threads": 2}))
    (folder / "zero_init" / "run.json").write_text(json.dumps({"wall_time_s": 15.0}))
    (folder / "zero_init" / "figures" / "manifest.json").write_text(json.dumps(
        [{"id": "fig-zero-symmetry-distance", "params": {"seeds": 3, "width": 16}, "files": {}}]))
    return folder


def test_claims_table_lists_every_claim_and_the_profile(tmp_path):
    md = pages.claims_table(fake_profile(tmp_path), "cpu")
    for cid in claims.LEDGER:
        assert cid in md
    assert md.startswith("**16 claims: 1 reproduced, 15 not measured yet.**")
    assert "{ref}`zero-symmetry <verdict-zero-symmetry>`" in md  # measured: links to its verdict
    assert "`lsuv-cheap`" in md  # not measured: no link to a section that does not exist
    assert "{verdict-badge}`reproduced`" in md and "zero_units_rel_distance = 0 [0, 0], n=3; rule ≤ 0.0001: holds" in md
    assert md.count("{verdict-badge}`not measured yet`") == len(claims.LEDGER) - 1
    assert "Shown in" not in md and "No published gpu results" in md


def test_claims_table_shows_published_gpu_verdicts_beside(tmp_path):
    folder = fake_profile(tmp_path)
    published = [{"id": "zero-symmetry", "verdict": claims.PARTLY}]
    md = pages.claims_table(folder, "cpu", published)
    assert "Verdict (gpu)" in md and f"{{verdict-badge}}`{claims.PARTLY}`" in md
    assert "not run" in md  # claims the gpu run did not measure


def test_claims_detail_shows_the_control_and_whether_it_discriminates(tmp_path):
    md = pages.claims_detail(fake_profile(tmp_path), "cpu")
    assert "random_units_rel_distance: 0.9 [0.8, 1], n=3" in md and "Discriminates: **yes**" in md
    assert md.count("Discriminates:") == len(claims.LEDGER)
    assert "Criterion changed after a preliminary run" in md  # e.g. transfer-best's


def test_criteria_figures_rerun_environment(tmp_path):
    crit = pages.claims_criteria()
    assert all(f"`{cid}`" in crit for cid in claims.LEDGER)
    folder = fake_profile(tmp_path)
    figs = pages.figures_index(folder, "cpu")
    assert "### `fig-zero-symmetry-distance`" in figs and "{download}`SVG" in figs and "@misc{" in figs
    assert "Seeds:** none" in figs and "width=16" in figs  # no seed column, no seeds in the manifest
    assert "seeds=" not in figs
    rerun = pages.rerun_commands()
    for spec in catalog.NOTEBOOKS.values():
        assert all(f"`{p.name}`" in rerun for p in spec.params)
    env = pages.environment(folder, "cpu")
    assert "| `zero_init` | cpu |" in env and "`abc`" in env and "| `torch` | 2.14.1 |" in env
    assert "No runs" in pages.environment(tmp_path / "none", "gpu")
    assert "What each run's training did" not in env  # a run that predates the record: no table


def test_environment_page_shows_each_runs_training_work(tmp_path):
    folder = fake_profile(tmp_path)
    prov = json.loads((folder / "zero_init" / "provenance.json").read_text())
    prov["training_core"] = {"member_steps": 144000, "uncounted_steps": 0, "train_gflop": 1998.3,
                             "eval_gflop": 6343.7, "seconds": 101.91, "record_seconds": 20.782,
                             "member_steps_per_s": 1413.0, "gflop_per_s": 81.86}
    (folder / "zero_init" / "provenance.json").write_text(json.dumps(prov))
    env = pages.environment(folder, "cpu")
    assert "| `zero_init` | 144,000 | 2.00 | 6.34 | 101.9 | 20.8 | 1,413 | 81.9 |" in env
    assert "A *member-step* is one SGD step of one network" in env
    prov["training_core"].update(uncounted_steps=300, gflop_per_s=None)
    (folder / "zero_init" / "provenance.json").write_text(json.dumps(prov))
    assert "| `zero_init` | 144,000 (300 not counted) | 2.00 | 6.34 | 101.9 | 20.8 | 1,413 | – |" in \
        pages.environment(folder, "cpu")


def test_publish_copies_small_tables_with_checksums(tmp_path):
    folder = fake_profile(tmp_path)
    target = tmp_path / "published" / "cpu"
    manifest = publish.publish(folder, target)
    assert (target / "zero_init" / "tables" / "small.csv").is_file()
    assert not (target / "zero_init" / "tables" / "big.csv").exists()
    assert manifest["left_out"] and "big.csv" in manifest["left_out"][0]
    assert (target / "claims.json").is_file() and publish.verify(target) == []
    (target / "zero_init" / "tables" / "small.csv").write_text("a,b\n1,3\n")  # an edit by hand
    assert publish.verify(target) == ["zero_init/tables/small.csv"]


PUBLISHED = sorted((ROOT / "published").glob("*")) if (ROOT / "published").is_dir() else []


@pytest.mark.skipif(not PUBLISHED, reason="no results are committed under published/ yet")
@pytest.mark.parametrize("target", PUBLISHED, ids=lambda p: p.name)
def test_committed_published_results_are_unedited(target):
    assert (target / "MANIFEST.json").is_file()
    assert publish.verify(target) == [], target


def test_derived_toc_for_another_profile_or_results_folder(tmp_path):
    (tmp_path / "_toc.yml").write_text("root: book/intro\nchapters:\n  - file: results/cpu/a/a\n")
    lay = Layout(tmp_path)
    assert book.toc_for(lay, "cpu") == tmp_path / "_toc.yml"
    assert book.output_dir(lay, "cpu") == tmp_path
    derived = book.toc_for(lay, "smoke")
    assert derived == tmp_path / "results" / "smoke" / "_toc.yml"
    assert "results/smoke/a/a" in derived.read_text() and "results/cpu" not in derived.read_text()
    assert book.output_dir(lay, "smoke") == tmp_path / "_build" / "smoke"
    # results in another folder of the repository (a fresh-seed run): their own toc and output
    fresh = Layout(tmp_path, tmp_path / "fresh")
    derived = book.toc_for(fresh, "cpu")
    assert derived == tmp_path / "fresh" / "cpu" / "_toc.yml"
    assert "file: fresh/cpu/a/a" in derived.read_text() and "results/" not in derived.read_text()
    assert book.output_dir(fresh, "cpu") == tmp_path / "_build" / "fresh-cpu"


def test_book_and_publish_honour_results_dir(tmp_path):
    outside = tmp_path / "elsewhere"
    proc = run_cli("book", "--profile", "smoke", "--results-dir", str(outside))
    assert proc.returncode == 2 and "--results-dir must be inside the repository" in proc.stderr
    inside = ROOT / "results" / "no-such-results-folder"
    proc = run_cli("book", "--profile", "smoke", "--results-dir", str(inside))
    assert proc.returncode == 2 and "no executed notebook for zero_init" in proc.stderr
    proc = run_cli("publish", "--profile", "smoke", "--results-dir", str(outside))
    assert proc.returncode == 2 and "no results at the smoke profile" in proc.stderr


def test_data_command():
    proc = run_cli("data", "check", "digits", "mnist-5k", "fashion-mnist")
    assert proc.returncode == 0 and proc.stdout.count("available") == 3
    proc = run_cli("data", "check", "imagenet")
    assert proc.returncode == 2 and "unknown data set 'imagenet'" in proc.stderr


def test_publish_command_refuses_a_profile_without_results():
    if (ROOT / "results" / "gpu").exists():
        pytest.skip("gpu results exist here")
    proc = run_cli("publish", "--profile", "gpu")
    assert proc.returncode == 2 and "no results at the gpu profile" in proc.stderr


def test_paper_numbers_and_limitations_pages(tmp_path):
    from initstudy.study.paper import PAPER_NUMBERS

    folder = fake_profile(tmp_path)
    md = pages.paper_numbers(folder, "cpu")
    assert md.count("\n") == len(PAPER_NUMBERS) + 1
    assert "{cite:t}`glorot2010understanding`" in md and "no: recalled, to verify" in md
    lim = pages.limitations(folder, "cpu")
    assert "every check settled" in lim and "not measured at this profile" in lim
    assert pages.verdict_text(folder, "cpu", "zero-symmetry") == "reproduced (cpu profile)"
    with pytest.raises(KeyError):
        pages.verdict_text(folder, "cpu", "nope")
    assert pages.colab_url("https://github.com/a/b/", "dev", "fixup") == (
        "https://colab.research.google.com/github/a/b/blob/dev/notebooks/fixup.ipynb")


def test_figures_index_reads_seeds_from_the_figure_data_and_cites_by_id(tmp_path):
    folder = fake_profile(tmp_path)
    figs_dir = folder / "zero_init" / "figures"
    (figs_dir / "fig-zero-symmetry-distance.csv").write_text("seed,step,value\n0,1,0.5\n2,1,0.4\n")
    (figs_dir / "manifest.json").write_text(json.dumps(
        [{"id": "fig-zero-symmetry-distance", "params": {"width": 16, "profile": "cpu"}, "files": {},
          "data": "fig-zero-symmetry-distance.csv"}]))
    md = pages.figures_index(folder, "cpu", version="9.9.9", url="https://example.org/repo")
    assert "**Seeds:** 0, 2." in md  # the figure's own seeds (the run had 0, 1, 2)
    assert "{download}`data (CSV) </results/cpu/zero_init/figures/fig-zero-symmetry-distance.csv>`" in md
    assert "@misc{initstudy2026_fig_zero_symmetry_distance," in md and "version = {9.9.9}" in md
    assert "commit abc" in md and "url     = {https://example.org/repo}" in md
    assert "profile=" not in md.split("**Parameters**")[1].split("\n")[0]


def test_claims_table_flags_criteria_changed_after_a_preliminary_run(tmp_path, monkeypatch):
    import dataclasses

    folder = fake_profile(tmp_path)
    unchanged = dataclasses.replace(claims.LEDGER["zero-symmetry"], changes=())
    monkeypatch.setitem(claims.LEDGER._all(), "zero-symmetry", unchanged)
    assert "changed after a preliminary run" not in pages.claims_table(folder, "cpu")  # none changed
    changed = dataclasses.replace(claims.LEDGER["zero-symmetry"], changes=(("old rule", "new rule", "why"),))
    monkeypatch.setitem(claims.LEDGER._all(), "zero-symmetry", changed)  # the loaded ledger, restored after
    md = pages.claims_table(folder, "cpu")
    assert "holds (criterion changed after a preliminary run)" in md
    assert "The criteria of 1 of these claims were changed after a preliminary run" in md
