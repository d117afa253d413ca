"""The session of one notebook run: parameters, provenance, tables, figures and verdicts.

A chapter notebook starts with a tagged ``parameters`` cell (papermill) and then::

    run = Run.start("zero_init", globals())   # validates parameters, records provenance
    ...
    run.table(df, "training")                 # tidy CSV, written atomically
    run.figure(fig, "fig-zero-symmetry-distance")
    run.verdict("zero-symmetry", measurements)  # computed from the ledger's criterion
    run.finish()                              # wall time; shows the provenance

Everything goes under ``results_dir`` (given by the runner: a staging folder that replaces
the earlier results only once the whole notebook has succeeded).
"""

from __future__ import annotations

import math
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from initstudy.study import catalog, claims, figures, results
from initstudy.study.layout import DEFAULT_PROFILE, Layout
from initstudy.study.results import atomic_write_text

__all__ = ["Run", "resolve_device"]


def resolve_device(device: str) -> str:
    """"auto" -> "cuda" when a GPU is visible, else "cpu"; "cpu" and "cuda" as they are ("cuda"
    without a GPU was refused when the parameters were resolved: :data:`catalog.DEVICE_RULE`)."""
    if device == "auto":
        return "cuda" if catalog.cuda_visible() else "cpu"
    return device


#: How a table in the book shows a value that does not exist (not applicable, never reached).
MISSING = "–"


