"""``python -m initstudy stability``: do the verdicts survive fresh seeds?

Reruns every chapter of a profile with seeds disjoint from the profile's (the same number of
seeds, from ``--first-seed``, 2000 by default: far from the seeds the criteria were written and
tuned on, 0-99, and from the fresh-seed runs of before December 2026, 1000-1099, which the
criteria changed then were written after) into its own results folder, ``<results>/fresh-seeds/<profile>/``, and
compares each claim's verdict there with the profile's own (``<results>/<profile>/``). Every
random stream of a chapter moves with its seeds (experiments with their own seed counts draw
them with :meth:`initstudy.study.run.Run.seed_block`), so the rerun is a new sample, not a copy.

Per claim the comparison says:

- ``yes``: the same verdict;
- ``confirms``: a claim whose criterion changed after a preliminary run (so its verdict on the
  profile's seeds waits for fresh seeds, ``provisional``) gets the same verdict on fresh
  seeds: the change is confirmed, and the claim's headline is that verdict (:func:`headline`);
- ``not confirmed``: such a claim whose fresh-seed verdict differs: it stays inconclusive;
- ``no``: another settled verdict on fresh seeds (reproduced, partly, not reproduced), and
- ``unsettled on one``: one of the two runs is inconclusive and the other is not, both mark
  the claim as **fragile** at this profile (the book says so beside its verdict, naming the
  checks that changed);
- ``not run``: no fresh-seed result for it.

The comparison is written to ``<results>/fresh-seeds/<profile>/stability.json`` and printed;
the book reads the same two folders when it is built. A fresh-seed run never touches the
profile's own results.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Mapping, Sequence

from initstudy.study import catalog as catalog_mod
from initstudy.study.claims import AWAITING_FRESH_SEEDS, INCONCLUSIVE, NOT_MEASURED, awaiting_fresh_seeds
from initstudy.study.execution import CommandParser, UsageError
from initstudy.study.layout import DEFAULT_PROFILE, Layout
from initstudy.study.results import atomic_write_json

__all__ = ["FRESH_DIR", "FIRST_SEED", "fresh_profile_dir", "fresh_seeds", "compare", "confirmed", "headline", "main"]

#: The folder, under the results folder, that holds the fresh-seed runs (one profile folder each).
FRESH_DIR = "fresh-seeds"
#: The first fresh seed: far above the seeds the criteria were tuned on (0-99) and the fresh-seed
#: runs of before December 2026 (1000-1099), which the criteria changed then were written after.
FIRST_SEED = 2000

SAME, CONFIRMS, NOT_CONFIRMED, FLIPPED, ONE_UNSETTLED, NOT_RUN = (
    "yes", "confirms", "not confirmed", "no", "unsettled on one", "not run")


def fresh_profile_dir(profile_dir: Path) -> Path:
    """Where the fresh-seed run of the profile whose results are in ``profile_dir`` lives.

    >>> fresh_profile_dir(Path("results/cpu")).as_posix()
    'results/fresh-seeds/cpu'
    """
    profile_dir = Path(profile_dir)
    return profile_dir.parent / FRESH_DIR / profile_dir.name


def fresh_seeds(spec: catalog_mod.NotebookSpec, profile: str, first: int = FIRST_SEED) -> list[int]:
    """As many seeds as the profile runs for ``spec``, from ``first`` on, or from the latest
    ``fresh_from`` of its claims when that is later (a claim whose criterion changed after
    fresh seeds were seen).

    >>> from initstudy.study.catalog import NOTEBOOKS
    >>> fresh_seeds(NOTEBOOKS["zero_init"], "smoke")
    [2000, 2001, 2002]
    >>> fresh_seeds(NOTEBOOKS["transfer"], "smoke")  # transfer-best's criterion changed: fresh_from 3000
    [3000, 3001]
    """
    from initstudy.study.claims import claim

    first = max([first] + [claim(cid).fresh_from for cid in spec.claims])
    count = len(catalog_mod.seeds_list(catalog_mod.resolve(spec, profile, {}, here=False)["seeds"]))
    return list(range(first, first + count))


def _rows(profile_dir: Path) -> dict[str, dict]:
    path = Path(profile_dir) / "claims.json"
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8") as f:
        return {r["id"]: r for r in json.load(f)}


def _commit(profile_dir: Path, notebook: str | None) -> str:
    path = Path(profile_dir) / str(notebook) / "provenance.json"
    try:
        with open(path, encoding="utf-8") as f:
            return (json.load(f).get("git") or {}).get("commit", "") or ""
    except (OSError, ValueError):
        return ""


def _fresh_numbers(fresh: Mapping) -> str:
    """Every assertion check of the fresh run that did not hold, with its value and status
    ("metric = ... : unsettled; ..."), so that a sentence about the fresh run can name them all."""
    from initstudy.study.claims import HOLDS, format_result

    return "; ".join(f"{format_result(c)}: {c.get('status')}" for c in fresh.get("checks", [])
                     if c.get("status") != HOLDS and c.get("role", "assertion") == "assertion")


def _changed_checks(row: Mapping, fresh: Mapping) -> list[dict]:
    """The checks whose status differs between the two runs: metric, both statuses and the
    fresh run's value (:func:`initstudy.study.claims.format_result`)."""
    from initstudy.study.claims import format_result

    before = {c["metric"]: c for c in row.get("checks", [])}
    out = []
    for c in fresh.get("checks", []):
        b = before.get(c["metric"])
        if b is not None and b.get("status") != c.get("status"):
            why = re.search(r"\[(precondition [^\]]*)\]", c.get("rule", ""))
            out.append({"metric": c["metric"], "status": b.get("status"), "fresh_status": c.get("status"),
                        "fresh_value": format_result(c) + (f"; {why.group(1)}" if why else "")})
    return out


