import math
import re

import pytest

from initstudy.study import catalog, claims, summary
from initstudy.study.claims import Check, Claim, Criterion, judge

#: The ledger's ids as the chapters declare them, in reading order.
STUDY_IDS = [cid for spec in catalog.NOTEBOOKS.values() for cid in spec.claims]


def two_checks(**kw):
    return Claim("t", "statement", "section", "metric", Criterion((
        Check("a", ">=", 1.0, "a is at least 1", **kw),
        Check("b", "<=", 0.5, "b is at most 0.5", **kw),
    )))


def test_reproduced():
    j = judge(two_checks(), {"a": [2.0, 2.1, 1.9], "b": [0.1, 0.2, 0.15]})
    assert j.verdict == claims.REPRODUCED
    assert [c.status for c in j.checks] == ["holds", "holds"]


def test_not_reproduced():
    j = judge(two_checks(), {"a": [0.1, 0.2, 0.15], "b": [2.0, 2.1, 1.9]})
    assert j.verdict == claims.NOT_REPRODUCED


def test_partly_reproduced():
    j = judge(two_checks(), {"a": [2.0, 2.1, 1.9], "b": [2.0, 2.1, 1.9]})
    assert j.verdict == claims.PARTLY


def test_inconclusive_when_the_interval_straddles_the_threshold():
    j = judge(two_checks(), {"a": [0.5, 1.5, 1.0, 1.2], "b": [0.1, 0.1, 0.1, 0.1]})
    assert j.verdict == claims.INCONCLUSIVE
    assert j.checks[0].status == "unsettled" and j.checks[1].status == "holds"


def test_inconclusive_with_too_few_seeds_or_a_missing_metric():
    assert judge(two_checks(), {"a": [2.0, 2.0], "b": [0.1, 0.1]}).verdict == claims.INCONCLUSIVE
    assert judge(two_checks(min_seeds=2), {"a": [2.0, 2.0], "b": [0.1, 0.1]}).verdict == claims.REPRODUCED
    assert judge(two_checks(), {"a": [2.0, 2.1, 1.9]}).verdict == claims.INCONCLUSIVE


def test_confidence_interval_literal():
    # values 1, 2, 3, 2: mean 2, sd sqrt(2/3), n 4; half-width t(0.975, 3) * sd / sqrt(4)
    j = judge(two_checks(), {"a": [1.0, 2.0, 3.0, 2.0], "b": [0.0] * 4})
    sd = (2 / 3) ** 0.5
    half = 3.182446305284263 * sd / 2
    assert j.checks[0].mean == 2.0
    assert j.checks[0].low == pytest.approx(2.0 - half) and j.checks[0].high == pytest.approx(2.0 + half)


def test_equivalence_margin():
    claim = Claim("n", "s", "sec", "m", Criterion((Check("d", "within", 0.0, "negligible", margin=0.5),)))
    assert judge(claim, {"d": [0.1, -0.1, 0.0, 0.05]}).verdict == claims.REPRODUCED
    assert judge(claim, {"d": [2.0, 2.1, 1.9]}).verdict == claims.NOT_REPRODUCED
    # not significantly different from 0, but too noisy to be within the margin: not "negligible"
    assert judge(claim, {"d": [1.0, -1.0, 0.8, -0.9]}).verdict == claims.INCONCLUSIVE


def test_precondition_unmet_makes_it_inconclusive():
    check = Check("gap", ">=", 10.0, "gap", requires=Check("control", ">=", 0.5, "control learned"))
    claim = Claim("p", "s", "sec", "m", Criterion((check,)))
    ok = {"gap": [50.0, 51.0, 52.0], "control": [0.8, 0.8, 0.8]}
    assert judge(claim, ok).verdict == claims.REPRODUCED
    j = judge(claim, {**ok, "control": [0.2, 0.2, 0.2]})
    assert j.verdict == claims.INCONCLUSIVE and "precondition" in j.checks[0].rule


