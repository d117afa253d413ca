"""The claims ledger, and the one function that turns measurements into a verdict.

Every claim of the article has an id (stable: used in figure ids, tests and the book), a
paraphrase, the section of the article it comes from, the metric that settles it, a
criterion written down here *before* any notebook measured it, and a **negative control**:
the nearest condition known to be wrong for the claim, measured in the same run and judged by
the same rule. A notebook computes the metrics; :func:`judge` compares them with the
criterion; nobody types a verdict.

A criterion is a list of checks, each a comparison of one metric with a threshold (or an
equivalence band, for claims that say "negligible" or "about"). A metric is measured once
per seed; the check uses an interval that suits the quantity (its ``scale``):

- ``"linear"``: the mean and its two-sided 95 % Student-t interval (differences, counts);
  an infinite value (e.g. a cost ratio over an overhead of 0) is kept: the interval reaches
  infinity on its side, so it can fail a check but never help one hold;
- ``"log"``: for positive ratios and magnitudes: the t interval of log10 of the values,
  back-transformed (a geometric mean and an interval that cannot cross 0). A value of exactly
  0 (an underflow) is replaced by the smallest positive value of the other seeds (it moves up,
  so a ``<=`` check gets harder to pass, though the spread narrows); a ``>=`` or ``within``
  check with an exact 0 among its values cannot hold (that seed is below any band); when every
  seed is exactly 0 the interval is the point 0;
- ``"proportion"``: for accuracies and other fractions: the t interval of the logit of the
  values (clipped to [1e-4, 1 - 1e-4]), back-transformed, so it stays inside (0, 1);
- ``"binomial"``: for per-seed yes/no outcomes (1 or 0, e.g. "this seed stalled"): the
  fraction of seeds and its exact (Clopper-Pearson) 95 % interval;
- ``"exact"``: a value computed, not sampled (a configuration, a root of an equation): no
  interval; the check compares the value itself.

The check then says:

- ``<= t``: holds if the interval lies at or below t, fails if it lies above t;
- ``>= t``: holds if the interval lies at or above t, fails if it lies below t;
- ``within t +- m``: holds if the interval lies inside [t - m, t + m] (equivalence), fails
  if it lies wholly outside;
- anything else (the interval straddles the line, or fewer seeds than the check needs) is
  *unsettled*. A NaN value counts as not measured (it lowers the number of seeds).

A check may name a ``control`` metric: the same quantity measured on the claim's negative
control. The control is judged by the very same rule; if it *holds* too, the check does not
tell the claim from its known-wrong alternative: its status is "does not discriminate",
which counts as neither holding nor failing.

A control that is itself unsettled leaves a holding check unsettled.

The verdict: any check unsettled -> "inconclusive at this profile"; all hold ->
"reproduced"; all fail -> "not reproduced"; none holds but some do not discriminate ->
"inconclusive at this profile" (the criterion cannot tell); anything else -> "partly
reproduced". A claim with a check that does not discriminate is never "reproduced".
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Mapping, Sequence

__all__ = [
    "REPRODUCED",
    "PARTLY",
    "NOT_REPRODUCED",
    "INCONCLUSIVE",
    "NOT_MEASURED",
    "VERDICTS",
    "HOLDS",
    "FAILS",
    "UNSETTLED",
    "NOT_DISCRIMINATING",
    "SCALES",
    "Check",
    "Criterion",
    "Claim",
    "CheckResult",
    "Judgement",
    "LEDGER",
    "interval",
    "judge",
    "reading",
    "claim",
    "deciding_check",
]

REPRODUCED = "reproduced"
PARTLY = "partly reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive at this profile"
NOT_MEASURED = "not measured yet"
VERDICTS = (REPRODUCED, PARTLY, NOT_REPRODUCED, INCONCLUSIVE)

HOLDS, FAILS, UNSETTLED = "holds", "fails", "unsettled"
NOT_DISCRIMINATING = "does not discriminate"
SCALES = ("linear", "log", "proportion", "binomial", "exact")
_LOGIT_CLIP = 1e-4


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
    #: How the interval is formed: one of :data:`SCALES`.
    scale: str = "linear"
    #: The metric measured on the claim's negative control, judged by this same rule; the
    #: check discriminates only if the control does not hold.
    control: str | None = None

    def __post_init__(self):
        if self.op not in ("<=", ">=", "within"):
            raise ValueError(f"op must be '<=', '>=' or 'within', got {self.op!r}")
        if self.op == "within" and self.margin <= 0:
            raise ValueError("a 'within' check needs a positive margin")
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {', '.join(SCALES)}, got {self.scale!r}")
        if self.scale == "exact" and self.min_seeds != 1:
            object.__setattr__(self, "min_seeds", 1)

    def rule_text(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        if self.op == "within":
            rule = f"within {self.threshold:g} +- {self.margin:g}{unit}"
        else:
            rule = f"{self.op} {self.threshold:g}{unit}"
        if self.scale == "exact":
            how = "exact value, computed once"
        elif self.scale == "binomial":
            how = f"fraction of seeds, exact binomial 95 % CI over >= {self.min_seeds} seeds"
        else:
            kind = {"linear": "", "log": " on a log scale", "proportion": " on a logit scale"}[self.scale]
            how = f"95 % CI{kind} over >= {self.min_seeds} seeds"
        return f"{self.metric} {rule} ({how})"

    def text(self) -> str:
        text = f"{self.rule_text()}: {self.description}"
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
    #: The negative control in words: the nearest condition known to be wrong for the claim,
    #: fixed before the run; its metrics are named by the checks' ``control`` fields.
    control: str = ""
    #: Criteria changed after a preliminary run: (old rule, new rule, reason) each.
    changes: tuple[tuple[str, str, str], ...] = ()
    #: The claim in one line, for the landing page (a paraphrase too).
    short: str = ""


@dataclass
class CheckResult:
    metric: str
    status: str
    n: int
    mean: float
    low: float
    high: float
    rule: str
    scale: str = "linear"
    #: The negative control judged by the same rule: {"metric", "status", "n", "mean",
    #: "low", "high"}, or None when the check names no control.
    control: dict | None = None

    @property
    def discriminates(self) -> bool | None:
        """True when the control fails the rule, False when it passes it, None when there is no
        control, it was not measured, or its own interval is unsettled."""
        if not self.control or self.control.get("n", 0) == 0:
            return None
        return {HOLDS: False, FAILS: True}.get(self.control["status"])


@dataclass
class Judgement:
    claim_id: str
    verdict: str
    checks: list[CheckResult] = field(default_factory=list)
    #: Why the verdict is not what the checks alone give (e.g. a criterion changed after a
    #: preliminary run, not yet confirmed on fresh seeds); empty otherwise.
    note: str = ""

    def explanation(self) -> str:
        return "; ".join(f"{format_result(c)}: {c.status} ({c.rule})" for c in self.checks)

    def as_dict(self) -> dict:
        return {"claim_id": self.claim_id, "verdict": self.verdict, "checks": [asdict(c) for c in self.checks],
                "note": self.note}


def _fmt(x: float, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "nan"
    return f"{x:.{digits}g}"


def format_result(c: "CheckResult | Mapping", digits: int = 4) -> str:
    """``metric = mean [low, high], n=k``, or the exact value, or ``k/n`` for a count.

    >>> format_result({"metric": "gap", "mean": 7.3149, "low": 2.72, "high": 11.91, "n": 3}, digits=3)
    'gap = 7.31 [2.72, 11.9], n=3'
    """
    get = (lambda k, d=None: c.get(k, d)) if isinstance(c, Mapping) else (lambda k, d=None: getattr(c, k, d))
    _f = lambda x: _fmt(x, digits)  # noqa: E731
    scale, n = get("scale", "linear"), get("n", 0)
    if n == 0:
        return f"{get('metric')}: not measured"
    if scale == "exact":
        return f"{get('metric')} = {_f(get('mean'))} (exact)"
    if scale == "binomial":
        k = round(get("mean") * n)
        return f"{get('metric')} = {k}/{n} seeds [{_f(get('low'))}, {_f(get('high'))}]"
    return f"{get('metric')} = {_f(get('mean'))} [{_f(get('low'))}, {_f(get('high'))}], n={n}"


def interval(values: Sequence[float], scale: str = "linear", confidence: float = 0.95) -> tuple[int, float, float, float]:
    """``(n, centre, low, high)`` of the finite ``values`` by the rule of ``scale`` (see the
    module's docstring). ``centre`` is the mean (linear, proportion: back-transformed mean of
    the logits; log: geometric mean; binomial: the fraction; exact: the value).

    >>> interval([1.0, 2.0, 3.0, 2.0])[1]
    2.0
    >>> n, c, lo, hi = interval([0.01, 0.1, 1.0], "log"); round(c, 6), lo > 0
    (0.1, True)
    >>> interval([1, 1, 0, 1], "binomial")[1]
    0.75
    """
    from scipy import stats

    vals = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    n = len(vals)
    if n == 0:
        return 0, float("nan"), float("nan"), float("nan")
    if any(math.isinf(v) for v in vals):  # an infinite value is kept, never dropped: it decides
        finite = [v for v in vals if math.isfinite(v)]
        if any(v == -math.inf for v in vals) and any(v == math.inf for v in vals):
            return n, float("nan"), -math.inf, math.inf
        if any(v == math.inf for v in vals):
            return n, math.inf, min(finite) if finite else math.inf, math.inf
        return n, -math.inf, -math.inf, max(finite) if finite else -math.inf
    if scale == "exact":
        return n, vals[0], vals[0], vals[0]
    if scale == "binomial":
        k = sum(1 for v in vals if v >= 0.5)
        low = 0.0 if k == 0 else float(stats.beta.ppf((1 - confidence) / 2, k, n - k + 1))
        high = 1.0 if k == n else float(stats.beta.ppf(0.5 + confidence / 2, k + 1, n - k))
        return n, k / n, low, high
    if scale == "log":
        positive = [v for v in vals if v > 0]
        if len(positive) < n and any(v < 0 for v in vals):
            raise ValueError("a log-scale metric must be >= 0")
        if not positive:  # exactly 0 in every seed: the interval is that point
            return n, 0.0, 0.0, 0.0
        floor = min(positive)
        vals = [math.log10(v if v > 0 else floor) for v in vals]
        back = lambda v: 10.0 ** v  # noqa: E731
    elif scale == "proportion":
        vals = [min(max(v, _LOGIT_CLIP), 1 - _LOGIT_CLIP) for v in vals]
        vals = [math.log(v / (1 - v)) for v in vals]
        back = lambda v: 1.0 / (1.0 + math.exp(-v))  # noqa: E731
    else:
        back = lambda v: v  # noqa: E731
    mean = sum(vals) / n
    if n == 1:
        return 1, back(mean), float("nan"), float("nan")
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return n, float(back(mean)), float(back(mean - half)), float(back(mean + half))


def _status(check: Check, n: int, low: float, high: float) -> str:
    if n < check.min_seeds or (math.isnan(low) or math.isnan(high)):
        return UNSETTLED
    if check.op == "<=":
        return HOLDS if high <= check.threshold else FAILS if low > check.threshold else UNSETTLED
    if check.op == ">=":
        return HOLDS if low >= check.threshold else FAILS if high < check.threshold else UNSETTLED
    lo_band, hi_band = check.threshold - check.margin, check.threshold + check.margin
    if lo_band <= low and high <= hi_band:
        return HOLDS
    if high < lo_band or low > hi_band:
        return FAILS
    return UNSETTLED


def _check(check: Check, measurements: Mapping[str, Sequence[float]], confidence: float) -> CheckResult:
    n, mean, low, high = interval(measurements.get(check.metric, ()), check.scale, confidence)
    rule = check.rule_text()
    if check.requires is not None and _check(check.requires, measurements, confidence).status != HOLDS:
        status = UNSETTLED
        rule += f" [precondition {check.requires.rule_text()} not met]"
    else:
        status = _status(check, n, low, high)
        raw = [v for v in measurements.get(check.metric, ()) if v is not None]
        if status == HOLDS and check.scale == "log" and check.op != "<=" and any(float(v) == 0 for v in raw):
            status = UNSETTLED  # an underflowed seed is below any band: it cannot support ">=" or "within"
            rule += " [a seed is exactly 0]"
    control = None
    if check.control:
        cn, cmean, clow, chigh = interval(measurements.get(check.control, ()), check.scale, confidence)
        control = {"metric": check.control, "status": _status(check, cn, clow, chigh) if cn else "not measured",
                   "n": cn, "mean": cmean, "low": clow, "high": chigh, "scale": check.scale}
        if status == HOLDS and control["status"] == HOLDS:
            status = NOT_DISCRIMINATING
        elif status == HOLDS and control["status"] == UNSETTLED:
            status = UNSETTLED  # the check holds, but whether its control fails is not settled
            rule += " [negative control unsettled]"
    return CheckResult(check.metric, status, n, mean, low, high, rule, check.scale, control)


def judge(claim_or_id: "Claim | str", measurements: Mapping[str, Sequence[float]],
          fresh_seeds: bool = True) -> Judgement:
    """Turn per-seed measurements into a verdict by the claim's written criterion.

    ``measurements`` maps each check's metric name (and its control's) to its per-seed
    values. A missing metric makes its check unsettled (and so the verdict inconclusive).

    ``fresh_seeds``: whether these seeds are disjoint from those the criterion was tuned on.
    A claim whose criterion was changed after a preliminary run (``Claim.changes``) is
    "reproduced" only on fresh seeds; on the tuning seeds all its checks holding gives
    "inconclusive at this profile", with the reason in ``note``.

    >>> c = Claim("x", "s", "sec", "m", Criterion((Check("a", ">=", 1.0, "a is large", min_seeds=2),)))
    >>> judge(c, {"a": [2.0, 2.1, 1.9]}).verdict
    'reproduced'
    """
    c = LEDGER[claim_or_id] if isinstance(claim_or_id, str) else claim_or_id
    results = [_check(chk, measurements, c.criterion.confidence) for chk in c.criterion.checks]
    statuses = [r.status for r in results]
    note = ""
    if UNSETTLED in statuses:
        verdict = INCONCLUSIVE
    elif all(s == HOLDS for s in statuses):
        verdict = REPRODUCED
    elif all(s == FAILS for s in statuses):
        verdict = NOT_REPRODUCED
    elif HOLDS not in statuses:  # nothing held that tells the claim from its control
        verdict = INCONCLUSIVE
        note = "no check that discriminates held: the criterion cannot tell the claim from its negative control"
    else:
        verdict = PARTLY
    if verdict == REPRODUCED and c.changes and not fresh_seeds:
        verdict = INCONCLUSIVE
        note = ("every check holds, but the criterion was changed after a preliminary run on these seeds: "
                "reproduced only once it also holds on fresh seeds")
    return Judgement(c.id, verdict, results, note)


def deciding_check(checks: Sequence["CheckResult | Mapping"]) -> "CheckResult | Mapping | None":
    """The check that decided a verdict: the first unsettled one, else the first that does not
    discriminate, else the first that failed, else the first (all held)."""
    get = lambda c, k: c.get(k) if isinstance(c, Mapping) else getattr(c, k)  # noqa: E731
    for status in (UNSETTLED, NOT_DISCRIMINATING, FAILS):
        for c in checks:
            if get(c, "status") == status:
                return c
    return checks[0] if checks else None


def reading(judgement: Judgement) -> str:
    """A plain-language account of a verdict, built from its checks: which parts of the
    claim held, which did not, which could not be settled, and which did not tell the claim
    from its negative control (always consistent with the verdict, whatever the
    measurements were)."""
    c = LEDGER.get(judgement.claim_id)
    descriptions = {chk.metric: chk.description for chk in c.criterion.checks} if c else {}
    groups: dict[str, list[str]] = {HOLDS: [], FAILS: [], UNSETTLED: [], NOT_DISCRIMINATING: []}
    for r in judgement.checks:
        what = descriptions.get(r.metric, r.metric)
        text = f"{what} ({format_result(r)})"
        if r.status == NOT_DISCRIMINATING:
            text += f", but the negative control passes the same check ({format_result(r.control)})"
        groups[r.status].append(text)
    parts = []
    if groups[HOLDS]:
        parts.append("Held: " + "; ".join(groups[HOLDS]) + ".")
    if groups[FAILS]:
        parts.append("Did not hold: " + "; ".join(groups[FAILS]) + ".")
    if groups[NOT_DISCRIMINATING]:
        parts.append("Does not discriminate: " + "; ".join(groups[NOT_DISCRIMINATING]) + ".")
    if groups[UNSETTLED]:
        parts.append("Not settled at this profile: " + "; ".join(groups[UNSETTLED]) + ".")
    if judgement.note:
        parts.append(judgement.note[0].upper() + judgement.note[1:] + ".")
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
                      "units stay identical up to float32 rounding (max over activations, depths, layers, steps)",
                      scale="log", control="random_units_rel_distance"),
                Check("zero_max_rank", "<=", 1.0,
                      "every hidden weight matrix has rank <= 1 throughout training", control="random_max_rank"),
                Check("zero_accuracy_gap", ">=", 10.0,
                      "random init beats zero init by at least 10 points (worst case over activations and depths)",
                      unit="points",
                      requires=Check("control_accuracy", ">=", 0.5,
                                     "the random-init control reaches 50 % test accuracy in the budget "
                                     "(worst case over activations and depths)", scale="proportion")),
            )
        ),
        notebook="zero_init",
        figures=("fig-zero-symmetry-distance", "fig-zero-symmetry-accuracy"),
        control="The same networks from random (Kaiming) init, trained alike: their units start different, "
                "so the symmetry checks (distance between units, rank) must not hold for them.",
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
                      "the units' weight rows stay identical up to float32 rounding (largest over activations and depths)",
                      scale="log", control="random_units_rel_distance_final"),
            )
        ),
        notebook="zero_init",
        control="The same networks from random (Kaiming) init: units that start different must not pass the "
                "'identical units' check at the end of training.",
        changes=(("zrb_weight_norm >= 1e-3 (t interval of the norms)", "zrb_log10_weight_norm >= -3 (t interval of log10)",
                  "a t interval of a skewed positive quantity went below 0"),),
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
                Check("sigmoid_flat_z", "within", 6.0, "the flat region starts near |z| = 6", margin=0.5,
                      scale="exact"),
                Check("large_init_saturated_fraction", ">=", 0.5, "N(0, 1) weights saturate most units",
                      scale="proportion", control="xavier_scale_saturated_fraction"),
                Check("small_init_signal_ratio", "<=", 0.01,
                      "N(0, 0.01^2) weights lose the input signal with depth (a hundredfold or more)",
                      scale="log", control="xavier_scale_signal_ratio"),
            )
        ),
        control="The same sigmoid MLP at the sweep's weight std nearest Xavier's 1/sqrt(width) (on a log "
                "scale), a scale known to neither saturate the units nor lose the signal: it must pass "
                "neither check.",
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
                      requires=Check("stack_depth", ">=", 100.0, "the stack has at least 100 layers", scale="exact"),
                      scale="log", control="std_ratio_gain_1.0"),
                Check("std_ratio_gain_0.95", "<=", 0.1, "gain 0.95 shrinks the std at least tenfold by layer 100",
                      requires=Check("stack_depth", ">=", 100.0, "the stack has at least 100 layers", scale="exact"),
                      scale="log", control="std_ratio_gain_1.0"),
            )
        ),
        control="The same 100-layer stack at gain exactly 1 (variance-preserving): it must neither explode "
                "nor vanish by these checks.",
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
                Check("old_uniform_grad_ratio", "<=", 0.5, "back-propagated gradients shrink towards the input",
                      scale="log", control="xavier_grad_ratio"),
                Check("old_uniform_accuracy_gap", ">=", 1.0, "Xavier trains faster within the same budget",
                      unit="points",
                      requires=Check("xavier_deep_tanh_accuracy", ">=", 0.5,
                                     "the Xavier-initialised deep tanh MLP learned within the budget",
                                     scale="proportion")),
            )
        ),
        control="Xavier's own gradient ratio in the same 5-hidden-layer tanh MLP: Xavier is the init the "
                "claim says does not vanish, so it must not pass the vanishing check.",
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
                      requires=Check("stack_depth", ">=", 100.0, "the stack has at least 100 layers", scale="exact"),
                      scale="log", control="std_ratio_gain_0.95"),
                Check("xavier_tanh_std_100", "within", 1.0, "tanh stack keeps std near 1", margin=0.5,
                      requires=Check("stack_depth", ">=", 100.0, "the stack has at least 100 layers", scale="exact"),
                      scale="log"),
                Check("xavier_deep_tanh_vs_shallow", ">=", -5.0,
                      "a deep tanh MLP trains within 5 points of a shallow one", unit="points",
                      requires=Check("shallow_tanh_accuracy", ">=", 0.5, "the shallow tanh MLP learned",
                                     scale="proportion"),
                      control="old_uniform_deep_tanh_vs_shallow"),
                Check("xavier_deep_sigmoid_vs_shallow", ">=", -5.0,
                      "a deep sigmoid MLP trains within 5 points of a shallow one", unit="points",
                      requires=Check("shallow_sigmoid_accuracy", ">=", 0.5, "the shallow sigmoid MLP learned",
                                     scale="proportion")),
            )
        ),
        control="A linear stack at gain 0.95 (5 % below Xavier's scale) must not keep the std near 1; the "
                "deep tanh MLP from the old uniform rule (the init the article says fails) must not train "
                "within 5 points of its own shallow one.",
        changes=(("linear and tanh stacks and the deep tanh MLP", "the same plus a deep sigmoid MLP",
                  "the claim names the sigmoid"),),
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
                Check("relu_second_moment", "within", 0.5, "the second moment halves", margin=0.02,
                      control="input_second_moment"),
                Check("relu_variance", "within", 0.5, "the variance halves", margin=0.02,
                      control="input_variance"),
                Check("relu_mean", ">=", 0.3, "the mean rises from 0", control="input_mean"),
            )
        ),
        control="The same samples without the ReLU (z itself): nothing halves and the mean stays 0, so "
                "no check may hold for them.",
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
                      requires=Check("stack_depth", ">=", 30.0, "the stack has at least 30 layers", scale="exact"),
                      scale="log", control="relu_kaiming_rms_ratio_30"),
                Check("relu_kaiming_rms_ratio_30", "within", 1.0, "Kaiming keeps the RMS", margin=0.5,
                      requires=Check("stack_depth", ">=", 30.0, "the stack has at least 30 layers", scale="exact"),
                      scale="log", control="relu_xavier_rms_ratio_30"),
                Check("he_fig3_xavier_stalled", ">=", 0.5,
                      "Xavier stalls near chance (best test accuracy over the lr grid <= 15 %) in most seeds "
                      "(an exact binomial interval can pass 0.5 only from 6 seeds on)", min_seeds=6,
                      requires=Check("he_depth", ">=", 30.0, "the network has at least 30 layers", scale="exact"),
                      scale="binomial", control="he_fig3_kaiming_stalled"),
                Check("he_fig3_kaiming_best_accuracy", ">=", 0.5, "Kaiming trains",
                      requires=Check("he_depth", ">=", 30.0, "the network has at least 30 layers", scale="exact"),
                      scale="proportion", control="he_fig3_xavier_best_accuracy"),
            )
        ),
        control="Each init is the other's control: Kaiming's signal must not pass Xavier's vanishing check "
                "nor Kaiming's 30-layer net the stall check, and Xavier must not pass Kaiming's checks.",
        changes=(("std ratio at layer 30", "RMS ratio at layer 30",
                  "a ReLU output's std is 0.83 of its RMS even in theory; He et al. preserve the second moment"),
                 ("he_fig3_xavier_best_accuracy <= 0.15 (mean over seeds, t interval)",
                  "he_fig3_xavier_stalled >= 0.5 (fraction of seeds stalled, exact binomial interval)",
                  "the seeds split into stalled (at chance) and learning ones; a mean of a two-valued "
                  "outcome with a t interval that can go below chance does not describe 'stalls'"),),
        figures=("fig-xavier-fails-relu-std", "fig-xavier-fails-relu-training", "fig-xavier-fails-relu-best"),
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
                Check("preact_block_growth", "within", 2.0, "pre-activation blocks double it", margin=0.2,
                      scale="log", control="bn_block_growth"),
                Check("postact_block_growth", "within", 2.0, "post-activation blocks double it", margin=0.2,
                      scale="log", control="bn_block_growth"),
            )
        ),
        control="The same Kaiming ResNet with BatchNorm in every branch: each block adds about one unit of "
                "variance instead of doubling it, so its per-block growth must not pass the doubling check.",
        changes=(("zero padding, width 16", "circular padding, width 64 (zero-padded and 16-channel numbers beside)",
                  "at width 16 the compounded pre-activation growth is 1.76, a finite-width effect, and zero "
                  "padding lowers it further: neither is the topology the claim is about"),),
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
                                     scale="exact"),
                      scale="proportion", control="bn_deep_accuracy"),
                Check("fixup_minus_bn_deep", ">=", -5.0, "Fixup comes within 5 points of BN", unit="points",
                      requires=Check("bn_deep_accuracy", ">=", 0.5, "the BN network learned within the budget",
                                     scale="proportion"),
                      control="nonorm_minus_bn_deep"),
            )
        ),
        control="BN must not pass the 'fails without normalisation' check, and the no-norm Kaiming ResNet "
                "(the claim's known failure) must not come within 5 points of BN.",
        changes=(("no preconditions", "BN must have learned (>= 50 %) and the deepest net have >= 50 layers",
                  "a run too short for BN itself to learn cannot say anything about Fixup against BN"),),
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
                Check("lsuv_max_iterations", "<=", 5.0, "never more than 5 iterations",
                      control="lsuv_max_iterations_tight"),
                Check("lsuv_heldout_variance", "within", 1.0, "unit variance holds on a held-out batch", margin=0.2,
                      scale="log", control="orthonormal_heldout_variance"),
            )
        ),
        control="LSUV at a tolerance (0.001) far below the batch-to-batch noise of a variance estimate, on the "
                "same architectures, batches and biases (with fresh mini-batches it cannot converge), must not "
                "pass the iteration check; the orthonormal "
                "pre-init alone (LSUV without its rescaling) must not pass the unit-variance check.",
        figures=("fig-lsuv-1-5-iterations-histogram", "fig-lsuv-1-5-iterations-heldout"),
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
                      margin=0.5, unit="points", control="lsuv_halved_lr_accuracy_diff"),
                Check("lsuv_small_batch_scale_diff", "<=", 0.1,
                      "every layer's scale factor within about 10 % of the largest batch's", scale="log"),
            )
        ),
        figures=("fig-lsuv-batch-size-accuracy",),
        control="A change known to matter, judged by the same equivalence rule: the same training run "
                "(largest LSUV batch) with the learning rate halved, paired by seed, must not fall inside "
                "the 0.5-point margin.",
        changes=(("per-seed max |accuracy difference| across all batch sizes within 0.5 points",
                  "paired smallest-vs-largest difference within 0.5 points",
                  "the maximum over many pairs measured training noise, not the effect of the batch"),),
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
            (Check("lsuv_cost_fraction_of_bn", "<=", 0.1, "LSUV costs at most a tenth of BN's overhead",
                   scale="log", control="lsuv_cost_fraction_of_bn_step"),)
        ),
        control="LSUV's cost against BN's overhead over a single training step instead of an epoch (a run "
                "too short for the claim): it must not pass the same check.",
        changes=(("a run length chosen by the profile", "one full epoch of the profile's training set",
                  "LSUV's cost is fixed while BN's grows with the run: the comparison needs a stated length"),),
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
        "accuracy minus the best from-scratch init's, in points, on the similar pair (MNIST-5k to the "
        "UCI digits at 28x28), which is what the claim is about. A dissimilar pair (Fashion-MNIST to "
        "MNIST-5k) is measured the same way and shown beside the verdict as the scope of the article's "
        "'always', not judged as part of it.",
        Criterion(
            (
                Check("transfer_gain_similar", ">=", 1.0, "transfer beats every init on the similar pair",
                      unit="points", control="shuffled_source_gain_similar"),
            )
        ),
        control="The same network pretrained on the same source images with their labels shuffled (a source "
                "that cannot carry useful features for the labels), fine-tuned alike: its gain over the best "
                "init must not pass the same check.",
        changes=(("transfer_gain_similar >= 1 and transfer_gain_control >= 1, combined by the general rule",
                  "transfer_gain_similar >= 1 only; the dissimilar pair reported as the claim's scope",
                  "the article's claim is about a similar task; judging the dissimilar pair by the same "
                  "rule made the verdict depend on a case the claim does not make"),),
        figures=("fig-transfer-best-gain", "fig-transfer-best-labels"),
        notebook="transfer",
    ),
]

#: One line per claim for the landing page (paraphrases, like the statements).
_SHORT = {
    'zero-symmetry': 'All-zero weights keep every hidden unit identical, so zero init cannot learn.',
    'zero-random-bias': 'Zero weights with random biases: the weights move, but the units stay identical.',
    'sigmoid-saturation': 'The sigmoid saturates beyond about ±6; too large or too small weights lose the signal.',
    'depth-explode-vanish': 'Over 100 layers, a gain slightly above 1 explodes and slightly below 1 vanishes.',
    'old-uniform-vanishes': 'The old U[-1, 1]/√n rule makes gradients vanish and training slow.',
    'xavier-unit-variance': 'Xavier keeps activations near std 1 through depth and suits tanh and sigmoid.',
    'relu-halves-variance': 'ReLU roughly halves the variance and raises the mean.',
    'xavier-fails-relu': 'Xavier fails deep ReLU networks; Kaiming (×√2) fixes it.',
    'resnet-variance-doubles': 'Without BatchNorm, a Kaiming ResNet doubles its output variance per block.',
    'fixup-trains-without-bn': 'Standard ResNets need BatchNorm; Fixup trains deep ResNets without it.',
    'lsuv-1-5-iterations': 'LSUV reaches unit variance in one to five iterations per layer.',
    'lsuv-batch-size': 'The mini-batch size has a negligible effect on LSUV.',
    'lsuv-cheap': 'LSUV costs far less than BatchNorm.',
    'transfer-best': 'Weights pretrained on a similar task beat any initialisation.',
}
_LEDGER = [replace(c, short=_SHORT[c.id]) for c in _LEDGER]
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
        deciding = deciding_check(row["checks"])
        row["key_number"] = format_result(deciding) if deciding else ""
        row["deciding_status"] = deciding.get("status", "") if deciding else ""
        row["discriminates"] = discrimination(row["checks"])
        row["control"] = c.control
        row["short"] = c.short
        row["changes"] = [list(ch) for ch in c.changes]
        rows.append(row)
    return rows


def discrimination(checks: Sequence[Mapping]) -> str:
    """"yes" if every measured negative control fails its check's rule, "no" if one passes it,
    "control unsettled" if one is neither, "not measured" when no control was measured."""
    seen = [c for c in checks if c.get("control") and c["control"].get("n", 0) > 0]
    if not seen:
        return "not measured"
    if any(c["control"]["status"] == HOLDS for c in seen):
        return "no"
    return "yes" if all(c["control"]["status"] == FAILS for c in seen) else "control unsettled"


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