def compare(profile_dir: Path, fresh_dir: Path | None = None) -> list[dict]:
    """Per claim of the profile's summary: its verdict, the verdict on fresh seeds, the seeds
    of both runs, the checks whose status changed, and the outcome (see the module's docstring)."""
    fresh_dir = fresh_profile_dir(profile_dir) if fresh_dir is None else Path(fresh_dir)
    main_rows, fresh_rows = _rows(profile_dir), _rows(fresh_dir)
    out = []
    for cid, row in main_rows.items():
        fresh = fresh_rows.get(cid)
        entry = {"id": cid, "notebook": row.get("notebook"), "verdict": row["verdict"], "seeds": row.get("seeds", []),
                 "fresh_verdict": None, "fresh_seeds": [], "fresh_key_number": "", "same": NOT_RUN,
                 "commit": _commit(profile_dir, row.get("notebook")), "fresh_commit": ""}
        if fresh and fresh["verdict"] != NOT_MEASURED and row["verdict"] != NOT_MEASURED:
            entry.update(fresh_verdict=fresh["verdict"], fresh_seeds=fresh.get("seeds", []),
                         fresh_key_number=fresh.get("key_number", ""),
                         fresh_commit=_commit(fresh_dir, row.get("notebook")),
                         fresh_seeds_needed_text=fresh.get("seeds_needed_text", ""),
                         changed_checks=_changed_checks(row, fresh),
                         fresh_numbers=_fresh_numbers(fresh))
            entry["provisional"] = row.get("provisional", "")
            if awaiting_fresh_seeds(row):
                from initstudy.study.claims import LEDGER

                row = {**row, "fresh_from": LEDGER[cid].fresh_from if cid in LEDGER else row.get("fresh_from", 0)}
                entry["same"] = CONFIRMS if confirmed(row, fresh["verdict"], fresh.get("seeds")) else NOT_CONFIRMED
            elif fresh["verdict"] == row["verdict"]:
                entry["same"] = SAME
            elif INCONCLUSIVE in (fresh["verdict"], row["verdict"]):
                entry["same"] = ONE_UNSETTLED
            else:
                entry["same"] = FLIPPED
        out.append(entry)
    return out


def confirmed(row: Mapping, fresh_verdict: str | None, fresh_seeds: Sequence[int] | None = None) -> bool:
    """Whether a claim whose criterion changed after a preliminary run (``row``: its summary
    row on the profile's seeds, inconclusive there with its checks' verdict kept as
    ``provisional``) got that same verdict on fresh seeds. Two inconclusive verdicts confirm
    nothing: a changed criterion that settles nothing on either block stays "not confirmed";
    nor do seeds below the claim's ``fresh_from`` (seen before its criterion last changed).

    >>> row = {"verdict": INCONCLUSIVE, "note": AWAITING_FRESH_SEEDS, "provisional": INCONCLUSIVE}
    >>> confirmed(row, INCONCLUSIVE), confirmed({**row, "provisional": "reproduced"}, "reproduced")
    (False, True)
    >>> confirmed({**row, "provisional": "reproduced", "fresh_from": 3000}, "reproduced", [2000, 2001])
    False
    """
    fresh_from = row.get("fresh_from", 0)
    seen = any(s < fresh_from for s in (fresh_seeds or ())) or (fresh_from > 0 and not fresh_seeds)
    return (awaiting_fresh_seeds(row) and bool(fresh_verdict) and fresh_verdict == row.get("provisional")
            and fresh_verdict != INCONCLUSIVE and not seen)


def headline(row: Mapping, fresh_verdict: str | None = None, fresh_seeds: Sequence[int] | None = None) -> str:
    """The verdict a claim is reported under: its own (``row``'s, from its profile's summary),
    except for a claim whose criterion changed after a preliminary run, which is reported under
    the fresh seeds' verdict (``fresh_verdict``) once they confirm it and stays inconclusive
    until then.

    >>> awaiting = {"verdict": INCONCLUSIVE, "note": AWAITING_FRESH_SEEDS, "provisional": "partly reproduced"}
    >>> headline(awaiting), headline(awaiting, "partly reproduced"), headline(awaiting, "reproduced")
    ('inconclusive at this profile', 'partly reproduced', 'inconclusive at this profile')
    """
    return fresh_verdict if confirmed(row, fresh_verdict, fresh_seeds) else row["verdict"]