def test_check_validation():
    with pytest.raises(ValueError):
        Check("a", "==", 1.0, "x")
    with pytest.raises(ValueError):
        Check("a", "within", 1.0, "x")


def test_ledger_has_every_claim_of_the_study():
    assert list(claims.LEDGER) == STUDY_IDS and len(set(STUDY_IDS)) == len(STUDY_IDS) >= 16
    for c in claims.LEDGER.values():
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", c.id), c.id  # stable ids: figure ids and links use them
        assert c.criterion.checks and c.notebook and c.article_section and c.metric
        assert c.id in catalog.NOTEBOOKS[c.notebook].claims
    with pytest.raises(KeyError, match="unknown claim id"):
        claims.claim("nope")


def test_summary_lists_every_claim(tmp_path):
    (tmp_path / "zero_init").mkdir()
    row = {"id": "zero-symmetry", "verdict": claims.REPRODUCED, "explanation": "", "criterion": "",
           "checks": [{"metric": "m", "mean": 1.0, "low": 0.5, "high": 1.5, "n": 3, "status": "holds"}],
           "measurements": {},
           "profile": "cpu", "seeds": [0, 1, 2], "notebook": "zero_init", "figures": []}
    (tmp_path / "zero_init" / "claims.json").write_text(__import__("json").dumps([row]))
    rows = summary.write_summary(tmp_path)
    assert [r["id"] for r in rows] == STUDY_IDS
    by_id = {r["id"]: r for r in rows}
    assert by_id["zero-symmetry"]["verdict"] == claims.REPRODUCED
    assert by_id["zero-symmetry"]["key_number"] == "m = 1 [0.5, 1.5], n=3"
    assert by_id["lsuv-cheap"]["verdict"] == claims.NOT_MEASURED
    assert (tmp_path / "claims.json").is_file() and (tmp_path / "claims.csv").is_file()


# ------------------------------------------------------------------ intervals that fit the quantity


def test_log_scale_interval_is_geometric_and_positive():
    # log10 values -2, -1, 0: mean -1, sd 1, n 3; half-width t(0.975, 2) / sqrt(3)
    n, centre, low, high = claims.interval([0.01, 0.1, 1.0], "log")
    half = 4.302652729911275 / 3 ** 0.5
    assert n == 3 and centre == pytest.approx(0.1)
    assert low == pytest.approx(10 ** (-1 - half)) and high == pytest.approx(10 ** (-1 + half))
    assert low > 0  # a linear t interval of the same values goes below 0
    assert claims.interval([0.01, 0.1, 1.0])[2] < 0


def test_log_scale_zero_counts_as_the_smallest_other_value():
    assert claims.interval([0.0, 1e-6, 1e-6], "log")[1] == pytest.approx(1e-6)
    assert claims.interval([0.0, 0.0], "log") == (2, 0.0, 0.0, 0.0)


def test_proportion_interval_stays_inside_0_1():
    n, centre, low, high = claims.interval([0.1, 0.1, 0.1, 0.1, 0.9], "proportion")
    assert 0 < low < centre < high < 1


def test_binomial_interval_is_clopper_pearson():
    # 4 of 5: Clopper-Pearson 95 % [Beta(0.025; 4, 2), Beta(0.975; 5, 1)] = [0.2836, 0.9949]
    n, frac, low, high = claims.interval([1, 1, 1, 1, 0], "binomial")
    assert (n, frac) == (5, 0.8)
    assert low == pytest.approx(0.28358, abs=1e-4) and high == pytest.approx(0.99495, abs=1e-4)
    assert claims.interval([1] * 5, "binomial")[3] == 1.0 and claims.interval([0] * 5, "binomial")[2] == 0.0


