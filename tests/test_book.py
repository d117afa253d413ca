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


def test_publication_pages(smoke_book):
    from initstudy.paper import PAPER_NUMBERS

    papers = page(smoke_book, "book/papers.html").get_text(" ")
    for n in PAPER_NUMBERS:
        assert n.quantity[:25] in papers  # (smart quotes may change what follows)
    assert "recalled, to verify" in papers and "yes, read in a source" in papers
    limits = page(smoke_book, "book/limitations.html").get_text(" ")
    advice = page(smoke_book, "book/advice.html").get_text(" ")
    summary = {r["id"]: r for r in json.loads((ROOT / "results" / "smoke" / "claims.json").read_text())}
    for cid, row in summary.items():
        assert cid in limits
        assert f"{row['verdict']} (smoke profile)" in advice  # pasted by the {verdict} role


def test_chapters_link_to_their_source_notebooks_on_colab(smoke_book):
    for name in catalog.NOTEBOOKS:
        html = (smoke_book / "results" / "smoke" / name / f"{name}.html").read_text()
        assert "colab.research.google.com/github/" in html and f"blob/main/notebooks/{name}.ipynb" in html


def test_html_needs_no_network(smoke_book):
    """Every script, stylesheet, image and font the pages load is served from the book."""
    external = []
    for path in smoke_book.rglob("*.html"):
        soup = BeautifulSoup(path.read_text(), "html.parser")
        for tag, attr in (("script", "src"), ("img", "src"), ("link", "href"), ("iframe", "src")):
            for el in soup.find_all(tag):
                url = el.get(attr) or ""
                if tag == "link" and not set(el.get("rel") or []) & {"stylesheet", "preload", "icon", "modulepreload"}:
                    continue
                if url.startswith(("http://", "https://", "//")):
                    external.append(f"{path.relative_to(smoke_book)}: <{tag} {attr}={url}>")
    assert not external, external[:5]
    assert (smoke_book / "_static" / "mathjax" / "tex-mml-chtml.js").is_file()
    assert list((smoke_book / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff"))


def test_citation_cff_is_valid():
    import datetime

    import yaml

    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0"
    for key in ("message", "title", "authors", "version", "date-released", "license"):
        assert cff.get(key), key
    assert all(("name" in a) or ("family-names" in a) for a in cff["authors"])
    datetime.date.fromisoformat(str(cff["date-released"]))
    assert set(cff["license"]) <= {"MIT", "CC-BY-4.0"}
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'version = "{cff["version"]}"' in pyproject  # one version for the package and the citation
