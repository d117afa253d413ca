"""The book builds from the smoke results with warnings as errors, and its generated pages
list every claim, every figure and every parameter."""

import json
import re

import pytest
from bs4 import BeautifulSoup
from conftest import ROOT, run_cli

from initstudy import catalog, claims

HTML = ROOT / "_build" / "smoke" / "_build" / "html"


@pytest.fixture(scope="module")
def smoke_book(smoke_results):
    proc = run_cli("book", "--profile", "smoke", "--all", "-q", timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return HTML


def page(html_root, path):
    return BeautifulSoup((html_root / path).read_text(), "html.parser")


def test_claims_table_lists_every_claim_with_a_verdict(smoke_book):
    for path in ("book/intro.html", "book/claims.html"):
        soup = page(smoke_book, path)
        table = soup.find("table")
        text = table.get_text(" ")
        summary = {r["id"]: r for r in json.loads((ROOT / "results" / "smoke" / "claims.json").read_text())}
        for cid in claims.LEDGER:
            row = next(tr for tr in table.find_all("tr") if cid in tr.get_text())
            verdict = summary[cid]["verdict"]
            assert verdict in row.get_text(" ") and "[smoke]" in row.get_text(" ")
        assert "Verdict (smoke profile)" in text


def test_figures_index_resolves_to_exported_files(smoke_book):
    soup = page(smoke_book, "book/figures.html")
    manifest_ids = []
    for name in catalog.NOTEBOOKS:
        manifest = json.loads((ROOT / "results" / "smoke" / name / "figures" / "manifest.json").read_text())
        manifest_ids += [e["id"] for e in manifest]
    assert manifest_ids
    links = [a["href"] for a in soup.find_all("a", href=True)]
    for fid in manifest_ids:
        for fmt in ("png", "svg"):
            href = next(h for h in links if h.endswith(f"{fid}.{fmt}"))
            assert (smoke_book / "book" / href).resolve().is_file(), href
        assert fid in soup.get_text()


def test_chapter_figures_are_numbered_with_captions(smoke_book):
    soup = page(smoke_book, "results/smoke/zero_init/zero_init.html")
    captions = [c.get_text(" ") for c in soup.find_all("figcaption")]
    assert len(captions) == 3 and all(re.search(r"Figure 1\.\d", c) for c in captions)
    text = soup.get_text(" ")
    for cid in catalog.NOTEBOOKS["zero_init"].claims:  # the computed verdicts are pasted in the text
        verdict = next(r["verdict"] for r in json.loads((ROOT / "results" / "smoke" / "claims.json").read_text())
                       if r["id"] == cid)
        assert f"{cid} : {verdict}" in text or f"{cid}: {verdict}" in text


def test_rerun_page_is_generated_from_the_declarations(smoke_book):
    soup = page(smoke_book, "book/rerun.html")
    code = "\n".join(pre.get_text() for pre in soup.find_all("pre"))
    text = soup.get_text(" ")
    for spec in catalog.NOTEBOOKS.values():
        assert f"python -m initstudy run {spec.name} --profile cpu" in code
        for p in spec.params:
            assert p.name in text and p.allowed() in text


def test_environment_page_has_provenance(smoke_book):
    text = page(smoke_book, "book/environment.html").get_text(" ")
    assert "torch" in text and "2.14.1" in text and "zero_init" in text


def test_book_refuses_a_profile_without_results(tmp_path):
    proc = run_cli("book", "--profile", "gpu")
    if (ROOT / "results" / "gpu").exists():
        pytest.skip("gpu results exist on this machine")
    assert proc.returncode == 2 and "run `python -m initstudy run --profile gpu` first" in proc.stderr
