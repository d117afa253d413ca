"""Checked statements: predicates over the results, chosen text per verdict, and scanning."""

import json

import pytest

from initstudy.book import statements
from initstudy.study import claims


@pytest.fixture
def profile(tmp_path):
    (tmp_path / "lsuv" / "tables").mkdir(parents=True)
    rows = [
        {"id": "lsuv-cheap", "verdict": claims.REPRODUCED, "note": "",
         "checks": [{"metric": "f", "status": "holds", "n": 3, "mean": 0.05, "low": 0.04, "high": 0.06,
                     "control": {"metric": "g", "status": "fails", "n": 3, "mean": 5.0, "low": 4.0, "high": 6.0}}],
         "measurements": {"f": [0.04, 0.05, 0.06], "g": [4.0, 5.0, 6.0]}},
        {"id": "lsuv-batch-size", "verdict": claims.INCONCLUSIVE,
         "note": "every check holds, but the criterion was changed after a preliminary run on these seeds",
         "checks": [{"metric": "d", "status": "holds", "n": 3, "mean": float("nan"), "low": 0.0, "high": 0.1}],
         "measurements": {"d": [0.0, 0.1, 0.05]}},
    ]
    (tmp_path / "lsuv" / "claims.json").write_text(json.dumps(rows))
    (tmp_path / "lsuv" / "tables" / "gains.csv").write_text("k,gain\n5,1.0\n20,0.5\n")
    return tmp_path


def test_a_predicate_reads_checks_controls_values_and_tables(profile):
    ev = statements.Evidence(profile)
    assert statements.evaluate("check('lsuv-cheap', 'f').control.low > 1", ev).holds
    assert statements.evaluate("max(values('lsuv-cheap', 'g')) == 6.0", ev).holds
    assert statements.evaluate("table('lsuv', 'gains')['gain'].is_monotonic_decreasing", ev).holds
    out = statements.evaluate("verdict('lsuv-cheap') == NOT_REPRODUCED", ev)
    assert not out.holds and out.numbers == ["verdict('lsuv-cheap') = 'reproduced'"]
    assert statements.evaluate("all(len([x for x in values('lsuv-cheap', 'f') if x > 0]) == 3 for _ in [0])", ev).holds


@pytest.mark.parametrize("predicate", [
    "check('lsuv-cheap', 'nope').mean > 0",      # no such check
    "table('lsuv', 'missing')['x'].max() > 0",   # no such table
    "verdict('no-such-claim') == 'x'",           # unknown claim id
    "check('lsuv-cheap', 'f').mean",             # not a truth value
    "__import__('os')",                          # no builtins beyond the listed ones
    "check('lsuv-batch-size', 'd').mean < 1",    # reads a NaN: a direction nothing measured
])
def test_a_predicate_that_cannot_be_evaluated_is_an_error_never_true(profile, predicate):
    with pytest.raises(statements.StatementError):
        statements.evaluate(predicate, statements.Evidence(profile))


BLOCKS = "reproduced: R.\npartly reproduced: P.\nnot reproduced: N.\ninconclusive: I\ncontinued."


def test_by_verdict_picks_the_block_of_the_verdict_and_needs_every_outcome():
    assert statements.pick_by_verdict(BLOCKS, claims.REPRODUCED) == "R."
    assert statements.pick_by_verdict(BLOCKS, claims.INCONCLUSIVE) == "I\ncontinued."
    assert statements.pick_by_verdict(BLOCKS, claims.NOT_MEASURED) == "I\ncontinued."
    with pytest.raises(statements.StatementError, match="not reproduced"):
        statements.pick_by_verdict(BLOCKS.replace("not reproduced: N.\n", ""), claims.REPRODUCED)
    with pytest.raises(statements.StatementError, match="twice"):
        statements.pick_by_verdict(BLOCKS + "\nreproduced: again", claims.REPRODUCED)


def test_by_verdict_says_why_when_the_judge_left_a_note():
    unconfirmed = statements.pick_by_verdict(BLOCKS, claims.INCONCLUSIVE, claims.AWAITING_FRESH_SEEDS,
                                             claims.PARTLY)
    assert unconfirmed == statements.UNCONFIRMED.format(provisional=claims.PARTLY) and "fresh seeds" in unconfirmed
    assert '"partly reproduced" here' in unconfirmed
    note = "x does not tell the claim from its negative control; no assertion check tells the claim from its negative control"
    assert statements.pick_by_verdict(BLOCKS, claims.INCONCLUSIVE, note) == statements.NOT_DISCRIMINATING


def test_scan_finds_and_evaluates_every_directive(profile, tmp_path):
    page = tmp_path / "page.md"
    page.write_text("Intro.\n\n```{checked} check('lsuv-cheap', 'f').high <= 0.1\nCheap.\n```\n\n"
                    "````{when} check('lsuv-cheap', 'f').mean > 1\nDear.\n````\n\n"
                    "```{by-verdict} lsuv-batch-size\n" + BLOCKS + "\n```\n\n"
                    "```{checked} check('lsuv-cheap', 'f').high > 0.1\nA contradicted sentence.\n```\n")
    found = statements.scan_files([page], profile)
    assert [(f.kind, f.outcome[:6]) for f in found] == [
        ("checked", "holds"), ("when", "hidden"), ("by-verdict", "shown:"), ("checked", "false")]
    assert statements.main([str(profile), str(page)]) == 1  # the contradicted one fails the command


def test_ran_reads_the_chapters_work_plan_and_refuses_an_unplanned_experiment(profile):
    (profile / "lsuv" / "tables" / "work_plan.csv").write_text(
        "experiment,runs it\nfirst epoch,True\nablations,False\n")
    ev = statements.Evidence(profile)
    assert statements.evaluate("ran('lsuv', 'first epoch')", ev).holds
    out = statements.evaluate("ran('lsuv', 'ablations')", ev)
    assert not out.holds and out.numbers == ["ran('lsuv', 'ablations') = False"]
    with pytest.raises(statements.StatementError, match="plans no experiment 'longer runs'"):
        statements.evaluate("ran('lsuv', 'longer runs')", ev)
