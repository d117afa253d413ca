"""Numbers in words for the book's sentences and figure titles: a count with its noun in the
right number, and a list of values joined as a reader would write it."""

from __future__ import annotations

from typing import Iterable

__all__ = ["number", "plural", "joined", "in_percent"]


def number(x: float) -> str:
    """``x`` as a reader writes it: whole numbers without a decimal point, others to 3 digits.

    >>> number(2), number(2.0), number(0.5), number(1 / 3)
    ('2', '2', '0.5', '0.333')
    """
    return f"{int(x)}" if float(x).is_integer() else f"{x:.3g}"


def plural(n: float, noun: str, many: str | None = None) -> str:
    """``n`` and ``noun``, the noun plural unless ``n`` is exactly 1 (``many``: an irregular plural).

    >>> plural(1, "run"), plural(0, "run"), plural(2.0, "epoch"), plural(0.5, "epoch")
    ('1 run', '0 runs', '2 epochs', '0.5 epochs')
    >>> plural(3, "hidden layer")
    '3 hidden layers'
    """
    return f"{number(n)} {noun if float(n) == 1 else (many or noun + 's')}"


def joined(values: Iterable, noun: str | None = None, conj: str = "and") -> str:
    """Values joined with commas and ``conj`` before the last, then ``noun`` (plural unless there
    is a single value equal to 1).

    >>> joined([1, 2], "hidden layer", "or"), joined([1], "hidden layer"), joined([8, 20, 56])
    ('1 or 2 hidden layers', '1 hidden layer', '8, 20 and 56')
    """
    vals = [number(v) if isinstance(v, (int, float)) else str(v) for v in values]
    text = vals[0] if len(vals) == 1 else f"{', '.join(vals[:-1])} {conj} {vals[-1]}"
    if noun is None:
        return text
    single = len(vals) == 1 and vals[0] == "1"
    return f"{text} {noun if single else noun + 's'}"


def in_percent(frame, columns, digits: int = 1):
    """A copy of ``frame`` for display with the fractions in ``columns`` (accuracies, shares)
    shown in per cent, as the text gives them: multiplied by 100, rounded to ``digits`` and
    renamed "<column> (%)". Missing columns are skipped; the saved tables keep fractions.

    Rounded as the text's f-strings round (the decimal nearest to the binary value), not
    with NumPy's half-to-even on a scaled value, so a table and the sentence under it agree:
    0.6545 is 65.45000000000000284 % in binary, 65.5 in both.

    >>> import pandas as pd
    >>> in_percent(pd.DataFrame({"mean": [0.8123, 0.6545], "n": [3, 3]}), ["mean"]).to_dict("records")
    [{'mean (%)': 81.2, 'n': 3}, {'mean (%)': 65.5, 'n': 3}]
    >>> f"{100 * 0.6545:.1f}"
    '65.5'
    """
    cols = [c for c in columns if c in frame.columns]
    out = rounded(frame.assign(**{c: 100 * frame[c].astype(float) for c in cols}), cols, digits)
    return out.rename(columns={c: f"{c} (%)" for c in cols})


def rounded(frame, columns, digits: int = 1):
    """A copy of ``frame`` for display with ``columns`` rounded to ``digits`` as the text's
    f-strings round them (see :func:`in_percent`); missing columns are skipped.

    >>> import pandas as pd
    >>> rounded(pd.DataFrame({"gap": [-25.45000000000001, 1.85094]}), ["gap"])["gap"].tolist()
    [-25.5, 1.9]
    """
    out = frame.copy()
    for c in [c for c in columns if c in frame.columns]:
        out[c] = [v if v != v else float(f"{v:.{digits}f}") for v in out[c].astype(float)]
    return out