def test_one_measurement_gives_no_interval_unless_exact():
    n, centre, low, high = claims.interval([5.0])
    assert n == 1 and centre == 5.0 and low != low and high != high  # NaN: no interval
    assert claims.interval([5.986], "exact") == (1, 5.986, 5.986, 5.986)
    claim = Claim("e", "s", "sec", "m", Criterion((Check("z", "within", 6.0, "near 6", margin=0.5, scale="exact"),)))
    assert judge(claim, {"z": [5.986]}).verdict == claims.REPRODUCED
    sampled = Claim("e", "s", "sec", "m", Criterion((Check("z", "within", 6.0, "near 6", margin=0.5, min_seeds=1),)))
    assert judge(sampled, {"z": [5.986]}).verdict == claims.INCONCLUSIVE


def test_scale_validation():
    with pytest.raises(ValueError, match="scale"):
        Check("a", "<=", 1.0, "x", scale="sqrt")


# ------------------------------------------------------------------ negative controls


def controlled(**kw):
    return Claim("c", "s", "sec", "m", Criterion((Check("r", "<=", 0.5, "shrinks", control="r_ctl", **kw),)))


def test_a_control_that_fails_the_rule_makes_the_check_discriminate():
    j = judge(controlled(), {"r": [0.1, 0.12, 0.11], "r_ctl": [0.9, 1.0, 0.95]})
    assert j.verdict == claims.REPRODUCED and j.checks[0].discriminates is True
    assert j.checks[0].control["status"] == claims.FAILS


def test_a_control_that_passes_the_rule_does_not_discriminate():
    j = judge(controlled(), {"r": [0.1, 0.12, 0.11], "r_ctl": [0.38, 0.37, 0.39]})
    assert j.checks[0].status == claims.NOT_DISCRIMINATING and j.checks[0].discriminates is False
    # no assertion check that discriminates is left: the criterion cannot tell, whatever the claim's value
    assert j.verdict == claims.INCONCLUSIVE and "no assertion check tells the claim" in j.note
    assert "decides nothing" in j.note and "Does not discriminate" in claims.reading(j)
    two = Claim("c2", "s", "sec", "m", Criterion((Check("r", "<=", 0.5, "shrinks", control="r_ctl"),
                                                  Check("g", ">=", 1.0, "gap"))))
    ctl = {"r": [0.1, 0.12, 0.11], "r_ctl": [0.38, 0.37, 0.39]}
    # a check that does not discriminate decides nothing: the other check alone decides, and the note says so
    j = judge(two, {**ctl, "g": [5.0, 6.0, 5.5]})
    assert j.verdict == claims.REPRODUCED and "r does not tell the claim from its negative control" in j.note
    assert judge(two, {**ctl, "g": [0.1, 0.2, 0.1]}).verdict == claims.NOT_REPRODUCED


def test_an_unsettled_control_leaves_the_check_unsettled():
    j = judge(controlled(), {"r": [0.1, 0.12, 0.11], "r_ctl": [0.2, 0.9, 0.5]})
    assert j.checks[0].status == claims.UNSETTLED and "control unsettled" in j.checks[0].rule
    assert j.checks[0].discriminates is None and j.verdict == claims.INCONCLUSIVE
    assert claims.discrimination([vars(c) for c in j.checks]) == "control unsettled"


def test_infinite_values_are_kept_and_can_only_fail_a_check():
    c = Claim("i", "s", "sec", "m", Criterion((Check("f", "<=", 0.1, "cheap", scale="log"),)))
    n, centre, low, high = claims.interval([0.05, 0.04, float("inf")], "log")
    assert n == 3 and high == float("inf") and centre == float("inf")
    assert judge(c, {"f": [0.05, 0.04, float("inf")]}).verdict == claims.INCONCLUSIVE
    assert judge(c, {"f": [float("inf")] * 3}).verdict == claims.NOT_REPRODUCED


def test_an_exact_zero_cannot_support_a_lower_bound_on_a_log_scale():
    c = Claim("z", "s", "sec", "m", Criterion((Check("g", ">=", 1e-6, "non-zero", scale="log"),)))
    assert judge(c, {"g": [1e-3, 2e-3, 1e-3]}).verdict == claims.REPRODUCED
    assert judge(c, {"g": [0.0, 2e-3, 1e-3]}).verdict == claims.INCONCLUSIVE


