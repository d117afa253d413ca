"""The book's generated pages, as MyST markdown built from files (never typed by hand).

Pure functions of a profile's results folder (``results/<profile>``), the published gpu
results (``published/gpu``, when present) and the declarations in :mod:`initstudy.study.catalog`
and :mod:`initstudy.study.claims`. :mod:`initstudy.book.ext` renders them inside the book.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable, Mapping

from initstudy.study import catalog as catalog_mod
from initstudy.study import claims as claims_mod
from initstudy.study.summary import summary_rows
from initstudy.study.figures import captions_from_notebook, read_manifest

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
    """Text for a Markdown table cell: a "|" (an absolute value in a rule) becomes "∣", which
    reads the same and, unlike an escaped pipe, shows without its backslash in code spans."""
    return str(text).replace("|", "\u2223").replace("\n", " ")


def _value(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value).lower() if isinstance(value, bool) else str(value)


def chapter_doc(profile: str, notebook: str, where: str | None = None) -> str:
    """The docname of a notebook's executed copy at ``profile`` (absolute, for {doc});
    ``where``: the profile's folder relative to the book's root (default ``results/<profile>``).

    >>> chapter_doc("cpu", "lsuv"), chapter_doc("cpu", "lsuv", "fresh/cpu")
    ('/results/cpu/lsuv/lsuv', '/fresh/cpu/lsuv/lsuv')
    """
    return f"/{where or f'results/{profile}'}/{notebook}/{notebook}"


def published_rows(published_dir: Path) -> list[dict]:
    """The claims summary of the published gpu results, or [] when there are none."""
    return _read_json(Path(published_dir) / "gpu" / "claims.json", [])


#: The CSS class of each verdict's badge (colours in _static/initstudy.css; the word is
#: always printed too, so colour is never the only signal).
VERDICT_CLASS = {
    claims_mod.REPRODUCED: "reproduced",
    claims_mod.PARTLY: "partly",
    claims_mod.NOT_REPRODUCED: "not-reproduced",
    claims_mod.INCONCLUSIVE: "inconclusive",
    claims_mod.NOT_MEASURED: "not-measured",
}


def badge(verdict: str) -> str:
    """A verdict as a coloured badge with its word (the ``verdict-badge`` role)."""
    return f"{{verdict-badge}}`{verdict}`"


def verdict_counts(rows: list[dict]) -> str:
    """"14 claims at the cpu profile: 5 reproduced, 4 partly reproduced, ..." (verdicts with
    no claim left out)."""
    order = [*claims_mod.VERDICTS, claims_mod.NOT_MEASURED]
    counts = {v: sum(r.get("headline", r["verdict"]) == v for r in rows) for v in order}
    parts = [f"{n} {v}" for v, n in counts.items() if n]
    return f"{len(rows)} claims: " + ", ".join(parts) + "."


def verdict_link(claim_id: str, notebook: str | None, measured: bool) -> str:
    """The claim id, linking to its verdict's section in its chapter when measured."""
    if measured and notebook:
        return f"{{ref}}`{claim_id} <verdict-{claim_id}>`"
    return f"`{claim_id}`"


def _short_number(row: dict) -> str:
    """The deciding check, its value and interval (as on the claims page), the rule it was
    judged by and its outcome, for the landing page."""
    c = claims_mod.deciding_check(row.get("checks", []))
    text = claims_mod.format_result(c) if c else ""
    claim = claims_mod.LEDGER.get(row["id"])
    check = next((k for k in claim.criterion.checks if c and k.metric == c["metric"]), None) if claim else None
    if check is not None:
        unit = f" {check.unit}" if check.unit else ""
        rule = (f"within {check.threshold:g} ± {check.margin:g}{unit}" if check.op == "within"
                else f"{check.op.replace('<=', '≤').replace('>=', '≥')} {check.threshold:g}{unit}")
        text += f"; rule {rule}: {c['status']}"
        zeros = re.search(r"\[(\d+ of \d+ values exactly 0, counted at the smallest positive one)\]", c.get("rule", ""))
        if zeros:
            text += f" ({zeros.group(1)})"
    if row.get("seeds_needed"):
        text += (f"; from the pilot's spread, about {row['seeds_needed']} seeds would settle it with 80 % "
                 f"probability{_would_then(row)}")
    if row.get("headline", row["verdict"]) != row["verdict"]:
        text += (f"; on the profile's seeds its checks gave {row.get('provisional')} too, under a criterion changed "
                 f"after a preliminary run, and fresh seeds confirmed it")
    elif claims_mod.awaiting_fresh_seeds(row):
        text += (f"; its checks give {row.get('provisional') or 'no verdict'} here (provisional), under a criterion "
                 f"changed after a preliminary run on these seeds: it stands only once fresh seeds confirm it")
        rest = row.get("note", "")[len(claims_mod.AWAITING_FRESH_SEEDS):].lstrip("; ")
        if rest:
            text += f"; {rest}"
    elif row.get("note"):
        text += f"; {row['note']}"
    return text


