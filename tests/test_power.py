"""Power estimates (how many seeds would settle a check) and the fresh-seed comparison, with
expected values derived by hand or from scipy's own binomial test."""

from __future__ import annotations

import json
import math

import pytest
from scipy import stats

from initstudy.study import claims, stability
from initstudy.study.claims import Check, Claim, Criterion, judge, power, seeds_to_settle


def _half(n, sd):
    return stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)


def test_the_t_estimate_is_the_first_n_whose_half_width_clears_the_gap():
    values = [0.0, 4.0, 2.0, 6.0]  # mean 3, sd sqrt(20/3), gap 2 to the threshold 1
    p = power(Check("g", ">=", 1.0, "gain"), values)
    sd = math.sqrt(20 / 3)
    assert p.n_needed == 9 and p.outcome == claims.HOLDS
    assert _half(9, sd) < 2 <= _half(8, sd)
    assert p.sd == pytest.approx(sd) and p.gap == pytest.approx(2.0)
    # below the line: it would fail, and the same arithmetic applies
    q = power(Check("g", ">=", 5.0, "gain"), values)
    assert q.outcome == claims.FAILS and q.n_needed == 9


def test_judging_that_many_seeds_with_the_same_mean_and_spread_settles_it():
    """The estimate is what the judge needs: n values with today's mean and sd hold the rule."""
    base = [0.0, 4.0, 2.0, 6.0]
    n = power(Check("g", ">=", 1.0, "gain"), base).n_needed
    mean, sd = 3.0, math.sqrt(20 / 3)

    def design(m):  # m values with exactly that mean and sample sd
        k = m // 2
        a = sd * math.sqrt((m - 1) / (2 * k))
        return [mean + a] * k + [mean - a] * k + [mean] * (m % 2)

    c = Claim("x", "s", "a", "m", Criterion((Check("g", ">=", 1.0, "gain"),)))
    assert judge(c, {"g": design(n)}).verdict == claims.REPRODUCED
    assert judge(c, {"g": design(n - 1)}).checks[0].status == claims.UNSETTLED


def test_within_bands_log_scale_and_the_line_itself():
    # inside the band: the distance to the nearer edge; outside: to the nearer edge, to fail
    inside = power(Check("d", "within", 0.0, "eq", margin=0.5), [0.1, -0.1, 0.3, -0.3])
    assert inside.outcome == claims.HOLDS and inside.gap == pytest.approx(0.5)
    outside = power(Check("d", "within", 0.0, "eq", margin=0.5), [0.9, 1.1, 0.7, 1.3])
    assert outside.outcome == claims.FAILS and outside.gap == pytest.approx(0.5)
    logp = power(Check("r", "<=", 0.1, "ratio", scale="log"), [0.01, 0.1, 0.001])
    assert logp.gap == pytest.approx(1.0) and logp.sd == pytest.approx(1.0)
    assert power(Check("d", "<=", 3.0, "x"), [2.0, 4.0]).n_needed is None  # on the line
    assert power(Check("e", "<=", 3.0, "x", scale="exact"), [2.0]).n_needed is None
    same = power(Check("z", "<=", 1e-4, "x", scale="log"), [0.0, 0.0, 0.0])
    assert same.n_needed == 3 and same.outcome == claims.HOLDS  # every seed exactly 0


def test_the_binomial_estimate_matches_scipys_exact_interval():
    p = power(Check("s", ">=", 0.5, "stalled", scale="binomial"), [1, 1, 0, 1])
    n = p.n_needed
    k = round(0.75 * n)
    assert stats.binomtest(k, n).proportion_ci(0.95, "exact").low >= 0.5
    for m in range(3, n):  # no smaller n clears one half at that fraction
        assert stats.binomtest(round(0.75 * m), m).proportion_ci(0.95, "exact").low < 0.5