def seeds_text(seeds: Sequence[int]) -> str:
    """``1000-1004`` for a run of consecutive seeds, else the list.

    >>> seeds_text([1000, 1001, 1002]), seeds_text([3, 7])
    ('1000-1002', '3, 7')
    """
    seeds = list(seeds)
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}-{seeds[-1]}"
    return ", ".join(map(str, seeds))


def report(rows: Sequence[Mapping]) -> str:
    lines = [f"{'claim':<26} {'verdict':<30} {'on fresh seeds':<30} same"]
    for r in rows:
        lines.append(f"{r['id']:<26} {r['verdict']:<30} {str(r['fresh_verdict'] or '-'):<30} {r['same']}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = CommandParser(prog="python -m initstudy stability",
                      description="Rerun every chapter on fresh seeds and compare each claim's verdict.")
    p.add_argument("notebooks", nargs="*", metavar="NOTEBOOK", help="notebooks to rerun (default: all)")
    p.add_argument("--profile", default=DEFAULT_PROFILE, help=f"smoke | cpu | gpu (default: {DEFAULT_PROFILE})")
    p.add_argument("--first-seed", type=int, default=FIRST_SEED,
                   help=f"the first fresh seed (default {FIRST_SEED}; the seeds must miss the tuning seeds "
                        f"0-99 and 1000-1099)")
    p.add_argument("--results-dir", default=None, help="the results folder (default: <root>/results)")
    p.add_argument("--compare-only", action="store_true", help="compare the existing runs; execute nothing")
    p.add_argument("--force", action="store_true", help="execute even when cached fresh-seed results match")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None, catalog=None, root: Path | None = None, executor=None) -> int:
    from initstudy.study import runner

    catalog = catalog_mod.NOTEBOOKS if catalog is None else catalog
    try:
        args = build_parser().parse_args(argv)
        if args.profile not in catalog_mod.PROFILES:
            raise UsageError(f"unknown profile '{args.profile}'; allowed: {', '.join(catalog_mod.PROFILES)}")
        if args.first_seed < 100 or args.first_seed > 1_000_000:
            raise UsageError(f"--first-seed must be in [100, 1000000] (above the tuning seeds 0-99), "
                             f"got {args.first_seed}")
        names = [Path(n).stem if n.endswith(".ipynb") else n for n in args.notebooks] or list(catalog)
        unknown = [n for n in names if n not in catalog]
        if unknown:
            raise UsageError(f"unknown notebook '{unknown[0]}'; allowed: {', '.join(catalog)}")
        from initstudy.study.run import Run

        for name in names:  # every fresh seed outside the seeds the criteria were tuned on
            hit = sorted(set(fresh_seeds(catalog[name], args.profile, args.first_seed)) & Run.TUNING_SEEDS)
            if hit:
                raise UsageError(f"--first-seed {args.first_seed} gives {name} the tuning seeds {hit[0]}-{hit[-1]} "
                                 f"(0-99 and 1000-1099 were seen when the criteria were written); "
                                 f"use one from 1100 on")
        layout = Layout.find(root, args.results_dir)
    except UsageError as err:
        print(f"initstudy stability: error: {err}", file=sys.stderr)
        return runner.EXIT_USAGE
    profile_dir = layout.profile_dir(args.profile)
    fresh_dir = fresh_profile_dir(profile_dir)
    status = runner.EXIT_OK
    if not args.compare_only:
        for name in names:
            seeds = fresh_seeds(catalog[name], args.profile, args.first_seed)
            argv_run = [name, "--profile", args.profile, "--results-dir", str(fresh_dir.parent),
                        "-p", "seeds", ",".join(map(str, seeds))]
            argv_run += ["--force"] * args.force + ["--no-progress"] * args.no_progress
            code = runner.main(argv_run, catalog=catalog, root=layout.root, executor=executor)
            if code in (runner.EXIT_USAGE, runner.EXIT_DATA, runner.EXIT_INTERRUPTED):
                return code
            status = status or code
    rows = compare(profile_dir, fresh_dir)
    if not rows:
        print(f"initstudy stability: no results of the {args.profile} profile in {profile_dir} to compare with; "
              f"run `python -m initstudy run --profile {args.profile}` first", file=sys.stderr)
        return runner.EXIT_DATA
    if fresh_dir.is_dir():
        atomic_write_json(fresh_dir / "stability.json", rows)
    print(report(rows))
    flipped = [r["id"] for r in rows if r["same"] in (FLIPPED, ONE_UNSETTLED)]
    if flipped:
        print(f"fragile at the {args.profile} profile (another verdict on fresh seeds): {', '.join(flipped)}")
    return status
