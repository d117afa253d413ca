"""Launch links that work: each chapter opens its *source* notebook on Colab and on Binder, the
notebook's first cell installs the library from the repository at the same version on Colab
only (papermill runs and local kernels skip it), and all of it follows the one repository
setting (``repository.url`` in ``_config.yml``). Thebe stays off and names no other repository.

Every check has a negative control: a notebook whose cell drifted, a kernel that is Colab, a
change to another cell that does change the cache key."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from conftest import ROOT

from initstudy.book import ext as bookext, pages, release
from initstudy.study import execution, runner
from initstudy.study.layout import Layout

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def install_cell(path: Path) -> dict:
    return json.loads(path.read_text())["cells"][0]


# ------------------------------------------------------------------------------ the first cell


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_chapter_starts_with_the_colab_install_cell(path):
    meta = release.read(ROOT)
    cells = json.loads(path.read_text())["cells"]
    first = cells[0]
    assert first["cell_type"] == "code" and first["id"] == release.INSTALL_TAG
    assert set(first["metadata"]["tags"]) == {release.INSTALL_TAG, "remove-cell"}  # off the book's pages
    assert first["source"] == release.render_install_cell(meta)["source"]
    source = "".join(first["source"])
    assert f'"initstudy @ git+{meta.repository}@{meta.branch}"' in source
    assert sum(release.is_install_cell(c) for c in cells) == 1
    # papermill injects the run's parameters after the tagged parameters cell, wherever it is
    assert sum("parameters" in c.get("metadata", {}).get("tags", []) for c in cells) == 1


def run_cell(source: str, monkeypatch, *, colab_module: bool = False, colab_env: bool = False) -> list:
    """Execute the cell as a kernel would, with pip replaced by a recorder; return its calls."""
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append((a, k)))
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    if colab_env:
        monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab_20261101-060000_RC00")
    if colab_module:
        import types

        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    exec(compile(source, "<install cell>", "exec"), {})
    return calls


def test_the_install_cell_installs_only_on_colab(monkeypatch):
    meta = release.read(ROOT)
    source = "".join(install_cell(NOTEBOOKS[0])["source"])
    assert run_cell(source, monkeypatch) == []  # papermill, a local kernel, an offline machine: nothing
    want = [sys.executable, "-m", "pip", "install", "--quiet", f"initstudy @ git+{meta.repository}@{meta.branch}"]
    for how in ({"colab_env": True}, {"colab_module": True}):  # negative control: on Colab it installs
        [(args, kwargs)] = run_cell(source, monkeypatch, **how)
        assert args == (want,) and kwargs == {"check": True}


@pytest.fixture
def repo_copy(tmp_path) -> Path:
    root = tmp_path / "repo"
    for rel in ("pyproject.toml", "_config.yml", "_toc.yml", *release.DERIVED_FILES):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, root / rel)
    shutil.copytree(ROOT / "notebooks", root / "notebooks")
    return root


def test_the_install_cell_follows_the_repository_setting_and_the_version(repo_copy):
    assert release.check(repo_copy) == []
    config = repo_copy / "_config.yml"
    old = release.read(repo_copy).repository
    config.write_text(config.read_text().replace(f"  url: {old}\n",
                                                 "  url: https://github.com/Example-Org/init-book\n"))
    drifted = release.check(repo_copy)
    assert any(p.startswith("notebooks/zero_init.ipynb") for p in drifted), drifted  # the cell still names the old one
    release.bump(repo_copy, "0.3.0", "2027-03-01")
    assert release.check(repo_copy) == []
    for path in sorted((repo_copy / "notebooks").glob("*.ipynb")):
        source = "".join(install_cell(path)["source"])
        assert '"initstudy @ git+https://github.com/Example-Org/init-book@main"' in source
        assert old not in path.read_text()
        nbformat.validate(nbformat.read(path, as_version=4))
        # only the first cell changed: the rest of the notebook is as it was
        before = json.loads((ROOT / "notebooks" / path.name).read_text())
        assert json.loads(path.read_text())["cells"][1:] == before["cells"][1:]


def test_sync_adds_a_missing_install_cell_and_check_says_so(repo_copy):
    path = repo_copy / "notebooks" / "lsuv.ipynb"
    nb = json.loads(path.read_text())
    nb["cells"] = nb["cells"][1:]
    path.write_text(release.notebook_text(nb))
    assert "notebooks/lsuv.ipynb: not as derived from the sources (run python -m initstudy.book.release sync)" in \
        release.check(repo_copy)
    assert release.sync(repo_copy) == ["notebooks/lsuv.ipynb"]
    assert release.check(repo_copy) == [] and release.is_install_cell(install_cell(path))


def test_a_release_does_not_change_the_chapters_cache_keys(tmp_path):
    """The install cell stays out of the runner's cache keys: a new repository setting re-executes nothing,
    and a notebook hashes as it did before it had the cell. Any other change does change it."""
    meta = release.read(ROOT)
    source = ROOT / "notebooks" / "zero_init.ipynb"
    params, src = {"seeds": 3}, "source-hash"

    def key(text: str) -> str:
        path = tmp_path / "zero_init.ipynb"
        path.write_text(text)
        return execution.cache_key(path, params, "cpu", src)

    text = source.read_text()
    now = key(text)
    bumped = release.with_install_cell(text, release.Metadata(**{**vars(meta), "repository": "https://github.com/x/y",
                                                                 "branch": "dev"}))
    assert bumped != text and key(bumped) == now
    nb = json.loads(text)
    without = release.notebook_text({**nb, "cells": nb["cells"][1:]})
    assert key(without) == now
    changed = json.loads(text)
    changed["cells"][-1]["source"].append("\n# another line")
    assert key(release.notebook_text(changed)) != now  # negative control
    assert key(text.replace('"profile = \\"cpu\\"', '"profile = \\"smoke\\"')) != now


def test_the_runner_keeps_the_install_cell_off_the_page(tmp_path):
    notebook = tmp_path / "nb.ipynb"
    nb = json.loads((ROOT / "notebooks" / "zero_init.ipynb").read_text())
    nb["cells"][0]["metadata"]["tags"] = [release.INSTALL_TAG]  # as if someone had dropped remove-cell
    nb["cells"][0]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["installed\n"]}]
    notebook.write_text(release.notebook_text(nb))
    job = runner.Job("zero_init", "smoke", {}, notebook, Layout(tmp_path), "k")
    untouched = json.loads(notebook.read_text())["cells"][0]
    assert "remove-cell" not in untouched["metadata"]["tags"] and untouched["outputs"]  # negative control
    runner._tidy_executed(notebook, tmp_path / "staging", job)
    first = json.loads(notebook.read_text())["cells"][0]
    assert "remove-cell" in first["metadata"]["tags"] and first["outputs"] == []


# ------------------------------------------------------------------------------ launch links


def test_colab_and_binder_open_the_source_notebook():
    assert pages.colab_url("https://github.com/a/b", "main", "lsuv") == (
        "https://colab.research.google.com/github/a/b/blob/main/notebooks/lsuv.ipynb")
    assert pages.binder_url("https://github.com/a/b/", "dev", "fixup") == (
        "https://mybinder.org/v2/gh/a/b/dev?urlpath=lab/tree/notebooks/fixup.ipynb")
    assert pages.binder_url("https://github.com/a/b", "main", "fixup", interface="classic").endswith(
        "?urlpath=tree/notebooks/fixup.ipynb")
    with pytest.raises(ValueError, match="notebook interface must be classic or jupyterlab"):
        pages.binder_url("https://github.com/a/b", "main", "fixup", interface="retro")


@pytest.mark.parametrize("url, want", [
    ("https://mybinder.org/v2/gh/a/b/main?urlpath=lab/tree/results/cpu/lsuv/lsuv.ipynb",
     "https://mybinder.org/v2/gh/a/b/main?urlpath=lab/tree/notebooks/lsuv.ipynb"),
    ("https://colab.research.google.com/github/a/b/blob/main/results/cpu/lsuv/lsuv.ipynb",
     "https://colab.research.google.com/github/a/b/blob/main/notebooks/lsuv.ipynb"),
    ("https://hub.example.org/hub/user-redirect/git-pull?repo=https%3A%2F%2Fgithub.com%2Fa%2Fb&urlpath=lab/tree/b/"
     "results/cpu/lsuv/lsuv.ipynb&branch=main",
     "https://hub.example.org/hub/user-redirect/git-pull?repo=https%3A%2F%2Fgithub.com%2Fa%2Fb&urlpath=lab/tree/b/"
     "notebooks/lsuv.ipynb&branch=main"),
])
def test_the_themes_launch_buttons_are_pointed_at_the_source_notebook(url, want):
    assert bookext.source_launch_url(url, "results/cpu/lsuv/lsuv", "lsuv") == want


def test_launch_buttons_of_other_pages_are_left_alone():
    context = {"header_buttons": [{"label": "launch-buttons", "buttons": [
        {"url": "https://mybinder.org/v2/gh/a/b/main?urlpath=lab/tree/book/intro.ipynb"}]}]}
    bookext._launch_buttons_to_source(None, "book/intro", "page.html", context, None)
    assert context["header_buttons"][0]["buttons"][0]["url"].endswith("book/intro.ipynb")
    chapter = {"header_buttons": [{"label": "launch-buttons", "buttons": [
        {"url": "https://mybinder.org/v2/gh/a/b/main?urlpath=lab/tree/results/smoke/fixup/fixup.ipynb"}]}]}
    bookext._launch_buttons_to_source(None, "results/smoke/fixup/fixup", "page.html", chapter, None)
    assert chapter["header_buttons"][0]["buttons"][0]["url"].endswith("?urlpath=lab/tree/notebooks/fixup.ipynb")


def test_thebe_names_this_repository_and_stays_off():
    options = {"repository_url": "https://github.com/a/b", "repository_branch": "main"}
    assert bookext.thebe_config_for(options, {}) == {"repository_url": "https://github.com/a/b",
                                                    "repository_branch": "main"}
    kept = {"repository_url": "https://github.com/c/d", "selector": "pre"}
    assert bookext.thebe_config_for(options, kept)["repository_url"] == "https://github.com/c/d"
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["launch_buttons"]["thebe"] is False
    assert "thebe_config" not in (config.get("sphinx", {}).get("config") or {})  # from repository.url only


def test_the_config_launches_colab_and_binder_from_the_one_repository_setting():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    launch = config["launch_buttons"]
    assert launch["colab_url"] == "https://colab.research.google.com"
    assert launch["binderhub_url"] == "https://mybinder.org" and launch["notebook_interface"] == "jupyterlab"
    text = (ROOT / "_config.yml").read_text()
    repo = config["repository"]["url"]
    assert text.count("github.com/") == text.count(repo.split("https://", 1)[1])  # no other repository named
    assert "initstudy_colab_url" not in text


def test_binder_builds_the_pinned_environment_with_the_library():
    """repo2docker reads environment.yml at the root (a binder/ folder would hide it): the pinned
    requirements and the library itself, on the study's Python."""
    assert not (ROOT / "binder").exists() and not (ROOT / ".binder").exists()
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pip == ["-r requirements.txt", "-e ."]
    assert "plotly==" in (ROOT / "requirements.txt").read_text()


