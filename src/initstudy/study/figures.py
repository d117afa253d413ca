"""One figure style for the whole book, and figure export under stable ids.

Every figure has an id ``fig-<topic>-<what>`` (the topic is usually a claim id). A notebook
publishes a figure with :func:`publish`: it is saved as PNG and SVG in the run's
``figures/`` folder, recorded in ``figures/manifest.json`` and glued (myst-nb) under its
id, so that the notebook's markdown shows it as a numbered figure::

    ```{glue:figure} fig-zero-symmetry-distance
    :name: fig-zero-symmetry-distance

    The caption, written once, here.
    ```

The figures index of the book reads the captions back from these directives
(:func:`captions_from_notebook`), so a caption is never written twice.
"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from typing import Any

from initstudy.study.results import atomic_write_bytes, atomic_write_json

__all__ = ["FIGURE_ID", "set_style", "publish", "finish_axes", "log_tick_label", "captions_from_notebook",
           "read_manifest"]

FIGURE_ID = re.compile(r"^fig-[a-z0-9]+(?:[-.][a-z0-9]+)+$")
_GLUE_FIGURE = re.compile(r"```\{glue:figure\}\s+(\S+)\n(.*?)```", re.S)


def set_style() -> None:
    """The book's one plotting style (seaborn's, with a colour-blind-safe palette)."""
    import matplotlib
    import seaborn as sns

    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    matplotlib.rcParams.update(
        {
            "figure.dpi": 100,
            "savefig.dpi": 150,
            "savefig.bbox": "tight",
            "figure.figsize": (8.0, 4.5),
            "svg.hashsalt": "initstudy",  # deterministic SVG ids
            "svg.fonttype": "none",
        }
    )


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython

        return get_ipython() is not None
    except ImportError:
        return False


#: The width (inches at 100 % scale) at which the book shows a figure: the content column of
#: the book's theme at a 1280 px window, measured in headless Chromium: 687 px, 7.15 in at
#: 96 px per inch. A wider figure (its saved, tight-cropped size) is shrunk to it.
PAGE_WIDTH_IN = 7.15
#: The smallest text size (points, as read on the page) that a figure may have.
MIN_TEXT_PT = 9.0


def readability_problems(fig: Any, page_width_in: float = PAGE_WIDTH_IN, min_pt: float = MIN_TEXT_PT) -> list[str]:
    """Text of ``fig`` that would be smaller than ``min_pt`` once the figure is shrunk to the
    page's width (tick labels, axis labels, titles, legends, annotations), and axes whose
    label is missing; one line per problem, empty when the figure reads at page width.

    >>> import matplotlib; matplotlib.use("Agg"); import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots(figsize=(6, 3)); _ = ax.plot([1, 2]); _ = ax.set(xlabel="step", ylabel="loss")
    >>> readability_problems(fig)
    []
    >>> _ = ax.set_xlabel("step", fontsize=6); readability_problems(fig)[0].startswith("text 'step'")
    True
    """
    if not hasattr(fig.canvas, "get_renderer"):  # a closed figure keeps a bare canvas: draw it with Agg
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    width_in = fig.get_tightbbox(renderer).width
    shrink = min(1.0, page_width_in / width_in) if width_in > 0 else 1.0
    problems = []
    for text in fig.findobj(lambda a: hasattr(a, "get_fontsize") and hasattr(a, "get_text")):
        if not text.get_visible() or not str(text.get_text()).strip():
            continue
        shown = float(text.get_fontsize()) * shrink
        if shown < min_pt - 1e-6:
            problems.append(f"text {str(text.get_text())[:30]!r} is {shown:.1f} pt at page width "
                            f"(font {float(text.get_fontsize()):.1f} pt, figure {width_in:.1f} in wide)")
    axes = [ax for ax in fig.get_axes() if ax.get_visible() and ax.has_data()]

    def labelled(ticks) -> bool:
        return any(t.get_visible() and t.get_text() for t in ticks)

    for ax in axes:  # a facet may rely on its row's (y) or column's (x) label
        box = ax.get_position()
        same_row = [a for a in axes if abs(a.get_position().y0 - box.y0) < 1e-3]
        same_col = [a for a in axes if abs(a.get_position().x0 - box.x0) < 1e-3]
        title = ax.get_title() or "untitled"
        if labelled(ax.get_xticklabels()) and not any(a.get_xlabel().strip() for a in same_col):
            problems.append(f"axes {title!r} has x tick labels but no x label in its column")
        if labelled(ax.get_yticklabels()) and not any(a.get_ylabel().strip() for a in same_row):
            problems.append(f"axes {title!r} has y tick labels but no y label in its row")
    return problems


def log_tick_label(value: float, _pos=None) -> str:
    """A log axis's tick label at full text size: powers of ten from 0.001 to 1000 written out,
    others as ``1e-8``, never a superscript (matplotlib's 10^n exponents are set at about 70 %
    of the tick size: 7.7 pt on the page for 11-pt ticks, below the book's 9-pt minimum).

    >>> [log_tick_label(v) for v in (1e-8, 0.001, 0.5, 1.0, 1000.0, 1e141)]
    ['1e-8', '0.001', '0.5', '1', '1000', '1e141']
    """
    import math

    if value <= 0 or not math.isfinite(value):
        return ""
    exponent = math.log10(value)
    if abs(exponent - round(exponent)) < 1e-9 and abs(round(exponent)) > 3:
        return f"1e{round(exponent)}"
    if 1e-3 <= value < 1e4:
        return f"{value:g}"
    mantissa, exp = f"{value:.1e}".split("e")
    return f"{float(mantissa):g}e{int(exp)}"


def finish_axes(fig: Any) -> None:
    """The book's conventions applied to every axes of ``fig`` before it is saved: log axes
    labelled at full size (:func:`log_tick_label`; minor ticks unlabelled), and accuracy axes
    (a label with "accuracy", data within [0, 1], not a difference in points) in per cent,
    as the text reports accuracies."""
    from matplotlib.ticker import FuncFormatter, NullFormatter, PercentFormatter

    axes = [ax for ax in fig.get_axes() if ax.get_visible()]
    for ax in axes:
        for axis, label_of, lim in ((ax.xaxis, lambda a: a.get_xlabel(), ax.get_xlim),
                                    (ax.yaxis, lambda a: a.get_ylabel(), ax.get_ylim)):
            if axis.get_scale() == "log":
                axis.set_major_formatter(FuncFormatter(log_tick_label))
                axis.set_minor_formatter(NullFormatter())
                continue
            pos = ax.get_position()
            same = [a for a in axes if (abs(a.get_position().y0 - pos.y0) < 1e-3 if axis is ax.yaxis
                                        else abs(a.get_position().x0 - pos.x0) < 1e-3)]
            # an unlabelled facet reads its row's (y) or column's (x) label
            label = (label_of(ax) or " ".join(label_of(a) for a in same)).lower()
            low, high = lim()
            if ("accuracy" in label and "point" not in label and "minus" not in label
                    and -0.05 <= min(low, high) and max(low, high) <= 1.05):
                axis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))


def read_manifest(figures_dir: str | os.PathLike) -> list[dict]:
    path = Path(figures_dir) / "manifest.json"
    if not path.is_file():
        return []
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def publish(
    fig: Any,
    fig_id: str,
    figures_dir: str | os.PathLike,
    *,
    params: dict | None = None,
    claims: tuple[str, ...] = (),
    display: bool | None = None,
    data: Any = None,
    seeds: list[int] | None = None,
    glue_value: Any = None,
) -> dict:
    """Save ``fig`` as ``<fig_id>.png`` and ``.svg`` in ``figures_dir``, record it in the
    manifest and glue it under ``fig_id`` for the book.

    ``display``: also show it inline (default: only when not run by the book's runner, so
    Jupyter and Colab users see it where the book shows the numbered version instead).
    ``data``: the plotted data (a DataFrame), saved as ``<fig_id>.csv``; ``seeds``: the
    seeds the figure shows, recorded in the manifest. ``glue_value``: what the book shows
    under ``fig_id`` instead of ``fig`` (an interactive version of it, see
    :meth:`initstudy.study.run.Run.interactive`); ``fig`` is still what the files hold.
    """
    if not FIGURE_ID.match(fig_id):
        raise ValueError(f"figure id {fig_id!r} must look like 'fig-<topic>-<what>' (lower case, digits, '-')")
    finish_axes(fig)
    problems = readability_problems(fig)
    if problems:
        raise ValueError(f"figure {fig_id} does not read at page width ({PAGE_WIDTH_IN:g} in, text >= "
                         f"{MIN_TEXT_PT:g} pt): " + "; ".join(problems[:6]))
    figures_dir = Path(figures_dir)
    entry = {"id": fig_id, "claims": list(claims), "params": params or {}, "files": {}}
    if seeds is not None:
        entry["seeds"] = [int(s) for s in seeds]
    if data is not None:
        from initstudy.study.results import atomic_write_text

        atomic_write_text(figures_dir / f"{fig_id}.csv", data.to_csv(index=False, lineterminator="\n"))
        entry["data"] = f"{fig_id}.csv"
    for fmt in ("png", "svg"):
        buf = io.BytesIO()
        metadata = {"Date": None} if fmt == "svg" else {"Software": None}
        fig.savefig(buf, format=fmt, metadata=metadata)
        atomic_write_bytes(figures_dir / f"{fig_id}.{fmt}", buf.getvalue())
        entry["files"][fmt] = f"{fig_id}.{fmt}"
    manifest = [e for e in read_manifest(figures_dir) if e["id"] != fig_id] + [entry]
    atomic_write_json(figures_dir / "manifest.json", manifest)
    if _in_notebook():
        from myst_nb import glue

        glue(fig_id, fig if glue_value is None else glue_value, display=False)
        if display is None:
            display = os.environ.get("INITSTUDY_RUNNER") != "1"
        if display:
            from IPython.display import display as show

            show(fig)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return entry


def captions_from_notebook(path: str | os.PathLike) -> dict[str, str]:
    """``{figure id: caption}`` from the ``{glue:figure}`` directives of a notebook's
    markdown cells (the caption is the directive's body after its options)."""
    with open(path, encoding="utf-8") as f:
        nb = json.load(f)
    found: dict[str, str] = {}
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "markdown":
            continue
        source = "".join(cell.get("source", []))
        for key, body in _GLUE_FIGURE.findall(source):
            lines = [ln for ln in body.splitlines() if not ln.startswith(":")]
            found[key] = " ".join(ln.strip() for ln in lines if ln.strip())
    return found
