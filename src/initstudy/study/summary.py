"""The claims summary of a profile: one row per claim of the ledger with the verdict its chapter
computed (or "not measured yet"), written as ``results/<profile>/claims.json`` and ``claims.csv``
after every run and before every book build."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from initstudy.study.catalog import NOTEBOOKS
from dataclasses import asdict, replace

from initstudy.study.claims import (LEDGER, NOT_MEASURED, UNSETTLED, deciding_check, discrimination, format_result,
                                    pilot_pairs, power, seeds_needed, seeds_to_settle)
from initstudy.study.results import atomic_write_json, atomic_write_text

__all__ = ["summary_rows", "write_summary"]


def _chapter_rows(profile_dir: Path, catalog) -> dict[str, dict]:
    """Every claim row the chapters of ``catalog`` wrote under ``profile_dir``."""
    measured: dict[str, dict] = {}
    for name in catalog:
        path = Path(profile_dir) / name / "claims.json"
        if path.is_file():
            with open(path, encoding="utf-8") as f:
                for row in json.load(f):
                    measured[row["id"]] = row
    return measured


def summary_rows(profile_dir, catalog=None) -> list[dict]:
    """One row per ledger claim for the profile whose results are in ``profile_dir``: the
    verdict computed by the notebook that measures it, or "not measured yet"; and, for each
    check it left unsettled, the seeds a run would need, planned from the pilot: the
    fresh-seed run beside it (seeds outside this run; none when it has not been made), and the
    ``headline`` verdict the claim is reported under (:func:`initstudy.study.stability.headline`)."""
    from initstudy.study.stability import FRESH_DIR, fresh_profile_dir, headline

    catalog = NOTEBOOKS if catalog is None else catalog
    profile_dir = Path(profile_dir)
    measured = _chapter_rows(profile_dir, catalog)
    pilot = _chapter_rows(fresh_profile_dir(profile_dir), catalog) if profile_dir.parent.name != FRESH_DIR else {}
    rows = []
    for c in LEDGER.values():
        if c.id in measured:
            row = dict(measured[c.id])
        else:
            row = {"id": c.id, "verdict": NOT_MEASURED, "explanation": "", "checks": [], "measurements": {},
                   "profile": profile_dir.name, "seeds": [], "notebook": c.notebook, "figures": list(c.figures)}
        row.update(statement=c.statement, article_section=c.article_section, metric=c.metric,
                   criterion=c.criterion.text())
        deciding = deciding_check(row["checks"])
        row["key_number"] = format_result(deciding) if deciding else ""
        row["deciding_status"] = deciding.get("status", "") if deciding else ""
        row["discriminates"] = discrimination(row["checks"])
        row["control"] = c.control
        row["short"] = c.short
        row["changes"] = [list(ch) for ch in c.changes]
        fresh = pilot.get(c.id)
        # the verdict the claim is reported under: a changed criterion's, once fresh seeds confirm it
        row["fresh_from"] = c.fresh_from
        row["headline"] = (headline(row, (fresh or {}).get("verdict"), (fresh or {}).get("seeds"))
                           if "verdict" in row else NOT_MEASURED)
        row["confirmed_on"] = list(fresh.get("seeds", [])) if fresh and row["headline"] != row["verdict"] else []
        _add_power(row, c, fresh)
        rows.append(row)
    return rows


def _add_power(row: dict, claim, pilot: dict | None) -> None:
    """Each measured check's power estimate from the ``pilot`` (its row of the fresh-seed run:
    ``check["power"]``, the seeds a run needs for 80 % power at the pilot's mean and spread,
    with the arithmetic), and the claim's ``seeds_needed`` and ``seeds_needed_text``
    (:func:`initstudy.study.claims.seeds_to_settle`), with ``pilot_seeds``; nothing without a
    pilot (a run's own spread does not plan its own size)."""
    row["pilot_seeds"] = list(pilot.get("seeds", [])) if pilot else []
    if not pilot or pilot.get("verdict") == NOT_MEASURED:
        row["seeds_needed"], row["seeds_needed_text"] = None, ""
        return
    values = pilot.get("measurements", {})
    for result in row.get("checks", []):
        check = next((k for k in claim.criterion.checks if k.metric == result["metric"]), None)
        if check is None or not result.get("n"):
            continue
        pairs = pilot_pairs(check, values)
        est = power(check, values.get(check.metric, ()), claim.criterion.confidence, pairs=pairs)
        if result.get("status") == UNSETTLED:  # the estimate the power paragraph gives (control, precondition)
            found = seeds_needed(check, result, values.get(check.metric, ()), values.get(check.control or "", ()),
                                 claim.criterion.confidence, pairs=pairs)
            est = (replace(est, n_needed=None, text="its precondition, not its spread, leaves it open")
                   if found is None else replace(found[0], outcome=found[1]))
        result["power"] = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(est).items()}
    row["seeds_needed"], texts = seeds_to_settle(claim, row.get("checks", []), values)
    row["seeds_needed_text"] = "; ".join(texts)


def write_summary(profile_dir, catalog=None) -> list[dict]:
    """Write the profile's machine-readable claims summary, ``claims.json`` and
    ``claims.csv``, atomically; return its rows."""
    rows = summary_rows(profile_dir, catalog)
    profile_dir = Path(profile_dir)
    atomic_write_json(profile_dir / "claims.json", rows)
    flat = pd.DataFrame(
        [{k: (";".join(map(str, v)) if isinstance(v, list) else v) for k, v in r.items()
          if k not in ("checks", "measurements")} for r in rows]
    )
    atomic_write_text(profile_dir / "claims.csv", flat.to_csv(index=False, lineterminator="\n"))
    return rows