def _dash_for_missing() -> None:
    """Tables shown in a notebook (and so in the book) write a missing value as
    :data:`MISSING`, not ``NaN``; the saved CSV tables keep it empty."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - notebooks always have IPython
        return
    shell = get_ipython()
    if shell is None:
        return
    shell.display_formatter.formatters["text/html"].for_type(pd.DataFrame, _table_html)


def _table_html(df: pd.DataFrame) -> str:
    """A DataFrame as the book shows it: missing values (NaN, and None in object columns,
    which ``na_rep`` alone leaves as "None") written :data:`MISSING`.

    >>> "None" in _table_html(pd.DataFrame({"a": ["x", None], "b": [1.0, None]}))
    False
    """
    objects = [i for i, dtype in enumerate(df.dtypes) if dtype == object]
    if objects:
        df = df.copy()
        for i in objects:
            col = df.iloc[:, i]
            df.isetitem(i, col.where(col.notna(), MISSING))
    return df.to_html(na_rep=MISSING, max_rows=pd.get_option("display.max_rows"),
                      max_cols=pd.get_option("display.max_columns"))


class Run:
    """One execution of one notebook. Build it with :meth:`start`."""

    def __init__(self, spec: catalog.NotebookSpec, profile: str, params: dict, results_dir: Path, device: str):
        self.spec = spec
        self.profile = profile
        self.params = params
        self.results_dir = results_dir
        self.device = device
        self.seeds = catalog.seeds_list(params["seeds"])
        self.judgements: dict[str, claims.Judgement] = {}
        self.claim_seeds: dict[str, tuple[list[int], bool]] = {}
        self.measurements: dict[str, dict] = {}
        self._t0 = time.perf_counter()
        from initstudy.core import data, ensemble  # torch, which the notebook imports anyway

        ensemble.reset_work()
        data.reset_loaded()
        self.provenance = results.provenance(
            notebook=spec.name, profile=profile, params=params, device=device, root=Layout.find().root
        )

    def seed_block(self, count: int) -> list[int]:
        """``count`` consecutive seeds from the run's first seed, for an experiment with its own
        seed count: every random stream moves with the run's seeds (a rerun on fresh seeds
        draws fresh ones everywhere).

        >>> r = Run.__new__(Run); r.seeds = [1000, 1001]
        >>> r.seed_block(4)
        [1000, 1001, 1002, 1003]
        """
        return list(range(self.seeds[0], self.seeds[0] + int(count)))

    def seeds_after(self, count: int) -> list[int]:
        """``count`` consecutive seeds after the run's largest: a second block of seeds that
        shares none with the run's (a placebo's "same condition, other seeds").

        >>> r = Run.__new__(Run); r.seeds = [0, 2, 4]
        >>> r.seeds_after(3)
        [5, 6, 7]
        """
        start = max(self.seeds) + 1
        return list(range(start, start + int(count)))

    @classmethod
    def start(cls, notebook: str, namespace: Mapping[str, Any]) -> "Run":
        """Validate the notebook's parameters (taken from ``namespace``, usually
        ``globals()``; ``None`` means the profile's default), seed nothing yet, set the
        figure style and record provenance."""
        spec = catalog.notebook(notebook)
        profile = namespace.get("profile", DEFAULT_PROFILE)
        overrides = {p.name: namespace.get(p.name) for p in spec.params}
        params = catalog.resolve(spec, profile, overrides)
        device = resolve_device(params["device"])
        results_dir = namespace.get("results_dir") or Layout.find().manual_dir(profile, notebook)
        results_dir = Path(results_dir)
        from initstudy.core.ensemble import PLAN_ENV, planning

        if planning() and "plan" not in results_dir.resolve().parts:
            raise ValueError(f"{PLAN_ENV}=1 (plan mode: one step per ensemble, not results) writes only under a "
                             f"folder named plan (python -m initstudy.study.gpu_run --plan), not {results_dir}")
        results_dir.mkdir(parents=True, exist_ok=True)
        import torch

        if device == "cpu":
            torch.use_deterministic_algorithms(True)
        figures.set_style()
        # seaborn's strip-plot jitter draws from numpy's global generator (nothing of the study
        # does): seeded here, a rerun draws every figure identically
        np.random.seed(0)
        # tables shown whole in the book: no truncated cells, no scientific notation for plain numbers
        pd.set_option("display.max_colwidth", None)
        pd.set_option("display.width", 250)
        pd.set_option("display.float_format", lambda x: f"{x:.6g}")
        _dash_for_missing()
        run = cls(spec, profile, params, results_dir, device)
        run._show_header()
        return run

    # ------------------------------------------------------------------ outputs
    def table(self, df: pd.DataFrame, name: str) -> Path:
        """Save a tidy table as ``tables/<name>.csv``."""
        return results.save_table(df, self.results_dir / "tables" / f"{name}.csv")

    def selection(self, df: pd.DataFrame, name: str) -> Path:
        """Save what a chapter chose on validation (a learning rate, a weight scale, an init) as
        ``selections/<name>.csv``: the tests rerun every chapter with the test labels shuffled
        (:data:`initstudy.core.data.SHUFFLE_TEST_ENV`) and require every selection to come out
        the same."""
        return results.save_table(df, self.results_dir / "selections" / f"{name}.csv")

    def timings(self, df: pd.DataFrame, name: str) -> Path:
        """Save wall-time measurements as ``timings/<name>.csv``: apart from ``tables/``,
        because timings differ from run to run while tables must not."""
        return results.save_table(df, self.results_dir / "timings" / f"{name}.csv")

    def figure(self, fig, fig_id: str, claims_shown: tuple[str, ...] = (), *, data: pd.DataFrame | None = None,
               params: tuple[str, ...] | None = None, seeds: list[int] | None = None, _glue: Any = None) -> None:
        """Publish a figure under its stable id (PNG + SVG + glue for the book).

        ``data``: the plotted data, saved beside it as ``<fig_id>.csv`` (the figures index
        offers it for download, and reads the figure's seeds from its ``seed`` column);
        ``params``: the names of the parameters this figure used (default: all of the
        notebook's); ``seeds``: the seeds it shows, when ``data`` has no ``seed`` column.
        Returns nothing, so that a notebook cell ending with it prints nothing."""
        topic_claims = claims_shown or tuple(c for c in self.spec.claims if fig_id.startswith(f"fig-{c}-"))
        used = self.params if params is None else {k: self.params[k] for k in params}
        if seeds is None and data is not None and "seed" in data:
            seeds = sorted(int(s) for s in data["seed"].dropna().unique())
        figures.publish(
            fig, fig_id, self.results_dir / "figures",
            params={**used, "profile": self.profile}, claims=topic_claims, data=data,
            seeds=seeds, **({} if _glue is None else {"glue_value": _glue, "display": False}),
        )

    def interactive(self, fig, fig_id: str, static, claims_shown: tuple[str, ...] = (), *,
                    data: pd.DataFrame | None = None, params: tuple[str, ...] | None = None,
                    seeds: list[int] | None = None) -> None:
        """Publish a figure the reader moves (a slider, a menu) under its stable id, as
        :meth:`figure` publishes a still one; the notebook's markdown shows it the same way
        (``{glue:figure} <fig_id>`` with its caption).

        ``fig``: a plotly figure whose every state is precomputed (no kernel behind the page);
        ``static``: a matplotlib figure of the same data, saved as PNG and SVG (the figures
        index, and the PDF, which shows it in the interactive one's place). Also saved:
        ``<fig_id>.plotly.json``, the interactive figure itself (``plotly.io.read_json``). The
        HTML book draws ``fig`` with plotly.js, which the book serves (``initstudy.book.ext``
        copies it from the plotly package into ``_static``): viewing the page fetches nothing,
        from disk too. In Jupyter and Colab (not under the runner) plotly shows it inline."""
        html = interactive_html(fig, fig_id)
        figures_dir = self.results_dir / "figures"
        figures_dir.mkdir(parents=True, exist_ok=True)
        self.figure(static, fig_id, claims_shown, data=data, params=params, seeds=seeds,
                    _glue=_Interactive(html, fig_id, figures_dir / f"{fig_id}.png"))
        atomic_write_text(figures_dir / f"{fig_id}.plotly.json", fig.to_json(pretty=False, engine="json") + "\n")
        manifest = figures.read_manifest(figures_dir)
        for entry in manifest:
            if entry["id"] == fig_id:
                entry["files"]["interactive"] = f"{fig_id}.plotly.json"
        results.atomic_write_json(figures_dir / "manifest.json", manifest)
        if figures._in_notebook() and os.environ.get("INITSTUDY_RUNNER") != "1":
            fig.show()

    def glue(self, key: str, value: Any) -> None:
        """Make a computed value citable from the book's text: numbers as
        ``{glue:text}`key:.2f```, strings (verdicts, sentences) as ``{glue:md}`key```."""
        if figures._in_notebook():
            from IPython.display import Markdown
            from myst_nb import glue

            if hasattr(value, "item") and not isinstance(value, str):  # numpy/torch scalars print as np.float64(...)
                value = value.item()
            glue(key, Markdown(value) if isinstance(value, str) else value, display=False)

    def glue_all(self, values: Mapping[str, Any]) -> None:
        for key, value in values.items():
            self.glue(key, value)

    def verdict(self, claim_id: str, measurements: Mapping[str, Any], figures_shown: tuple[str, ...] = (),
                seeds: list[int] | None = None, unseeded: bool = False):
        """Judge ``claim_id`` from per-seed ``measurements`` by the ledger's criterion, store
        it for the claims summary, glue ``verdict-<id>`` for the text, and return it.

        ``seeds``: the seeds the measurements come from, when not the run's (e.g. a separate
        seed list of one experiment); ``unseeded``: the measurements are not seeded at all
        (wall-time repeats, new data every run). Both decide whether the seeds are fresh for a
        criterion changed after a preliminary run (see :func:`initstudy.study.claims.judge`)."""
        claim = claims.claim(claim_id)
        if claim_id not in self.spec.claims:
            raise ValueError(f"notebook {self.spec.name!r} does not settle claim {claim_id!r}")
        values = {k: [float(x) for x in (v if isinstance(v, (list, tuple)) else list(v))]
                  for k, v in measurements.items()}
        used = [] if unseeded else list(self.seeds if seeds is None else seeds)
        fresh = self._fresh(used, claim.fresh_from)  # unseeded measurements (timings) are never fresh
        judgement = claims.judge(claim, values, fresh_seeds=fresh)
        self.judgements[claim_id] = judgement
        self.claim_seeds[claim_id] = (used, fresh)
        self.measurements[claim_id] = values
        self.glue(f"verdict-{claim_id}", judgement.verdict)
        # no seed count from this run's own spread here: power is planned from a pilot on other
        # seeds (the fresh-seed run), on the claims page
        self.glue(f"checks-{claim_id}", claims.reading(judgement))
        self._write_claims(figures_shown)
        return judgement

    def verdicts(self, measurements: Mapping[str, Any]) -> pd.DataFrame:
        """Judge every claim this chapter declares from ``measurements`` ({claim id: per-seed
        measurements}, as the chapter's measurement function returns them; a
        :class:`~initstudy.study.claims.Measured` carries its own seeds), in the declared order,
        and return :meth:`verdict_table`. A claim without measurements, or measurements for a
        claim the chapter does not declare, is an error."""
        missing = [c for c in self.spec.claims if c not in measurements]
        extra = [c for c in measurements if c not in self.spec.claims]
        if missing or extra:
            raise ValueError(f"notebook {self.spec.name!r} declares the claims {list(self.spec.claims)}; "
                             f"measurements are missing for {missing} and given for undeclared {extra}")
        for cid in self.spec.claims:
            m = measurements[cid]
            if isinstance(m, claims.Measured):
                self.verdict(cid, m.values, seeds=None if m.seeds is None else list(m.seeds), unseeded=m.unseeded)
            else:
                self.verdict(cid, m)
        return self.verdict_table()

    #: Seeds the criteria were written and tuned on: the preliminary runs used seeds from 0 up
    #: (the profiles' default seed counts, and experiments with their own seed counts), and the
    #: fresh-seed runs made before December 2026 (seeds from 1000 up), which the criteria changed
    #: then were written after (:data:`initstudy.study.stability.FIRST_SEED` is 2000 since).
    TUNING_SEEDS = frozenset(range(0, 100)) | frozenset(range(1000, 1100))

    def _fresh(self, seeds: list[int], fresh_from: int = 0) -> bool:
        """Whether ``seeds`` are disjoint from :attr:`TUNING_SEEDS` and none is below the claim's
        ``fresh_from`` (seeds seen before its criterion last changed)."""
        return bool(seeds) and not (set(seeds) & self.TUNING_SEEDS) and min(seeds) >= fresh_from

    def verdict_table(self) -> pd.DataFrame:
        """The checks behind every verdict so far, as a table to show in the notebook."""
        rows = []
        for cid, j in self.judgements.items():
            for c in j.checks:
                ctl = c.control or {}
                verdict = f"{j.verdict} (its checks: {j.provisional})" if j.provisional else j.verdict
                rows.append({"claim": cid, "verdict": verdict, "metric": c.metric, "rule": c.rule,
                             "value": c.mean, "CI low": c.low, "CI high": c.high, "CI level": c.level, "n": c.n,
                             "check": c.status,
                             "negative control": (f"{claims.format_result(ctl)}: {ctl['status']}"
                                                  if ctl else "")})
        return pd.DataFrame(rows)

    @staticmethod
    def note(text: str):
        """A sentence for the book as the last value of a cell: rendered as text, not as a
        quoted string."""
        from IPython.display import Markdown

        return Markdown(text)

    def published_verdicts(self, profile: str = "gpu") -> pd.DataFrame | None:
        """This notebook's verdicts from results published under ``published/<profile>/``
        (a run made elsewhere, e.g. at paper scale), or ``None`` when there are none."""
        path = Layout.find().published_dir(profile, self.spec.name) / "claims.json"
        if not path.is_file():
            return None  # (the notebook shows its own sentence for this case)
        rows = results.read_json(path)
        return pd.DataFrame([{"claim": r["id"], f"verdict ({profile})": r["verdict"], "seeds": r["seeds"],
                              "evidence": r["explanation"]} for r in rows])

    def _write_claims(self, figures_shown: tuple[str, ...]) -> None:
        rows = []
        for cid, j in self.judgements.items():
            claim = claims.claim(cid)
            rows.append(
                {
                    "id": cid,
                    "verdict": j.verdict,
                    "explanation": j.explanation(),
                    "note": j.note,
                    "provisional": j.provisional,
                    "fresh_seeds": self.claim_seeds[cid][1],
                    "criterion": claim.criterion.text(),
                    "checks": [vars(c) for c in j.checks],
                    "measurements": self.measurements[cid],
                    "profile": self.profile,
                    "seeds": self.claim_seeds[cid][0],
                    # the sample count of each metric as the judge counts it: its values but the
                    # missing ones (NaN: a seed without that measurement)
                    "samples": {metric: sum(not math.isnan(v) for v in values)
                                for metric, values in self.measurements[cid].items()},
                    "notebook": self.spec.name,
                    "figures": list(figures_shown or claim.figures),
                }
            )
        results.atomic_write_json(self.results_dir / "claims.json", rows)

    def finish(self) -> pd.DataFrame:
        """Record the wall time and the training core's work (:class:`initstudy.core.ensemble.Work`:
        member-steps, TFLOP and the rate achieved), write ``provenance.json`` and return it as a
        table."""
        from initstudy.core import ensemble

        self.provenance["wall_time_s"] = round(time.perf_counter() - self._t0, 3)
        self.provenance["training_core"] = ensemble.WORK.as_dict()
        from initstudy.core import data

        seen = []  # the splits of every data set the run loaded (each once)
        for entry in data.LOADED:
            if entry not in seen:
                seen.append(entry)
        self.provenance["data"] = seen
        self.provenance["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        results.atomic_write_json(self.results_dir / "provenance.json", self.provenance)
        return provenance_table(self.provenance)

    def _show_header(self) -> None:
        if figures._in_notebook():
            from IPython.display import Markdown, display

            git = self.provenance["git"]
            commit = (git["commit"] or "unknown")[:10] + (" (uncommitted changes)" if git.get("dirty") else "")
            display(Markdown(
                f"*Run of `{self.spec.name}` at the **{self.profile}** profile on `{self.device}`, "
                f"seeds {self.seeds}, commit `{commit}`. Parameters and full provenance are at the end.*"
            ))


#: The class of the element around every interactive figure of the book: ``initstudy.book.ext``
#: serves plotly.js to the pages that have one.
INTERACTIVE_CLASS = "initstudy-interactive"


def interactive_html(fig, fig_id: str) -> str:
    """The HTML of an interactive (plotly) figure for the book: a ``<div>`` and the script that
    draws it, deterministic (the plot's element is ``<fig_id>-plot``: the book's figure holding
    it has the id ``fig_id``), without plotly.js (the page loads it from the book's
    ``_static``), inside an element of class :data:`INTERACTIVE_CLASS` whose ``data-figure``
    is ``fig_id``."""
    body = fig.to_html(full_html=False, include_plotlyjs=False, include_mathjax=False, div_id=f"{fig_id}-plot",
                      default_width="100%", default_height=f"{int(fig.layout.height or 500)}px",
                      config={"displaylogo": False, "responsive": True})
    # drawn while the page is still being read, the plot takes the width its column had then (the
    # sidebars come later): once the page is laid out, fit it to its column
    fit = (f'<script>window.addEventListener("load", function () {{ var gd = document.getElementById('
           f'"{fig_id}-plot"); if (window.Plotly && gd) {{ Plotly.Plots.resize(gd); }} }});</script>')
    return f'<div class="{INTERACTIVE_CLASS}" data-figure="{fig_id}">{body}{fit}</div>'


class _Interactive:
    """What the book shows under an interactive figure's id: its HTML (the HTML book) and the
    still image of the same data saved at ``png`` (the PDF: LaTeX cannot show HTML)."""

    def __init__(self, html: str, fig_id: str, png: Path):
        self.html, self.fig_id, self.png = html, fig_id, Path(png)

    def _repr_html_(self) -> str:
        return self.html

    def _repr_png_(self) -> bytes | None:
        return self.png.read_bytes() if self.png.is_file() else None

    def __repr__(self) -> str:
        return f"Interactive figure {self.fig_id} (in the HTML book)"


def provenance_table(prov: Mapping[str, Any]) -> pd.DataFrame:
    """A provenance record as a two-column table (nested keys flattened)."""
    rows = []
    for key, value in prov.items():
        if isinstance(value, Mapping):
            rows.extend({"what": f"{key}.{k}", "value": str(v)} for k, v in value.items())
        else:
            rows.append({"what": key, "value": str(value)})
    return pd.DataFrame(rows)