def test_no_committed_file_names_thebes_example_repository():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    named = [f for f in tracked if (ROOT / f).is_file() and f.endswith((".py", ".yml", ".md", ".ipynb", ".toml"))
             and "binder-examples" in (ROOT / f).read_text(errors="ignore") and not f.startswith("tests/")]
    assert named == []


@pytest.mark.skipif(os.environ.get("INITSTUDY_SKIP_SPHINX") == "1", reason="asked to skip Sphinx builds")
def test_a_sphinx_build_writes_our_repository_into_thebes_configuration(tmp_path):
    """A tiny book built with the theme and this extension: the configuration sphinx-thebe writes
    into the page names the repository of the settings, never Jupyter Book's example."""
    def build(extensions: list[str]) -> str:
        src = tmp_path / f"src{len(extensions)}"
        src.mkdir()
        (src / "conf.py").write_text(
            f"extensions = {extensions!r}\n"
            "html_theme = 'sphinx_book_theme'\n"
            "html_theme_options = {'repository_url': 'https://github.com/Example-Org/init-book',"
            " 'repository_branch': 'main', 'launch_buttons': {'binderhub_url': 'https://mybinder.org'}}\n")
        (src / "index.rst").write_text("Title\n=====\n\nText.\n")
        out = tmp_path / f"out{len(extensions)}"
        proc = subprocess.run([sys.executable, "-m", "sphinx", "-q", "-b", "html", str(src), str(out)],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return (out / "index.html").read_text()

    html = build(["sphinx_thebe", "sphinx_book_theme", "initstudy.book.ext"])
    assert 'repo: "Example-Org/init-book"' in html
    assert "binder-examples" not in html
    # negative control: without this extension sphinx-thebe names its example repository
    assert "binder-examples/jupyter-stacks-datascience" in build(["sphinx_thebe", "sphinx_book_theme"])


def test_the_runner_and_the_release_name_the_same_install_tag():
    assert execution.INSTALL_TAG == release.INSTALL_TAG == "colab-install"
