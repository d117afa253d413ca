"""The book's generated pages, as MyST markdown built from files (never typed by hand).

Pure functions of a profile's results folder (``results/<profile>``), the published gpu
results (``published/gpu``, when present) and the declarations in :mod:`initstudy.catalog`
and :mod:`initstudy.claims`. :mod:`initstudy.bookext` renders them inside the book.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from . import catalog as catalog_mod
from . import claims as claims_mod
from .figures import captions_from_notebook, read_manifest

BOOK_TITLE = "Does this init claim hold? A reproducible study of weight initialisation"
BOOK_KEY = "initstudy2026"
BOOK_AUTHORS = "The initstudy authors"
BOOK_YEAR = 2026


def _read_json(path: Path, default: Any) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _value(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value).lower() if isinstance(value, bool) else str(value)


def chapter_doc(profile: str, notebook: str) -> str:
    """The docname of a notebook's executed copy at ``profile`` (absolute, for {doc})."""
    return f"/results/{profile}/{notebook}/{notebook}"


def published_rows(published_dir: Path) -> list[dict]:
    """The claims summary of the published gpu results, or [] when there are none."""
    return _read_json(Path(published_dir) / "gpu" / "claims.json", [])


def claims_table(profile_dir: Path, profile: str, published: list[dict] | None = None) -> str:
    """Every claim with its verdict at ``profile`` (and the published gpu verdict beside it),
    its key number and links to the figures that show it."""
    rows = claims_mod.summary_rows(profile_dir)
    gpu = {r["id"]: r for r in (published or [])}
    head = ["Claim", "What the article says", f"Verdict ({profile} profile)", "Key number", "Shown in"]
    if gpu:
        head.insert(3, "Verdict (published gpu run)")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        measured = r["verdict"] != claims_mod.NOT_MEASURED
        figs = ", ".join(f"{{numref}}`{f}`" for f in r.get("figures", [])) if measured else ""
        where = figs or (f"chapter `{r.get('notebook')}` (to come)" if r.get("notebook") else "")
        cells = [f"`{r['id']}`", _cell(r["statement"]), f"**{r['verdict']}** [{profile}]",
                 _cell(r.get("key_number", "")), where]
        if gpu:
            g = gpu.get(r["id"])
            cells.insert(3, f"**{g['verdict']}** [gpu]" if g else "not run")
        lines.append("| " + " | ".join(cells) + " |")
    measured = sum(r["verdict"] != claims_mod.NOT_MEASURED for r in rows)
    lines += ["", f"{measured} of {len(rows)} claims measured at the `{profile}` profile. Machine-readable: "
                  f"`results/{profile}/claims.json` and `claims.csv`."]
    if not gpu:
        lines.append("No published gpu results are committed yet (`published/gpu/claims.json`).")
    return "\n".join(lines)


def claims_criteria() -> str:
    """Each claim's paraphrase, article section, metric and criterion, from the ledger."""
    out = []
    for c in claims_mod.LEDGER.values():
        out += [f"`{c.id}`", f": *{c.statement}* (article section: {c.article_section})", "",
                f"  **Measured:** {c.metric}", "", "  **Criterion:**", ""]
        out += [f"  - {_cell(chk.text())}" for chk in c.criterion.checks]
        out.append("")
    return "\n".join(out)


def figure_citation(fig_id: str, chapter: str, profile: str) -> list[str]:
    """BibTeX and a text citation for one figure."""
    return [
        "```bibtex",
        f"@misc{{{BOOK_KEY}_{fig_id.replace('-', '_')},",
        f"  title  = {{Figure {fig_id}: {chapter}}},",
        f"  author = {{{{{BOOK_AUTHORS}}}}},",
        f"  year   = {{{BOOK_YEAR}}},",
        f"  note   = {{In: {BOOK_TITLE}, {profile} profile}},",
        "}",
        "```", "",
        f"Text: {BOOK_AUTHORS} ({BOOK_YEAR}). *{BOOK_TITLE}*, figure `{fig_id}` ({profile} profile).",
    ]


