"""Numbers the papers report, kept in one place and always shown as the papers'.

Each entry says where it comes from and whether it was checked against the paper's text.
"Recalled" entries come from the study's anchors report (marked [M] there: remembered from the
paper, not read in it); the book prints them with that label until someone checks the PDF and
flips ``checked``. Nothing here is ever used to compute a verdict.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd

__all__ = ["PaperNumber", "PAPER_NUMBERS", "table"]


@dataclass(frozen=True)
class PaperNumber:
    paper: str  # bibtex key
    where: str  # table or figure
    quantity: str
    value: float | None
    unit: str
    checked: bool
    note: str = ""
    claim: str | None = None


PAPER_NUMBERS: tuple[PaperNumber, ...] = (
    PaperNumber("glorot2010understanding", "Table 1", "MNIST test error, tanh, standard init, 5 hidden layers",
                1.76, "%", False, "recalled; the table's settings: 1000 units per layer, SGD, minibatch 10",
                "old-uniform-vanishes"),
    PaperNumber("glorot2010understanding", "Table 1", "MNIST test error, tanh, normalized (Xavier) init",
                1.64, "%", False, "recalled", "old-uniform-vanishes"),
    PaperNumber("glorot2010understanding", "Table 1", "MNIST test error, sigmoid, standard init",
                2.21, "%", False, "recalled; the table has no normalized-init row for the sigmoid",
                "xavier-unit-variance"),
    PaperNumber("glorot2010understanding", "Sec. 4.2.2", "mean singular value of the Jacobian, standard init",
                0.5, "", False, "recalled", "old-uniform-vanishes"),
    PaperNumber("glorot2010understanding", "Sec. 4.2.2", "mean singular value of the Jacobian, normalized init",
                0.8, "", False, "recalled", "old-uniform-vanishes"),
    PaperNumber("he2015delving", "Fig. 2", "22-layer ReLU model: both inits converge, He init starts earlier",
                None, "", True, "qualitative; read in notes on the paper", "xavier-fails-relu"),
    PaperNumber("he2015delving", "Fig. 3", "30-layer ReLU model: Xavier stalls completely, He init converges",
                None, "", True, "qualitative; read in notes on the paper", "xavier-fails-relu"),
    PaperNumber("zhang2019fixup", "Table 1", "CIFAR-10 test error, ResNet-110 with BatchNorm", 6.61, "%", False,
                "recalled; mean/median of 5 runs", "fixup-trains-without-bn"),
    PaperNumber("zhang2019fixup", "Table 1", "CIFAR-10 test error, ResNet-110 with Fixup (no normalisation)", 7.2,
                "%", False, "recalled, about", "fixup-trains-without-bn"),
    PaperNumber("zhang2019fixup", "Fig. 3", "first-epoch CIFAR-10 test accuracy at depths below 1,000, BN and Fixup",
                50.0, "%", True, "about; as quoted in the authors' repository, issue #10, where a reproducer got "
                "about 40 % (ResNet-32)", "fixup-trains-without-bn"),
    PaperNumber("mishkin2016all", "Table 2", "CIFAR-10 test accuracy, FitNet4 with LSUV", 94.16, "%", False,
                "recalled (94.2 read in a results aggregator)", "lsuv-1-5-iterations"),
    PaperNumber("mishkin2016all", "activation table", "sigmoid FitNet4 converges only with LSUV among "
                "LSUV, OrthoNorm, Xavier and MSRA inits", None, "", False, "recalled", "lsuv-1-5-iterations"),
    PaperNumber("mishkin2016all", "text", "BatchNorm slows training by about 30 % (the authors' remark)", 30.0, "%",
                False, "recalled via a blog post", "lsuv-cheap"),
)


def table(claim: str | None = None) -> pd.DataFrame:
    """The papers' numbers (for one claim, or all) as a table labelled as the papers'."""
    rows = [asdict(n) for n in PAPER_NUMBERS if claim is None or n.claim == claim]
    df = pd.DataFrame(rows)
    if len(df):
        df["checked"] = df["checked"].map({True: "read in a source", False: "recalled, not checked against the paper"})
    return df
