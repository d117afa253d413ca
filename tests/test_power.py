"""Power estimates (how many seeds would settle a check) and the fresh-seed comparison, with
expected values derived by hand or from scipy's own binomial test."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from initstudy.study import claims, stability
from initstudy.study.claims import Check, Claim, Criterion, judge, power, seeds_to_settle


def _simulated_power(n, mean, sd, line, above=True, trials=20000, seed=0, level=0.95):
    """The fraction of n-seed samples from N(mean, sd) whose two-sided t interval clears ``line``
    (lies above it, or below with ``above=False``): power by simulation, independent of the
    noncentral-t formula."""
    rng = np.random.default_rng(seed)
    x = rng.normal(mean, sd, size=(trials, n))
    m, s_ = x.mean(1), x.std(1, ddof=1)
    half = stats.t.ppf(0.5 + level / 2, n - 1) * s_ / math.sqrt(n)
    return float(((m - half >= line) if above else (m + half <= line)).mean())


def test_the_t_estimate_is_the_first_n_with_80_percent_power():
    values = [0.0, 4.0, 2.0, 6.0]  # the pilot: mean 3, sd sqrt(20/3), gap 2 to the threshold 1
    p = power(Check("g", ">=", 1.0, "gain"), values)
    sd = math.sqrt(20 / 3)
    assert p.outcome == claims.HOLDS and p.sd == pytest.approx(sd) and p.gap == pytest.approx(2.0)
    assert _simulated_power(p.n_needed, 3.0, sd, 1.0) == pytest.approx(0.8, abs=0.03)
    assert _simulated_power(p.n_needed, 3.0, sd, 1.0) > _simulated_power(p.n_needed - 3, 3.0, sd, 1.0)
    assert _simulated_power(p.n_needed - 3, 3.0, sd, 1.0) < 0.8
    # below the line: it would fail, with the same arithmetic mirrored
    q = power(Check("g", ">=", 5.0, "gain"), values)
    assert q.outcome == claims.FAILS and q.n_needed == p.n_needed
    assert power(Check("g", ">=", 1.0, "gain"), values, target=0.9).n_needed > p.n_needed


def test_within_bands_log_scale_and_the_line_itself():
    # inside the band: the distance to the nearer edge; outside: to the nearer edge, to fail
    inside = power(Check("d", "within", 0.0, "eq", margin=0.5), [0.1, -0.1, 0.3, -0.3])
    assert inside.outcome == claims.HOLDS and inside.gap == pytest.approx(0.5)
    outside = power(Check("d", "within", 0.0, "eq", margin=0.5), [0.9, 1.1, 0.7, 1.3])
    assert outside.outcome == claims.FAILS and outside.gap == pytest.approx(0.5)
    # an equivalence check: both edges must clear, each one-sided at 5 % (a 90 % interval)
    sd = float(np.std([0.1, -0.1, 0.3, -0.3], ddof=1))
    hold = _simulated_power(inside.n_needed, 0.0, sd, -0.5, level=0.9) + _simulated_power(
        inside.n_needed, 0.0, sd, 0.5, above=False, level=0.9) - 1
    assert hold >= 0.78
    logp = power(Check("r", "<=", 0.1, "ratio", scale="log"), [0.01, 0.1, 0.001])
    assert logp.gap == pytest.approx(1.0) and logp.sd == pytest.approx(1.0)
    assert power(Check("d", "<=", 3.0, "x"), [2.0, 4.0]).n_needed is None  # on the line
    assert power(Check("e", "<=", 3.0, "x", scale="exact"), [2.0]).n_needed is None
    same = power(Check("z", "<=", 1e-4, "x", scale="log"), [0.0, 0.0, 0.0])
    assert same.n_needed == 3 and same.outcome == claims.HOLDS  # every seed exactly 0


def test_the_binomial_estimate_is_exact_and_matches_scipys_interval():
    p = power(Check("s", ">=", 0.5, "stalled", scale="binomial"), [1, 1, 0, 1])  # the pilot's fraction: 0.75

    def prob(n):  # the probability that n seeds stall often enough for the exact interval to clear 1/2
        return sum(stats.binom.pmf(k, n, 0.75) for k in range(n + 1)
                   if stats.binomtest(k, n).proportion_ci(0.95, "exact").low >= 0.5)

    assert prob(p.n_needed) >= 0.8
    assert all(prob(m) < 0.8 for m in range(3, p.n_needed))  # the first such n
    # every pilot seed stalled: the fewest seeds, all stalled, whose interval clears one half
    allp = power(Check("s", ">=", 0.5, "stalled", scale="binomial"), [1, 1, 1, 1])
    assert allp.n_needed == 6 and stats.binomtest(6, 6).proportion_ci(0.95, "exact").low >= 0.5


def test_seeds_to_settle_reports_unsettled_checks_only_and_their_controls():
    c = Claim("x", "s", "a", "m", Criterion((Check("g", ">=", 1.0, "gain", control="ctl"),
                                              Check("h", "<=", 5.0, "small"))))
    # the run left g unsettled; the pilot says it would hold, and its control (far below 1) fails already
    run = {"g": [0.0, 4.0, -2.0, 6.0], "h": [1.0, 1.1, 0.9], "ctl": [0.0, 0.1, 0.2]}
    pilot = {"g": [0.0, 4.0, 2.0, 6.0], "h": [1.0, 1.1, 0.9], "ctl": [0.0, 0.1, 0.2]}
    j = judge(c, run)
    n, texts = seeds_to_settle(c, j.checks, pilot)
    own = power(Check("g", ">=", 1.0, "gain"), pilot["g"]).n_needed
    assert n == own and len(texts) == 1 and texts[0].startswith(f"g: about {own}, and it would hold")
    # the run left the control unsettled: both must settle, the larger need counts
    run = {"g": [5.0, 5.1, 4.9], "h": [1.0, 1.1, 0.9], "ctl": [-4.0, 0.0, -2.0, 2.0]}
    pilot_ctl = {"g": [0.0, 4.0, 2.0, 6.0], "ctl": [-0.5, 2.0, 0.5, 1.2]}
    j = judge(c, run)
    assert j.checks[0].status == claims.UNSETTLED
    ctl_n = power(Check("g", ">=", 1.0, "gain"), pilot_ctl["ctl"]).n_needed
    assert ctl_n > own and seeds_to_settle(c, j.checks, pilot_ctl)[0] == ctl_n
    # a control that would pass too: the check would not discriminate
    assert "not discriminate" in seeds_to_settle(c, j.checks, {"g": pilot["g"], "ctl": pilot["g"]})[1][0]
    settled = judge(c, {"g": [5.0, 5.1, 4.9], "h": [1.0, 1.1, 0.9], "ctl": [0.0, 0.1, 0.2]})
    assert seeds_to_settle(c, settled.checks, {}) == (None, [])


def test_no_estimate_where_seeds_cannot_help():
    one = power(Check("g", ">=", 1.0, "gain"), [3.0])
    assert one.n_needed is None and "one pilot measurement" in one.text
    # an exact 0 keeps a log-scale ">=" or "within" check open whatever the seeds (the judge's rule)
    zero = Check("r", "within", 1.0, "unit", margin=0.5, scale="log")
    assert judge(Claim("z", "s", "a", "m", Criterion((zero,))), {"r": [0.0, 1.0, 1.1, 0.9]}).checks[0].status \
        == claims.UNSETTLED
    assert power(zero, [0.0, 1.0, 1.1, 0.9]).n_needed is None
    with_nan = power(Check("g", ">=", 1.0, "gain"), [0.0, 4.0, float("nan"), 2.0, 6.0, None])
    assert with_nan.n_now == 4 and with_nan.n_needed == power(Check("g", ">=", 1.0, "gain"), [0.0, 4.0, 2.0, 6.0]).n_needed


def test_a_run_without_a_pilot_plans_no_seeds(tmp_path):
    """A run's own spread does not plan its own size: the summary gives a power estimate only from
    the fresh-seed run beside it."""
    from initstudy.study import summary

    main, fresh = tmp_path / "results" / "cpu", tmp_path / "results" / "fresh-seeds" / "cpu"
    check = {"metric": "zero_accuracy_gap", "status": claims.UNSETTLED, "mean": 5.0, "low": -1.0, "high": 11.0,
             "n": 3, "rule": "", "control": None}
    row = {"id": "zero-symmetry", "verdict": claims.INCONCLUSIVE, "checks": [check], "seeds": [0, 1, 2],
           "measurements": {"zero_accuracy_gap": [1.0, 5.0, 9.0]}, "notebook": "zero_init"}
    (main / "zero_init").mkdir(parents=True)
    (main / "zero_init" / "claims.json").write_text(json.dumps([row]))
    rows = {r["id"]: r for r in summary.summary_rows(main)}
    assert rows["zero-symmetry"]["seeds_needed"] is None and rows["zero-symmetry"]["pilot_seeds"] == []
    pilot = dict(row, seeds=[2000, 2001, 2002], measurements={"zero_accuracy_gap": [12.0, 14.0, 13.0, 15.0]})
    (fresh / "zero_init").mkdir(parents=True)
    (fresh / "zero_init" / "claims.json").write_text(json.dumps([pilot]))
    rows = {r["id"]: r for r in summary.summary_rows(main)}
    assert rows["zero-symmetry"]["pilot_seeds"] == [2000, 2001, 2002]
    assert rows["zero-symmetry"]["seeds_needed"] is not None and "pilot" in rows["zero-symmetry"]["seeds_needed_text"]


def _summary(folder, rows):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "claims.json").write_text(json.dumps(rows))


def test_the_comparison_says_same_confirms_fragile_or_not_run(tmp_path):
    main, fresh = tmp_path / "results" / "cpu", tmp_path / "results" / "fresh-seeds" / "cpu"
    awaiting = claims.AWAITING_FRESH_SEEDS
    _summary(main, [{"id": "a", "verdict": claims.REPRODUCED, "seeds": [0, 1]},
                    {"id": "b", "verdict": claims.INCONCLUSIVE, "note": awaiting, "seeds": [0, 1],
                     "provisional": claims.REPRODUCED},
                    {"id": "c", "verdict": claims.REPRODUCED, "seeds": [0, 1]},
                    {"id": "d", "verdict": claims.PARTLY, "seeds": [0, 1]},
                    {"id": "e", "verdict": claims.INCONCLUSIVE, "note": "", "seeds": [0, 1]},
                    {"id": "f", "verdict": claims.INCONCLUSIVE, "note": awaiting, "seeds": [0, 1],
                     "provisional": claims.REPRODUCED},
                    {"id": "g", "verdict": claims.INCONCLUSIVE, "note": awaiting, "seeds": [0, 1],
                     "provisional": claims.REPRODUCED},
                    {"id": "h", "verdict": claims.INCONCLUSIVE, "note": awaiting, "seeds": [0, 1],
                     "provisional": claims.PARTLY},
                    {"id": "i", "verdict": claims.INCONCLUSIVE, "note": awaiting, "seeds": [0, 1],
                     "provisional": claims.INCONCLUSIVE}])
    assert {r["same"] for r in stability.compare(main)} == {"not run"}
    _summary(fresh, [{"id": "a", "verdict": claims.REPRODUCED, "seeds": [1000, 1001]},
                     {"id": "b", "verdict": claims.REPRODUCED, "seeds": [1000, 1001]},
                     {"id": "c", "verdict": claims.NOT_REPRODUCED, "seeds": [1000, 1001]},
                     {"id": "e", "verdict": claims.REPRODUCED, "seeds": [1000, 1001]},
                     {"id": "f", "verdict": claims.INCONCLUSIVE, "note": awaiting, "seeds": [1000, 1001]},
                     {"id": "g", "verdict": claims.PARTLY, "seeds": [1000, 1001]},
                     {"id": "h", "verdict": claims.PARTLY, "seeds": [1000, 1001]},
                     {"id": "i", "verdict": claims.INCONCLUSIVE, "note": awaiting, "seeds": [1000, 1001]}])
    same = {r["id"]: r["same"] for r in stability.compare(main)}
    # fragile only between settled verdicts; an unconfirmed changed criterion is not "the same"
    assert same == {"a": "yes", "b": "confirms", "c": "no", "d": "not run", "e": "unsettled on one",
                    "f": "not confirmed", "g": "not confirmed", "h": "confirms",
                    "i": "not confirmed"}  # two inconclusive verdicts confirm nothing
    # a changed criterion is reported under the fresh seeds' verdict once they confirm it, whatever it is
    rows = {r["id"]: r for r in json.loads((main / "claims.json").read_text())}
    assert stability.headline(rows["h"], claims.PARTLY) == claims.PARTLY
    assert stability.headline(rows["g"], claims.PARTLY) == claims.INCONCLUSIVE


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
    summary._add_power(row, c, {"measurements": values, "seeds": [2000, 2001, 2002, 2003]})  # here its own pilot
    g, m = row["checks"]
    assert power(Check("g", ">=", 1.0, "gain"), values["g"]).outcome == claims.HOLDS  # its own estimate
    assert g["power"]["outcome"] == claims.NOT_DISCRIMINATING
    both = [power(Check("g", ">=", 1.0, "gain"), values[k]).n_needed for k in ("g", "ctl")]
    assert g["power"]["n_needed"] == max(both)  # both must settle
    assert m["power"]["n_needed"] is None and "precondition" in m["power"]["text"]
    n, texts = seeds_to_settle(c, j.checks, values)
    assert "not discriminate" in texts[0] and "precondition" in texts[1]


def test_the_mcnemar_estimate_is_exact_and_planned_from_the_pilots_pairs():
    """The exact McNemar power: with every discordant seed one way at rate 1/2, the test of n
    seeds rejects at 5 % exactly when at least 6 seeds are discordant (2 / 2^6 = 0.031; 5 give
    0.0625), so the power is P(Binomial(n, 1/2) >= 6): 0.788 at n = 14, 0.849 at 15 (scipy).
    ``seeds_to_settle`` reads the pilot's two outcome metrics named by the check's ``pairs``;
    discordant pairs the wrong way plan nothing."""
    assert claims._mcnemar_min_a(5, 0.05) is None and claims._mcnemar_min_a(6, 0.05) == 6
    for n in (14, 15):
        assert math.isclose(claims.mcnemar_reject_probability(n, 0.5, 0.0, 0.05), stats.binom.sf(5, n, 0.5),
                            rel_tol=1e-12)
    k = Check("p", "<=", 0.05, "a more often", scale="exact", significance=True, pairs=("a", "b"))
    c = Claim("s", "s", "sec", "m", Criterion((k,)))
    j = judge(c, {"p": [0.0625]})
    pilot = {"p": [0.03125], "a": [1.0] * 6 + [0.0] * 6, "b": [0.0] * 12}
    n, texts = seeds_to_settle(c, j.checks, pilot)
    assert n == 15 and "rejects at 0.05 with probability 0.85" in texts[0]
    assert power(k, [0.03125]).n_needed is None  # no pairs: nothing to plan from
    wrong = claims.mcnemar_power(k, [0.0] * 12, [1.0] * 3 + [0.0] * 9)
    assert wrong.n_needed is None and "do not point the claim's way" in wrong.text


def test_fresh_seeds_start_after_the_seeds_a_claim_was_changed_on():
    """A claim whose criterion changed after fresh seeds were seen sets ``fresh_from``: the
    notebook's fresh-seed run starts there, and seeds below it confirm nothing."""
    from initstudy.study.catalog import NOTEBOOKS

    assert claims.claim("xavier-fails-relu").fresh_from == 3000
    assert stability.fresh_seeds(NOTEBOOKS["xavier_kaiming"], "smoke") == [3000, 3001, 3002]
    assert stability.fresh_seeds(NOTEBOOKS["zero_init"], "smoke")[0] == stability.FIRST_SEED
    row = {"verdict": claims.INCONCLUSIVE, "note": claims.AWAITING_FRESH_SEEDS, "provisional": claims.REPRODUCED,
           "fresh_from": 3000}
    assert not stability.confirmed(row, claims.REPRODUCED, [2000, 2001])
    assert stability.confirmed(row, claims.REPRODUCED, [3000, 3001])
    assert stability.headline(row, claims.REPRODUCED, [2000]) == claims.INCONCLUSIVE
    assert not stability.confirmed(row, claims.REPRODUCED, None)  # seeds unknown: nothing confirmed
    from initstudy.study.run import Run

    assert Run._fresh(Run, [3000, 3001], 3000) and not Run._fresh(Run, [2000, 2001], 3000)
    assert Run._fresh(Run, [2000, 2001]) and not Run._fresh(Run, [5, 6])