def test_a_missing_control_is_reported_not_assumed():
    j = judge(controlled(), {"r": [0.1, 0.12, 0.11]})
    assert j.verdict == claims.REPRODUCED and j.checks[0].discriminates is None
    assert claims.discrimination([vars(c) for c in j.checks]) == "not measured"


def test_every_claim_of_the_ledger_has_a_negative_control():
    for c in claims.LEDGER.values():
        assert c.control, c.id
        assert any(chk.control for chk in c.criterion.checks), c.id


def test_a_changed_criterion_is_reproduced_only_on_fresh_seeds():
    changed = Claim("t", "s", "sec", "m", Criterion((Check("a", ">=", 1.0, "a"),)),
                    changes=(("old", "new", "why"),))
    data = {"a": [2.0, 2.1, 1.9]}
    assert judge(changed, data, fresh_seeds=True).verdict == claims.REPRODUCED
    j = judge(changed, data, fresh_seeds=False)
    assert j.verdict == claims.INCONCLUSIVE and "fresh seeds" in j.note and j.provisional == claims.REPRODUCED
    # whatever the checks give, a changed criterion waits for fresh seeds (not only a would-be "reproduced")
    j = judge(changed, {"a": [0.1, 0.2, 0.15]}, fresh_seeds=False)
    assert j.verdict == claims.INCONCLUSIVE and j.provisional == claims.NOT_REPRODUCED
    assert claims.awaiting_fresh_seeds(j)
    assert judge(two_checks(), {"a": [2.0, 2.1, 1.9], "b": [0.1, 0.2, 0.15]}, fresh_seeds=False).verdict == \
        claims.REPRODUCED  # an unchanged criterion needs no confirmation


def test_the_deciding_check_is_the_unsettled_or_failing_one():
    j = judge(two_checks(), {"a": [2.0, 2.1, 1.9], "b": [0.5, 1.5, 1.0, 1.2]})
    assert claims.deciding_check(j.checks).metric == "b"  # held before it, unsettled: b decides
    j = judge(two_checks(), {"a": [2.0, 2.1, 1.9], "b": [2.0, 2.1, 1.9]})
    assert claims.deciding_check(j.checks).metric == "b"  # held before it, failed: b decides
    j = judge(two_checks(), {"a": [0.1, 0.2, 0.15], "b": [0.1, 0.2, 0.15]})
    assert claims.deciding_check(j.checks).metric == "a"
    j = judge(two_checks(), {"a": [2.0, 2.1, 1.9], "b": [0.1, 0.2, 0.15]})
    assert claims.deciding_check(j.checks).metric == "a"  # all held: the first
    rows = [{"metric": "f", "status": "fails"}, {"metric": "d", "status": claims.NOT_DISCRIMINATING},
            {"metric": "u", "status": "unsettled"}]
    assert claims.deciding_check(rows)["metric"] == "u"  # unsettled first, then failing
    assert claims.deciding_check(rows[:2])["metric"] == "f"  # a check that does not discriminate decides nothing
    assert claims.deciding_check(rows[1:2])["metric"] == "d"  # unless nothing else is left
    sanity = [{"metric": "a", "status": "holds"}, {"metric": "s", "status": "fails", "role": claims.SANITY}]
    assert claims.deciding_check(sanity)["metric"] == "s"  # a failing sanity check decides first


# ------------------------------------------------------------------ the verdict reads the assertion checks


def roles(**kw):
    return Claim("r", "statement", "section", "metric", Criterion((
        Check("a", ">=", 1.0, "the article's words", asserts="statement"),
        Check("s", ">=", 1.0, "the measurement works", role=claims.SANITY),
        Check("b", "<=", 0.5, "more of the article's words", asserts="statement"),
    )))