def test_seeds_to_settle_reports_unsettled_checks_only_and_their_controls():
    c = Claim("x", "s", "a", "m", Criterion((Check("g", ">=", 1.0, "gain", control="ctl"),
                                              Check("h", "<=", 5.0, "small"))))
    # the check would hold at 9 seeds, and its control (far below 1) fails already
    values = {"g": [0.0, 4.0, 2.0, 6.0], "h": [1.0, 1.1, 0.9], "ctl": [0.0, 0.1, 0.2]}
    j = judge(c, values)
    n, texts = seeds_to_settle(c, j.checks, values)
    assert n == 9 and len(texts) == 1 and texts[0].startswith("g: about 9, and it would hold")
    # the check holds but its control is unsettled: the control's spread decides, and it would fail
    values = {"g": [5.0, 5.1, 4.9], "h": [1.0, 1.1, 0.9], "ctl": [-4.0, 0.0, -2.0, 2.0]}  # mean -1, gap 2
    j = judge(c, values)
    assert j.checks[0].status == claims.UNSETTLED
    n, texts = seeds_to_settle(c, j.checks, values)
    assert n == 9 and "would hold" in texts[0]
    # both unsettled: the larger need counts (the check settles only when its control does)
    values = {"g": [0.0, 4.0, 2.0, 6.0], "h": [1.0, 1.1, 0.9], "ctl": [-0.5, 2.0, 0.5, 1.2]}
    ctl_n = power(Check("g", ">=", 1.0, "gain"), values["ctl"]).n_needed
    assert ctl_n > 9
    assert seeds_to_settle(c, judge(c, values).checks, values)[0] == ctl_n
    # a control that would pass too: the check would not discriminate
    values = {"g": [0.0, 4.0, 2.0, 6.0], "h": [1.0, 1.1, 0.9], "ctl": [0.0, 4.0, 2.0, 6.0]}
    assert "not discriminate" in seeds_to_settle(c, judge(c, values).checks, values)[1][0]
    settled = judge(c, {"g": [5.0, 5.1, 4.9], "h": [1.0, 1.1, 0.9], "ctl": [0.0, 0.1, 0.2]})
    assert seeds_to_settle(c, settled.checks, {}) == (None, [])


def test_no_estimate_where_seeds_cannot_help_and_never_fewer_than_measured():
    one = power(Check("g", ">=", 1.0, "gain"), [3.0])
    assert one.n_needed is None and "one measurement" in one.text
    # an exact 0 keeps a log-scale ">=" or "within" check open whatever the seeds (the judge's rule)
    zero = Check("r", "within", 1.0, "unit", margin=0.5, scale="log")
    assert judge(Claim("z", "s", "a", "m", Criterion((zero,))), {"r": [0.0, 1.0, 1.1, 0.9]}).checks[0].status \
        == claims.UNSETTLED
    assert power(zero, [0.0, 1.0, 1.1, 0.9]).n_needed is None
    # an unsettled binomial check never gets an estimate at or below today's n (rounding k = p n)
    for k, n in ((2, 6), (3, 14), (1, 4)):
        values = [1.0] * k + [0.0] * (n - k)
        chk = Check("s", "<=", 0.05, "rare", scale="binomial")
        if judge(Claim("b", "s", "a", "m", Criterion((chk,))), {"s": values}).checks[0].status == claims.UNSETTLED:
            assert power(chk, values).n_needed is None or power(chk, values).n_needed > n
    with_nan = power(Check("g", ">=", 1.0, "gain"), [0.0, 4.0, float("nan"), 2.0, 6.0, None])
    assert with_nan.n_now == 4 and with_nan.n_needed == 9


def _summary(folder, rows):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "claims.json").write_text(json.dumps(rows))


def test_the_comparison_says_same_confirms_fragile_or_not_run(tmp_path):
    main, fresh = tmp_path / "results" / "cpu", tmp_path / "results" / "fresh-seeds" / "cpu"
    awaiting = claims.AWAITING_FRESH_SEEDS
    _summary(main, [{"id": "a", "verdict": claims.REPRODUCED, "seeds": [0, 1]},
                    {"id": "b", "verdict": claims.INCONCLUSIVE, "note": awaiting, "seeds": [0, 1]},
                    {"id": "c", "verdict": claims.REPRODUCED, "seeds": [0, 1]},
                    {"id": "d", "verdict": claims.PARTLY, "seeds": [0, 1]},
                    {"id": "e", "verdict": claims.INCONCLUSIVE, "note": "", "seeds": [0, 1]},
                    {"id": "f", "verdict": claims.INCONCLUSIVE, "note": awaiting, "seeds": [0, 1]},
                    {"id": "g", "verdict": claims.INCONCLUSIVE, "note": awaiting, "seeds": [0, 1]}])
    assert {r["same"] for r in stability.compare(main)} == {"not run"}
    _summary(fresh, [{"id": "a", "verdict": claims.REPRODUCED, "seeds": [1000, 1001]},
                     {"id": "b", "verdict": claims.REPRODUCED, "seeds": [1000, 1001]},
                     {"id": "c", "verdict": claims.NOT_REPRODUCED, "seeds": [1000, 1001]},
                     {"id": "e", "verdict": claims.REPRODUCED, "seeds": [1000, 1001]},
                     {"id": "f", "verdict": claims.INCONCLUSIVE, "note": awaiting, "seeds": [1000, 1001]},
                     {"id": "g", "verdict": claims.PARTLY, "seeds": [1000, 1001]}])
    same = {r["id"]: r["same"] for r in stability.compare(main)}
    # fragile only between settled verdicts; an unconfirmed changed criterion is not "the same"
    assert same == {"a": "yes", "b": "confirms", "c": "no", "d": "not run", "e": "unsettled on one",
                    "f": "not confirmed", "g": "not confirmed"}


