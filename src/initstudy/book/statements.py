"""Checked statements: prose that states a direction or a number, bound to the results.

A sentence of the book that says which way a result goes ("the gain shrinks as labels grow",
"BN learned in every seed") is written next to a *predicate*: a Python expression over the
profile's results that must be true for the sentence to be. The book build evaluates every
predicate (:mod:`initstudy.book.ext`'s ``checked``, ``when`` and ``by-verdict`` directives);
a contradicted statement fails the build (a Sphinx warning, an error under ``-W``) naming the
statement, its predicate and the numbers the predicate read.

The names a predicate can use (all read from ``results/<profile>/``):

- ``verdict(claim_id)``: the claim's verdict string; ``REPRODUCED``, ``PARTLY``,
  ``NOT_REPRODUCED``, ``INCONCLUSIVE``, ``NOT_MEASURED`` are defined;
- ``check(claim_id, metric)``: a view of one check of the verdict, with ``.mean``, ``.low``,
  ``.high``, ``.n``, ``.status`` and ``.control`` (the negative control's view, or None);
- ``values(claim_id, metric)``: the per-seed values behind a check (controls included);
- ``discriminates(claim_id)``: "yes", "no" or "not measured";
- ``stability(claim_id)``: the fresh-seed comparison ("yes", "confirms", "not confirmed", "no",
  "unsettled on one" or "not run"; :mod:`initstudy.study.stability`);
- ``table(notebook, name)``: a result table ``<notebook>/tables/<name>.csv`` as a DataFrame;
- ``np``, ``pd``, ``math``, ``all``, ``any``, ``min``, ``max``, ``abs``, ``len``, ``sum``.

>>> import json, tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> (d / "lsuv").mkdir()
>>> row = {"id": "lsuv-cheap", "verdict": "reproduced", "checks": [{"metric": "f", "status": "holds",
...        "n": 3, "mean": 0.05, "low": 0.04, "high": 0.06}], "measurements": {"f": [0.04, 0.05, 0.06]}}
>>> _ = (d / "lsuv" / "claims.json").write_text(json.dumps([row]))
>>> evaluate("check('lsuv-cheap', 'f').high <= 0.1", Evidence(d)).holds
True
>>> r = evaluate("check('lsuv-cheap', 'f').mean > 0.1", Evidence(d)); r.holds, r.numbers
(False, ["check('lsuv-cheap', 'f').mean = 0.05"])
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from initstudy.study import claims as claims_mod

__all__ = ["Evidence", "Outcome", "evaluate", "StatementError", "pick_by_verdict", "VERDICT_LABELS", "scan_text",
           "scan_files"]


class StatementError(Exception):
    """A predicate that cannot be evaluated (a typo, a missing table): never silently true."""


class _Recorder:
    def __init__(self):
        self.numbers: list[str] = []
        self.nan = False

    def note(self, what: str, value: Any) -> Any:
        if isinstance(value, float) and math.isnan(value):
            self.nan = True
        if isinstance(value, list) and any(isinstance(v, float) and math.isnan(v) for v in value):
            self.nan = True
        if isinstance(value, float):
            shown = f"{value:.4g}"
        else:
            shown = repr(value) if isinstance(value, str) else str(value)
        self.numbers.append(f"{what} = {shown}")
        return value


class _View:
    """Attribute access that records every number read (for the error message)."""

    def __init__(self, data: dict, label: str, recorder: _Recorder):
        self._data, self._label, self._recorder = data, label, recorder

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name == "control":
            ctl = self._data.get("control")
            return _View(ctl, f"{self._label}.control", self._recorder) if ctl else None
        if name not in self._data:
            raise StatementError(f"{self._label} has no field {name!r}; fields: {', '.join(self._data)}")
        value = self._data[name]
        if value is None:
            value = float("nan")
        return self._recorder.note(f"{self._label}.{name}", value)


class Evidence:
    """The results of one profile, read lazily: claims summary rows and result tables."""

    def __init__(self, profile_dir: str | Path):
        self.profile_dir = Path(profile_dir)
        self._rows: dict[str, dict] | None = None
        self._tables: dict[tuple[str, str], Any] = {}
        self._stability: dict[str, dict] | None = None
        self.recorder = _Recorder()

    # -- raw access
    def rows(self) -> dict[str, dict]:
        if self._rows is None:
            self._rows = {}
            for path in sorted(self.profile_dir.glob("*/claims.json")):
                with open(path, encoding="utf-8") as f:
                    for row in json.load(f):
                        self._rows[row["id"]] = row
        return self._rows

    def row(self, claim_id: str) -> dict | None:
        claims_mod.claim(claim_id)  # an unknown id is an error, not "not measured"
        return self.rows().get(claim_id)

    # -- the predicate's names
    def verdict(self, claim_id: str) -> str:
        """The verdict the claim is reported under (:func:`initstudy.study.stability.headline`:
        a changed criterion's once fresh seeds confirm it)."""
        from initstudy.study import stability

        row = self.row(claim_id)
        if row is None:
            return self.recorder.note(f"verdict({claim_id!r})", claims_mod.NOT_MEASURED)
        self.stability(claim_id)  # reads the comparison once
        entry = (self._stability or {}).get(claim_id) or {}
        self.recorder.numbers.pop()  # (the comparison is not what the predicate asked for)
        row = {"fresh_from": claims_mod.claim(claim_id).fresh_from, **row}  # seeds below it confirm nothing
        return self.recorder.note(f"verdict({claim_id!r})",
                                  stability.headline(row, entry.get("fresh_verdict"), entry.get("fresh_seeds")))

    def provisional(self, claim_id: str) -> str:
        """What a changed criterion's checks give on the profile's seeds (empty otherwise)."""
        return (self.row(claim_id) or {}).get("provisional", "")

    def note(self, claim_id: str) -> str:
        """Why the verdict is not what the checks alone give (empty when nothing to say)."""
        row = self.row(claim_id)
        return (row or {}).get("note", "")

    def check(self, claim_id: str, metric: str) -> _View:
        row = self.row(claim_id)
        if row is None:
            raise StatementError(f"claim {claim_id!r} is not measured at this profile")
        for c in row.get("checks", []):
            if c["metric"] == metric:
                return _View(c, f"check({claim_id!r}, {metric!r})", self.recorder)
        raise StatementError(f"claim {claim_id!r} has no check {metric!r}; checks: "
                             f"{', '.join(c['metric'] for c in row.get('checks', []))}")

    def values(self, claim_id: str, metric: str) -> list[float]:
        row = self.row(claim_id)
        if row is None or metric not in row.get("measurements", {}):
            raise StatementError(f"no measurements of {metric!r} for claim {claim_id!r}")
        vals = [float(v) for v in row["measurements"][metric]]
        self.recorder.note(f"values({claim_id!r}, {metric!r})", [round(v, 4) for v in vals])
        return vals

    def discriminates(self, claim_id: str) -> str:
        row = self.row(claim_id)
        return self.recorder.note(f"discriminates({claim_id!r})",
                                  claims_mod.discrimination(row.get("checks", [])) if row else "not measured")

    def stability(self, claim_id: str) -> str:
        """The fresh-seed comparison of a claim (:mod:`initstudy.study.stability`): "yes",
        "confirms", "not confirmed", "no", "unsettled on one" or "not run"."""
        from initstudy.study import stability

        claims_mod.claim(claim_id)
        if self._stability is None:  # read once per Evidence, like the rows
            self._stability = {r["id"]: r for r in stability.compare(self.profile_dir)}
        entry = self._stability.get(claim_id)
        return self.recorder.note(f"stability({claim_id!r})", entry["same"] if entry else stability.NOT_RUN)

    def table(self, notebook: str, name: str):
        import pandas as pd

        key = (notebook, name)
        if key not in self._tables:
            path = self.profile_dir / notebook / "tables" / f"{name}.csv"
            if not path.is_file():
                raise StatementError(f"no table {name!r} for notebook {notebook!r} ({path.name} is missing)")
            self._tables[key] = pd.read_csv(path)
        return self._tables[key].copy()

    def ran(self, notebook: str, experiment: str) -> bool:
        """Whether ``notebook``'s run made ``experiment``: its ``work_plan`` table (the
        experiments a chapter declares, with the ones its profile leaves to another)."""
        plan = self.table(notebook, "work_plan")
        row = plan[plan["experiment"] == experiment]
        if row.empty:
            raise StatementError(f"notebook {notebook!r} plans no experiment {experiment!r}; it plans "
                                 f"{', '.join(map(repr, plan['experiment']))}")
        return self.recorder.note(f"ran({notebook!r}, {experiment!r})", bool(row["runs it"].iloc[0]))

    def namespace(self) -> dict[str, Any]:
        import numpy as np
        import pandas as pd

        return {
            "verdict": self.verdict, "check": self.check, "values": self.values, "table": self.table, "ran": self.ran,
            "discriminates": self.discriminates, "stability": self.stability,
            "REPRODUCED": claims_mod.REPRODUCED, "PARTLY": claims_mod.PARTLY,
            "NOT_REPRODUCED": claims_mod.NOT_REPRODUCED, "INCONCLUSIVE": claims_mod.INCONCLUSIVE,
            "NOT_MEASURED": claims_mod.NOT_MEASURED,
            "np": np, "pd": pd, "math": math, "all": all, "any": any, "min": min, "max": max, "abs": abs,
            "len": len, "sum": sum, "round": round, "sorted": sorted, "float": float, "int": int,
        }


@dataclass
class Outcome:
    holds: bool
    numbers: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return "; ".join(self.numbers) if self.numbers else "(no result was read)"


def evaluate(predicate: str, evidence: Evidence) -> Outcome:
    """Evaluate ``predicate`` over ``evidence``; the numbers it read come back with it.
    Raises :class:`StatementError` when the predicate cannot be evaluated."""
    evidence.recorder = _Recorder()
    try:
        value = eval(compile(predicate, "<statement predicate>", "eval"), {"__builtins__": {}, **evidence.namespace()})
        if hasattr(value, "item"):
            value = value.item()
    except StatementError:
        raise
    except Exception as err:  # a typo or a missing column is an error of the book, never "true"
        raise StatementError(f"predicate {predicate!r} could not be evaluated: {type(err).__name__}: {err}") from None
    if not isinstance(value, bool):
        raise StatementError(f"predicate {predicate!r} gave {value!r}, not True or False")
    if evidence.recorder.nan:
        # a comparison with NaN is False, so its negation would assert a direction nothing measured
        raise StatementError(f"predicate {predicate!r} read a value that was not measured (NaN): "
                             + "; ".join(evidence.recorder.numbers))
    return Outcome(value, evidence.recorder.numbers)


#: The labels of a ``by-verdict`` block, and the verdicts each covers.
VERDICT_LABELS = {
    "reproduced": (claims_mod.REPRODUCED,),
    "partly reproduced": (claims_mod.PARTLY,),
    "not reproduced": (claims_mod.NOT_REPRODUCED,),
    "inconclusive": (claims_mod.INCONCLUSIVE, claims_mod.NOT_MEASURED),
}


#: What a by-verdict block shows, whatever its texts, for a claim whose changed criterion waits
#: for fresh seeds (see :func:`initstudy.study.claims.judge`).
UNCONFIRMED = ("This claim's criterion was changed after a preliminary run on these seeds: its checks give "
               "\"{provisional}\" here, which stands only once a run on fresh seeds gives the same (the changes are "
               "listed on the claims page); until then the verdict is inconclusive.")


#: ... and, before its block, for such a claim once a run on fresh seeds (``python -m initstudy
#: stability``) gave the same verdict.
CONFIRMED = ("`{claim}`: under a criterion changed after a preliminary run, the profile's seeds and {seeds} "
             "(deciding number there: {number}) gave the same verdict, so the claim is reported under it (the "
             "claims page lists the change).")


#: ... and for a claim none of whose assertion checks tells it from its negative control.
NOT_DISCRIMINATING = ("No assertion check tells this claim from its negative control: where a check "
                      "held, its control passed it too, so it decides nothing and the verdict is "
                      "inconclusive (the checks and controls are on the claims page).")


def pick_by_verdict(text: str, verdict: str, note: str = "", provisional: str = "") -> str:
    """The block of ``text`` written for ``verdict``. ``text`` has one block per outcome, each
    starting with a line ``reproduced:``, ``partly reproduced:``, ``not reproduced:`` or
    ``inconclusive:`` (the last also covers "not measured yet"); every outcome must be
    written, so the advice cannot go stale when a verdict changes. An inconclusive verdict with
    a ``note`` from the judge (a changed criterion awaiting fresh seeds, or a criterion that
    does not discriminate) shows the library's sentence for that case instead: the block's
    "not settled at this profile" would be false there.

    >>> pick_by_verdict("reproduced: Use it.\\npartly reproduced: Mind X.\\nnot reproduced: Do not.\\n"
    ...                 "inconclusive: Unsettled.", "partly reproduced")
    'Mind X.'
    """
    blocks: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        head, sep, rest = line.partition(":")
        if sep and head.strip() in VERDICT_LABELS and not line.startswith(" "):
            current = head.strip()
            if current in blocks:
                raise StatementError(f"the outcome {current!r} is written twice")
            blocks[current] = [rest.strip()]
        elif current is not None:
            blocks[current].append(line)
        elif line.strip():
            raise StatementError(f"text before the first outcome label: {line.strip()[:60]!r}")
    missing = [label for label in VERDICT_LABELS if label not in blocks]
    if missing:
        raise StatementError(f"no text for the outcome(s) {', '.join(missing)}: every outcome must be written")
    if claims_mod.awaiting_fresh_seeds({"verdict": verdict, "note": note}):
        return UNCONFIRMED.format(provisional=provisional or "no verdict")
    if verdict == claims_mod.INCONCLUSIVE and "no assertion check tells the claim from its negative control" in note:
        return NOT_DISCRIMINATING
    for label, verdicts in VERDICT_LABELS.items():
        if verdict in verdicts:
            return "\n".join(blocks[label]).strip()
    raise StatementError(f"unknown verdict {verdict!r}")


# ------------------------------------------------------------------ scanning pages

_DIRECTIVE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{(?P<kind>checked|when|by-verdict)\}[ \t]*(?P<arg>.*?)\n"
                        r"(?P<body>.*?)^(?P=fence)[ \t]*$", re.S | re.M)


