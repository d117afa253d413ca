import pytest

from initstudy import catalog
from initstudy.catalog import Param, ParamError


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
    from initstudy.claims import LEDGER

    for spec in catalog.NOTEBOOKS.values():
        names = [p.name for p in spec.params]
        assert {"seeds", "device"} <= set(names) and len(names) == len(set(names))
        for cid in spec.claims:
            assert LEDGER[cid].notebook == spec.name