def _params_text(params: Mapping[str, Any]) -> str:
    shown = {k: v for k, v in params.items() if k not in ("device", "data_source", "seeds")}
    return ", ".join(f"{k}={_value(v)}" for k, v in shown.items())


def figures_index(profile_dir: Path, profile: str, catalog: Mapping | None = None) -> str:
    """Every published figure: id, caption, chapter, parameters, seeds, downloads, citation."""
    catalog = catalog_mod.NOTEBOOKS if catalog is None else catalog
    out: list[str] = []
    for name, spec in catalog.items():
        folder = Path(profile_dir) / name
        nb_path = folder / f"{name}.ipynb"
        captions = captions_from_notebook(nb_path) if nb_path.is_file() else {}
        for entry in read_manifest(folder / "figures"):
            fid = entry["id"]
            params = entry.get("params", {})
            seeds = params.get("seeds")
            base = f"/results/{profile}/{name}/figures/{fid}"
            out += [
                f"### `{fid}`", "",
                f"{{numref}}`{fid}` in {{doc}}`{spec.title} <{chapter_doc(profile, name)}>`.", "",
                f"**Caption.** {_cell(captions.get(fid, '(no caption found in the notebook)'))}", "",
                f"**Parameters** ({profile} profile): {_params_text(params)}.", "",
                f"**Seeds:** {catalog_mod.seeds_list(seeds) if seeds is not None else 'n/a'}.", "",
                f"**Download:** {{download}}`PNG <{base}.png>`, {{download}}`SVG <{base}.svg>`", "",
                "**Cite this figure:**", "",
                *figure_citation(fid, spec.title, profile), "",
            ]
    if not out:
        out.append(f"No figures at the `{profile}` profile yet: run `python -m initstudy run --profile {profile}`.")
    return "\n".join(out)


def rerun_commands(catalog: Mapping | None = None) -> str:
    """For each notebook: the commands, and every parameter with its allowed values and its
    default per profile (from the declarations the runner validates against)."""
    catalog = catalog_mod.NOTEBOOKS if catalog is None else catalog
    out: list[str] = []
    for name, spec in catalog.items():
        example = spec.params[-1]
        out += [f"### {spec.title} (`{name}`)", "", spec.summary, "",
                "```bash",
                f"python -m initstudy run {name} --profile cpu            # the book's run",
                f"python -m initstudy run {name} --profile gpu --force    # paper scale, on CUDA",
                f"python -m initstudy run {name} --profile cpu -p seeds 10 -p {example.name} "
                f"{_value(example.default('cpu'))}",
                f"papermill {spec.path} out.ipynb -p profile cpu -p seeds 3",
                "```", "",
                "| parameter | allowed | smoke | cpu | gpu | what it sets |",
                "|---|---|---|---|---|---|"]
        for p in spec.params:
            defaults = " | ".join(f"`{_value(p.default(prof))}`" for prof in catalog_mod.PROFILES)
            out.append(f"| `{p.name}` | {_cell(p.allowed())} | {defaults} | {_cell(p.help)} |")
        out.append("")
    return "\n".join(out)


def environment(profile_dir: Path, profile: str, catalog: Mapping | None = None) -> str:
    """Package versions, device, git commit, profile and per-notebook wall time of the runs."""
    catalog = catalog_mod.NOTEBOOKS if catalog is None else catalog
    runs = []
    for name in catalog:
        prov = _read_json(Path(profile_dir) / name / "provenance.json", None)
        if prov:
            runs.append((name, prov, _read_json(Path(profile_dir) / name / "run.json", {})))
    if not runs:
        return f"No runs at the `{profile}` profile yet."
    lines = ["| notebook | profile | started (UTC) | wall time in the notebook (s) | papermill wall time (s) | "
             "device | torch threads | git commit |", "|---|---|---|---|---|---|---|---|"]
    for name, prov, run in runs:
        git = prov.get("git", {})
        commit = (git.get("commit") or "unknown")[:12] + (" (uncommitted changes)" if git.get("dirty") else "")
        device = f"{prov.get('device', '')} {prov.get('gpu', '')}".strip()
        lines.append(f"| `{name}` | {prov['profile']} | {prov.get('started', '')} | {prov.get('wall_time_s', '')} | "
                     f"{run.get('wall_time_s', '')} | {device} | {prov.get('torch_threads', '')} | `{commit}` |")
    first = runs[0][1]
    lines += ["", f"Python {first.get('python')} on `{first.get('platform')}` ({first.get('machine')}, "
                  f"{first.get('cpu_count')} CPUs).", "", "| package | version |", "|---|---|"]
    lines += [f"| `{pkg}` | {ver} |" for pkg, ver in sorted(first.get("packages", {}).items())]
    return "\n".join(lines)