def test_the_comparison_names_the_checks_that_changed_and_timing_runs(tmp_path):
    from initstudy.book import pages

    main, fresh = tmp_path / "results" / "cpu", tmp_path / "results" / "fresh-seeds" / "cpu"
    check = {"metric": "m", "status": claims.HOLDS, "mean": 1.0, "low": 0.5, "high": 1.5, "n": 3}
    _summary(main, [{"id": "a", "verdict": claims.PARTLY, "seeds": [0, 1, 2], "checks": [check]},
                    {"id": "t", "verdict": claims.REPRODUCED, "seeds": [], "checks": []}])
    _summary(fresh, [{"id": "a", "verdict": claims.INCONCLUSIVE, "seeds": [1000, 1001, 1002],
                      "checks": [dict(check, status=claims.UNSETTLED, low=-0.5)]},
                     {"id": "t", "verdict": claims.REPRODUCED, "seeds": [], "checks": []}])
    rows = {r["id"]: r for r in stability.compare(main)}
    assert rows["a"]["changed_checks"] == [{"metric": "m", "status": "holds", "fresh_status": "unsettled",
                                            "fresh_value": "m = 1 [-0.5, 1.5], n=3"}]
    assert pages.stability_cell(rows["t"]) == "yes (a second timing run)"  # unseeded: no empty seed list
    sentence = pages.fresh_seeds_sentence(main, "zero-symmetry", "cpu")
    assert "not run" in sentence  # a claim the fresh run did not measure


def test_a_same_verdict_still_names_a_check_that_changed_and_the_direction_of_the_estimate(tmp_path):
    from initstudy.book import pages

    main, fresh = tmp_path / "results" / "cpu", tmp_path / "results" / "fresh-seeds" / "cpu"
    a = {"metric": "a", "status": claims.UNSETTLED, "mean": 0.8, "low": -3.0, "high": 4.0, "n": 3}
    b = {"metric": "b", "status": claims.UNSETTLED, "mean": -1.5, "low": -8.7, "high": 5.6, "n": 3}
    _summary(main, [{"id": "fixup-scalars-help", "verdict": claims.INCONCLUSIVE, "seeds": [0, 1, 2], "checks": [a, b]}])
    _summary(fresh, [{"id": "fixup-scalars-help", "verdict": claims.INCONCLUSIVE, "seeds": [1000, 1001, 1002],
                      "checks": [a, dict(b, status=claims.FAILS, mean=0.05, low=-0.3, high=0.4)]}])
    sentence = pages.fresh_seeds_sentence(main, "fixup-scalars-help", "cpu")
    assert "the same verdict" in sentence and "b unsettled here, fails there" in sentence
    assert "a unsettled here" not in sentence  # only the checks whose status changed
    row = {"seeds_needed": 8, "checks": [dict(a, power={"n_needed": 5, "outcome": claims.HOLDS}),
                                         dict(b, power={"n_needed": 8, "outcome": claims.FAILS})]}
    assert pages._would_then(row) == ", and b would then fail"  # the check that needs the most seeds
    assert pages._would_then({"seeds_needed": None, "checks": []}) == ""


def test_each_checks_power_in_the_summary_is_the_one_its_paragraph_gives(monkeypatch):
    """The claims page's per-check column and its power paragraph read one estimate: for an
    unsettled check whose control would pass too, "does not discriminate" at the n that settles
    both, not the check's own "holds"; for an unmet precondition, no n."""
    from initstudy.study import summary

    c = Claim("x", "s", "a", "m", Criterion((
        Check("g", ">=", 1.0, "gain", control="ctl"),
        Check("m", ">=", 1.0, "more", requires=Check("base", ">=", 0.5, "base learned")))))
    values = {"g": [0.0, 4.0, 2.0, 6.0], "ctl": [0.0, 4.0, 2.5, 6.0], "m": [0.0, 4.0, 2.0, 6.0],
              "base": [0.1, 0.2, 0.1]}
    j = judge(c, values)
    row = {"measurements": values, "checks": [json.loads(json.dumps(vars(r))) for r in j.checks]}
    summary._add_power(row, c)
    g, m = row["checks"]
    assert power(Check("g", ">=", 1.0, "gain"), values["g"]).outcome == claims.HOLDS  # its own estimate
    assert g["power"]["outcome"] == claims.NOT_DISCRIMINATING
    both = [power(Check("g", ">=", 1.0, "gain"), values[k]).n_needed for k in ("g", "ctl")]  # 9 and 8
    assert g["power"]["n_needed"] == max(both) == 9  # both must settle
    assert m["power"]["n_needed"] is None and "precondition" in m["power"]["text"]
    n, texts = seeds_to_settle(c, j.checks, values)
    assert "not discriminate" in texts[0] and "precondition" in texts[1]
