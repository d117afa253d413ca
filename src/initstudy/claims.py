"""The claims ledger, and the one function that turns measurements into a verdict.

Every claim of the article has an id (stable: used in figure ids, tests and the book), a
paraphrase, the section of the article it comes from, the metric that settles it and a
criterion written down here *before* any notebook measured it. A notebook computes the
metrics; :func:`judge` compares them with the criterion; nobody types a verdict.

A criterion is a list of checks, each a comparison of one metric with a threshold (or an
equivalence band, for claims that say "negligible" or "about"). A metric is measured once
per seed; the check uses the mean and its two-sided 95 % t confidence interval:

- ``<= t``: holds if the interval lies at or below t, fails if it lies above t;
- ``>= t``: holds if the interval lies at or above t, fails if it lies below t;
- ``within t +- m``: holds if the interval lies inside [t - m, t + m] (equivalence), fails
  if it lies wholly outside;
- anything else (the interval straddles the line, or fewer seeds than the check needs) is
  *unsettled*. A NaN value counts as not measured (it lowers the number of seeds).

The verdict: any check unsettled -> "inconclusive at this profile"; all hold ->
"reproduced"; none hold -> "not reproduced"; some hold -> "partly reproduced".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, asdict
from typing import Mapping, Sequence

__all__ = [
    "REPRODUCED",
    "PARTLY",
    "NOT_REPRODUCED",
    "INCONCLUSIVE",
    "NOT_MEASURED",
    "VERDICTS",
    "Check",
    "Criterion",
    "Claim",
    "CheckResult",
    "Judgement",
    "LEDGER",
    "judge",
    "reading",
    "claim",
]

REPRODUCED = "reproduced"
PARTLY = "partly reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive at this profile"
NOT_MEASURED = "not measured yet"
VERDICTS = (REPRODUCED, PARTLY, NOT_REPRODUCED, INCONCLUSIVE)

HOLDS, FAILS, UNSETTLED = "holds", "fails", "unsettled"


@dataclass(frozen=True)
class Check:
    """One comparison of a metric (measured once per seed) with a threshold or a band."""

    metric: str
    op: str  # "<=", ">=" or "within"
    threshold: float
    description: str
    margin: float = 0.0  # half-width of the band for "within"
    min_seeds: int = 3
    unit: str = ""
    #: A check that must hold for this one to be settled at all (e.g. "the random-init
    #: control learned something within the budget"); if it does not, this check is
    #: unsettled and the verdict inconclusive at this profile.
    requires: "Check | None" = None

    def __post_init__(self):
        if self.op not in ("<=", ">=", "within"):
            raise ValueError(f"op must be '<=', '>=' or 'within', got {self.op!r}")
        if self.op == "within" and self.margin <= 0:
            raise ValueError("a 'within' check needs a positive margin")

    def text(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        if self.op == "within":
            rule = f"within {self.threshold:g} +- {self.margin:g}{unit}"
        else:
            rule = f"{self.op} {self.threshold:g}{unit}"
        text = f"{self.metric} {rule} (95 % CI over >= {self.min_seeds} seeds): {self.description}"
        if self.requires is not None:
            text += f" [settled only if {self.requires.text()}]"
        return text


@dataclass(frozen=True)
class Criterion:
    checks: tuple[Check, ...]
    confidence: float = 0.95

    def text(self) -> str:
        return "; ".join(c.text() for c in self.checks)


@dataclass(frozen=True)
class Claim:
    id: str
    statement: str  # paraphrase of the article, never a quotation
    article_section: str
    metric: str  # what is measured, in words
    criterion: Criterion
    notebook: str | None = None  # the notebook that measures it
    figures: tuple[str, ...] = ()


@dataclass
class CheckResult:
    metric: str
    status: str
    n: int
    mean: float
    low: float
    high: float
    rule: str


@dataclass
class Judgement:
    claim_id: str
    verdict: str
    checks: list[CheckResult] = field(default_factory=list)

    def explanation(self) -> str:
        parts = [
            f"{c.metric} = {_fmt(c.mean)} [{_fmt(c.low)}, {_fmt(c.high)}], n={c.n}: {c.status} ({c.rule})"
            for c in self.checks
        ]
        return "; ".join(parts)

    def as_dict(self) -> dict:
        return {"claim_id": self.claim_id, "verdict": self.verdict, "checks": [asdict(c) for c in self.checks]}


def _fmt(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "nan"
    return f"{x:.4g}"


def _interval(values: Sequence[float], confidence: float) -> tuple[int, float, float, float]:
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    n = len(vals)
    if n == 0:
        return 0, float("nan"), float("nan"), float("nan")
    mean = sum(vals) / n
    if n == 1:
        return 1, mean, mean, mean
    from scipy import stats

    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1))
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n)
    return n, mean, mean - half, mean + half


def _check(check: Check, measurements: Mapping[str, Sequence[float]], confidence: float) -> CheckResult:
    n, mean, low, high = _interval(measurements.get(check.metric, ()), confidence)
    rule = check.text().split(":")[0]
    if check.requires is not None and _check(check.requires, measurements, confidence).status != HOLDS:
        status = UNSETTLED
        rule += f" [precondition {check.requires.text().split(':')[0]} not met]"
    elif n < check.min_seeds:
        status = UNSETTLED
    elif check.op == "<=":
        status = HOLDS if high <= check.threshold else FAILS if low > check.threshold else UNSETTLED
    elif check.op == ">=":
        status = HOLDS if low >= check.threshold else FAILS if high < check.threshold else UNSETTLED
    else:
        lo_band, hi_band = check.threshold - check.margin, check.threshold + check.margin
        if lo_band <= low and high <= hi_band:
            status = HOLDS
        elif high < lo_band or low > hi_band:
            status = FAILS
        else:
            status = UNSETTLED
    return CheckResult(check.metric, status, n, mean, low, high, rule)


def judge(claim_or_id: "Claim | str", measurements: Mapping[str, Sequence[float]]) -> Judgement:
    """Turn per-seed measurements into a verdict by the claim's written criterion.

    ``measurements`` maps each check's metric name to its per-seed values. A missing
    metric makes its check unsettled (and so the verdict inconclusive).

    >>> c = Claim("x", "s", "sec", "m", Criterion((Check("a", ">=", 1.0, "a is large", min_seeds=2),)))
    >>> judge(c, {"a": [2.0, 2.1, 1.9]}).verdict
    'reproduced'
    """
    c = LEDGER[claim_or_id] if isinstance(claim_or_id, str) else claim_or_id
    results = [_check(chk, measurements, c.criterion.confidence) for chk in c.criterion.checks]
    statuses = [r.status for r in results]
    if UNSETTLED in statuses:
        verdict = INCONCLUSIVE
    elif all(s == HOLDS for s in statuses):
        verdict = REPRODUCED
    elif all(s == FAILS for s in statuses):
        verdict = NOT_REPRODUCED
    else:
        verdict = PARTLY
    return Judgement(c.id, verdict, results)


def reading(judgement: Judgement) -> str:
    """A plain-language account of a verdict, built from its checks: which parts of the
    claim held, which did not, and which could not be settled (always consistent with the
    verdict, whatever the measurements were)."""
    c = LEDGER.get(judgement.claim_id)
    descriptions = {chk.metric: chk.description for chk in c.criterion.checks} if c else {}
    groups: dict[str, list[str]] = {HOLDS: [], FAILS: [], UNSETTLED: []}
    for r in judgement.checks:
        what = descriptions.get(r.metric, r.metric)
        groups[r.status].append(f"{what} ({r.metric} = {_fmt(r.mean)}, 95 % CI [{_fmt(r.low)}, {_fmt(r.high)}])")
    parts = []
    if groups[HOLDS]:
        parts.append("Held: " + "; ".join(groups[HOLDS]) + ".")
    if groups[FAILS]:
        parts.append("Did not hold: " + "; ".join(groups[FAILS]) + ".")
    if groups[UNSETTLED]:
        parts.append("Not settled at this profile: " + "; ".join(groups[UNSETTLED]) + ".")
    return " ".join(parts)


def claim(claim_id: str) -> Claim:
    """The ledger entry of ``claim_id`` (a clear error for an unknown id)."""
    try:
        return LEDGER[claim_id]
    except KeyError:
        raise KeyError(f"unknown claim id {claim_id!r}; known: {', '.join(LEDGER)}") from None


# ----------------------------------------------------------------------------- the ledger
# Written before the notebooks that measure these metrics. Thresholds are in the units
# named; "points" are percentage points of test accuracy.

_LEDGER: list[Claim] = [
    Claim(
        "zero-symmetry",
        "If every weight starts at zero, all hidden units of a layer compute the same output and "
        "receive the same update, so they stay identical for ever and the network cannot learn: "
        "zero initialisation does not work.",
        "Zero initialisation",
        "From all-zero weights and biases, trained with plain SGD (sigmoid, tanh and ReLU hidden "
        "units, 1 and 2 hidden layers): the largest relative distance between two units' incoming "
        "weight rows at any recorded step, the largest numerical rank of a hidden weight matrix, "
        "and the test-accuracy gap to the same network from random (Kaiming) init.",
        Criterion(
            (
                Check("zero_units_rel_distance", "<=", 1e-4,
                      "units stay identical up to float32 rounding (max over activations, depths, layers, steps)"),
                Check("zero_max_rank", "<=", 1.0,
                      "every hidden weight matrix has rank <= 1 throughout training"),
                Check("zero_accuracy_gap", ">=", 10.0,
                      "random init beats zero init by at least 10 points (worst case over activations and depths)",
                      unit="points",
                      requires=Check("control_accuracy", ">=", 0.5,
                                     "the random-init control reaches 50 % test accuracy in the budget "
                                     "(worst case over activations and depths)")),
            )
        ),
        notebook="zero_init",
        figures=("fig-zero-symmetry-distance", "fig-zero-symmetry-accuracy"),
    ),
    Claim(
        "zero-random-bias",
        "With zero weights but random non-zero biases, training makes the weights non-zero, yet "
        "the hidden units still stay identical (symmetric).",
        "Zero initialisation",
        "From zero weights and N(0, 1) biases, trained as for zero-symmetry: the norm of the "
        "first hidden layer's weights at the end (log10), and the largest relative distance between two "
        "units' incoming weight rows at the end (identical units have distance 0; the rank is "
        "reported beside it to show whether rows are parallel).",
        Criterion(
            (
                Check("zrb_log10_weight_norm", ">=", -3.0,
                      "the hidden weights become non-zero: log10 of the smallest final norm of the first "
                      "hidden layer over activations and depths is at least -3 (judged on a log scale: "
                      "these norms spread over orders of magnitude between seeds)"),
                Check("zrb_units_rel_distance", "<=", 1e-4,
                      "the units' weight rows stay identical up to float32 rounding (largest over activations and depths)"),
            )
        ),
        notebook="zero_init",
        figures=("fig-zero-random-bias-rank",),
    ),
    Claim(
        "sigmoid-saturation",
        "The sigmoid is flat beyond about +-6, so weights initialised too large saturate it and "
        "weights too small lose the signal.",
        "Random initialisation",
        "Where the sigmoid's derivative falls to 1 % of its peak; at init of a deep sigmoid MLP on "
        "real images, every weight N(0, s^2): the fraction of saturated units (mean over hidden "
        "layers) at s = 1, and at s = 0.01 the signal left at the last hidden layer (std of the "
        "activations across examples) over that at the first.",
        Criterion(
            (
                Check("sigmoid_flat_z", "within", 6.0, "the flat region starts near |z| = 6", margin=0.5, min_seeds=1),
                Check("large_init_saturated_fraction", ">=", 0.5, "N(0, 1) weights saturate most units"),
                Check("small_init_signal_ratio", "<=", 0.01,
                      "N(0, 0.01^2) weights lose the input signal with depth (a hundredfold or more)"),
            )
        ),
        figures=("fig-sigmoid-saturation-sweep",),
        notebook="signal_depth",
    ),
    Claim(
        "depth-explode-vanish",
        "Through 100 layers, a per-layer gain slightly above 1 makes activations explode and one "
        "slightly below 1 makes them vanish.",
        "Xavier initialisation",
        "Std of the output of a 100-layer linear stack (width 512, independent layers) relative "
        "to its input, for per-layer gains 1.05 and 0.95 times a variance-preserving init.",
        Criterion(
            (
                Check("std_ratio_gain_1.05", ">=", 10.0, "gain 1.05 grows the std at least tenfold by layer 100",
                      requires=Check("stack_depth", ">=", 100.0, "the stack has at least 100 layers", min_seeds=1)),
                Check("std_ratio_gain_0.95", "<=", 0.1, "gain 0.95 shrinks the std at least tenfold by layer 100",
                      requires=Check("stack_depth", ">=", 100.0, "the stack has at least 100 layers", min_seeds=1)),
            )
        ),
        figures=("fig-depth-explode-vanish-std", "fig-depth-explode-vanish-overflow"),
        notebook="signal_depth",
    ),
    Claim(
        "old-uniform-vanishes",
        "The pre-2010 practice, uniform weights in [-1, 1] divided by sqrt(fan-in), makes "
        "gradients vanish and training slow.",
        "Xavier initialisation",
        "At init of a 5-hidden-layer tanh MLP: std of dL/dz at the first hidden layer over that "
        "at the last; after the profile's budget, the test-accuracy gap Xavier minus old-uniform "
        "for the deepest tanh MLP of the profile.",
        Criterion(
            (
                Check("old_uniform_grad_ratio", "<=", 0.5, "back-propagated gradients shrink towards the input"),
                Check("old_uniform_accuracy_gap", ">=", 1.0, "Xavier trains faster within the same budget",
                      unit="points",
                      requires=Check("xavier_deep_tanh_accuracy", ">=", 0.5,
                                     "the Xavier-initialised deep tanh MLP learned within the budget")),
            )
        ),
        notebook="signal_depth",
        figures=("fig-old-uniform-vanishes-gradients", "fig-old-uniform-vanishes-training"),
    ),
    Claim(
        "xavier-unit-variance",
        "Xavier init keeps activations near mean 0 and std 1 through deep networks and works "
        "well for tanh and sigmoid.",
        "Xavier initialisation",
        "Std at layer 100 over the input's, for a linear and a tanh stack (independent square "
        "layers, Xavier normal); test accuracy of the deepest tanh and sigmoid MLPs of the profile "
        "under Xavier minus that of a 1-hidden-layer MLP with the same activation, same budget.",
        Criterion(
            (
                Check("xavier_linear_std_100", "within", 1.0, "linear stack keeps std near 1", margin=0.5,
                      requires=Check("stack_depth", ">=", 100.0, "the stack has at least 100 layers", min_seeds=1)),
                Check("xavier_tanh_std_100", "within", 1.0, "tanh stack keeps std near 1", margin=0.5,
                      requires=Check("stack_depth", ">=", 100.0, "the stack has at least 100 layers", min_seeds=1)),
                Check("xavier_deep_tanh_vs_shallow", ">=", -5.0,
                      "a deep tanh MLP trains within 5 points of a shallow one", unit="points",
                      requires=Check("shallow_tanh_accuracy", ">=", 0.5, "the shallow tanh MLP learned")),
                Check("xavier_deep_sigmoid_vs_shallow", ">=", -5.0,
                      "a deep sigmoid MLP trains within 5 points of a shallow one", unit="points",
                      requires=Check("shallow_sigmoid_accuracy", ">=", 0.5, "the shallow sigmoid MLP learned")),
            )
        ),
        figures=(
            "fig-xavier-unit-variance-std",
            "fig-xavier-unit-variance-shared",
            "fig-old-uniform-vanishes-training",
        ),
        notebook="signal_depth",
    ),
    Claim(
        "relu-halves-variance",
        "Passing a standard normal through ReLU roughly halves its variance and raises its mean.",
        "Kaiming initialisation",
        "Mean, variance and second moment of ReLU(z), z ~ N(0, 1), from 10^6 samples per seed "
        "(exact: 1/sqrt(2 pi) = 0.399, 1/2 - 1/(2 pi) = 0.341 and 1/2).",
        Criterion(
            (
                Check("relu_second_moment", "within", 0.5, "the second moment halves", margin=0.02),
                Check("relu_variance", "within", 0.5, "the variance halves", margin=0.02),
                Check("relu_mean", ">=", 0.3, "the mean rises from 0"),
            )
        ),
        figures=("fig-relu-halves-variance-moments",),
        notebook="xavier_kaiming",
    ),
    Claim(
        "xavier-fails-relu",
        "Xavier init does not suit deep ReLU networks; Kaiming init (Xavier times sqrt 2) fixes it.",
        "Kaiming initialisation",
        "Root mean square (RMS) of the activations at layer 30 over the input's, for a ReLU stack "
        "(equal widths) under Xavier and Kaiming (the RMS, not the std: He et al.'s derivation "
        "preserves the second moment, and a ReLU output's std is at most 0.83 of its RMS); best final test accuracy over the same learning-rate grid (SGD with "
        "momentum 0.9) of a 30-layer ReLU network, no BatchNorm (He et al. 2015, Fig. 3 analogue).",
        Criterion(
            (
                Check("relu_xavier_rms_ratio_30", "<=", 0.01, "Xavier's signal vanishes by layer 30",
                      requires=Check("stack_depth", ">=", 30.0, "the stack has at least 30 layers", min_seeds=1)),
                Check("relu_kaiming_rms_ratio_30", "within", 1.0, "Kaiming keeps the RMS", margin=0.5,
                      requires=Check("stack_depth", ">=", 30.0, "the stack has at least 30 layers", min_seeds=1)),
                Check("he_fig3_xavier_best_accuracy", "<=", 0.15, "Xavier stalls near chance at every lr",
                      requires=Check("he_depth", ">=", 30.0, "the network has at least 30 layers", min_seeds=1)),
                Check("he_fig3_kaiming_best_accuracy", ">=", 0.5, "Kaiming trains",
                      requires=Check("he_depth", ">=", 30.0, "the network has at least 30 layers", min_seeds=1)),
            )
        ),
        figures=("fig-xavier-fails-relu-std", "fig-xavier-fails-relu-training"),
        notebook="xavier_kaiming",
    ),
    Claim(
        "resnet-variance-doubles",
        "Without BatchNorm, a Kaiming-initialised ResNet doubles the variance of its output at "
        "each residual block, so it explodes exponentially with depth.",
        "Fixup initialisation",
        "Geometric-mean per-block growth of the output's second moment at init (the growth that "
        "compounds with depth), over hundreds of blocks, for pre-activation and post-activation "
        "(ReLU after the add) basic blocks of a no-normalisation Kaiming ResNet, at the profile's width (64 channels on the cpu profile). "
        "Convolutions use circular padding here, so that no image boundary shrinks the branch and the "
        "number measures the topology the claim is about; zero-padded and narrower (16-channel) "
        "numbers are reported beside it.",
        Criterion(
            (
                Check("preact_block_growth", "within", 2.0, "pre-activation blocks double it", margin=0.2),
                Check("postact_block_growth", "within", 2.0, "post-activation blocks double it", margin=0.2),
            )
        ),
        figures=("fig-resnet-variance-doubles-growth", "fig-resnet-variance-doubles-depth"),
        notebook="fixup",
    ),
    Claim(
        "fixup-trains-without-bn",
        "Standard-init ResNets train only with BatchNorm; Fixup trains deep ResNets without any "
        "normalisation.",
        "Fixup initialisation",
        "Test accuracy after the profile's first-epoch budget at the deepest depth tested (at least "
        "50 layers for a verdict), at the default BN learning rate (Fixup paper, Fig. 3 analogue), for "
        "no-norm Kaiming, BN and Fixup.",
        Criterion(
            (
                Check("nonorm_deep_accuracy", "<=", 0.2, "no-norm Kaiming fails (diverges or stays near chance)",
                      requires=Check("deepest_depth", ">=", 50.0, "the deepest network has at least 50 layers",
                                     min_seeds=1)),
                Check("fixup_minus_bn_deep", ">=", -5.0, "Fixup comes within 5 points of BN", unit="points",
                      requires=Check("bn_deep_accuracy", ">=", 0.5, "the BN network learned within the budget")),
            )
        ),
        figures=("fig-fixup-trains-without-bn-depth", "fig-fixup-trains-without-bn-training"),
        notebook="fixup",
    ),
    Claim(
        "lsuv-1-5-iterations",
        "LSUV reaches unit output variance in one to five iterations per layer.",
        "LSUV initialisation",
        "Iterations (rescalings T_i of Algorithm 1) per layer at the paper's tolerance (tol_var 0.1, "
        "t_max 10) across architectures (deep MLPs with ReLU, tanh and sigmoid, a plain CNN, a ResNet "
        "without and with BatchNorm), fixed and fresh mini-batches, zero and non-zero biases: the "
        "largest count seen per seed; and the mean output variance of all layers on a held-out batch.",
        Criterion(
            (
                Check("lsuv_max_iterations", "<=", 5.0, "never more than 5 iterations"),
                Check("lsuv_heldout_variance", "within", 1.0, "unit variance holds on a held-out batch", margin=0.2),
            )
        ),
        figures=("fig-lsuv-1-5-iterations-histogram",),
        notebook="lsuv",
    ),
    Claim(
        "lsuv-batch-size",
        "The mini-batch size has a negligible effect on LSUV.",
        "LSUV initialisation",
        "LSUV fitted on one mini-batch of each size from the smallest to the largest of the profile "
        "(8 to 1024 on the cpu profile), then the same training run (same seed, data order and budget): "
        "the paired difference in test accuracy between the smallest and the largest batch, and the "
        "largest difference in a layer's scale factor, |ln(scale_small / scale_large)|.",
        Criterion(
            (
                Check("lsuv_small_batch_accuracy_diff", "within", 0.0,
                      "the smallest batch is within the 0.5-point equivalence margin of the largest "
                      "(paired by seed; the whole 95 % interval must lie inside the margin)",
                      margin=0.5, unit="points"),
                Check("lsuv_small_batch_scale_diff", "<=", 0.1,
                      "every layer's scale factor within about 10 % of the largest batch's"),
            )
        ),
        figures=("fig-lsuv-batch-size-accuracy",),
        notebook="lsuv",
    ),
    Claim(
        "lsuv-cheap",
        "LSUV costs far less computation than BatchNorm.",
        "LSUV initialisation",
        "LSUV's one-off wall time over the extra time BatchNorm adds to a training run of one epoch "
        "of the profile's full training set (BN's per-step overhead, measured side by side on the "
        "same network with and without BN, times the epoch's steps); one measurement per repeat.",
        Criterion(
            (Check("lsuv_cost_fraction_of_bn", "<=", 0.1, "LSUV costs at most a tenth of BN's overhead"),)
        ),
        figures=("fig-lsuv-cheap-cost",),
        notebook="lsuv",
    ),
    Claim(
        "transfer-best",
        "Starting from weights pretrained on a similar task is better than any initialisation.",
        "Transfer learning",
        "A small CNN pretrained on a source data set and fine-tuned (all layers, new classifier head) on "
        "a target with only k labelled examples per class, against the same CNN trained on the same "
        "examples from scratch from each init of the book (old uniform, Xavier, Kaiming, orthogonal, "
        "LSUV), same budget. Metric, per seed, at the fewest labels of the profile: transfer's test "
        "accuracy minus the best from-scratch init's, in points. Two pairs: a similar one (MNIST-5k to "
        "the UCI digits at 28x28) and a control where transfer may give little (Fashion-MNIST to "
        "MNIST-5k). Each pair gets its own verdict from its own check; the claim's verdict combines "
        "them by the ledger's general rule: reproduced if transfer wins on both pairs, partly "
        "reproduced if on one, not reproduced if on neither, inconclusive if either is unsettled.",
        Criterion(
            (
                Check("transfer_gain_similar", ">=", 1.0, "transfer beats every init on the similar pair", unit="points"),
                Check("transfer_gain_control", ">=", 1.0, "transfer beats every init on the control pair", unit="points"),
            )
        ),
        figures=("fig-transfer-best-labels",),
        notebook="transfer",
    ),
]

LEDGER: dict[str, Claim] = {c.id: c for c in _LEDGER}


# --------------------------------------------------------------------------- the summary


def summary_rows(profile_dir, catalog=None) -> list[dict]:
    """One row per ledger claim for the profile whose results are in ``profile_dir``: the
    verdict computed by the notebook that measures it, or "not measured yet"."""
    import json
    from pathlib import Path

    from .catalog import NOTEBOOKS

    catalog = NOTEBOOKS if catalog is None else catalog
    profile_dir = Path(profile_dir)
    measured: dict[str, dict] = {}
    for name in catalog:
        path = profile_dir / name / "claims.json"
        if path.is_file():
            with open(path, encoding="utf-8") as f:
                for row in json.load(f):
                    measured[row["id"]] = row
    rows = []
    for c in LEDGER.values():
        if c.id in measured:
            row = dict(measured[c.id])
        else:
            row = {"id": c.id, "verdict": NOT_MEASURED, "explanation": "", "checks": [], "measurements": {},
                   "profile": profile_dir.name, "seeds": [], "notebook": c.notebook, "figures": list(c.figures)}
        row.update(statement=c.statement, article_section=c.article_section, metric=c.metric,
                   criterion=c.criterion.text())
        first = row["checks"][0] if row["checks"] else None
        row["key_number"] = (
            f"{first['metric']} = {_fmt(first['mean'])} [{_fmt(first['low'])}, {_fmt(first['high'])}]"
            if first else ""
        )
        rows.append(row)
    return rows


def write_summary(profile_dir, catalog=None) -> list[dict]:
    """Write the profile's machine-readable claims summary, ``claims.json`` and
    ``claims.csv``, atomically; return its rows."""
    from pathlib import Path

    import pandas as pd

    from .results import atomic_write_json, atomic_write_text

    rows = summary_rows(profile_dir, catalog)
    profile_dir = Path(profile_dir)
    atomic_write_json(profile_dir / "claims.json", rows)
    flat = pd.DataFrame(
        [{k: (";".join(map(str, v)) if isinstance(v, list) else v) for k, v in r.items()
          if k not in ("checks", "measurements")} for r in rows]
    )
    atomic_write_text(profile_dir / "claims.csv", flat.to_csv(index=False, lineterminator="\n"))
    return rows