def stability_rows(profile_dir: Path) -> dict[str, dict]:
    """The fresh-seed comparison of each claim (:func:`initstudy.study.stability.compare`),
    read from the fresh-seed run's folder beside the profile's; every claim "not run" when
    there is none."""
    from initstudy.study import stability

    return {r["id"]: r for r in stability.compare(profile_dir)}


def seeds_of(entry: Mapping, word: str = "seeds ") -> str:
    """"seeds 2000-2004" (``word`` and the seeds), or "a second timing run" for measurements no
    seed determines."""
    from initstudy.study import stability

    return f"{word}{stability.seeds_text(entry['fresh_seeds'])}" if entry.get("fresh_seeds") else \
        "a second timing run"


def _would_then(row: Mapping) -> str:
    """", and <metric> would then fail" for the check whose power estimate is the claim's
    ``seeds_needed`` (the direction its projection goes); empty when none says."""
    n = row.get("seeds_needed")
    for c in row.get("checks", []):
        p = c.get("power") or {}
        if n and p.get("n_needed") == n and p.get("outcome") in claims_mod._WOULD:
            return f", and {c['metric']} would then {claims_mod._WOULD[p['outcome']]}"
    return ""


def _changed_text(entry: Mapping) -> str:
    """The checks whose status changed on fresh seeds, in words."""
    parts = [f"{c['metric']} {c['status']} here, {c['fresh_status']} there ({_cell(c['fresh_value'])})"
             for c in entry.get("changed_checks", [])]
    return "; ".join(parts)


def stability_cell(entry: Mapping | None) -> str:
    """The claims table's "same verdict on fresh seeds" cell."""
    from initstudy.study import stability

    if not entry or entry["same"] == stability.NOT_RUN:
        return "not run"
    on = seeds_of(entry)
    return {
        stability.SAME: f"yes ({on})",
        stability.CONFIRMS: f"confirmed: {entry['fresh_verdict']} on {on}",
        stability.NOT_CONFIRMED: f"not confirmed: {entry['fresh_verdict']} on {on}",
        stability.ONE_UNSETTLED: f"**no: {entry['fresh_verdict']}** on {on} (fragile: one of the two runs could not "
                                 f"settle it)",
    }.get(entry["same"], f"**no: {entry['fresh_verdict']}** on {on} (fragile)")