def test_only_assertion_checks_decide_and_a_failing_sanity_check_leaves_it_open():
    good, bad = [2.0, 2.1, 1.9], [0.1, 0.2, 0.15]
    assert judge(roles(), {"a": good, "s": good, "b": bad}).verdict == claims.REPRODUCED
    assert judge(roles(), {"a": bad, "s": good, "b": good}).verdict == claims.NOT_REPRODUCED
    assert judge(roles(), {"a": good, "s": good, "b": good}).verdict == claims.PARTLY  # part refuted
    j = judge(roles(), {"a": good, "s": bad, "b": bad})  # the measurement was not shown to work
    assert j.verdict == claims.INCONCLUSIVE and "sanity check s" in j.note
    assert judge(roles(), {"a": good, "s": [0.5, 1.5, 1.0, 1.2], "b": bad}).verdict == claims.INCONCLUSIVE
    assert judge(roles(), {"a": [0.5, 1.5, 1.0, 1.2], "s": good, "b": bad}).verdict == claims.INCONCLUSIVE


def test_the_rules_are_written_down_old_and_new():
    assert "assertion" in claims.RULE and "two one-sided tests" in claims.RULE
    assert "partly" in claims.OLD_RULE and "95 %" in claims.OLD_RULE


def test_every_assertion_check_names_the_article_words_it_tests():
    """Marked from the claim's wording: the words an assertion check tests are the paraphrase's own."""
    for c in claims.LEDGER.values():
        assertion = [k for k in c.criterion.checks if k.role == claims.ASSERTION]
        assert assertion, f"{c.id}: no check tests the article's words"
        for k in assertion:
            assert k.asserts and k.asserts in c.statement, (c.id, k.metric, k.asserts)
        for k in c.criterion.checks:  # every sampled assertion check has a control that can fail it
            assert k.role == claims.SANITY or k.scale == "exact" or k.control, (c.id, k.metric)


# ------------------------------------------------------------------ intervals are scipy's


LITERAL = [0.31, 0.12, 0.44, 0.27, 0.35, 0.18]


def test_the_t_interval_is_scipys():
    from scipy import stats

    for level in (0.95, 0.90):
        ci = stats.ttest_1samp(LITERAL, 0.0).confidence_interval(confidence_level=level)
        n, mean, low, high = claims.interval(LITERAL, "linear", level)
        assert (n, low, high) == (6, pytest.approx(ci.low), pytest.approx(ci.high))
    logs = [math.log10(v) for v in LITERAL]
    ci = stats.ttest_1samp(logs, 0.0).confidence_interval()
    assert claims.interval(LITERAL, "log")[2:] == (pytest.approx(10 ** ci.low), pytest.approx(10 ** ci.high))
    logits = [math.log(v / (1 - v)) for v in LITERAL]
    ci = stats.ttest_1samp(logits, 0.0).confidence_interval()
    expit = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    assert claims.interval(LITERAL, "proportion")[2:] == (pytest.approx(expit(ci.low)), pytest.approx(expit(ci.high)))


def test_the_binomial_interval_is_scipys_exact_one():
    from scipy import stats

    for k, n in ((0, 5), (3, 7), (6, 6), (4, 10)):
        ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
        got = claims.interval([1.0] * k + [0.0] * (n - k), "binomial")
        assert got[2:] == (pytest.approx(ci.low), pytest.approx(ci.high)), (k, n)


def test_an_equivalence_check_is_two_one_sided_tests():
    """A 'within' check holds when the 90 % interval lies inside the band: each edge tested at 5 %."""
    from scipy import stats

    band = Claim("e", "s", "sec", "m", Criterion((Check("d", "within", 0.0, "negligible", margin=0.3),)))
    values = [0.05, -0.2, 0.15, 0.1, -0.05, 0.2, -0.1, 0.12]
    ci90 = stats.ttest_1samp(values, 0.0).confidence_interval(confidence_level=0.90)
    ci95 = stats.ttest_1samp(values, 0.0).confidence_interval(confidence_level=0.95)
    j = judge(band, {"d": values})
    assert (j.checks[0].low, j.checks[0].high) == (pytest.approx(ci90.low), pytest.approx(ci90.high))
    assert j.checks[0].level == pytest.approx(0.9) and "two one-sided tests" in j.checks[0].rule
    # both one-sided t tests reject at 5 %: the check holds, as its interval says
    lower = stats.ttest_1samp(values, -0.3, alternative="greater").pvalue
    upper = stats.ttest_1samp(values, 0.3, alternative="less").pvalue
    assert lower < 0.05 and upper < 0.05 and j.verdict == claims.REPRODUCED
    assert ci95.low < ci90.low and ci95.high > ci90.high  # the two-sided 95 % interval is wider, and not the rule


