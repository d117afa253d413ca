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
  values (clipped to [1e-4, 1 - 1e-4]), back-transformed, so it stays inside (0, 1); when
  every seed is exactly 0 (or exactly 1) the interval is that point;
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
from dataclasses import asdict, dataclass, field
from typing import Mapping, Sequence

from initstudy.chapters import Declared, ledger

__all__ = [
    "REPRODUCED",
    "PARTLY",
    "NOT_REPRODUCED",
    "INCONCLUSIVE",
    "NOT_MEASURED",
    "VERDICTS",
    "Measured",
    "discrimination",
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
    "Power",
    "power",
    "seeds_needed",
    "seeds_to_settle",
    "AWAITING_FRESH_SEEDS",
    "awaiting_fresh_seeds",
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
    #: The parameter that sets how many values each check gets (the seeds of the experiment
    #: that measures it), for the power estimate's "which profile runs enough"; ``None`` when
    #: the values are not one per seed (runs of a sweep, repeats).
    seeds_param: str | None = "seeds"


@dataclass(frozen=True)
class Measured(Mapping):
    """A claim's per-seed measurements (a mapping metric -> values) with the seeds they come
    from when not the run's own: ``seeds`` an experiment's own seed list, ``unseeded`` for
    measurements no seed determines (wall-time repeats). A chapter's measurement function
    returns one per claim that needs it; :meth:`initstudy.study.run.Run.verdicts` passes both on.

    >>> m = Measured({"a": [1.0, 2.0]}, seeds=(7, 8))
    >>> m["a"], list(m), m.seeds
    ([1.0, 2.0], ['a'], (7, 8))
    """

    values: Mapping[str, Sequence[float]]
    seeds: tuple[int, ...] | None = None
    unseeded: bool = False

    def __getitem__(self, metric):
        return self.values[metric]

    def __iter__(self):
        return iter(self.values)

    def __len__(self):
        return len(self.values)


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
        return f"{get('metric')} = {k} of {n} [{_f(get('low'))}, {_f(get('high'))}]"
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
        low, high = _binomial(k, n, confidence)
        return n, k / n, low, high
    if scale == "log":
        if any(v < 0 for v in vals):
            raise ValueError("a log-scale metric must be >= 0")
        if not any(v > 0 for v in vals):  # exactly 0 in every seed: the interval is that point
            return n, 0.0, 0.0, 0.0
        back = lambda v: 10.0 ** v  # noqa: E731
    elif scale == "proportion":
        if len(set(vals)) == 1 and vals[0] in (0.0, 1.0):  # exactly 0 (or 1) in every seed: that point
            return n, vals[0], vals[0], vals[0]
        back = lambda v: 1.0 / (1.0 + math.exp(-v))  # noqa: E731
    else:
        back = lambda v: v  # noqa: E731
    vals, _ = _transformed(vals, scale)
    mean = sum(vals) / n
    if n == 1:
        return 1, back(mean), float("nan"), float("nan")
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return n, float(back(mean)), float(back(mean - half)), float(back(mean + half))


#: The largest number of seeds a power estimate reports; beyond it, "more than" this.
POWER_CAP = 100_000


@dataclass(frozen=True)
class Power:
    """How many seeds would settle a check, if the mean and the spread stayed as measured.

    ``n_needed``: the smallest n whose 95 % interval lies wholly on the side of the rule's line
    where today's mean is (inside or outside a ``within`` band); ``None`` when more seeds
    cannot settle it (the mean on the line, an exact value, infinite values) or it exceeds
    :data:`POWER_CAP`. ``outcome``: what the check would then say (holds / fails). ``text``:
    the arithmetic, for the book."""

    n_now: int
    n_needed: int | None
    outcome: str
    sd: float
    gap: float
    text: str


def _finite_or_nan(values: Sequence[float]) -> list[float]:
    """The values that were measured (None and NaN dropped)."""
    return [float(v) for v in values if v is not None and not math.isnan(float(v))]


def _transformed(vals: Sequence[float], scale: str) -> tuple[list[float], "object"]:
    """Measured, finite ``vals`` on the scale a t interval is formed on, and the same transform
    for a threshold: log10 for ``log`` (an exact 0 counted at the smallest positive value),
    the logit for ``proportion`` (clipped to [1e-4, 1 - 1e-4]), the identity otherwise. The one
    home of these transforms, for the judge (:func:`interval`) and the power estimate."""
    if scale == "log":
        positive = [v for v in vals if v > 0]
        floor = min(positive) if positive else 1.0
        fwd = lambda t: math.log10(t) if t > 0 else -math.inf  # noqa: E731
        return [math.log10(v if v > 0 else floor) for v in vals], fwd
    if scale == "proportion":
        def fwd(t):
            t = min(max(t, _LOGIT_CLIP), 1 - _LOGIT_CLIP)
            return math.log(t / (1 - t))
        return [fwd(v) for v in vals], fwd
    return list(vals), (lambda t: t)


def _binomial(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact (Clopper-Pearson) interval of ``k`` successes in ``n``.

    >>> [round(x, 4) for x in _binomial(0, 5)]
    [0.0, 0.5218]
    """
    from scipy import stats

    low = 0.0 if k == 0 else float(stats.beta.ppf((1 - confidence) / 2, k, n - k + 1))
    high = 1.0 if k == n else float(stats.beta.ppf(0.5 + confidence / 2, k + 1, n - k))
    return low, high


def power(check: Check, values: Sequence[float], confidence: float = 0.95) -> Power:
    """The number of seeds that would settle ``check``, from the spread of ``values``.

    For the t-interval scales (linear, log, proportion): on the interval's own scale, with
    the sample standard deviation ``sd`` and the distance ``gap`` from the mean to the nearest
    line of the rule that the interval must clear (the threshold; for ``within``, the nearer
    band edge), the smallest n >= the check's ``min_seeds`` with t(0.975, n-1) * sd / sqrt(n)
    < gap. For a fraction of seeds (binomial): the smallest n whose Clopper-Pearson interval
    at today's fraction lies on one side of the threshold. When today's values leave the check
    unsettled, the estimate is more than today's n. A projection: it assumes the mean and
    spread stay as measured; ``outcome`` says which way the check would then go.

    >>> p = power(Check("d", ">=", 1.0, "gain"), [0.0, 4.0, 2.0, 6.0])  # mean 3, sd 2.58, gap 2
    >>> p.n_needed, p.outcome
    (9, 'holds')
    >>> power(Check("d", "<=", 3.0, "x"), [2.0, 4.0]).n_needed is None   # the mean is on the line
    True
    >>> power(Check("s", ">=", 0.5, "stalled", scale="binomial"), [1, 1, 0, 1]).n_needed  # 13/17
    17
    """
    from scipy import stats

    raw = _finite_or_nan(values)
    n_now = len(raw)
    none = lambda why: Power(n_now, None, "", float("nan"), float("nan"), why)  # noqa: E731
    if check.scale == "exact":
        return none("an exact value: more seeds do not change it")
    if n_now == 0:
        return none("not measured")
    if any(math.isinf(v) for v in raw):
        return none("infinite values: no spread to project from")
    if n_now < 2:
        return none("one measurement: no spread to project from")
    if check.scale == "log" and check.op != "<=" and any(v == 0 for v in raw):
        return none("a seed is exactly 0 (an underflow, below any band): the check stays open whatever the seeds")
    _, _, low_now, high_now = interval(raw, check.scale, confidence)
    first = n_now + 1 if _status(check, n_now, low_now, high_now) == UNSETTLED else max(check.min_seeds, 2)
    if check.scale == "binomial":
        p = sum(1 for v in raw if v >= 0.5) / n_now
        t = check.threshold
        if check.op != "within" and p == t:
            return none(f"the fraction {p:.3g} is on the threshold {t:g}: more seeds cannot settle it")
        for n in range(first, 5001):
            low, high = _binomial(round(p * n), n, confidence)
            status = _status(check, n, low, high)
            if status != UNSETTLED:
                where = (("inside" if status == HOLDS else "outside") + f" the band {t:g} ± {check.margin:g}"
                         if check.op == "within" else ("below " if high <= t or (status == FAILS and check.op == ">=")
                                                       else "above ") + f"{t:g}")
                return Power(n_now, n, status, float("nan"), abs(p - t),
                             f"at the measured fraction {p:.3g}, the exact 95 % binomial interval of n = {n} "
                             f"lies {where}")
        return none(f"more than 5000 at the measured fraction {p:.3g}")
    if len(set(raw)) == 1 or (check.scale == "log" and not any(v > 0 for v in raw)):
        status = _status(check, max(first, check.min_seeds), raw[0], raw[0])  # no spread: the point itself
        if status != UNSETTLED:
            n = max(first, check.min_seeds)
            return Power(n_now, n, status, 0.0, float("nan"), f"the same value in every seed: {n} settle it")
    vals, fwd = _transformed(raw, check.scale)
    mean = sum(vals) / n_now
    if check.op == "within":
        a, b = fwd(check.threshold - check.margin), fwd(check.threshold + check.margin)
        inside = a <= mean <= b
        gap, outcome = (min(mean - a, b - mean), HOLDS) if inside else (min(abs(mean - a), abs(mean - b)), FAILS)
        line = "the nearer band edge"
    else:
        t = fwd(check.threshold)
        gap = abs(mean - t)
        outcome = HOLDS if (mean < t) == (check.op == "<=") else FAILS
        line = f"the threshold {check.threshold:g}"
    on = {"log": " of log10", "proportion": " of the logits"}.get(check.scale, "")
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n_now - 1))
    if not math.isfinite(sd):
        return none("the spread is not finite: nothing to project from")
    if gap <= 0 or not math.isfinite(gap):
        return none(f"the mean{on} is on {line}: more seeds cannot settle it")
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    approx = (z * sd / gap) ** 2  # t > z: a lower bound
    if approx > POWER_CAP:
        return Power(n_now, None, outcome, sd, gap, f"sd{on} {sd:.3g}; the mean lies {gap:.4g} from {line}: "
                                                    f"more than {POWER_CAP:,}")
    n = max(first, math.floor(approx))
    while float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n) >= gap:
        n += 1
    tq = float(stats.t.ppf(0.5 + confidence / 2, n - 1))
    return Power(n_now, n, outcome, sd, gap,
                 f"sd{on} {sd:.3g}; the mean lies {gap:.4g} from {line}; the half-width "
                 f"t·sd/√n = {tq:.3g}·{sd:.3g}/√{n} = {tq * sd / math.sqrt(n):.4g} first falls below it at n = {n}")


#: What :func:`seeds_needed` says a check would become: its own outcome, or "does not
#: discriminate" when it would hold and so would its negative control.
_WOULD = {HOLDS: "hold", FAILS: "fail", NOT_DISCRIMINATING: "not discriminate (its negative control would pass too)"}


def seeds_needed(check: Check, result: "CheckResult | Mapping", values: Sequence[float],
                 control_values: Sequence[float] = (), confidence: float = 0.95) -> tuple[Power, str] | None:
    """The power estimate that matters for an unsettled check, and what it would then say
    (a key of ``_WOULD``): its own estimate; when it would hold but its negative control is
    unsettled, the larger of its own and the control's (both must settle: the check discriminates
    only if the control fails). ``None`` when the check is settled, or when its precondition, not
    its spread, leaves it open."""
    get = (lambda k: result.get(k)) if isinstance(result, Mapping) else (lambda k: getattr(result, k))
    if get("status") != UNSETTLED or "[precondition" in (get("rule") or ""):
        return None
    own = power(check, values, confidence)
    ctl = get("control") or {}
    if own.n_needed is None or own.outcome != HOLDS or ctl.get("status") != UNSETTLED:
        return own, own.outcome
    other = power(check, control_values, confidence)
    if other.n_needed is None:
        return other, ""
    worse = other if other.n_needed > own.n_needed else own
    return worse, (NOT_DISCRIMINATING if other.outcome == HOLDS else HOLDS)


def seeds_to_settle(claim: "Claim", results: Sequence["CheckResult | Mapping"],
                    measurements: Mapping[str, Sequence[float]]) -> tuple[int | None, list[str]]:
    """What more seeds would do for a judged claim: the most seeds any unsettled check needs
    (``None`` when no check is unsettled, or when one cannot be settled by seeds at all), and
    one sentence per unsettled check: how many, which way it would go, and the arithmetic.

    >>> c = Claim("x", "s", "sec", "m", Criterion((Check("g", ">=", 1.0, "gain"),)))
    >>> j = judge(c, {"g": [0.0, 4.0, 2.0, 6.0]})
    >>> n, texts = seeds_to_settle(c, j.checks, {"g": [0.0, 4.0, 2.0, 6.0]}); n, texts[0][:30]
    (9, 'g: about 9, and it would hold ')
    """
    get = lambda r, k: r.get(k) if isinstance(r, Mapping) else getattr(r, k)  # noqa: E731
    needed: list[int | None] = []
    texts: list[str] = []
    for result in results:
        if get(result, "status") != UNSETTLED:
            continue
        check = next((k for k in claim.criterion.checks if k.metric == get(result, "metric")), None)
        if check is None:
            continue
        found = seeds_needed(check, result, measurements.get(check.metric, ()),
                             measurements.get(check.control or "", ()), claim.criterion.confidence)
        if found is None:
            texts.append(f"{check.metric}: its precondition, not its spread, leaves it open")
            needed.append(None)
            continue
        est, would = found
        if est.n_needed is None:
            texts.append(f"{check.metric}: {est.text}")
        else:
            texts.append(f"{check.metric}: about {est.n_needed}, and it would {_WOULD.get(would, would)} "
                         f"({est.text})")
        needed.append(est.n_needed)
    most = max(needed) if needed and all(n is not None for n in needed) else None
    return most, texts


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
        raw = _finite_or_nan(measurements.get(check.metric, ()))
        zeros = sum(1 for v in raw if v == 0)
        if check.scale == "log" and 0 < zeros < len(raw):
            rule += f" [{zeros} of {len(raw)} values exactly 0, counted at the smallest positive one]"
        if status == HOLDS and check.scale == "log" and check.op != "<=" and zeros:
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
        note = AWAITING_FRESH_SEEDS
    return Judgement(c.id, verdict, results, note)


#: The judge's note on a claim whose checks all held on the seeds its changed criterion was
#: tuned on: the verdict waits for a run on fresh seeds.
AWAITING_FRESH_SEEDS = ("every check holds, but the criterion was changed after a preliminary run on these seeds: "
                        "reproduced only once it also holds on fresh seeds")


def awaiting_fresh_seeds(row: "Mapping | Judgement") -> bool:
    """Whether a judged claim (a :class:`Judgement` or a summary row) is inconclusive only
    because its changed criterion waits for fresh seeds."""
    get = (lambda k: row.get(k, "")) if isinstance(row, Mapping) else (lambda k: getattr(row, k))
    return get("verdict") == INCONCLUSIVE and (get("note") or "") == AWAITING_FRESH_SEEDS


def deciding_check(checks: Sequence["CheckResult | Mapping"]) -> "CheckResult | Mapping | None":
    """The check that decided a verdict: the first unsettled one, else the first that does not
    discriminate, else the first that failed, else the first (all held)."""
    get = lambda c, k: c.get(k) if isinstance(c, Mapping) else getattr(c, k)  # noqa: E731
    for status in (UNSETTLED, NOT_DISCRIMINATING, FAILS):
        for c in checks:
            if get(c, "status") == status:
                return c
    return checks[0] if checks else None


def reading(judgement: Judgement, measurements: Mapping[str, Sequence[float]] | None = None) -> str:
    """A plain-language account of a verdict, built from its checks: which parts of the
    claim held, which did not, which could not be settled, and which did not tell the claim
    from its negative control (always consistent with the verdict, whatever the
    measurements were); given the ``measurements``, how many seeds would settle each unsettled
    check (:func:`seeds_to_settle`)."""
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
        if c is not None and measurements is not None:
            n, texts = seeds_to_settle(c, judgement.checks, measurements)
            if texts:
                parts.append("Seeds that would settle it, if the mean and spread stayed as measured: "
                             + "; ".join(texts) + ".")
    if judgement.note:
        parts.append(judgement.note[0].upper() + judgement.note[1:] + ".")
    return " ".join(parts)


def claim(claim_id: str) -> Claim:
    """The ledger entry of ``claim_id`` (a clear error for an unknown id)."""
    try:
        return LEDGER[claim_id]
    except KeyError:
        raise KeyError(f"unknown claim id {claim_id!r}; known: {', '.join(LEDGER)}") from None


def discrimination(checks: Sequence[Mapping]) -> str:
    """"yes" if every measured negative control fails its check's rule, "no" if one passes it,
    "control unsettled" if one is neither, "not measured" when no control was measured."""
    seen = [c for c in checks if c.get("control") and c["control"].get("n", 0) > 0]
    if not seen:
        return "not measured"
    if any(c["control"]["status"] == HOLDS for c in seen):
        return "no"
    return "yes" if all(c["control"]["status"] == FAILS for c in seen) else "control unsettled"



# ----------------------------------------------------------------------------- the ledger


#: Every claim of the book, in reading order: each chapter module's ``CLAIMS``.
LEDGER: Mapping[str, Claim] = Declared(ledger)
