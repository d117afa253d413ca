"""The claims ledger, and the one function that turns measurements into a verdict.

Every claim of the article has an id (stable: used in figure ids, tests and the book), a
paraphrase, the section of the article it comes from, the metric that settles it, a
criterion written down here *before* any notebook measured it, and a **negative control**:
the nearest condition known to be wrong for the claim, measured in the same run and judged by
the same rule. A notebook computes the metrics; :func:`judge` compares them with the
criterion; nobody types a verdict.

A criterion is a list of checks, each a comparison of one metric with a threshold (or an
equivalence band, for claims that say "negligible", "about" or "doubles"). A metric is measured
once per seed; the check uses an interval that suits the quantity (its ``scale``), computed by
scipy's own rules (:func:`scipy.stats.ttest_1samp` and its ``confidence_interval``,
:func:`scipy.stats.binomtest` and its exact ``proportion_ci``):

- ``"linear"``: the mean and its two-sided Student-t interval (differences, counts); an
  infinite value (e.g. a cost ratio over an overhead of 0) is kept: the interval reaches
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
  fraction of seeds and its exact (Clopper-Pearson) interval;
- ``"exact"``: a value computed, not sampled (a configuration, a root of an equation): no
  interval; the check compares the value itself.

The interval is two-sided at 95 % for ``<=`` and ``>=``; for ``within`` it is the 90 % interval
of two one-sided tests at 5 % each (TOST, the standard equivalence test: each edge of the band
is tested on its own side). The check then says:

- ``<= t``: holds if the interval lies at or below t, fails if it lies above t;
- ``>= t``: holds if the interval lies at or above t, fails if it lies below t;
- ``within t +- m``: holds if the interval lies inside [t - m, t + m] (equivalence), fails
  if it lies wholly outside;
- anything else (the interval straddles the line, or fewer seeds than the check needs) is
  *unsettled*. A NaN value counts as not measured (it lowers the number of seeds).

A check may name a ``control`` metric: the same quantity measured on the claim's negative
control. The control is judged by the very same rule; if it *holds* too, the check does not
tell the claim from its known-wrong alternative: its status is "does not discriminate".
A control that is itself unsettled leaves a holding check unsettled.

Each check has a ``role``: an **assertion** check tests the article's own words (its
``asserts`` names the words of the claim's paraphrase it tests); a **sanity** check only shows
that the measurement works (an exact computed value, a theory line, a stack deep enough). The
verdict reads the assertion checks:

- a sanity check that fails or is unsettled leaves the claim "inconclusive at this profile"
  (the measurement was not shown to work);
- an assertion check that does not discriminate decides nothing (the book says so beside the
  verdict); if no assertion check is left, the claim is inconclusive;
- any remaining assertion check unsettled -> "inconclusive at this profile";
- every remaining assertion check holds -> "reproduced"; every one fails -> "not
  reproduced"; some hold and some fail -> "partly reproduced" (part of the article's
  assertion was refuted).

:data:`OLD_RULE` is the rule this replaced. A claim whose criterion was changed after a
preliminary run (``Claim.changes``) gets its verdict only on fresh seeds: on the seeds the
change was made on, whatever the checks give is kept as ``provisional`` and the verdict is
inconclusive, awaiting a run on fresh seeds (:mod:`initstudy.study.stability`).
"""

from __future__ import annotations

import functools
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
    "mcnemar_power",
    "mcnemar_reject_probability",
    "pilot_pairs",
    "seeds_to_settle",
    "AWAITING_FRESH_SEEDS",
    "awaiting_fresh_seeds",
    "ASSERTION",
    "SANITY",
    "ROLES",
    "OLD_RULE",
    "RULE",
    "POWER_TARGET",
    "Contrast",
    "check_level",
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

#: A check's role: it tests the article's words, or it shows that the measurement works.
ASSERTION, SANITY = "assertion", "sanity"
ROLES = (ASSERTION, SANITY)

#: The verdict rule, in words (the book prints both).
RULE = ("Only the assertion checks (those that test the article's words) decide: reproduced when every one "
        "holds, not reproduced when every one fails, partly reproduced when some hold and some fail. An "
        "assertion check whose negative control passes too decides nothing. An assertion check left "
        "unsettled, or a sanity check (one that shows the measurement works) that fails or is unsettled, "
        "leaves the claim inconclusive at this profile. An equivalence ('within') check uses two one-sided "
        "tests at 5 % each (a 90 % interval).")
#: The verdict rule before it (until December 2026).
OLD_RULE = ("Every check decided alike: any check unsettled gave inconclusive; all holding gave reproduced; all "
            "failing gave not reproduced; none holding but some not discriminating gave inconclusive; anything "
            "else, partly reproduced (so 'partly' could mean part of the assertion refuted, or nothing refuted "
            "and one check unable to tell the claim from its control). A 'within' check needed its two-sided "
            "95 % interval inside the band.")
