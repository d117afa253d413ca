import pytest

from initstudy.study import catalog
from initstudy.study.catalog import Param, ParamError


INT = Param("steps", "int", "h", {"smoke": 1, "cpu": 2, "gpu": 3}, min=1, max=100)
FLOAT = Param("lr", "float", "h", {"smoke": 0.1, "cpu": 0.1, "gpu": 0.1}, min=0.0, max=1.0)
STR = Param("dataset", "str", "h", {"smoke": "a", "cpu": "a", "gpu": "b"}, choices=("a", "b"))
LSTR = Param("acts", "list[str]", "h", {"smoke": ["a"], "cpu": ["a"], "gpu": ["a", "b"]}, choices=("a", "b"))
LINT = Param("depths", "list[int]", "h", {"smoke": [1], "cpu": [1], "gpu": [1]}, min=1, max=8)
SEEDS = Param("seeds", "seeds", "h", {"smoke": 2, "cpu": 5, "gpu": [0, 7]}, max=1000)
BOOL = Param("flag", "bool", "h", {"smoke": False, "cpu": False, "gpu": True})


def test_parse_good_values():
    assert INT.parse("42") == 42
    assert FLOAT.parse("0.5") == 0.5
    assert STR.parse("b") == "b"
    assert LSTR.parse("b,a") == ["b", "a"]
    assert LINT.parse("1,2,8") == [1, 2, 8]
    assert SEEDS.parse("3") == 3 and SEEDS.parse("4,9") == [4, 9]
    assert BOOL.parse("true") is True and BOOL.parse("0") is False


@pytest.mark.parametrize("param, text, message", [
    (INT, "abc", "parameter 'steps' must be an integer in [1, 100], got 'abc'"),
    (INT, "3.5", "parameter 'steps' must be an integer in [1, 100], got '3.5'"),
    (INT, "0", "parameter 'steps' must be an integer in [1, 100], got 0"),
    (FLOAT, "2", "parameter 'lr' must be a number in [0, 1], got 2.0"),
    (FLOAT, "nan", "parameter 'lr' must be a number in [0, 1], got nan"),
    (STR, "c", "parameter 'dataset' must be one of a, b, got 'c'"),
    (LSTR, "a,c", "must be a comma-separated list of distinct values from a, b"),
    (LSTR, "a,a", "distinct"),
    (LINT, "0,1", "must be a comma-separated list of distinct integers in [1, 8]"),
    (SEEDS, "0", "parameter 'seeds' must be a seed count in [1, 1000]"),
    (SEEDS, "1,-2", "parameter 'seeds'"),
    (BOOL, "maybe", "parameter 'flag' must be true or false"),
])
def test_parse_bad_values(param, text, message):
    with pytest.raises(ParamError) as err:
        param.parse(text)
    assert message in str(err.value)


def test_validate_python_values():
    assert INT.validate(5) == 5
    with pytest.raises(ParamError):
        INT.validate(True)
    with pytest.raises(ParamError):
        INT.validate(5.0)
    assert FLOAT.validate(1) == 1.0
    with pytest.raises(ParamError):
        SEEDS.validate("3")
    assert catalog.seeds_list(3) == [0, 1, 2] and catalog.seeds_list([4, 2]) == [4, 2]


def test_declarations_are_checked():
    with pytest.raises(ValueError, match="no default for profile"):
        Param("x", "int", "h", {"smoke": 1})
    with pytest.raises(ParamError):
        Param("x", "int", "h", {"smoke": 1, "cpu": 1, "gpu": 0}, min=1)


def test_resolve_and_errors():
    spec = catalog.notebook("zero_init")
    params = catalog.resolve(spec, "smoke", {"steps": 7, "width": None})
    assert params["steps"] == 7 and params["width"] == spec.param("width").default("smoke")
    with pytest.raises(ParamError, match="unknown profile 'fast'; allowed: smoke, cpu, gpu"):
        catalog.resolve(spec, "fast")
    with pytest.raises(ParamError, match="notebook 'zero_init' has no parameter 'nope'"):
        catalog.resolve(spec, "cpu", {"nope": 1})
    with pytest.raises(ParamError, match="unknown notebook 'nope'; allowed: "):
        catalog.notebook("nope")


def test_every_notebook_declares_seeds_device_and_its_claims():
    from initstudy.study.claims import LEDGER

    for spec in catalog.NOTEBOOKS.values():
        names = [p.name for p in spec.params]
        assert {"seeds", "device"} <= set(names) and len(names) == len(set(names))
        for cid in spec.claims:
            assert LEDGER[cid].notebook == spec.name


