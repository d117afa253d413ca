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
                                    power, seeds_needed, seeds_to_settle)
from initstudy.study.results import atomic_write_json, atomic_write_text

__all__ = ["summary_rows", "write_summary"]


def summary_rows(profile_dir, catalog=None) -> list[dict]:
    """One row per ledger claim for the profile whose results are in ``profile_dir``: the
    verdict computed by the notebook that measures it, or "not measured yet"."""
    catalog = NOTEBOOKS if catalog is None else catalog
    profile_dir = Path(profile_dir)
    measured: dict[str, dict] = {}
    for name in catalog:
        path = profile_dir / name / "claims.json"
        if path.is_file():
            with open(path, encoding="utf-8") as f:
                for row in json.load(f):
                    measured[row["id"]] = row
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
        _add_power(row, c)
        rows.append(row)
    return rows


def _add_power(row: dict, claim) -> None:
    """Each measured check's power estimate (``check["power"]``: the seeds that would settle it
    at today's mean and spread, with the arithmetic), and the claim's ``seeds_needed`` and
    ``seeds_needed_text`` (:func:`initstudy.study.claims.seeds_to_settle`)."""
    values = row.get("measurements", {})
    for result in row.get("checks", []):
        check = next((k for k in claim.criterion.checks if k.metric == result["metric"]), None)
        if check is None or not result.get("n"):
            continue
        est = power(check, values.get(check.metric, ()), claim.criterion.confidence)
        if result.get("status") == UNSETTLED:  # the estimate the power paragraph gives (control, precondition)
            found = seeds_needed(check, result, values.get(check.metric, ()), values.get(check.control or "", ()),
                                 claim.criterion.confidence)
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
