import pytest

from initstudy import claims
from initstudy.claims import Check, Claim, Criterion, judge

STUDY_IDS = [
    "zero-symmetry", "zero-random-bias", "sigmoid-saturation", "depth-explode-vanish",
    "old-uniform-vanishes", "xavier-unit-variance", "relu-halves-variance", "xavier-fails-relu",
    "resnet-variance-doubles", "fixup-trains-without-bn", "lsuv-1-5-iterations", "lsuv-batch-size",
    "lsuv-cheap", "transfer-best",
]


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
    assert list(claims.LEDGER) == STUDY_IDS
    for c in claims.LEDGER.values():
        assert c.criterion.checks and c.notebook and c.article_section and c.metric
        assert not any("\u4e00" <= ch <= "\u9fff" for ch in c.statement)  # paraphrased, never quoted
    with pytest.raises(KeyError, match="unknown claim id"):
        claims.claim("nope")


def test_summary_lists_every_claim(tmp_path):
    (tmp_path / "zero_init").mkdir()
    row = {"id": "zero-symmetry", "verdict": claims.REPRODUCED, "explanation": "", "criterion": "",
           "checks": [{"metric": "m", "mean": 1.0, "low": 0.5, "high": 1.5}], "measurements": {},
           "profile": "cpu", "seeds": [0, 1, 2], "notebook": "zero_init", "figures": []}
    (tmp_path / "zero_init" / "claims.json").write_text(__import__("json").dumps([row]))
    rows = claims.write_summary(tmp_path)
    assert [r["id"] for r in rows] == STUDY_IDS
    by_id = {r["id"]: r for r in rows}
    assert by_id["zero-symmetry"]["verdict"] == claims.REPRODUCED
    assert by_id["zero-symmetry"]["key_number"] == "m = 1 [0.5, 1.5]"
    assert by_id["lsuv-cheap"]["verdict"] == claims.NOT_MEASURED
    assert (tmp_path / "claims.json").is_file() and (tmp_path / "claims.csv").is_file()