def paper_numbers(profile_dir: Path, profile: str) -> str:
    """Every number the book compares with a paper: source, where, value, whether it was
    checked against the paper's text, and this study's verdict and key number on the claim."""
    from .paper import PAPER_NUMBERS

    summary = {r["id"]: r for r in claims_mod.summary_rows(profile_dir)}
    lines = ["| paper | where | what the paper reports | value | checked against the paper? | claim | "
             f"this study ({profile}) |", "|---|---|---|---|---|---|---|"]
    for n in PAPER_NUMBERS:
        value = "" if n.value is None else f"{n.value:g}{(' ' + n.unit) if n.unit else ''}"
        checked = "yes, read in a source" if n.checked else "no: recalled, to verify"
        if n.note:
            checked += f" ({_cell(n.note)})"
        row = summary.get(n.claim, {})
        ours = f"**{row.get('verdict', '')}**; {_cell(row.get('key_number', ''))}" if row else ""
        lines.append(f"| {{cite:t}}`{n.paper}` | {n.where} | {_cell(n.quantity)} | {value} | {checked} | "
                     f"`{n.claim}` | {ours} |")
    return "\n".join(lines)


def _unsettled_reason(check: dict) -> str:
    rule = check.get("rule", "")
    if "precondition" in rule:
        return "a precondition was not met: " + rule.split("[precondition", 1)[1].rstrip("]").strip()
    if check.get("n", 0) < 3:
        return f"too few seeds ({check.get('n', 0)})"
    return "the 95 % interval straddles the threshold"


def limitations(profile_dir: Path, profile: str) -> str:
    """Per claim: the verdict at ``profile`` and, for every check it could not settle, why."""
    lines = ["| claim | verdict | what this profile could not settle |", "|---|---|---|"]
    for r in claims_mod.summary_rows(profile_dir):
        if r["verdict"] == claims_mod.NOT_MEASURED:
            note = "not measured at this profile"
        else:
            open_checks = [f"`{c['metric']}`: {_unsettled_reason(c)}" for c in r["checks"]
                           if c.get("status") == "unsettled"]
            note = "; ".join(open_checks) or "every check settled"
        lines.append(f"| `{r['id']}` | **{r['verdict']}** [{profile}] | {_cell(note)} |")
    return "\n".join(lines)


def verdict_text(profile_dir: Path, profile: str, claim_id: str) -> str:
    """The verdict of one claim at ``profile``, for inline use in prose."""
    row = next((r for r in claims_mod.summary_rows(profile_dir) if r["id"] == claim_id), None)
    if row is None:
        raise KeyError(f"unknown claim id {claim_id!r}")
    return f"{row['verdict']} ({profile} profile)"


def colab_url(repository_url: str, branch: str, notebook: str, colab: str = "https://colab.research.google.com") -> str:
    """Colab's address of a notebook of the repository (its source, not the executed copy).

    >>> colab_url("https://github.com/a/b", "main", "lsuv")
    'https://colab.research.google.com/github/a/b/blob/main/notebooks/lsuv.ipynb'
    """
    path = repository_url.rstrip("/").split("github.com/", 1)[-1]
    return f"{colab.rstrip('/')}/github/{path}/blob/{branch}/notebooks/{notebook}.ipynb"
