"""Generated pages (pure functions) and the published-results folder."""

import json

import pytest
from conftest import ROOT, run_cli

from initstudy import book, catalog, claims, pages, publish


def fake_profile(tmp_path, verdict=claims.REPRODUCED):
    folder = tmp_path / "cpu"
    (folder / "zero_init" / "tables").mkdir(parents=True)
    (folder / "zero_init" / "figures").mkdir()
    row = {"id": "zero-symmetry", "verdict": verdict, "explanation": "e", "criterion": "c",
           "checks": [{"metric": "zero_units_rel_distance", "mean": 0.0, "low": 0.0, "high": 0.0}],
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
        assert f"`{cid}`" in md
    assert "**reproduced** [cpu]" in md and "{numref}`fig-zero-symmetry-distance`" in md
    assert md.count(claims.NOT_MEASURED) == len(claims.LEDGER) - 1
    assert "No published gpu results" in md


def test_claims_table_shows_published_gpu_verdicts_beside(tmp_path):
    folder = fake_profile(tmp_path)
    published = [{"id": "zero-symmetry", "verdict": claims.PARTLY}]
    md = pages.claims_table(folder, "cpu", published)
    assert "Verdict (published gpu run)" in md and f"**{claims.PARTLY}** [gpu]" in md
    assert "not run" in md  # claims the gpu run did not measure


def test_criteria_figures_rerun_environment(tmp_path):
    crit = pages.claims_criteria()
    assert all(f"`{cid}`" in crit for cid in claims.LEDGER)
    folder = fake_profile(tmp_path)
    figs = pages.figures_index(folder, "cpu")
    assert "### `fig-zero-symmetry-distance`" in figs and "{download}`SVG" in figs and "@misc{" in figs
    assert "Seeds:** [0, 1, 2]" in figs and "width=16" in figs
    rerun = pages.rerun_commands()
    for spec in catalog.NOTEBOOKS.values():
        assert all(f"`{p.name}`" in rerun for p in spec.params)
    env = pages.environment(folder, "cpu")
    assert "| `zero_init` | cpu |" in env and "`abc`" in env and "| `torch` | 2.14.1 |" in env
    assert "No runs" in pages.environment(tmp_path / "none", "gpu")


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


def test_committed_published_results_are_unedited():
    for target in sorted((ROOT / "published").glob("*")) if (ROOT / "published").is_dir() else []:
        assert publish.verify(target) == [], target


def test_derived_toc_for_another_profile(tmp_path):
    (tmp_path / "_toc.yml").write_text("root: book/intro\nchapters:\n  - file: results/cpu/a/a\n")
    assert book.toc_for(tmp_path, "cpu") == tmp_path / "_toc.yml"
    derived = book.toc_for(tmp_path, "smoke")
    assert derived == tmp_path / "results" / "smoke" / "_toc.yml"
    assert "results/smoke/a/a" in derived.read_text() and "results/cpu" not in derived.read_text()


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
    from initstudy.paper import PAPER_NUMBERS

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