def fresh_seeds_sentence(profile_dir: Path, claim_id: str, profile: str, fresh: Mapping | None = None) -> str:
    """What the fresh-seed run says about one claim, for its chapter: the same verdict, a
    changed criterion confirmed or not, or a changed verdict (fragile) with the checks that
    changed; or not run. ``fresh``: the comparison already read (:func:`stability_rows`), so that
    a page with every claim reads the two runs once."""
    from initstudy.study import stability

    e = (stability_rows(profile_dir) if fresh is None else fresh).get(claim_id)
    if not e or e["same"] == stability.NOT_RUN:
        return (f"*On fresh seeds:* not run (`python -m initstudy stability --profile {profile}` reruns every "
                f"chapter on seeds from {stability.FIRST_SEED} on and compares the verdicts).")
    on = seeds_of(e, word="")
    number = _cell(e["fresh_key_number"])
    if e["same"] == stability.SAME:
        changed = _changed_text(e)
        return (f"*On fresh seeds* ({on}): the same verdict, {e['fresh_verdict']} ({number})"
                + (f"; checks whose status changed: {changed}." if changed else "."))
    if e["same"] == stability.CONFIRMS:
        return (f"*On fresh seeds* ({on}) the changed criterion gave the same verdict, {e['fresh_verdict']} "
                f"({number}): that confirms it, and the claim is reported under it.")
    if e["same"] == stability.NOT_CONFIRMED:
        every = e.get("fresh_numbers") or number
        changed = _changed_text(e)
        return (f"*On fresh seeds* ({on}) the changed criterion was not confirmed: {e['fresh_verdict']} "
                f"there ({every}), {e.get('provisional') or 'no verdict'} on the profile's seeds, so the claim "
                f"stays inconclusive" + (f"; checks whose status changed: {changed}." if changed else "."))
    changed = _changed_text(e)
    why = (" One of the two runs could not settle the claim, so at this profile's size the verdict is not a "
           "stable finding." if e["same"] == stability.ONE_UNSETTLED else
           " The verdict does not survive a new sample of seeds at this profile's size.")
    return (f"**Fragile at this profile:** on fresh seeds ({on}) the verdict was {e['fresh_verdict']}, not "
            f"{e['verdict']}" + (f"; the checks that changed: {changed}." if changed else f" ({number}).") + why)