def test_a_significance_check_that_does_not_reject_is_unsettled_not_failed():
    """A p-value above the threshold is no evidence against the claim: unsettled, so the claim is
    inconclusive, never 'partly' on a test that did not reject; its placebo's p-value above the
    threshold fails the rule, so the check discriminates; a rejecting placebo does not."""
    c = Claim("s", "s", "sec", "m", Criterion((Check("p", "<=", 0.05, "differs", scale="exact",
                                                     control="p_pl", significance=True),
                                               Check("g", ">=", 1.0, "gap"))))
    j = judge(c, {"p": [0.0625], "p_pl": [1.0], "g": [2.0, 2.1, 1.9]})
    assert j.checks[0].status == claims.UNSETTLED and "did not reject" in j.checks[0].rule
    assert j.checks[0].discriminates is True and j.verdict == claims.INCONCLUSIVE
    j = judge(c, {"p": [0.03125], "p_pl": [1.0], "g": [2.0, 2.1, 1.9]})
    assert j.checks[0].status == claims.HOLDS and j.verdict == claims.REPRODUCED
    assert judge(c, {"p": [0.03125], "p_pl": [0.01], "g": [2.0, 2.1, 1.9]}).checks[0].status == claims.NOT_DISCRIMINATING
    with pytest.raises(ValueError, match="significance"):
        Check("p", ">=", 0.05, "x", scale="exact", significance=True)


def test_a_significance_check_fails_when_the_test_rejects_the_other_way():
    """With ``reverse``, the same exact test rejecting in the opposite direction refutes the
    claim's direction: the check fails (it can fail, so it tests something); a test that rejects
    neither way stays unsettled; ``reverse`` or ``pairs`` on a check that is not a p-value is an
    error."""
    c = Claim("s", "s", "sec", "m", Criterion((Check("p", "<=", 0.05, "a more often", scale="exact",
                                                     control="p_pl", significance=True, reverse="p_back"),)))
    refuted = judge(c, {"p": [1.0], "p_back": [0.03125], "p_pl": [1.0]})
    assert refuted.checks[0].status == claims.FAILS and "rejects: refuted" in refuted.checks[0].rule
    assert refuted.verdict == claims.NOT_REPRODUCED
    open_ = judge(c, {"p": [0.0625], "p_back": [1.0], "p_pl": [1.0]})
    assert open_.checks[0].status == claims.UNSETTLED
    # a refutation needs its control as a holding does: a placebo that rejects too refutes nothing
    assert judge(c, {"p": [1.0], "p_back": [0.03125], "p_pl": [0.01]}).checks[0].status == claims.NOT_DISCRIMINATING
    with pytest.raises(ValueError, match="significance check"):
        Check("p", "<=", 0.05, "x", reverse="q")
    with pytest.raises(ValueError, match="significance check"):
        Check("p", "<=", 0.05, "x", pairs=("a", "b"))


def test_a_check_with_nothing_measured_says_so_not_that_its_precondition_failed():
    c = Claim("s", "s", "sec", "m", Criterion((Check("g", ">=", 1.0, "gain",
                                                     requires=Check("a", ">=", 0.3, "learned", scale="proportion")),)))
    j = judge(c, {"g": [math.nan] * 3, "a": [math.nan] * 3})
    assert j.checks[0].status == claims.UNSETTLED and "[not measured at this profile]" in j.checks[0].rule
    assert "precondition" not in j.checks[0].rule and j.verdict == claims.INCONCLUSIVE