#: The probability with which a planned number of seeds should settle a check (power).
POWER_TARGET = 0.8


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
    #: :data:`ASSERTION` (tests the article's words) or :data:`SANITY` (shows that the
    #: measurement works); only assertion checks decide the verdict.
    role: str = ASSERTION
    #: For an assertion check: the words of the claim's paraphrase (``Claim.statement``) that it
    #: tests, verbatim from the paraphrase (a test checks they are in it).
    asserts: str = ""
    #: The metric is the p-value of an exact test over the seeds (``op`` "<=", ``scale``
    #: "exact"): a p-value at or below the threshold holds (the test rejects); above it the check
    #: is unsettled, not failed (not rejecting is no evidence against the claim); the control,
    #: a placebo's p-value, fails when its test does not reject (so it discriminates).
    significance: bool = False
    #: For a significance check that is an exact McNemar test: the two per-seed yes/no metrics it
    #: compares (the first claimed yes more often), from which :func:`power` plans the seeds a run
    #: needs at a pilot's discordant rates (:func:`mcnemar_power`).
    pairs: tuple[str, str] | None = None
    #: For a significance check: the metric of the same test the other way (the second outcome
    #: yes more often). When that test rejects, the check fails: the data refute the claim's
    #: direction. Without it a significance check can hold or stay open, never fail.
    reverse: str | None = None

    def __post_init__(self):
        if self.op not in ("<=", ">=", "within"):
            raise ValueError(f"op must be '<=', '>=' or 'within', got {self.op!r}")
        if self.op == "within" and self.margin <= 0:
            raise ValueError("a 'within' check needs a positive margin")
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {', '.join(SCALES)}, got {self.scale!r}")
        if self.scale == "exact" and self.min_seeds != 1:
            object.__setattr__(self, "min_seeds", 1)
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, got {self.role!r}")
        if self.significance and (self.op != "<=" or self.scale != "exact"):
            raise ValueError("a significance check is a p-value: op '<=' and scale 'exact'")
        if (self.pairs is not None or self.reverse is not None) and not self.significance:
            raise ValueError("pairs and reverse belong to a significance check (an exact test's p-value)")

    def rule_text(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        if self.op == "within":
            rule = f"within {self.threshold:g} +- {self.margin:g}{unit}"
        else:
            rule = f"{self.op} {self.threshold:g}{unit}"
        level = "90 % CI (two one-sided tests at 5 %)" if self.op == "within" else "95 % CI"
        if self.scale == "exact":
            how = "exact value, computed once"
        elif self.scale == "binomial":
            how = f"fraction of seeds, exact binomial {level} over >= {self.min_seeds} seeds"
        else:
            kind = {"linear": "", "log": " on a log scale", "proportion": " on a logit scale"}[self.scale]
            how = f"{level}{kind} over >= {self.min_seeds} seeds"
        return f"{self.metric} {rule} ({how})"

    def text(self) -> str:
        text = f"{self.rule_text()}: {self.description}"
        if self.role == SANITY:
            text += " [sanity check: shows the measurement works]"
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
class Contrast:
    """A comparison a claim's checks make, over a parameter of its notebook: the arms it needs
    there, so that a value leaving the comparison without an arm is refused before any work
    (:func:`initstudy.chapters.wire` turns every claim's contrasts into its notebook's
    constraints). ``arms``: values a list parameter must contain; ``distinct``: how many
    different values a list parameter needs at least (two for smallest against largest, three
    for a slope); ``at_least``: the smallest value of a number parameter, or the fewest entries
    of a list (seeds, given as a count or a list).

    >>> c = Contrast("inits", "Xavier against Kaiming", arms=("xavier-normal", "kaiming-normal"))
    >>> c.missing({"inits": ["kaiming-normal"]})
    "needs 'xavier-normal' and 'kaiming-normal' among its values"
    >>> Contrast("batch_sizes", "a slope", distinct=3).missing({"batch_sizes": [8, 8, 64]})
    'needs at least 3 different values'
    >>> Contrast("seeds", "paired seeds", at_least=2).missing({"seeds": [7]})
    'needs at least 2'

    >>> c.missing({"inits": ["xavier-normal", "kaiming-normal"]}) is None
    True
    """

    param: str
    what: str
    arms: tuple = ()
    distinct: int = 0
    at_least: float | None = None

    def missing_text(self) -> str:
        """What the parameter needs, in words."""
        parts = []
        if self.arms:
            parts.append(f"needs {' and '.join(repr(a) for a in self.arms)} among its values")
        if self.distinct:
            parts.append(f"needs at least {self.distinct} different values")
        if self.at_least is not None:
            parts.append(f"needs at least {self.at_least:g}")
        return " and ".join(parts)

    def missing(self, params: Mapping) -> str | None:
        """Why the resolved ``params`` leave this contrast without an arm (what the parameter
        needs), or ``None``."""
        value = params[self.param]
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        ok = all(a in values for a in self.arms)
        ok = ok and (not self.distinct or len(set(values)) >= self.distinct)
        if self.at_least is not None:  # a number, or the length of a list (seeds given as a list)
            ok = ok and (len(values) if isinstance(value, (list, tuple)) else value) >= self.at_least
        return None if ok else self.missing_text()


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
    #: The comparisons its checks make, over its notebook's parameters: a value that leaves one
    #: without an arm is refused before any work.
    contrasts: tuple[Contrast, ...] = ()
    #: The first seed a fresh-seed run may confirm a changed criterion on: 0 means the study's
    #: fresh seeds (:data:`initstudy.study.stability.FIRST_SEED` on); a later one for a claim whose
    #: criterion changed after fresh seeds were seen (they were its pilot, no longer fresh for it).
    fresh_from: int = 0


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
    #: The check's role (:data:`ASSERTION` or :data:`SANITY`) and the interval's confidence.
    role: str = ASSERTION
    level: float = 0.95

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
    #: preliminary run, not yet confirmed on fresh seeds; assertion checks that decide nothing);
    #: empty otherwise.
    note: str = ""
    #: For a claim whose criterion changed after a preliminary run, judged on the seeds of that
    #: run: the verdict its checks give, which stands only once fresh seeds confirm it.
    provisional: str = ""

    def explanation(self) -> str:
        return "; ".join(f"{format_result(c)}: {c.status} ({c.rule})" for c in self.checks)

    def as_dict(self) -> dict:
        return {"claim_id": self.claim_id, "verdict": self.verdict, "checks": [asdict(c) for c in self.checks],
                "note": self.note, "provisional": self.provisional}


def _fmt(x: float, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "nan"
    return f"{x:.{digits}g}"


def level_text(level: float) -> str:
    """A confidence level as the book writes it.

    >>> level_text(0.9), level_text(0.95)
    ('90 %', '95 %')
    """
    return f"{100 * level:.0f} %"


def format_result(c: "CheckResult | Mapping", digits: int = 4) -> str:
    """``metric = mean [low, high], n=k``, or the exact value, or ``k/n`` for a count. The
    interval is 95 % unless marked: an equivalence check's is 90 % (:func:`check_level`).

    >>> format_result({"metric": "gap", "mean": 7.3149, "low": 2.72, "high": 11.91, "n": 3}, digits=3)
    'gap = 7.31 [2.72, 11.9], n=3'
    >>> format_result({"metric": "d", "mean": 0.5, "low": -0.6, "high": 1.6, "n": 10, "level": 0.9})
    'd = 0.5 [-0.6, 1.6] (90 %), n=10'
    """
    get = (lambda k, d=None: c.get(k, d)) if isinstance(c, Mapping) else (lambda k, d=None: getattr(c, k, d))
    _f = lambda x: _fmt(x, digits)  # noqa: E731
    scale, n = get("scale", "linear"), get("n", 0)
    if n == 0:
        return f"{get('metric')}: not measured"
    if scale == "exact":
        return f"{get('metric')} = {_f(get('mean'))} (exact)"
    level = get("level")
    mark = f" ({level_text(level)})" if isinstance(level, (int, float)) and abs(level - 0.95) > 1e-9 else ""
    if scale == "binomial":
        k = round(get("mean") * n)
        return f"{get('metric')} = {k} of {n} [{_f(get('low'))}, {_f(get('high'))}]{mark}"
    return f"{get('metric')} = {_f(get('mean'))} [{_f(get('low'))}, {_f(get('high'))}]{mark}, n={n}"


def interval(values: Sequence[float], scale: str = "linear", confidence: float = 0.95) -> tuple[int, float, float, float]:
    """``(n, centre, low, high)`` of the finite ``values`` by the rule of ``scale`` (see the
    module's docstring), at ``confidence`` (two-sided). ``centre`` is the mean (linear,
    proportion: back-transformed mean of the logits; log: geometric mean; binomial: the
    fraction; exact: the value). The t intervals are scipy's
    (``ttest_1samp(...).confidence_interval``), the binomial one its exact Clopper-Pearson
    ``binomtest(...).proportion_ci``.

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
    if len(set(vals)) == 1:  # no spread: the interval is the point (scipy's would be NaN)
        return n, float(back(mean)), float(back(mean)), float(back(mean))
    ci = stats.ttest_1samp(vals, 0.0).confidence_interval(confidence_level=confidence)
    return n, float(back(mean)), float(back(ci.low)), float(back(ci.high))


def check_level(check: "Check", confidence: float = 0.95) -> float:
    """The two-sided confidence of ``check``'s interval: ``confidence`` for ``<=`` and ``>=``;
    for ``within``, ``2 confidence - 1`` (90 % for 95 %), the interval of two one-sided tests
    at ``1 - confidence`` each (TOST).

    >>> check_level(Check("d", "within", 0.0, "eq", margin=1.0)), check_level(Check("d", ">=", 0.0, "x"))
    (0.9, 0.95)
    """
    return round(2 * confidence - 1, 12) if check.op == "within" else confidence


#: The largest number of seeds a power estimate reports; beyond it, "more than" this.
POWER_CAP = 100_000


@dataclass(frozen=True)
class Power:
    """How many seeds would settle a check with :data:`POWER_TARGET` probability, if the truth
    were a pilot's mean and spread (:func:`power`).

    ``n_now``: the pilot's seeds; ``n_needed``: the seeds a run needs; ``None`` when more seeds
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

    ci = stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
    return float(ci.low), float(ci.high)


def _t_power(check: Check, n: int, mean: float, sd: float, fwd, level: float, outcome: str) -> float:
    """The probability that ``n`` seeds drawn from a normal population with ``mean`` and ``sd``
    (on the interval's scale) give ``outcome`` for ``check``: the noncentral-t probability that
    the interval's edge clears the rule's line (for a band held, both edges: the probability
    that each clears its edge, less one, a lower bound)."""
    from scipy import stats

    df = n - 1
    tq = float(stats.t.ppf(0.5 + level / 2, df))
    nc = lambda line: (mean - line) * math.sqrt(n) / sd  # noqa: E731
    if check.op == "within":
        a, b = fwd(check.threshold - check.margin), fwd(check.threshold + check.margin)
        if outcome == HOLDS:
            return max(0.0, float(stats.nct.sf(tq, df, nc(a))) + float(stats.nct.cdf(-tq, df, nc(b))) - 1.0)
        return float(stats.nct.sf(tq, df, nc(b))) if mean > b else float(stats.nct.cdf(-tq, df, nc(a)))
    t = fwd(check.threshold)
    above = (check.op == ">=") == (outcome == HOLDS)  # the interval must lie above the line
    return float(stats.nct.sf(tq, df, nc(t))) if above else float(stats.nct.cdf(-tq, df, nc(t)))


def _binomial_power(check: Check, n: int, p: float, level: float, outcome: str) -> float:
    """The probability that ``n`` yes/no seeds with success probability ``p`` give ``outcome``
    for ``check`` (exact: the binomial probability of the counts whose Clopper-Pearson interval
    gives it)."""
    from scipy import stats

    ks = [k for k in range(n + 1) if _status(check, n, *_binomial(k, n, level)) == outcome]
    return float(sum(stats.binom.pmf(k, n, p) for k in ks))


@functools.lru_cache(maxsize=None)
def _mcnemar_min_a(m: int, alpha: float) -> int | None:
    """The fewest of ``m`` discordant pairs that must go the claim's way for the exact
    two-sided McNemar test to reject at ``alpha`` (``None``: no count of ``m`` can)."""
    from scipy.stats import binomtest

    for k in range(m // 2 + 1, m + 1):
        if binomtest(k, m, 0.5).pvalue <= alpha:
            return k
    return None


def mcnemar_reject_probability(n: int, p_a: float, p_b: float, alpha: float) -> float:
    """The probability that the exact two-sided McNemar test of ``n`` seeds rejects at ``alpha``
    in the claim's direction (more seeds with only the first outcome yes), when a seed has only
    the first yes with probability ``p_a`` and only the second with ``p_b``: the discordant
    count M ~ Binomial(n, p_a + p_b) and, given M = m, the claim's count ~ Binomial(m,
    p_a / (p_a + p_b)), summed over the counts that reject (:func:`_mcnemar_min_a`).

    >>> round(mcnemar_reject_probability(15, 0.5, 0.0, 0.05), 4)  # P(Binomial(15, 1/2) >= 6): 6 of 6 reject
    0.8491
    >>> mcnemar_reject_probability(10, 0.0, 0.3, 0.05)  # every discordant pair the other way
    0.0
    """
    from scipy.stats import binom

    q = p_a + p_b
    if q <= 0 or p_a <= 0:
        return 0.0
    total = 0.0
    for m in range(1, n + 1):
        k = _mcnemar_min_a(m, alpha)
        if k is not None:
            total += float(binom.pmf(m, n, min(q, 1.0))) * float(binom.sf(k - 1, m, p_a / q))
    return total


def mcnemar_power(check: Check, a: Sequence[float], b: Sequence[float], target: float = POWER_TARGET) -> Power:
    """The seeds a run needs for ``target`` power of ``check``'s exact McNemar test (its
    ``pairs``), at the discordant rates of a pilot's paired outcomes ``a`` and ``b`` (1.0 for
    yes; a seed missing either is dropped).

    >>> c = Check("p", "<=", 0.05, "a more often", scale="exact", significance=True, pairs=("a", "b"))
    >>> mcnemar_power(c, [1.0] * 6 + [0.0] * 6, [0.0] * 12).n_needed  # 6 of 12 pilot seeds only a
    15
    """
    pairs = [(float(x), float(y)) for x, y in zip(a, b) if not (math.isnan(float(x)) or math.isnan(float(y)))]
    n_now = len(pairs)
    if n_now == 0:
        return Power(0, None, "", float("nan"), float("nan"), "no pilot seed has both outcomes")
    only_a = sum(1 for x, y in pairs if x >= 0.5 > y)
    only_b = sum(1 for x, y in pairs if y >= 0.5 > x)
    rates = (f"of the pilot's {n_now} seeds, {only_a} had only {check.pairs[0]} and {only_b} only "
             f"{check.pairs[1]}")
    if only_a <= only_b:
        return Power(n_now, None, "", float("nan"), float("nan"),
                     f"{rates}: they do not point the claim's way, so more seeds at these rates cannot reject")
    p_a, p_b = only_a / n_now, only_b / n_now
    n = max(check.min_seeds, 2)
    for n in range(n, POWER_CAP + 1):
        prob = mcnemar_reject_probability(n, p_a, p_b, check.threshold)
        if prob >= target:
            return Power(n_now, n, HOLDS, float("nan"), float("nan"),
                         f"{rates}; at n = {n} the exact McNemar test rejects at {check.threshold:g} with probability "
                         f"{prob:.2f}")
        if n > 400:  # the probability grows slowly past here: say so rather than loop to the cap
            break
    return Power(n_now, None, HOLDS, float("nan"), float("nan"), f"{rates}: more than {n} seeds for "
                                                                f"{100 * target:.0f} % power")


def power(check: Check, values: Sequence[float], confidence: float = 0.95, target: float = POWER_TARGET,
          pairs: tuple[Sequence[float], Sequence[float]] | None = None) -> Power:
    """How many seeds a run needs so that ``check`` settles with probability ``target`` (80 %
    by default) if the truth were as ``values`` show: the per-seed values of a **pilot**, a run
    on seeds outside the run being planned (the fresh-seed run, :mod:`initstudy.study.stability`),
    never the observed effect of that run itself. ``pairs``: for a significance check with
    ``pairs``, the pilot's two per-seed outcomes (:func:`mcnemar_power`).

    For the t-interval scales (linear, log, proportion), on the interval's own scale, with the
    pilot's mean and sample standard deviation ``sd`` and the distance ``gap`` from the mean to
    the line of the rule that the interval must clear (the threshold; for ``within``, the
    nearer band edge): the smallest n (at least the check's ``min_seeds`` and 2) whose
    noncentral-t probability of clearing it is at least ``target``. For a fraction of seeds
    (binomial): the smallest n whose exact probability, summed over the counts whose
    Clopper-Pearson interval settles the check, is at least ``target``. ``outcome`` says which
    way the check would go (the side of the line the pilot's mean is on); ``None`` seeds when
    seeds cannot settle it (the mean on the line, an exact value, infinite values) or more than
    :data:`POWER_CAP` would be needed.

    >>> p = power(Check("d", ">=", 1.0, "gain"), [0.0, 4.0, 2.0, 6.0])  # mean 3, sd 2.58, gap 2
    >>> p.n_needed, p.outcome
    (16, 'holds')
    >>> power(Check("d", "<=", 3.0, "x"), [2.0, 4.0]).n_needed is None   # the mean is on the line
    True
    >>> power(Check("s", ">=", 0.5, "stalled", scale="binomial"), [1, 1, 0, 1]).n_needed
    30
    """
    raw = _finite_or_nan(values)
    n_now = len(raw)
    none = lambda why: Power(n_now, None, "", float("nan"), float("nan"), why)  # noqa: E731
    level = check_level(check, confidence)
    first = max(check.min_seeds, 2)
    if check.significance:
        if check.pairs is not None and pairs is not None:
            return mcnemar_power(check, *pairs, target=target)
        return none("an exact test's p-value: its seeds are planned in the chapter (the fewest discordant pairs "
                    "that can reject)")
    if check.scale == "exact":
        return none("an exact value: more seeds do not change it")
    if n_now == 0:
        return none("no pilot values")
    if any(math.isinf(v) for v in raw):
        return none("infinite values: no spread to project from")
    if n_now < 2:
        return none("one pilot measurement: no spread to project from")
    if check.scale == "log" and check.op != "<=" and any(v == 0 for v in raw):
        return none("a pilot seed is exactly 0 (an underflow, below any band): the check stays open whatever the seeds")
    pct = f"{100 * target:.0f} %"
    if check.scale == "binomial":
        p = sum(1 for v in raw if v >= 0.5) / n_now
        t = check.threshold
        if check.op == "within":
            inside = t - check.margin <= p <= t + check.margin
            outcome = HOLDS if inside else FAILS
        elif p == t:
            return none(f"the pilot's fraction {p:.3g} is on the threshold {t:g}: more seeds cannot settle it")
        else:
            outcome = HOLDS if (p < t) == (check.op == "<=") else FAILS
        if p in (0.0, 1.0) and outcome == HOLDS:  # every pilot seed alike: the fewest seeds whose count settles it
            for n in range(first, 5001):
                if _status(check, n, *_binomial(round(p * n), n, level)) == outcome:
                    return Power(n_now, n, outcome, float("nan"), abs(p - t),
                                 f"every pilot seed gave {p:g}: {n} such seeds settle it")
            return none("more than 5000 at the pilot's fraction")
        for n in range(first, 5001):
            prob = _binomial_power(check, n, p, level, outcome)
            if prob >= target:
                return Power(n_now, n, outcome, float("nan"), abs(p - t),
                             f"at the pilot's fraction {p:.3g} ({n_now} seeds), n = {n} settles it with "
                             f"probability {prob:.2f} (exact binomial, Clopper-Pearson interval)")
        return none(f"more than 5000 at the pilot's fraction {p:.3g}")
    if len(set(raw)) == 1 or (check.scale == "log" and not any(v > 0 for v in raw)):
        status = _status(check, first, raw[0], raw[0])  # no spread: the point itself
        if status != UNSETTLED:
            return Power(n_now, first, status, 0.0, float("nan"),
                         f"the same value in every pilot seed: {first} settle it")
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
    if not math.isfinite(sd) or sd == 0:
        return none("the pilot's spread is not finite: nothing to project from")
    if gap <= 0 or not math.isfinite(gap):
        return none(f"the pilot's mean{on} is on {line}: more seeds cannot settle it")

    def prob(n: int) -> float:
        return _t_power(check, n, mean, sd, fwd, level, outcome)

    # the probability grows with n: double until it reaches the target, then bisect
    hi = first
    while prob(hi) < target:
        hi *= 2
        if hi > POWER_CAP:
            return Power(n_now, None, outcome, sd, gap, f"pilot sd{on} {sd:.3g} ({n_now} seeds); the mean lies "
                                                        f"{gap:.4g} from {line}: more than {POWER_CAP:,} for {pct} power")
    lo = max(first, hi // 2)
    while lo < hi:
        mid = (lo + hi) // 2
        if prob(mid) >= target:
            hi = mid
        else:
            lo = mid + 1
    return Power(n_now, hi, outcome, sd, gap,
                 f"pilot sd{on} {sd:.3g} ({n_now} seeds); its mean lies {gap:.4g} from {line}; at n = {hi} the "
                 f"{100 * level:.0f} % interval clears it with probability {prob(hi):.2f} (noncentral t; "
                 f"{pct} power)")


#: What :func:`seeds_needed` says a check would become: its own outcome, or "does not
#: discriminate" when it would hold and so would its negative control.
_WOULD = {HOLDS: "hold", FAILS: "fail", NOT_DISCRIMINATING: "not discriminate (its negative control would pass too)"}


def pilot_pairs(check: Check, measurements: Mapping[str, Sequence[float]]
                ) -> tuple[Sequence[float], Sequence[float]] | None:
    """A pilot's two outcomes of a McNemar check (its ``pairs``), or ``None``."""
    if check.pairs is None or not all(m in measurements for m in check.pairs):
        return None
    return measurements[check.pairs[0]], measurements[check.pairs[1]]


def seeds_needed(check: Check, result: "CheckResult | Mapping", values: Sequence[float],
                 control_values: Sequence[float] = (), confidence: float = 0.95,
                 pairs: tuple[Sequence[float], Sequence[float]] | None = None) -> tuple[Power, str] | None:
    """The power estimate that matters for a check that a run left unsettled (``result``), from
    a pilot's ``values`` (and its ``control_values``): what it would then say (a key of
    ``_WOULD``): its own estimate; when it would hold but the run left its negative control
    unsettled, the larger of its own and the control's (both must settle: the check
    discriminates only if the control fails). ``None`` when the check is settled, or when its
    precondition, not its spread, leaves it open."""
    get = (lambda k: result.get(k)) if isinstance(result, Mapping) else (lambda k: getattr(result, k))
    if get("status") != UNSETTLED or "[precondition" in (get("rule") or ""):
        return None
    own = power(check, values, confidence, pairs=pairs)
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
    """What more seeds would do for a judged claim, planned from a pilot: for each check the
    run left unsettled (``results``), the seeds a run needs for :data:`POWER_TARGET` power at
    the pilot's mean and spread (``measurements``: the pilot's per-seed values, from seeds
    outside the run, never the run's own). Returns the most seeds any of them needs (``None``
    when none is unsettled, or when one cannot be settled by seeds at all) and one sentence per
    unsettled check: how many, which way it would go, and the arithmetic.

    >>> c = Claim("x", "s", "sec", "m", Criterion((Check("g", ">=", 1.0, "gain"),)))
    >>> j = judge(c, {"g": [0.0, 4.0, -2.0, 6.0]})
    >>> n, texts = seeds_to_settle(c, j.checks, {"g": [0.0, 4.0, 2.0, 6.0]}); n, texts[0][:31]
    (16, 'g: about 16, and it would hold ')
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
                             measurements.get(check.control or "", ()), claim.criterion.confidence,
                             pairs=pilot_pairs(check, measurements))
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
    level = check_level(check, confidence)
    n, mean, low, high = interval(measurements.get(check.metric, ()), check.scale, level)
    rule = check.rule_text()
    if n == 0:
        status = UNSETTLED
        rule += " [not measured at this profile]"
    elif check.requires is not None and _check(check.requires, measurements, confidence).status != HOLDS:
        status = UNSETTLED
        rule += f" [precondition {check.requires.rule_text()} not met]"
    else:
        status = _status(check, n, low, high)
        if check.significance and status == FAILS:
            back = _finite_or_nan(measurements.get(check.reverse, ())) if check.reverse else []
            if back and max(back) <= check.threshold:  # the same test rejects the other way
                rule += f" [the test the other way ({check.reverse}) rejects: refuted]"
                placebo = _finite_or_nan(measurements.get(check.control or "", ()))
                if placebo and max(placebo) <= check.threshold:  # its placebo rejects too: nothing refuted
                    status = NOT_DISCRIMINATING
            else:
                status = UNSETTLED  # the test did not reject: the claim is not shown, nor refuted
                rule += " [the test did not reject at this number of seeds: not shown, not refuted]"
        raw = _finite_or_nan(measurements.get(check.metric, ()))
        zeros = sum(1 for v in raw if v == 0)
        if check.scale == "log" and 0 < zeros < len(raw):
            rule += f" [{zeros} of {len(raw)} values exactly 0, counted at the smallest positive one]"
        if status == HOLDS and check.scale == "log" and check.op != "<=" and zeros:
            status = UNSETTLED  # an underflowed seed is below any band: it cannot support ">=" or "within"
            rule += " [a seed is exactly 0]"
    control = None
    if check.control:
        cn, cmean, clow, chigh = interval(measurements.get(check.control, ()), check.scale, level)
        control = {"metric": check.control, "status": _status(check, cn, clow, chigh) if cn else "not measured",
                   "n": cn, "mean": cmean, "low": clow, "high": chigh, "scale": check.scale, "level": level}
        if status == HOLDS and control["status"] == HOLDS:
            status = NOT_DISCRIMINATING
        elif status == HOLDS and control["status"] == UNSETTLED:
            status = UNSETTLED  # the check holds, but whether its control fails is not settled
            rule += " [negative control unsettled]"
    return CheckResult(check.metric, status, n, mean, low, high, rule, check.scale, control, check.role, level)


def _verdict(results: Sequence[CheckResult]) -> tuple[str, str]:
    """The verdict the checks give by :data:`RULE`, and why when it is not what the assertion
    checks alone say (a sanity check failed or is open; assertion checks that decide nothing)."""
    sanity = [r for r in results if r.role == SANITY]
    assertion = [r for r in results if r.role != SANITY]
    bad = [r.metric for r in sanity if r.status in (FAILS, UNSETTLED)]
    idle = [r.metric for r in assertion if r.status == NOT_DISCRIMINATING]
    notes = []
    if idle:
        notes.append(f"{' and '.join(idle)} {'does' if len(idle) == 1 else 'do'} not tell the claim from "
                     f"{'its' if len(idle) == 1 else 'their'} negative control and "
                     f"{'decides' if len(idle) == 1 else 'decide'} nothing")
    if bad:
        notes.append(f"the sanity check{'s' if len(bad) > 1 else ''} {' and '.join(bad)} "
                     f"(showing the measurement works) did not hold, so the assertion checks cannot be read")
        return INCONCLUSIVE, "; ".join(notes)
    deciding = [r.status for r in assertion if r.status != NOT_DISCRIMINATING]
    if not deciding:
        notes.append("no assertion check tells the claim from its negative control")
        return INCONCLUSIVE, "; ".join(notes)
    if UNSETTLED in deciding:
        verdict = INCONCLUSIVE
    elif all(st == HOLDS for st in deciding):
        verdict = REPRODUCED
    elif all(st == FAILS for st in deciding):
        verdict = NOT_REPRODUCED
    else:
        verdict = PARTLY
    return verdict, "; ".join(notes)


def judge(claim_or_id: "Claim | str", measurements: Mapping[str, Sequence[float]],
          fresh_seeds: bool = True) -> Judgement:
    """Turn per-seed measurements into a verdict by the claim's written criterion and
    :data:`RULE`.

    ``measurements`` maps each check's metric name (and its control's) to its per-seed
    values. A missing metric makes its check unsettled (and so the verdict inconclusive).

    ``fresh_seeds``: whether these seeds are disjoint from those the criterion was tuned on.
    A claim whose criterion was changed after a preliminary run (``Claim.changes``) gets a
    verdict only on fresh seeds: on the tuning seeds the verdict is "inconclusive at this
    profile", with what the checks give kept in ``provisional`` and the reason in ``note``.

    >>> c = Claim("x", "s", "sec", "m", Criterion((Check("a", ">=", 1.0, "a is large", min_seeds=2),)))
    >>> judge(c, {"a": [2.0, 2.1, 1.9]}).verdict
    'reproduced'
    """
    c = LEDGER[claim_or_id] if isinstance(claim_or_id, str) else claim_or_id
    results = [_check(chk, measurements, c.criterion.confidence) for chk in c.criterion.checks]
    verdict, note = _verdict(results)
    provisional = ""
    if c.changes and not fresh_seeds:
        provisional, verdict = verdict, INCONCLUSIVE
        note = AWAITING_FRESH_SEEDS + (f"; {note}" if note else "")
    return Judgement(c.id, verdict, results, note, provisional)


#: The judge's note on a claim whose criterion changed after a preliminary run, judged on the
#: seeds of that run: its verdict waits for a run on fresh seeds.
AWAITING_FRESH_SEEDS = ("the criterion was changed after a preliminary run on these seeds: its verdict stands only "
                        "once a run on fresh seeds confirms it")


def awaiting_fresh_seeds(row: "Mapping | Judgement") -> bool:
    """Whether a judged claim (a :class:`Judgement` or a summary row) is inconclusive only
    because its changed criterion waits for fresh seeds."""
    get = (lambda k: row.get(k, "")) if isinstance(row, Mapping) else (lambda k: getattr(row, k))
    return get("verdict") == INCONCLUSIVE and (get("note") or "").startswith(AWAITING_FRESH_SEEDS)


def deciding_check(checks: Sequence["CheckResult | Mapping"]) -> "CheckResult | Mapping | None":
    """The check that decided a verdict by :data:`RULE`: a sanity check that failed or is open;
    else, among the assertion checks that discriminate, the first unsettled one, else the first
    that failed, else the first (all held); else (no assertion check discriminates) the first
    assertion check."""
    get = lambda c, k: c.get(k) if isinstance(c, Mapping) else getattr(c, k, None)  # noqa: E731
    role = lambda c: get(c, "role") or ASSERTION  # noqa: E731
    for c in checks:
        if role(c) == SANITY and get(c, "status") in (FAILS, UNSETTLED):
            return c
    assertion = [c for c in checks if role(c) != SANITY]
    live = [c for c in assertion if get(c, "status") != NOT_DISCRIMINATING]
    for status in (UNSETTLED, FAILS):
        for c in live:
            if get(c, "status") == status:
                return c
    if live:
        return live[0]
    return assertion[0] if assertion else (checks[0] if checks else None)


def reading(judgement: Judgement, measurements: Mapping[str, Sequence[float]] | None = None) -> str:
    """A plain-language account of a verdict, built from its checks: which parts of the
    claim held, which did not, which could not be settled, and which did not tell the claim
    from its negative control (always consistent with the verdict, whatever the
    measurements were); given a pilot's ``measurements`` (seeds outside the judged run), how
    many seeds a run would need to settle each unsettled check (:func:`seeds_to_settle`)."""
    c = LEDGER.get(judgement.claim_id)
    descriptions = {chk.metric: chk.description for chk in c.criterion.checks} if c else {}
    groups: dict[str, list[str]] = {HOLDS: [], FAILS: [], UNSETTLED: [], NOT_DISCRIMINATING: []}
    for r in judgement.checks:
        what = descriptions.get(r.metric, r.metric)
        text = f"{what} ({format_result(r)})" + (" [sanity check]" if r.role == SANITY else "")
        if r.status == NOT_DISCRIMINATING:
            text += f", but the negative control passes the same check ({format_result(r.control)})"
        elif r.status == UNSETTLED and "negative control unsettled" in r.rule and r.control:
            text += f": it holds, but its negative control neither passes nor fails ({format_result(r.control)})"
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
                parts.append(f"Seeds a run would need ({100 * POWER_TARGET:.0f} % power at a pilot's mean and "
                             "spread): " + "; ".join(texts) + ".")
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
