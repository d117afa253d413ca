"""Numbers the papers report, kept in one place and always shown as the papers'.

Each entry says where it comes from and whether it was checked against the paper's text.
"Recalled" entries come from the study's anchors report (marked [M] there: remembered from the
paper, not read in it) or from someone else's reading of the paper; the book prints them with
that label until someone checks the PDF and flips ``checked``. A checked entry's note names the
text it was read in. Nothing here is ever used to compute a verdict.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from typing import Iterable

import pandas as pd

__all__ = ["GLOROT_SOURCE", "PaperNumber", "PAPER_NUMBERS", "table"]


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


#: Where Glorot & Bengio's numbers were read: a full-text transcription of the paper.
GLOROT_SOURCE = "read in a full-text transcription of the paper (github.com/gaotianpu/antiai, paper/Xavier_init.md)"

PAPER_NUMBERS: tuple[PaperNumber, ...] = (
    PaperNumber("glorot2010understanding", "Table 1", "MNIST test error, tanh, standard init, 5 hidden layers",
                1.76, "%", True, f"{GLOROT_SOURCE}; the table's settings (Sec. 2.3): 1000 units per layer, SGD, "
                "minibatch 10", "old-uniform-vanishes"),
    PaperNumber("glorot2010understanding", "Table 1", "MNIST test error, tanh, normalized (Xavier) init",
                1.64, "%", True, GLOROT_SOURCE, "old-uniform-vanishes"),
    PaperNumber("glorot2010understanding", "Table 1", "MNIST test error, sigmoid, standard init",
                2.21, "%", True, f"{GLOROT_SOURCE}; the table has no normalized-init row for the sigmoid",
                "xavier-unit-variance"),
    PaperNumber("glorot2010understanding", "Sec. 4.2.2", "mean singular value of the Jacobian, standard init",
                0.5, "", True, f"{GLOROT_SOURCE}; the section's experiments are on Shapeset-3x2; the text: "
                "\"it drops down to 0.5\"", "old-uniform-vanishes"),
    PaperNumber("glorot2010understanding", "Sec. 4.2.2", "mean singular value of the Jacobian, normalized init",
                0.8, "", True, f"{GLOROT_SOURCE}; the section's experiments are on Shapeset-3x2; the text: "
                "\"around 0.8\"", "old-uniform-vanishes"),
    PaperNumber("he2015delving", "Fig. 2", "22-layer ReLU model: both inits converge, He init starts earlier",
                None, "", False, "qualitative; read in notes on the paper, not in the paper itself", "xavier-fails-relu"),
    PaperNumber("he2015delving", "Fig. 3", "30-layer ReLU model: Xavier stalls completely, He init converges",
                None, "", False, "qualitative; read in notes on the paper, not in the paper itself", "xavier-fails-relu"),
    PaperNumber("he2016deep", "Table 6", "CIFAR-10 test error, ResNet-110 with BatchNorm (the Fixup paper's "
                "BN baseline, quoted from He et al. 2016)", 6.61, "%", False,
                "mean of 5 runs, not a median: Table 6 gives best (mean ± std), 6.43 (6.61 ± 0.16); the caption "
                "and the best run read in a transcription of the paper (github.com/gaotianpu/antiai, "
                "paper/cnn/resnet.md) whose Table 6 is an image, so the 6.61 itself is not checked; the Fixup "
                "paper quotes it as its BatchNorm baseline", "fixup-trains-without-bn"),
    PaperNumber("zhang2019fixup", "Table 1", "CIFAR-10 test error, ResNet-110 with Fixup (no normalisation)", 7.2,
                "%", False, "recalled, about", "fixup-trains-without-bn"),
    PaperNumber("zhang2019fixup", "Fig. 3", "first-epoch CIFAR-10 test accuracy of Fixup ResNets at depths below "
                "1,000 (not BN)", 50.0, "%", False,
                "about; a user's reading of the figure in the official Fixup repository's issue #10 "
                "(hongyi-zhang/Fixup), not the paper's text; it concerns Fixup, not BN; the same user got about "
                "40 % with Fixup ResNet-32 after one epoch", "fixup-trains-without-bn"),
    PaperNumber("mishkin2016all", "Table 2", "CIFAR-10 test accuracy, FitNet4 with LSUV", 94.16, "%", False,
                "recalled (94.2 read in a results aggregator)", "lsuv-1-5-iterations"),
    PaperNumber("mishkin2016all", "activation table", "sigmoid FitNet4 converges only with LSUV among "
                "LSUV, OrthoNorm, Xavier and MSRA inits", None, "", False, "recalled", "lsuv-1-5-iterations"),
    PaperNumber("mishkin2016all", "text", "BatchNorm slows training by about 30 % (the authors' remark)", 30.0, "%",
                False, "recalled via a blog post", "lsuv-cheap"),
)


def table(claims: str | Iterable[str] | None = None) -> pd.DataFrame:
    """The papers' numbers (for one claim, for several, e.g. a chapter's ``run.spec.claims``,
    or all) as a table labelled as the papers'."""
    wanted = {claims} if isinstance(claims, str) else None if claims is None else set(claims)
    rows = [asdict(n) for n in PAPER_NUMBERS if wanted is None or n.claim in wanted]
    df = pd.DataFrame(rows)
    if len(df):
        df["checked"] = df["checked"].map({True: "read in a source", False: "recalled, not checked against the paper"})
        # a qualitative statement has no number: said so, not shown as NaN or None
        df["value"] = [("no number (qualitative)" if v is None or v != v else v) for v in df["value"]]
    return df
