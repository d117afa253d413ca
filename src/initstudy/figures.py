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

from .results import atomic_write_bytes, atomic_write_json

__all__ = ["FIGURE_ID", "set_style", "publish", "captions_from_notebook", "read_manifest"]

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
) -> dict:
    """Save ``fig`` as ``<fig_id>.png`` and ``.svg`` in ``figures_dir``, record it in the
    manifest and glue it under ``fig_id`` for the book.

    ``display``: also show it inline (default: only when not run by the book's runner, so
    Jupyter and Colab users see it where the book shows the numbered version instead).
    """
    if not FIGURE_ID.match(fig_id):
        raise ValueError(f"figure id {fig_id!r} must look like 'fig-<topic>-<what>' (lower case, digits, '-')")
    figures_dir = Path(figures_dir)
    entry = {"id": fig_id, "claims": list(claims), "params": params or {}, "files": {}}
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

        glue(fig_id, fig, display=False)
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
