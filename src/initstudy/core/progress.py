"""Progress bars for interactive use only.

The library's sweeps show a text progress bar (tqdm) when a person runs them in Jupyter or a
terminal; a notebook executed by the book's runner (``INITSTUDY_RUNNER=1``) or with
``TQDM_DISABLE`` set shows none, so no progress bar ends up in the published chapters.
tqdm's own ``TQDM_DISABLE`` is not enough: an explicit ``disable=False`` overrides it.
"""

from __future__ import annotations

import os

__all__ = ["tqdm", "quiet"]


def quiet() -> bool:
    """Whether progress bars are off: under the book's runner or with ``TQDM_DISABLE`` set."""
    return os.environ.get("INITSTUDY_RUNNER") == "1" or os.environ.get("TQDM_DISABLE", "") not in ("", "0")


def tqdm(iterable=None, *args, disable: bool = False, **kwargs):
    """tqdm's text progress bar (not the widget one: no ipywidgets needed), off when
    :func:`quiet`."""
    from tqdm.std import tqdm as _tqdm

    return _tqdm(iterable, *args, disable=disable or quiet(), **kwargs)
