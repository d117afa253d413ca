"""The one home of every choice the study makes from results: a learning rate from a grid, the
best init or weight scale, a checkpoint. Every choice is made on the **validation** split;
the test split, read once per trained network at its end, only reports the choice's outcome.

:func:`choose` refuses to choose by a test quantity, and the tests run every chapter a second
time with the test labels shuffled (``INITSTUDY_SHUFFLE_TEST_LABELS=1``,
:data:`initstudy.core.data.SHUFFLE_TEST_ENV`): every choice must come out the same while the test
numbers change.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd

__all__ = ["choose", "TestSetChoice"]


class TestSetChoice(ValueError):
    """A choice asked to be made on a test-set quantity."""


def choose(table: pd.DataFrame, within: Sequence[str], over: str, by: str = "val_accuracy",
           largest: bool = True) -> pd.DataFrame:
    """For each group of ``table`` by the columns ``within`` (e.g. init, depth, seed), the row
    whose ``over`` value (e.g. the learning rate) has the best ``by`` (a validation quantity,
    named with "val": ``val_accuracy``, ``mean_val_accuracy``; the largest, or the smallest
    with ``largest=False``). Ties go to the smallest ``over``
    value, so the same table always gives the same choice. Returns the chosen rows, one per
    group, with every column of ``table`` (the test accuracy there is the choice's outcome).

    >>> t = pd.DataFrame({"seed": [0, 0, 1, 1], "lr": [0.1, 0.01, 0.1, 0.01],
    ...                   "val_accuracy": [0.5, 0.7, 0.6, 0.6], "accuracy": [0.9, 0.1, 0.2, 0.8]})
    >>> choose(t, ["seed"], "lr")[["seed", "lr", "accuracy"]].to_dict("records")
    [{'seed': 0, 'lr': 0.01, 'accuracy': 0.1}, {'seed': 1, 'lr': 0.01, 'accuracy': 0.8}]
    >>> try:
    ...     choose(t, ["seed"], "lr", by="accuracy")
    ... except TestSetChoice as err:
    ...     print(err)
    choose: 'accuracy' is not a validation quantity; choices are made on validation (a column named with 'val', as val_accuracy)
    """
    if "val" not in by.split("_"):
        raise TestSetChoice(f"choose: {by!r} is not a validation quantity; choices are made on validation "
                            f"(a column named with 'val', as val_accuracy)")
    within = list(within)
    ordered = table.sort_values(within + [over], kind="stable").reset_index(drop=True)
    key = ordered[by] if largest else -ordered[by]
    picked = key.groupby([ordered[c] for c in within], sort=True).idxmax()
    return ordered.loc[picked.to_numpy()].reset_index(drop=True)