def test_a_rule_checks_each_value_and_is_said_in_allowed():
    rule = catalog.Rule("of the form 6n + 2", lambda d: (d - 2) % 6 == 0)
    depths = Param("depths", "list[int]", "h", {"smoke": [8], "cpu": [8, 20], "gpu": [110]}, min=8, max=10**5,
                   rule=rule)
    depth = Param("depth", "int", "h", {"smoke": 8, "cpu": 8, "gpu": 8}, min=8, max=10**5, rule=rule)
    assert depths.parse("8,14") == [8, 14] and depth.parse("20") == 20
    with pytest.raises(ParamError, match=r"^parameter 'depths' must be .*, each of the form 6n \+ 2, got \[8, 9\]$"):
        depths.parse("8,9")
    with pytest.raises(ParamError, match=r"^parameter 'depth' must be an integer in \[8, 100000\] of the form 6n"):
        depth.validate(21)
    with pytest.raises(ParamError):  # a default that breaks its own rule is a declaration error
        Param("d", "int", "h", {"smoke": 9, "cpu": 8, "gpu": 8}, rule=rule)


def test_fixups_depths_and_the_device_carry_their_rules(monkeypatch):
    spec = catalog.notebook("fixup")
    for name in ("fig3_depths", "long_depths"):
        assert spec.param(name).parse("8,14,20,110,1202") == [8, 14, 20, 110, 1202]
        for bad in ("9", "8,10", "26,27"):
            with pytest.raises(ParamError, match=f"parameter '{name}'"):
                spec.param(name).parse(bad)
    monkeypatch.setattr(catalog, "cuda_visible", lambda: False)
    with pytest.raises(ParamError, match=r"cuda only where a CUDA device is visible\), got 'cuda'"):
        catalog.resolve(spec, "smoke", {"device": "cuda"})
    monkeypatch.setattr(catalog, "cuda_visible", lambda: True)
    assert catalog.resolve(spec, "smoke", {"device": "cuda"})["device"] == "cuda"
    assert catalog.resolve(spec, "smoke", {"device": "cpu"})["device"] == "cpu"


def test_constraints_tie_parameters_and_are_checked_on_declaration():
    spec = catalog.notebook("lsuv")
    assert catalog.resolve(spec, "smoke", {"train_subset": 0, "batch_sizes": [8, 64, 4096]})["train_subset"] == 0
    with pytest.raises(ParamError, match=r"^parameters 'batch' and 'train_subset': batch must be at most "
                                         r"train_subset unless train_subset is 0 \(all examples\), got batch=64, "
                                         r"train_subset=50$"):
        catalog.resolve(spec, "smoke", {"train_subset": 50, "batch": 64})
    bad = catalog.Constraint(("x",), "x must be even", lambda p: p["x"] % 2 == 0)
    odd = Param("x", "int", "h", {"smoke": 2, "cpu": 3, "gpu": 2})
    with pytest.raises(ParamError, match="parameters 'x': x must be even, got x=3"):
        catalog.NotebookSpec("t", "T", (), (odd,), constraints=(bad,))
    with pytest.raises(ValueError, match="constraint on unknown parameter"):
        catalog.NotebookSpec("t", "T", (), (odd,), constraints=(catalog.Constraint(("y",), "y", lambda p: True),))


def test_a_value_that_leaves_a_contrast_without_an_arm_is_refused():
    """Derived from each claim's declared contrasts: every contrast becomes a constraint of its
    notebook, checked before any work, naming the parameter, the claim and what it needs."""
    from initstudy.study import claims

    for spec in catalog.NOTEBOOKS.values():
        for cid in spec.claims:
            for contrast in claims.LEDGER[cid].contrasts:
                assert any(contrast.param in c.params and cid in c.text for c in spec.constraints), (cid, contrast)
    xk = catalog.notebook("xavier_kaiming")
    with pytest.raises(ParamError, match=r"^parameters 'inits': xavier-fails-relu compares He's fan-in Xavier with "
                                         r"Kaiming .*needs 'xavier-fanin' and 'kaiming-normal' among its values, "
                                         r"got inits=\['kaiming-normal'\]$"):
        catalog.resolve(xk, "smoke", {"inits": ["kaiming-normal"]})
    with pytest.raises(ParamError, match="lsuv-batch-size .* needs at least 3 different values"):
        catalog.resolve(catalog.notebook("lsuv"), "smoke", {"batch_sizes": [8, 512]})
    with pytest.raises(ParamError, match="sigmoid-saturation .* needs 1.0 and 0.01"):
        catalog.resolve(catalog.notebook("signal_depth"), "smoke", {"saturation_stds": [0.1, 1.0]})
    with pytest.raises(ParamError, match="xavier-fails-relu .* needs at least 3 different values"):
        catalog.resolve(xk, "smoke", {"lrs": [0.001, 0.01]})  # a grid of two cannot bracket a best rate
    with pytest.raises(ParamError, match="lsuv-1-5-iterations .*needs 'fresh'"):
        catalog.resolve(catalog.notebook("lsuv"), "smoke", {"batch_modes": ["fixed"]})
    assert catalog.resolve(xk, "smoke", {"inits": ["kaiming-normal", "xavier-fanin"]})["inits"]


def test_transfer_label_cap_is_the_smallest_class_of_the_digits_target():
    import numpy as np

    from initstudy.chapters import transfer as transfer_chapter
    from initstudy.core import data

    digits = data.load("digits", resize=28)
    counts = np.bincount(np.asarray(digits.y_train))
    assert transfer_chapter.TRANSFER_MAX_PER_CLASS == counts.min()
    assert catalog.notebook("transfer").param("label_counts").max == counts.min()
