"""The book builds from the smoke results with warnings as errors, and its generated pages
list every claim, every figure and every parameter."""

import json
import os
import re
import subprocess
import sys

import pytest
from bs4 import BeautifulSoup
from conftest import ROOT, run_cli

from initstudy.study import catalog, claims

HTML = ROOT / "_build" / "smoke" / "_build" / "html"


@pytest.fixture(scope="module")
def smoke_book(smoke_results):
    proc = run_cli("book", "--profile", "smoke", "--all", "-q", timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return HTML


def page(html_root, path):
    return BeautifulSoup((html_root / path).read_text(), "html.parser")


def test_claims_tables_list_every_claim_with_a_verdict(smoke_book):
    summary = {r["id"]: r for r in json.loads((ROOT / "results" / "smoke" / "claims.json").read_text())}
    table = page(smoke_book, "book/intro.html").find("table")
    assert "Verdict (smoke)" in table.get_text(" ")
    for cid in claims.LEDGER:
        row = next(tr for tr in table.find_all("tr") if cid in tr.get_text())
        assert summary[cid]["verdict"] in row.get_text(" ")
    detail = page(smoke_book, "book/claims.html").get_text(" ")
    for cid, row in summary.items():
        assert cid in detail and row["verdict"] in detail


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
    text = " ".join(soup.get_text(" ").split())
    for cid in catalog.NOTEBOOKS["zero_init"].claims:  # the verdicts the claims are reported under, in the text
        verdict = next(r["headline"] for r in json.loads((ROOT / "results" / "smoke" / "claims.json").read_text())
                       if r["id"] == cid)
        assert f"{cid} : {verdict} (smoke profile)" in text or f"{cid}: {verdict} (smoke profile)" in text


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
    from importlib.metadata import version

    assert "torch" in text and version("torch") in text and "zero_init" in text


def test_book_refuses_a_profile_without_results(tmp_path):
    proc = run_cli("book", "--profile", "gpu")
    if (ROOT / "results" / "gpu").exists():
        pytest.skip("gpu results exist on this machine")
    assert proc.returncode == 2 and "run `python -m initstudy run --profile gpu` first" in proc.stderr


def test_publication_pages(smoke_book):
    from initstudy.study.paper import PAPER_NUMBERS

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
    # the advice shows, per claim, the block written for its computed verdict: no label leaks
    assert "reproduced:" not in advice and "inconclusive:" not in advice


def test_chapters_link_to_their_source_notebooks_on_colab(smoke_book):
    for name in catalog.NOTEBOOKS:
        html = (smoke_book / "results" / "smoke" / name / f"{name}.html").read_text()
        assert "colab.research.google.com/github/" in html and f"blob/main/notebooks/{name}.ipynb" in html


def test_launch_buttons_open_the_source_notebooks(smoke_book):
    """The theme's launch menu and the chapter's own line open notebooks/<name>.ipynb on Colab and
    Binder, never the executed copy (not in the repository)."""
    import yaml

    repo = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"].split("github.com/")[1]
    for name in catalog.NOTEBOOKS:
        soup = page(smoke_book, f"results/smoke/{name}/{name}.html")
        links = [a["href"] for a in soup.find_all("a", href=True)]
        launch = [h for h in links if h.startswith(("https://mybinder.org/", "https://colab.research.google.com/"))]
        assert f"https://mybinder.org/v2/gh/{repo}/main?urlpath=lab/tree/notebooks/{name}.ipynb" in launch
        assert f"https://colab.research.google.com/github/{repo}/blob/main/notebooks/{name}.ipynb" in launch
        assert len([h for h in launch if "mybinder" in h]) >= 2  # the theme's menu and the chapter's line
        assert not [h for h in launch if "results/" in h], launch
    intro = page(smoke_book, "book/intro.html")  # a page that is no notebook has no launch menu
    assert not [a for a in intro.find_all("a", href=True) if "mybinder.org" in a["href"]]


def test_no_page_names_thebes_example_repository(smoke_book):
    """Thebe is off; the configuration sphinx-thebe writes into every page names our repository."""
    import yaml

    repo = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"].split("github.com/")[1]
    named = [p.relative_to(smoke_book).as_posix() for p in smoke_book.rglob("*.html")
             if "binder-examples" in p.read_text()]
    assert named == []
    assert f'repo: "{repo}"' in (smoke_book / "book" / "intro.html").read_text()


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


# ------------------------------------------------------------------ clean pages, landing page


FORBIDDEN_IN_PAGES = {
    "an object repr": re.compile(r"<(IPython|matplotlib|pandas|torch)\.[\w.]+ (object|at 0x)"),
    "a traceback": re.compile(r"Traceback \(most recent call last\)"),
    "a warning": re.compile(r"\b\w*Warning: "),
    "a progress bar": re.compile(r"\d+%\|[\u2588-\u258f ]*\|"),
    "an absolute path": re.compile(r"(/work/|/tmp/|/home/|/root/|site-packages|\.venv/|\.staging/)"),
}


def test_built_pages_are_clean(smoke_book):
    """No object reprs, tracebacks, warnings, stderr outputs, progress bars or absolute paths
    in any page a reader sees (the chapters are executed notebooks)."""
    problems = []
    for path in sorted(smoke_book.rglob("*.html")):
        rel = path.relative_to(smoke_book)
        if rel.parts[0] in ("_static", "_sources", "genindex.html", "search.html"):
            continue
        soup = BeautifulSoup(path.read_text(), "html.parser")
        for el in soup(["script", "style"]):
            el.decompose()
        if soup.select(".output.stderr, .output.traceback, .output.error"):
            problems.append(f"{rel}: a stderr, traceback or error output")
        text = soup.get_text(" ").replace(str(ROOT), "<ROOT>")
        for what, pattern in FORBIDDEN_IN_PAGES.items():
            m = pattern.search(text)
            if m:
                problems.append(f"{rel}: {what}: ...{text[max(0, m.start() - 60):m.end() + 40]!r}")
        if "<ROOT>" in text:
            problems.append(f"{rel}: the repository's absolute path")
        for cell in soup.select("table.dataframe td"):
            if cell.get_text().strip() in ("NaN", "nan", "<NA>", "None"):
                problems.append(f"{rel}: a table cell shows {cell.get_text().strip()!r} (missing values show as '–')")
                break
        for img in soup.select("figure img"):
            if img.get("alt", "") == img.get("src", "") or img.get("alt", "").startswith(("../", "_images")):
                problems.append(f"{rel}: a figure's alternative text is its file path ({img.get('src')})")
                break
    assert not problems, "\n".join(problems[:20])


def test_landing_page_answers_in_one_minute(smoke_book):
    soup = page(smoke_book, "book/intro.html")
    summary = json.loads((ROOT / "results" / "smoke" / "claims.json").read_text())
    text = soup.get_text(" ")
    assert f"{len(summary)} claims:" in text  # the summary line, counts per verdict
    table = soup.find("table")
    head = [th.get_text(" ").strip() for th in table.find_all("th")]
    assert head[:2] == ["Claim", "The article says"] and "Shown in" not in head
    for row in summary:
        tr = next(tr for tr in table.find_all("tr") if row["id"] in tr.get_text())
        badge = tr.select_one(".initstudy-verdict")
        assert badge is not None and badge.get_text() == row["verdict"]  # colour and word
        deciding = claims.deciding_check(row["checks"])
        cell = tr.get_text(" ")
        assert claims.format_result(deciding) in cell and deciding["status"] in cell  # the number that decided it
        link = tr.find("a", href=True)
        assert link is not None and link["href"].endswith(f"#verdict-{row['id']}"), row["id"]
        assert (smoke_book / "book" / link["href"].split("#")[0]).resolve().is_file()


def test_claims_page_shows_every_negative_control(smoke_book):
    text = page(smoke_book, "book/claims.html").get_text(" ").replace("\u2019", "'").replace("\u2018", "'")  # (smart quotes)
    for c in claims.LEDGER.values():
        assert c.control[:40] in text, c.id
    assert text.count("Discriminates:") == len(claims.LEDGER)


def test_every_statement_of_the_book_holds_on_the_smoke_results(smoke_results):
    from initstudy.book import statements

    files = sorted((ROOT / "book").glob("*.md")) + sorted((ROOT / "notebooks").glob("*.ipynb"))
    found = statements.scan_files(files, smoke_results)
    bad = [f for f in found if f.outcome == "false" or f.outcome.startswith("error")]
    assert not bad, "\n".join(f"{f.source}: {f.kind} {f.predicate} -> {f.outcome}" for f in bad)
    assert any(f.kind == "by-verdict" for f in found) and any(f.kind == "when" for f in found)


def test_a_contradicted_statement_fails_the_book_build(smoke_results, tmp_path):
    """`make book` fails on a false statement: plant one in a copy of the book and build it."""
    import shutil

    root = tmp_path / "book"
    root.mkdir()
    for name in ("_config.yml", "_toc.yml", "references.bib"):
        shutil.copy(ROOT / name, root / name)
    for folder in ("book", "_static", "notebooks"):
        shutil.copytree(ROOT / folder, root / folder)
    shutil.copytree(smoke_results, root / "results" / "smoke",
                    ignore=shutil.ignore_patterns(".staging", ".failed", "manual", "sweeps"))
    advice = root / "book" / "advice.md"
    planted = ("```{checked} check('lsuv-cheap', 'lsuv_cost_fraction_of_bn').mean > 1e9\n"
               "LSUV costs a billion times more than BatchNorm.\n```\n")
    advice.write_text(advice.read_text() + "\n" + planted)
    env = {**os.environ, "INITSTUDY_ROOT": str(root)}
    proc = subprocess.run([sys.executable, "-m", "initstudy", "book", "--profile", "smoke", "-q"], cwd=root,
                          env=env, capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert "contradicted statement" in out and "a billion times" in out
    assert "lsuv_cost_fraction_of_bn').mean > 1e9" in out and "check('lsuv-cheap', 'lsuv_cost_fraction_of_bn').mean =" in out
    # the same copy without the planted statement builds
    advice.write_text(advice.read_text().replace(planted, ""))
    proc = subprocess.run([sys.executable, "-m", "initstudy", "book", "--profile", "smoke", "-q"], cwd=root,
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]


# ------------------------------------------------------------------ in a headless browser


def test_every_page_loads_from_disk_without_a_network_request(smoke_book):
    """Each page of the book opened from disk in a headless Chromium: every request it makes
    (scripts, styles, fonts, MathJax, images) is for a file of the book, and none fails."""
    from headless import Browser, network_requests

    paths = sorted(p for p in smoke_book.rglob("*.html") if p.relative_to(smoke_book).parts[0] not in
                   ("_static", "_sources", "_downloads"))
    assert len(paths) >= 15
    with Browser() as browser:
        for path in paths:
            tab = browser.open(path)
            browser.pump(0.5)  # late requests: fonts, MathJax's components
            assert network_requests(tab.requests) == [], path
            assert tab.failed == [], (path, tab.failed)


def test_the_interactive_figure_works_in_the_book_from_disk(smoke_book):
    """The signal-depth chapter's slider figure: drawn by the plotly.js the book serves, with no
    network request, and moving the slider changes the plot."""
    from headless import Browser, network_requests
    from test_interactive import check_slider_moves_the_plot

    from initstudy.chapters.signal_depth import SLIDER_GAINS

    chapter = smoke_book / "results" / "smoke" / "signal_depth" / "signal_depth.html"
    soup = page(smoke_book, "results/smoke/signal_depth/signal_depth.html")
    scripts = [s["src"] for s in soup.find_all("script", src=True)]
    assert any(s.split("?")[0].endswith("_static/plotly/plotly.min.js") for s in scripts)
    assert (smoke_book / "_static" / "plotly" / "plotly.min.js").stat().st_size > 1_000_000
    figure = soup.find(id="fig-depth-explode-vanish-slider")  # numbered, with its caption, the plot inside
    assert figure is not None and figure.name == "figure"
    assert figure.find(attrs={"data-figure": "fig-depth-explode-vanish-slider"}) is not None
    assert re.match(r"Figure \d+\.\d+\s+Interactive", figure.find("figcaption").get_text(" ").strip())
    # pages without an interactive figure do not load plotly.js
    assert "plotly" not in (smoke_book / "book" / "intro.html").read_text()
    with Browser() as browser:
        tab = browser.open(chapter)
        check_slider_moves_the_plot(tab, "fig-depth-explode-vanish-slider", f"{SLIDER_GAINS[0]:g}", "1",
                                    f"{SLIDER_GAINS[-1]:g}")
        assert network_requests(tab.requests) == [] and tab.failed == []


def test_each_script_loads_once_per_page(smoke_book):
    """A repeated ``const`` declaration (sphinx-thebe's configuration) stops a page's script with
    an error, and a second MathJax load is wasted: every script appears once."""
    for rel in ("book/intro.html", "results/smoke/lsuv/lsuv.html", "results/smoke/zero_init/zero_init.html"):
        soup = page(smoke_book, rel)
        seen = []
        for tag in soup.find_all("script"):
            key = tag.get("src", "").split("?")[0] or tag.get_text().strip()
            if key:
                seen.append(key)
        repeated = sorted({k[:80] for k in seen if seen.count(k) > 1})
        assert not repeated, (rel, repeated)
        assert sum("THEBE_JS_URL" in k for k in seen) == 1 and sum("tex-mml-chtml" in k for k in seen) == 1


def test_the_book_builds_from_another_results_folder_with_a_registered_chapter(smoke_results, monkeypatch):
    """``book --results-dir`` (a folder inside the repository), with a tiny chapter registered
    from outside the package (``INITSTUDY_CHAPTERS``): its notebook is run into that folder, the
    book is built from it with warnings as errors, and the chapter joins the toc, the generated
    chapter list and the claims table; every link of the generated pages points into the folder."""
    import shutil

    import tiny_chapter

    alt = ROOT / "results" / "alt"
    notebook = ROOT / "notebooks" / "tiny_chapter.ipynb"
    shutil.rmtree(alt, ignore_errors=True)
    shutil.copytree(smoke_results, alt / "smoke", ignore=shutil.ignore_patterns(".staging", ".failed", "_toc.yml"))
    monkeypatch.setenv("INITSTUDY_CHAPTERS", "tiny_chapter")
    try:
        tiny_chapter.write_notebook(notebook)
        proc = run_cli("run", "tiny_chapter", "--profile", "smoke", "--results-dir", str(alt), "--no-progress")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        proc = run_cli("book", "--profile", "smoke", "--results-dir", str(alt), "-q", timeout=1500)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        html = ROOT / "_build" / "alt-smoke" / "_build" / "html"
        intro = page(html, "book/intro.html")
        chapters = [a["href"] for a in intro.find(id="chapters").find_all("a") if "#" not in a["href"]]
        assert len(chapters) == 7 and all(h.startswith("../results/alt/smoke/") for h in chapters), chapters
        assert chapters[-1] == "../results/alt/smoke/tiny_chapter/tiny_chapter.html"
        assert all((html / "book" / h).resolve().is_file() for h in chapters)
        table = intro.find("table").get_text(" ")
        assert "tiny-at-least-one" in table and "reproduced" in table
        tiny = page(html, "results/alt/smoke/tiny_chapter/tiny_chapter.html").get_text(" ")
        assert "A tiny chapter" in tiny and "tiny-at-least-one : reproduced" in " ".join(tiny.split())
        figures = page(html, "book/figures.html")
        hrefs = [a["href"] for a in figures.find_all("a") if "alt/smoke" in a.get("href", "")]
        assert hrefs and all((html / "book" / h.split("#")[0]).resolve().is_file() for h in hrefs)
    finally:
        notebook.unlink(missing_ok=True)
        shutil.rmtree(alt, ignore_errors=True)