def claims_table(profile_dir: Path, profile: str, published: list[dict] | None = None) -> str:
    """The landing page's answer in one minute: a summary line, then one row per claim with
    its verdict (badge and word) and the number that decided it (the unsettled, failing or
    non-discriminating check; the first check when all held). Everything else is on the
    claims page."""
    rows = summary_rows(profile_dir)
    gpu = {r["id"]: r for r in (published or [])}
    fresh = stability_rows(profile_dir)
    head = ["Claim", "The article says", f"Verdict ({profile})", "Deciding number", "Same verdict on fresh seeds"]
    if gpu:
        head.insert(3, "Verdict (gpu)")
    lines = [f"**{verdict_counts(rows)}** (`{profile}` profile)", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        measured = r["verdict"] != claims_mod.NOT_MEASURED
        number = _cell(_short_number(r)) if measured else ""
        if measured and r.get("changes"):
            number += " (criterion changed after a preliminary run)"
        cells = [verdict_link(r["id"], r.get("notebook"), measured), _cell(r.get("short") or r["statement"]),
                 badge(r.get("headline", r["verdict"])), number, stability_cell(fresh.get(r["id"]))]
        if gpu:
            g = gpu.get(r["id"])
            cells.insert(3, badge(g["verdict"]) if g else "not run")
        lines.append("| " + " | ".join(cells) + " |")
    changed = [r for r in rows if r.get("changes") and r["verdict"] != claims_mod.NOT_MEASURED]
    if changed:
        lines += ["", f"The criteria of {len(changed)} of these claims were changed after a preliminary run; "
                      "the claims page gives each old rule, new rule and reason. A changed criterion gives a "
                      "verdict only where seeds it was not written on give the same one: on the profile's own "
                      "seeds the claim stays inconclusive, with its checks' verdict as provisional, and once a "
                      "run on fresh seeds confirms that verdict the claim is reported under it (the fresh-seed "
                      "column says which)."]
    lines += ["", f"Each claim id links to its verdict in the chapter that measures it. All checks, "
                  f"negative controls and criteria: {{doc}}`/book/claims`. Machine-readable: "
                  f"`results/{profile}/claims.json` and `claims.csv`."]
    if not gpu:
        lines.append("No published gpu results are committed yet (`published/gpu/claims.json`): gpu: not run.")
    from initstudy.study import stability

    if all(e["same"] == stability.NOT_RUN for e in fresh.values()):
        lines.append(f"The fresh-seed run has not been made for this build "
                     f"(`python -m initstudy stability --profile {profile}`).")
    else:
        lines.append(f"Fresh seeds: every chapter rerun on seeds from {stability.FIRST_SEED} on, disjoint from the "
                     f"seeds the criteria were tuned on (0-99); \"fragile\" marks a verdict that changed there.")
    return "\n".join(lines)


def _value_only(c: Mapping) -> str:
    """A check's value and interval without the metric's name (the table's row names it)."""
    text = claims_mod.format_result(c)
    return text.split(" = ", 1)[1] if " = " in text else text.split(": ", 1)[-1]


def _status_word(status: str) -> str:
    return {"holds": "holds", "fails": "fails", "unsettled": "unsettled",
            claims_mod.NOT_DISCRIMINATING: "**does not discriminate**"}.get(status, status)


def claims_detail(profile_dir: Path, profile: str) -> str:
    """Per claim, everything behind its verdict: each check with its value and interval, its
    negative control judged by the same rule and whether the criterion discriminates, the
    criteria changed after a preliminary run, and the figures."""
    out = []
    fresh = stability_rows(profile_dir)
    for r in summary_rows(profile_dir):
        measured = r["verdict"] != claims_mod.NOT_MEASURED
        out += [f"### `{r['id']}`", "",
                # "inconclusive at this profile" already says "profile": name it once
                f"{badge(r.get('headline', r['verdict']))}"
                + (f" (`{profile}`)" if r.get("headline", r["verdict"]).endswith("at this profile")
                   else f" at the `{profile}` profile")
                + (f"; seeds {catalog_mod.seeds_list(r['seeds'])}" if r.get("seeds") else "")
                + (f"; {{ref}}`its verdict in the chapter <verdict-{r['id']}>`." if measured else "."), "",
                f"*{_cell(r['statement'])}*", ""]
        if r.get("provisional"):
            out += [f"**Provisional:** on the profile's seeds its checks give *{r['provisional']}*, under a "
                    f"criterion changed after a preliminary run on them"
                    + (f"; fresh seeds ({', '.join(map(str, r['confirmed_on']))}) gave the same, so the claim is "
                       f"reported under it." if r.get("confirmed_on") else
                       "; it stands only once a run on fresh seeds gives the same."), ""]
        if r.get("note"):
            out += [f"**Note:** {_cell(r['note'])}.", ""]
        if measured:
            out += [fresh_seeds_sentence(profile_dir, r["id"], profile, fresh), ""]
        out += [f"**Negative control.** {_cell(r.get('control', ''))} Discriminates: "
                f"**{r.get('discriminates', 'not measured')}**.", ""]
        if measured and r.get("checks"):
            out += ["Intervals are 95 %, or 90 % where marked (an equivalence check: two one-sided tests).", "",
                    "| check | value [interval] | result | negative control: value | control "
                    "| n that settles it (outcome) |",
                    "|---|---|---|---|---|---|"]
            for c in r["checks"]:
                ctl = c.get("control")
                out.append(f"| {_cell(c['rule'])} | {_cell(_value_only(c))} | "
                           f"{_status_word(c['status'])} | "
                           f"{_cell(ctl['metric'] + ': ' + _value_only(ctl)) if ctl else '(none for this check)'} | "
                           f"{_cell(ctl['status']) if ctl else ''} | {_power_cell(c)} |")
            out.append("")
            if r.get("seeds_needed_text"):
                out += [f"**Power.** Not settled at this profile; the seeds a run would need for 80 % power, "
                        f"planned from the pilot (the fresh-seed run, seeds "
                        f"{', '.join(map(str, r.get('pilot_seeds', [])))}): {_cell(r['seeds_needed_text'])}.", ""]
            elif any(c.get("status") == claims_mod.UNSETTLED for c in r["checks"]) and not r.get("pilot_seeds"):
                out += ["**Power.** Not settled at this profile; no pilot run on other seeds yet, so no seed count "
                        "is planned (a run's own spread does not plan its own size).", ""]
        for old, new, why in r.get("changes", []):
            out += [f"- *Criterion changed after a preliminary run:* was `{_cell(old)}`, now `{_cell(new)}`; "
                    f"reason: {_cell(why)}."]
        if r.get("changes"):
            out.append("")
        made = {e.get("id") for e in read_manifest(profile_dir / r.get("notebook", "") / "figures")}
        figs = ", ".join(f"{{numref}}`{f}`" for f in r.get("figures", []) if f in made) if measured else ""
        if figs:
            out += [f"Shown in {figs}.", ""]
    return "\n".join(out)


def _power_cell(c: Mapping) -> str:
    """The power estimate's n for one check, planned from the pilot (80 % power), or why there
    is none."""
    p = c.get("power")
    if c.get("status") == claims_mod.NOT_DISCRIMINATING:
        return "– (its control passes too: more seeds do not change that)"
    if not p:
        return "(exact value)" if c.get("scale") == "exact" else ""
    if p.get("n_needed") is None:
        return "none: " + _cell(p.get("text", ""))
    return f"{p['n_needed']} ({p['outcome']})"


def claims_criteria() -> str:
    """Each claim's paraphrase, article section, metric, criterion, negative control and the
    criteria changed after a preliminary run, from the ledger."""
    out = []
    for c in claims_mod.LEDGER.values():
        out += [f"`{c.id}`", f": *{c.statement}* (article section: {c.article_section})", "",
                f"  **Measured:** {c.metric}", "", "  **Criterion:**", ""]
        for chk in c.criterion.checks:
            line = f"  - {_cell(chk.text())}"
            if chk.control:
                line += f" Negative control: `{chk.control}`, judged by the same rule."
            out.append(line)
        out += ["", f"  **Negative control:** {c.control}", ""]
        for old, new, why in c.changes:
            out += [f"  - *Changed after a preliminary run:* was `{_cell(old)}`, now `{_cell(new)}` ({_cell(why)})."]
        if c.changes:
            out.append("")
    return "\n".join(out)


def figure_citation(fig_id: str, chapter: str, profile: str, *, version: str = "", commit: str = "",
                    url: str = "") -> list[str]:
    """BibTeX and a text citation for one figure, by its stable id (figure numbers shift when
    chapters are added; ids do not), with the book's version, the commit of the run that drew
    it and the book's address."""
    key = f"{BOOK_KEY}_{fig_id.replace('-', '_')}"
    where = f"{BOOK_TITLE}, version {version}" if version else BOOK_TITLE
    note = f"Figure {fig_id} ({profile} profile" + (f", commit {commit[:12]}" if commit else "") + ")"
    lines = ["```bibtex", f"@misc{{{key},", f"  title   = {{{{{fig_id}}}: {chapter}}},",
             f"  author  = {{{{{BOOK_AUTHORS}}}}},", f"  year    = {{{BOOK_YEAR}}},",
             f"  howpublished = {{In: {where}}},", f"  note    = {{{note}}},"]
    if version:
        lines.append(f"  version = {{{version}}},")
    if url:
        lines.append(f"  url     = {{{url}}},")
    lines += ["}", "```", ""]
    text = (f"Text: {BOOK_AUTHORS} ({BOOK_YEAR}). *{BOOK_TITLE}*" + (f", version {version}" if version else "")
            + f", figure `{fig_id}` ({profile} profile" + (f", commit `{commit[:12]}`" if commit else "") + ")"
            + (f". {url}" if url else "") + ".")
    return lines + [text]


def _params_text(params: Mapping[str, Any]) -> str:
    shown = {k: v for k, v in params.items() if k not in ("device", "data_source", "seeds", "profile")}
    return ", ".join(f"{k}={_value(v)}" for k, v in shown.items()) or "none beyond the seeds"


def figure_seeds(entry: Mapping[str, Any], folder: Path) -> list[int] | None:
    """The seeds a figure shows: from its manifest entry, else the ``seed`` column of its data
    file; None when neither says (never the notebook's seeds parameter, which a figure may not
    use in full)."""
    if entry.get("seeds") is not None:
        return [int(s) for s in entry["seeds"]]
    data = entry.get("data")
    if data and (folder / "figures" / data).is_file():
        import pandas as pd

        frame = pd.read_csv(folder / "figures" / data)
        if "seed" in frame:
            return sorted(int(s) for s in frame["seed"].dropna().unique())
    return None


_GLUE_ROLE = re.compile(r"\{glue:(text|md)\}`([^`]+)`")


def _glue_from(text: str, profile: str, notebook: str, where: str | None = None) -> str:
    """A chapter's caption made readable from another page: its glue roles point at the
    chapter's executed notebook (``path::key``), as myst-nb requires outside that notebook."""
    path = f"..{chapter_doc(profile, notebook, where)}.ipynb"
    return _GLUE_ROLE.sub(lambda m: m.group(0) if "::" in m.group(2) else
                          f"{{glue:{m.group(1)}}}`{path}::{m.group(2)}`", text)


def figures_index(profile_dir: Path, profile: str, catalog: Mapping | None = None, *, version: str = "",
                  url: str = "", where: str | None = None) -> str:
    """Every published figure: id, caption, chapter, the parameters it used, its seeds (from
    its own data), downloads (PNG, SVG, the plotted data as CSV and, for an interactive figure,
    its plotly JSON) and a citation by its
    stable id, the book's version and the run's commit: the one home of figure citations."""
    catalog = catalog_mod.NOTEBOOKS if catalog is None else catalog
    out: list[str] = []
    for name, spec in catalog.items():
        folder = Path(profile_dir) / name
        nb_path = folder / f"{name}.ipynb"
        captions = captions_from_notebook(nb_path) if nb_path.is_file() else {}
        commit = (_read_json(folder / "provenance.json", {}).get("git") or {}).get("commit") or ""
        for entry in read_manifest(folder / "figures"):
            fid = entry["id"]
            params = entry.get("params", {})
            seeds = figure_seeds(entry, folder)
            base = f"/{where or f'results/{profile}'}/{name}/figures/{fid}"
            downloads = f"{{download}}`PNG <{base}.png>`, {{download}}`SVG <{base}.svg>`"
            if entry.get("data"):
                downloads += f", {{download}}`data (CSV) <{base}.csv>`"
            if entry.get("files", {}).get("interactive"):
                downloads += f", {{download}}`interactive figure (plotly JSON) <{base}.plotly.json>`"
            out += [
                f"### `{fid}`", "",
                f"{{numref}}`{fid}` in {{doc}}`{spec.title} <{chapter_doc(profile, name, where)}>`"
                + ("" if spec.title.endswith(("?", "!", ".")) else "."), "",
                "**Caption.** "
                + _cell(_glue_from(captions.get(fid, "(no caption found in the notebook)"), profile, name, where)),
                "",
                f"**Parameters** ({profile} profile): {_params_text(params)}.", "",
                f"**Seeds:** {', '.join(map(str, seeds)) if seeds is not None else 'none (not seeded data)'}.", "",
                f"**Download:** {downloads}", "",
                "**Cite this figure:**", "",
                *figure_citation(fid, spec.title, profile, version=version, commit=commit, url=url), "",
            ]
    if not out:
        out.append(f"No figures at the `{profile}` profile yet: run `python -m initstudy run --profile {profile}`.")
    return "\n".join(out)


def chapter_list(doc: Callable[[str], str], catalog: Mapping | None = None) -> str:
    """The chapters in reading order as a numbered list: each title linked to its page (``doc``
    gives a notebook's document path) and the ids of the claims it settles, each linked to its
    verdict in the chapter (the label ``verdict-<id>`` every chapter sets).

    >>> from initstudy.study.catalog import NotebookSpec
    >>> print(chapter_list(lambda n: f"/results/cpu/{n}/{n}", {"a": NotebookSpec("a", "Alpha", ("x-1", "x-2"))}))
    1. {doc}`Alpha </results/cpu/a/a>` ({ref}`x-1 <verdict-x-1>`, {ref}`x-2 <verdict-x-2>`).
    """
    catalog = catalog_mod.NOTEBOOKS if catalog is None else catalog
    return "\n".join(f"{i}. {{doc}}`{spec.title} <{doc(name)}>` ("
                     + ", ".join(f"{{ref}}`{c} <verdict-{c}>`" for c in spec.claims) + ")."
                     for i, (name, spec) in enumerate(catalog.items(), 1))


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
        if spec.constraints:
            out += ["Checked with the parameters together, before any work:", ""]
            out += [f"- {c.text}" for c in spec.constraints]
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
    lines += _work_table(runs)
    first = runs[0][1]
    lines += ["", f"Python {first.get('python')} on `{first.get('platform')}` ({first.get('machine')}, "
                  f"{first.get('cpu_count')} CPUs).", "", "| package | version |", "|---|---|"]
    lines += [f"| `{pkg}` | {ver} |" for pkg, ver in sorted(first.get("packages", {}).items())]
    return "\n".join(lines)


def _work_table(runs: list) -> list[str]:
    """The environment page's table of what each run's training did (the ``training_core``
    record of its provenance, :class:`initstudy.core.ensemble.Work`), with what its columns
    mean; nothing for runs that predate the record."""
    rows = [(name, prov["training_core"]) for name, prov, _ in runs if prov.get("training_core")]
    if not rows:
        return []

    def num(v, fmt):
        return "–" if v is None else format(v, fmt)

    out = ["", "What each run's training did (the `training_core` rows of its provenance):", "",
           "| notebook | member-steps | training (TFLOP) | evaluation (TFLOP) | training core (s) | probes (s) | "
           "member-steps per s | GFLOP/s |", "|---|---|---|---|---|---|---|---|"]
    for name, w in rows:
        uncounted = f" ({w['uncounted_steps']:,} not counted)" if w.get("uncounted_steps") else ""
        out.append(f"| `{name}` | {w['member_steps']:,}{uncounted} | {num(w['train_gflop'] / 1e3, '.2f')} | "
                   f"{num(w['eval_gflop'] / 1e3, '.2f')} | {num(w['seconds'], '.1f')} | "
                   f"{num(w.get('record_seconds'), '.1f')} | {num(w['member_steps_per_s'], ',.0f')} | "
                   f"{num(w['gflop_per_s'], '.1f')} |")
    out += ["", "A *member-step* is one SGD step of one network: the study trains the seeds, inits and "
            "learning rates of a configuration together, as one ensemble. The FLOPs are those of the matrix "
            "products and convolutions, counted by PyTorch's `FlopCounterMode` on one member's pass: forward "
            "and backward for training, forward on the test set for evaluation; elementwise operations are not "
            "counted. *Training core (s)* is the wall time spent training and evaluating, without the probes "
            "some chapters record during training (*probes (s)*); GFLOP/s divides the FLOPs by it. "
            "`python -m initstudy.study.bench --work results/cpu` compares these rates with the machine's own "
            "matrix-product rate. The rest of a chapter's wall time is work outside training: propagation "
            "through networks at init, LSUV, figures."]
    return out


def paper_numbers(profile_dir: Path, profile: str) -> str:
    """Every number the book compares with a paper: source, where, value, whether it was
    checked against the paper's text, and this study's verdict on the claim it bears on (linked
    to the chapter, where the comparable measurement is shown)."""
    from initstudy.study.paper import PAPER_NUMBERS

    summary = {r["id"]: r for r in summary_rows(profile_dir)}
    lines = ["| paper | where | what the paper reports | value | checked against the paper? | claim | "
             f"this study ({profile}) |", "|---|---|---|---|---|---|---|"]
    for n in PAPER_NUMBERS:
        value = "" if n.value is None else f"{n.value:g}{(' ' + n.unit) if n.unit else ''}"
        checked = "yes, read in a source" if n.checked else "no: recalled, to verify"
        if n.note:
            checked += f" ({_cell(n.note)})"
        row = summary.get(n.claim, {})
        measured = bool(row) and row.get("verdict") != claims_mod.NOT_MEASURED
        # the verdict on the claim the number bears on, linked to its chapter; not a metric of
        # ours, which would pair the paper's number with a different quantity
        ours = (f"{badge(row.get('headline', row['verdict']))}, {{ref}}`see the chapter <verdict-{n.claim}>`" if measured
                else (badge(row["verdict"]) if row else ""))
        lines.append(f"| {{cite:t}}`{n.paper}` | {n.where} | {_cell(n.quantity)} | {value} | {checked} | "
                     f"`{n.claim}` | {ours} |")
    return "\n".join(lines)


def _unsettled_reason(check: dict) -> str:
    rule = check.get("rule", "")
    if "precondition" in rule:
        return "a precondition was not met: " + rule.split("[precondition", 1)[1].rstrip("]").strip()
    ledger = {c.metric: c for cl in claims_mod.LEDGER.values() for c in cl.criterion.checks}
    needed = ledger[check["metric"]].min_seeds if check.get("metric") in ledger else 3
    if "negative control unsettled" in rule:
        return "it holds, but its negative control's interval is unsettled"
    if check.get("n", 0) < needed and check.get("scale") != "exact":
        return f"too few seeds ({check.get('n', 0)}; the check needs {needed})"
    if check.get("scale") == "exact":
        return "the exact test did not reject at this number of seeds: more seeds are needed"
    return f"the {claims_mod.level_text(check.get('level', 0.95))} interval straddles the threshold: more seeds are needed"


def limitations(profile_dir: Path, profile: str) -> str:
    """Per claim: the verdict at ``profile`` and, for every check it could not settle, why; and
    whether the verdict held on fresh seeds."""
    lines = ["| claim | verdict | what this profile could not settle |", "|---|---|---|"]
    fresh = stability_rows(profile_dir)
    for r in summary_rows(profile_dir):
        if r["verdict"] == claims_mod.NOT_MEASURED:
            note = "not measured at this profile"
        else:
            open_checks = [f"`{c['metric']}` ({claims_mod.format_result(c)}): {_unsettled_reason(c)}"
                           for c in r["checks"] if c.get("status") == "unsettled"]
            open_checks += [f"`{c['metric']}`: its negative control passes the same check, so it does not "
                            f"discriminate and decides nothing" for c in r["checks"]
                            if c.get("status") == claims_mod.NOT_DISCRIMINATING]
            e = fresh.get(r["id"]) or {}
            if claims_mod.awaiting_fresh_seeds(r):
                open_checks.append(f"its changed criterion gives {r.get('provisional') or 'no verdict'} on these seeds"
                                   + ("; a run on fresh seeds confirmed it" if e.get("same") == "confirms" else
                                      "; not confirmed on fresh seeds" if e.get("same") == "not confirmed" else
                                      "; no run on fresh seeds yet"))
            elif r.get("note"):
                open_checks.append(r["note"])
            if r.get("seeds_needed"):
                open_checks.append(f"about {r['seeds_needed']} seeds would settle it with 80 % probability at the "
                                   f"pilot's spread{_would_then(r)} (the claims page gives the arithmetic and the "
                                   f"direction)")
            note = "; ".join(open_checks) or (
                "every check settled in this run" + ("; every measured negative control fails its check"
                                                     if r.get("discriminates") == "yes" else
                                                     f"; negative controls: {r.get('discriminates', 'not measured')}"))
            if e.get("same") in ("no", "unsettled on one"):
                note += (f"; **fragile**: on fresh seeds the verdict was {e['fresh_verdict']}"
                         + (f" ({_changed_text(e)})" if e.get("changed_checks") else ""))
        lines.append(f"| `{r['id']}` | {badge(r.get('headline', r['verdict']))} | {_cell(note)} |")
    return "\n".join(lines)


def verdict_text(profile_dir: Path, profile: str, claim_id: str) -> str:
    """The verdict of one claim at ``profile``, for inline use in prose."""
    row = next((r for r in summary_rows(profile_dir) if r["id"] == claim_id), None)
    if row is None:
        raise KeyError(f"unknown claim id {claim_id!r}")
    return f"{row.get('headline', row['verdict'])} ({profile} profile)"


def binder_url(repository_url: str, branch: str, notebook: str, binderhub: str = "https://mybinder.org",
               interface: str = "jupyterlab") -> str:
    """Binder's address of a notebook of the repository (its source, not the executed copy):
    Binder builds the repository's environment (``environment.yml``) and opens the notebook.

    >>> binder_url("https://github.com/a/b", "main", "lsuv")
    'https://mybinder.org/v2/gh/a/b/main?urlpath=lab/tree/notebooks/lsuv.ipynb'
    """
    path = repository_url.rstrip("/").split("github.com/", 1)[-1]
    ui = {"classic": "tree", "jupyterlab": "lab/tree"}.get(interface)
    if ui is None:
        raise ValueError(f"notebook interface must be classic or jupyterlab, not {interface!r}")
    return f"{binderhub.rstrip('/')}/v2/gh/{path}/{branch}?urlpath={ui}/notebooks/{notebook}.ipynb"


def colab_url(repository_url: str, branch: str, notebook: str, colab: str = "https://colab.research.google.com") -> str:
    """Colab's address of a notebook of the repository (its source, not the executed copy).

    >>> colab_url("https://github.com/a/b", "main", "lsuv")
    'https://colab.research.google.com/github/a/b/blob/main/notebooks/lsuv.ipynb'
    """
    path = repository_url.rstrip("/").split("github.com/", 1)[-1]
    return f"{colab.rstrip('/')}/github/{path}/blob/{branch}/notebooks/{notebook}.ipynb"
