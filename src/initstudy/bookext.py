"""Sphinx extension: the book's generated pages, rendered from one profile's results.

Directives (each renders MyST markdown generated from files, never typed by hand):

- ``{claims-table}``: every claim of the ledger with the verdict of the profile the book is
  built from (and of the published gpu results beside it, when present);
- ``{claims-criteria}``: each claim's paraphrase, article section, metric and criterion;
- ``{figures-index}``: every published figure with id, caption, chapter, parameters, seeds,
  PNG and SVG downloads and a ready citation;
- ``{rerun-commands}``: for each notebook, the commands and every parameter with its default
  per profile and allowed values (from :mod:`initstudy.catalog`);
- ``{environment-table}``: package versions, device, git commit, profile and per-notebook
  wall time of the runs the book shows.

The profile is the ``initstudy_profile`` config value, overridden by the environment
variable ``INITSTUDY_PROFILE`` (``python -m initstudy book --profile P`` sets it). Pages that
use these directives are re-read on every build, so they never show stale results.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

from . import catalog as catalog_mod
from . import claims as claims_mod
from .figures import captions_from_notebook, read_manifest

BOOK_TITLE = "Does this init claim hold? A reproducible study of weight initialisation"
BOOK_KEY = "initstudy2026"


def _profile(config) -> str:
    return os.environ.get("INITSTUDY_PROFILE") or config.initstudy_profile


def _results_root(app) -> Path:
    return Path(app.srcdir) / "results"


def _published_root(app) -> Path:
    return Path(app.srcdir) / app.config.initstudy_published


def _read_json(path: Path, default: Any) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


class _Generated(SphinxDirective):
    has_content = False

    def run(self) -> list[nodes.Node]:
        self.env.initstudy_dynamic_docs = getattr(self.env, "initstudy_dynamic_docs", set())
        self.env.initstudy_dynamic_docs.add(self.env.docname)
        container = nodes.container(classes=["initstudy-generated"])
        text = self.markdown()
        self.state.nested_parse(StringList(text.splitlines(), source=self.env.docname), self.content_offset, container)
        return [container]

    @property
    def profile(self) -> str:
        return _profile(self.config)

    @property
    def profile_dir(self) -> Path:
        return _results_root(self.env.app) / self.profile

    def markdown(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError


class ClaimsTable(_Generated):
    def markdown(self) -> str:
        rows = claims_mod.summary_rows(self.profile_dir)
        published = _read_json(_published_root(self.env.app) / "gpu" / "claims.json", [])
        gpu = {r["id"]: r for r in published}
        head = ["Claim", "What the article says", f"Verdict ({self.profile} profile)", "Key number", "Shown in"]
        if gpu:
            head.insert(3, "Verdict (published gpu run)")
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in rows:
            figs = ", ".join(f"{{numref}}`{f}`" for f in r.get("figures", []) if r["verdict"] != claims_mod.NOT_MEASURED)
            nb = r.get("notebook")
            where = figs or (f"chapter `{nb}` (to come)" if nb else "")
            cells = [f"`{r['id']}`", _cell(r["statement"]), f"**{r['verdict']}** [{self.profile}]",
                     _cell(r.get("key_number", "")), where]
            if gpu:
                g = gpu.get(r["id"])
                cells.insert(3, f"**{g['verdict']}** [gpu]" if g else "not run")
            lines.append("| " + " | ".join(cells) + " |")
        measured = sum(r["verdict"] != claims_mod.NOT_MEASURED for r in rows)
        lines += ["", f"{measured} of {len(rows)} claims measured at the `{self.profile}` profile. "
                      f"Machine-readable: `results/{self.profile}/claims.json` and `claims.csv`."]
        if not gpu:
            lines.append("No published gpu results are committed yet (`published/gpu/claims.json`).")
        return "\n".join(lines)


class ClaimsCriteria(_Generated):
    def markdown(self) -> str:
        out = []
        for c in claims_mod.LEDGER.values():
            out += [f"`{c.id}`", f": *{c.statement}* (article section: {c.article_section})", "",
                    f"  **Measured:** {c.metric}", "", "  **Criterion:**", ""]
            for chk in c.criterion.checks:
                out.append(f"  - {_cell(chk.text())}")
            out.append("")
        return "\n".join(out)


def _doc_of(profile: str, notebook: str) -> str:
    return f"/results/{profile}/{notebook}/{notebook}"


def _params_text(params: dict) -> str:
    shown = {k: v for k, v in params.items() if k not in ("device", "data_source")}
    return ", ".join(f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in shown.items())


class FiguresIndex(_Generated):
    def markdown(self) -> str:
        out = []
        found = 0
        for name, spec in catalog_mod.NOTEBOOKS.items():
            folder = self.profile_dir / name
            manifest = read_manifest(folder / "figures")
            nb_path = folder / f"{name}.ipynb"
            captions = captions_from_notebook(nb_path) if nb_path.is_file() else {}
            for entry in manifest:
                found += 1
                fid = entry["id"]
                params = entry.get("params", {})
                seeds = params.get("seeds")
                base = f"/results/{self.profile}/{name}/figures/{fid}"
                out += [
                    f"### `{fid}`", "",
                    f"{{numref}}`{fid}` in {{doc}}`{spec.title} <{_doc_of(self.profile, name)}>`.",
                    "",
                    f"**Caption.** {_cell(captions.get(fid, '(no caption found in the notebook)'))}", "",
                    f"**Parameters** ({self.profile} profile): {_params_text(params)}; "
                    f"seeds: {catalog_mod.seeds_list(seeds) if seeds is not None else 'n/a'}.", "",
                    f"**Download:** {{download}}`PNG <{base}.png>`, {{download}}`SVG <{base}.svg>`", "",
                    "**Cite this figure:**", "",
                    "```bibtex",
                    f"@misc{{{BOOK_KEY}_{fid.replace('-', '_')},",
                    f"  title  = {{Figure {fid}: {spec.title}}},",
                    "  author = {{The initstudy authors}},",
                    "  year   = {2026},",
                    f"  note   = {{In: {BOOK_TITLE}, {self.profile} profile}},",
                    "}",
                    "```", "",
                    f"Text: The initstudy authors (2026). *{BOOK_TITLE}*, figure `{fid}` "
                    f"({self.profile} profile).", "",
                ]
        if not found:
            out.append(f"No figures at the `{self.profile}` profile yet: run `python -m initstudy run "
                       f"--profile {self.profile}`.")
        return "\n".join(out)


class RerunCommands(_Generated):
    def markdown(self) -> str:
        out = []
        for name, spec in catalog_mod.NOTEBOOKS.items():
            out += [f"### {spec.title} (`{name}`)", "", spec.summary, "",
                    "```bash",
                    f"python -m initstudy run {name} --profile cpu            # the book's run",
                    f"python -m initstudy run {name} --profile gpu --force    # paper scale, on CUDA",
                    f"python -m initstudy run {name} --profile cpu -p seeds 10 -p {spec.params[-1].name} "
                    f"{_value_text(spec.params[-1].default('cpu'))}",
                    f"papermill {spec.path} out.ipynb -p profile cpu -p seeds 3",
                    "```", "",
                    "| parameter | allowed | smoke | cpu | gpu | what it sets |",
                    "|---|---|---|---|---|---|"]
            for p in spec.params:
                out.append(
                    f"| `{p.name}` | {_cell(p.allowed())} | "
                    + " | ".join(f"`{_value_text(p.default(prof))}`" for prof in catalog_mod.PROFILES)
                    + f" | {_cell(p.help)} |"
                )
            out.append("")
        return "\n".join(out)


def _value_text(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value).lower() if isinstance(value, bool) else str(value)


class EnvironmentTable(_Generated):
    def markdown(self) -> str:
        runs = []
        for name in catalog_mod.NOTEBOOKS:
            prov = _read_json(self.profile_dir / name / "provenance.json", None)
            run = _read_json(self.profile_dir / name / "run.json", {})
            if prov:
                runs.append((name, prov, run))
        if not runs:
            return f"No runs at the `{self.profile}` profile yet."
        lines = ["| notebook | profile | started (UTC) | notebook wall time (s) | papermill wall time (s) | "
                 "device | torch threads | git commit |", "|---|---|---|---|---|---|---|---|"]
        for name, prov, run in runs:
            git = prov.get("git", {})
            commit = (git.get("commit") or "unknown")[:12] + (" (uncommitted changes)" if git.get("dirty") else "")
            lines.append(
                f"| `{name}` | {prov['profile']} | {prov.get('started', '')} | {prov.get('wall_time_s', '')} | "
                f"{run.get('wall_time_s', '')} | {prov.get('device', '')} {prov.get('gpu', '')} | "
                f"{prov.get('torch_threads', '')} | `{commit}` |"
            )
        first = runs[0][1]
        lines += ["", f"Python {first.get('python')} on `{first.get('platform')}` ({first.get('machine')}, "
                      f"{first.get('cpu_count')} CPUs).", "", "| package | version |", "|---|---|"]
        for pkg, ver in sorted(first.get("packages", {}).items()):
            lines.append(f"| `{pkg}` | {ver} |")
        return "\n".join(lines)


def _outdated(app, env, added, changed, removed):
    return list(getattr(env, "initstudy_dynamic_docs", set()) - set(removed))


def _purge(app, env, docname):
    getattr(env, "initstudy_dynamic_docs", set()).discard(docname)


def _merge(app, env, docnames, other):
    env.initstudy_dynamic_docs = getattr(env, "initstudy_dynamic_docs", set()) | getattr(
        other, "initstudy_dynamic_docs", set())


def setup(app):
    app.add_config_value("initstudy_profile", "cpu", "env")
    app.add_config_value("initstudy_published", "published", "env")
    app.add_directive("claims-table", ClaimsTable)
    app.add_directive("claims-criteria", ClaimsCriteria)
    app.add_directive("figures-index", FiguresIndex)
    app.add_directive("rerun-commands", RerunCommands)
    app.add_directive("environment-table", EnvironmentTable)
    app.connect("env-get-outdated", _outdated)
    app.connect("env-purge-doc", _purge)
    app.connect("env-merge-info", _merge)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