@dataclass
class Found:
    source: str
    kind: str
    predicate: str
    text: str
    outcome: str  # "holds", "false", "shown", "hidden", or "error: ..."


def scan_text(text: str, source: str, evidence: Evidence) -> list[Found]:
    """Every ``checked``, ``when`` and ``by-verdict`` directive of a MyST text, evaluated.
    ``outcome``: "holds"/"false" for ``checked``, "shown"/"hidden" for ``when``, the chosen
    outcome label for ``by-verdict``, or "error: ..."."""
    found = []
    for m in _DIRECTIVE.finditer(text):
        kind, arg, body = m["kind"], m["arg"].strip(), m["body"].strip()
        try:
            if kind == "by-verdict":
                picked = pick_by_verdict(body, evidence.verdict(arg), evidence.note(arg), evidence.provisional(arg))
                outcome = f"shown: {picked[:40]}"
            else:
                holds = evaluate(arg, evidence).holds
                outcome = ("holds" if holds else "false") if kind == "checked" else ("shown" if holds else "hidden")
        except (StatementError, KeyError) as err:
            outcome = f"error: {err}"
        found.append(Found(source, kind, arg, body, outcome))
    return found


def scan_files(paths, profile_dir: str | Path) -> list[Found]:
    """:func:`scan_text` over markdown files and the markdown cells of notebooks."""
    evidence = Evidence(profile_dir)
    found: list[Found] = []
    for path in map(Path, paths):
        if path.suffix == ".ipynb":
            cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
            for i, cell in enumerate(cells):
                if cell.get("cell_type") == "markdown":
                    src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
                    found += scan_text(src, f"{path.name} cell {i}", evidence)
        else:
            found += scan_text(path.read_text(encoding="utf-8"), path.name, evidence)
    return found


def main(argv=None) -> int:
    """``python -m initstudy.book.statements PROFILE_DIR FILE...``: evaluate every statement of the
    files against a profile's results; exit 1 if one is contradicted or cannot be evaluated."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 2:
        print("usage: python -m initstudy.book.statements RESULTS/PROFILE FILE...", file=sys.stderr)
        return 2
    bad = 0
    for f in scan_files(args[1:], args[0]):
        flag = f.outcome.startswith("error") or f.outcome == "false"
        bad += flag
        print(f"{'FAIL' if flag else 'ok  '} {f.source}: {f.kind} {f.predicate!r} -> {f.outcome}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
