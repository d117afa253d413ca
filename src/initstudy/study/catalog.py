"""The notebooks of the book and their parameters, each declared exactly once.

Validation (runner and notebooks alike), ``python -m initstudy run --list`` and the book's
"how to rerun" page are all generated from these declarations, so they cannot drift apart.

A parameter has a type, an allowed range or set of choices, and a default for each profile:

- ``smoke``: seconds, for the tests;
- ``cpu``: the book on a 2-core laptop, a few minutes per chapter;
- ``gpu``: paper-like scale on a CUDA machine.

Every notebook also receives two system parameters that are not declared here: ``profile``
and ``results_dir`` (the folder its tables and figures go to; the runner points it at a
staging folder that replaces the earlier results only once the run has succeeded).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from initstudy.chapters import Declared, specs

__all__ = [
    "PROFILES",
    "ParamError",
    "Param",
    "Rule",
    "Constraint",
    "NotebookSpec",
    "NOTEBOOKS",
    "DEVICE_RULE",
    "common_params",
    "per",
    "same",
    "subset_fits",
    "notebook",
    "resolve",
    "seeds_list",
]

PROFILES = ("smoke", "cpu", "gpu")
SYSTEM_PARAMS = ("profile", "results_dir")
KINDS = ("int", "float", "str", "bool", "seeds", "list[str]", "list[int]", "list[float]")


class ParamError(ValueError):
    """A parameter value that is not allowed; the message names the parameter."""


@dataclass(frozen=True)
class Rule:
    """A condition on each value of a parameter (each element of a list) beyond its type and
    range, in words and as a test: what makes a value that passes the range check still
    unusable by the experiment (a ResNet depth that is not 6n + 2, a GPU that is not there)."""

    text: str
    test: Callable[[Any], bool]
    #: The condition is about the machine the work runs on (a visible GPU): checked when the work
    #: runs where the command does, left to the worker's own check when it runs on a remote cluster.
    machine: bool = False


@dataclass(frozen=True)
class Constraint:
    """A condition that ties parameters of one notebook together (for instance a batch no
    larger than the training subset), checked with the resolved parameters before any work."""

    params: tuple[str, ...]
    text: str
    test: Callable[[Mapping[str, Any]], bool]

    def check(self, params: Mapping[str, Any]) -> None:
        if not self.test(params):
            names = " and ".join(f"'{n}'" for n in self.params)
            got = ", ".join(f"{n}={params[n]!r}" for n in self.params)
            raise ParamError(f"parameters {names}: {self.text}, got {got}")


@dataclass(frozen=True)
class Param:
    """One notebook parameter: its type, what is allowed, and its default per profile."""

    name: str
    kind: str
    help: str
    defaults: Mapping[str, Any]
    choices: tuple | None = None
    min: float | None = None
    max: float | None = None
    rule: Rule | None = None  # a further condition on each value (each element of a list)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"parameter {self.name}: unknown kind {self.kind!r}")
        missing = [p for p in PROFILES if p not in self.defaults]
        if missing:
            raise ValueError(f"parameter {self.name}: no default for profile(s) {', '.join(missing)}")
        for profile in PROFILES:
            self.validate(self.defaults[profile])

    # -- what is allowed, in words ---------------------------------------------------
    def allowed(self) -> str:
        def num(v: float) -> str:
            return f"{int(v)}" if float(v).is_integer() and abs(v) < 1e15 else f"{v:g}"

        def rng() -> str:
            lo = "-inf" if self.min is None else num(self.min)
            hi = "inf" if self.max is None else num(self.max)
            return f"[{lo}, {hi}]"

        base = self._allowed_base(rng)
        if self.rule is None:
            return base
        return f"{base}, each {self.rule.text}" if self.kind.startswith("list") else f"{base} {self.rule.text}"

    def _allowed_base(self, rng) -> str:
        if self.kind == "int":
            return f"an integer in {rng()}"
        if self.kind == "float":
            return f"a number in {rng()}"
        if self.kind == "bool":
            return "true or false"
        if self.kind == "str":
            return "one of " + ", ".join(map(str, self.choices))
        if self.kind == "list[str]":
            return "a comma-separated list of distinct values from " + ", ".join(map(str, self.choices))
        if self.kind == "list[int]":
            return f"a comma-separated list of distinct integers in {rng()}"
        if self.kind == "list[float]":
            return f"a comma-separated list of distinct numbers in {rng()}"
        return f"a seed count in [1, {int(self.max or 1000)}] or a comma-separated list of distinct seeds >= 0"

    def _error(self, value: Any) -> ParamError:
        return ParamError(f"parameter '{self.name}' must be {self.allowed()}, got {value!r}")

    # -- from the command line ---------------------------------------------------------
    def parse(self, text: str, here: bool = True) -> Any:
        """Parse the command-line string ``text`` and validate it (``here``: see :meth:`validate`)."""
        text = text.strip()
        try:
            if self.kind == "int":
                value: Any = int(text)
            elif self.kind == "float":
                value = float(text)
            elif self.kind == "bool":
                lowered = text.lower()
                if lowered not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                value = lowered in ("true", "1", "yes")
            elif self.kind == "str":
                value = text
            elif self.kind == "list[str]":
                value = [t.strip() for t in text.split(",")] if text else []
            elif self.kind == "list[int]":
                value = [int(t) for t in text.split(",")] if text else []
            elif self.kind == "list[float]":
                value = [float(t) for t in text.split(",")] if text else []
            else:  # seeds
                value = [int(t) for t in text.split(",")] if "," in text else int(text)
        except ValueError:
            raise self._error(text) from None
        return self.validate(value, here=here)

    # -- from Python (papermill, notebooks) ----------------------------------------------
    def validate(self, value: Any, here: bool = True) -> Any:
        """Check ``value`` and return it normalised (lists stay lists, seeds stay as given).
        ``here=False``: the work runs on another machine, whose conditions (``Rule.machine``) are
        not checked here."""
        k = self.kind
        if k == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise self._error(value)
            self._check_range(value)
        elif k == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise self._error(value)
            value = float(value)
            self._check_range(value)
        elif k == "bool":
            if not isinstance(value, bool):
                raise self._error(value)
        elif k == "str":
            if not isinstance(value, str) or (self.choices is not None and value not in self.choices):
                raise self._error(value)
        elif k == "list[str]":
            if not isinstance(value, (list, tuple)) or not value or len(set(value)) != len(value):
                raise self._error(value)
            if any(not isinstance(v, str) or v not in self.choices for v in value):
                raise self._error(value)
            value = list(value)
        elif k in ("list[int]", "list[float]"):
            if not isinstance(value, (list, tuple)) or not value or len(set(value)) != len(value):
                raise self._error(value)
            allowed = (int,) if k == "list[int]" else (int, float)
            for v in value:
                if isinstance(v, bool) or not isinstance(v, allowed) or not math.isfinite(v):
                    raise self._error(value)
                self._check_range(v, whole=value)
            value = [float(v) for v in value] if k == "list[float]" else list(value)
        else:  # seeds: a count or a list of distinct non-negative integers
            if isinstance(value, bool):
                raise self._error(value)
            if isinstance(value, int):
                if value < 1 or value > (self.max or 1000):
                    raise self._error(value)
            elif isinstance(value, (list, tuple)):
                if not value or len(set(value)) != len(value):
                    raise self._error(value)
                if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in value):
                    raise self._error(value)
                value = list(value)
            else:
                raise self._error(value)
        if self.rule is not None and (here or not self.rule.machine):
            items = value if isinstance(value, list) else [value]
            if not all(self.rule.test(v) for v in items):
                raise self._error(value)
        return value

    def _check_range(self, v, whole=None) -> None:
        if (self.min is not None and v < self.min) or (self.max is not None and v > self.max):
            raise self._error(v if whole is None else whole)

    def default(self, profile: str) -> Any:
        return self.defaults[profile]


def seeds_list(seeds: int | list[int]) -> list[int]:
    """A seeds parameter as a list: a count n means seeds 0..n-1.

    >>> seeds_list(3), seeds_list([7, 9])
    ([0, 1, 2], [7, 9])
    """
    return list(range(seeds)) if isinstance(seeds, int) else list(seeds)


@dataclass(frozen=True)
class NotebookSpec:
    """A notebook of the book: its file, title, the claims it settles and its parameters."""

    name: str
    title: str
    claims: tuple[str, ...] = ()  # the chapter's claim ids (filled in by initstudy.chapters from its CLAIMS)
    params: tuple[Param, ...] = ()
    summary: str = ""
    data_params: tuple[str, ...] = ()  # parameters that name a data set (checked before a run)
    datasets: tuple[str, ...] = ()  # data sets the notebook always uses (checked before a run)
    constraints: tuple[Constraint, ...] = ()  # conditions across parameters (checked before a run)

    def __post_init__(self):
        names = {p.name for p in self.params}
        for c in self.constraints:
            unknown = [n for n in c.params if n not in names]
            if unknown:
                raise ValueError(f"notebook {self.name}: constraint on unknown parameter(s) {unknown}")
        for profile in PROFILES:
            for c in self.constraints:
                c.check(self.defaults(profile))

    @property
    def path(self) -> str:
        return f"notebooks/{self.name}.ipynb"

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise ParamError(
            f"notebook '{self.name}' has no parameter '{name}'; its parameters: "
            + ", ".join(p.name for p in self.params)
        )

    def defaults(self, profile: str) -> dict[str, Any]:
        return {p.name: p.default(profile) for p in self.params}


def cuda_visible() -> bool:
    """Whether torch sees a CUDA device (imports torch: called only for the value "cuda")."""
    import torch

    return bool(torch.cuda.is_available())


#: "cuda" is allowed only where a GPU is visible; checked before any work.
DEVICE_RULE = Rule("(cuda only where a CUDA device is visible)", lambda v: v != "cuda" or cuda_visible(),
                   machine=True)


def subset_fits(batch: str, subset: str = "train_subset") -> Constraint:
    """A mini-batch (every one of a list of them) no larger than the training subset it is drawn
    from; a subset of 0 keeps every example."""
    def test(p: Mapping[str, Any]) -> bool:
        sizes = p[batch] if isinstance(p[batch], list) else [p[batch]]
        return p[subset] == 0 or max(sizes) <= p[subset]

    return Constraint((batch, subset), f"{batch} must be at most {subset} unless {subset} is 0 (all examples)", test)


def common_params(seeds: tuple[int, int, int], gpu_source: str = "auto") -> tuple[Param, ...]:
    return (
        Param("seeds", "seeds", "random seeds: a count n (seeds 0..n-1) or an explicit list",
              {"smoke": seeds[0], "cpu": seeds[1], "gpu": seeds[2]}, max=1000),
        Param("device", "str", "where to compute: auto picks CUDA when present",
              {p: "auto" for p in PROFILES}, choices=("auto", "cpu", "cuda"), rule=DEVICE_RULE),
        Param("data_source", "str",
              "where the data come from (see initstudy.core.data.load; torchvision downloads what is missing)",
              {"smoke": "auto", "cpu": "auto", "gpu": gpu_source}, choices=("auto", "local", "torchvision")),
    )


def per(smoke, cpu, gpu) -> dict[str, Any]:
    return {"smoke": smoke, "cpu": cpu, "gpu": gpu}


def same(value) -> dict[str, Any]:
    return {p: value for p in PROFILES}


#: The notebooks of the book, in reading order: each chapter module's ``SPEC`` (see
#: :mod:`initstudy.chapters`).
NOTEBOOKS: Mapping[str, NotebookSpec] = Declared(specs)


def notebook(name: str, catalog: Mapping[str, NotebookSpec] | None = None) -> NotebookSpec:
    catalog = NOTEBOOKS if catalog is None else catalog
    try:
        return catalog[name]
    except KeyError:
        raise ParamError(f"unknown notebook '{name}'; allowed: {', '.join(catalog)}") from None


def resolve(spec: NotebookSpec, profile: str, overrides: Mapping[str, Any] | None = None,
            here: bool = True) -> dict[str, Any]:
    """The full parameter set of ``spec`` at ``profile``: declared defaults, replaced by
    ``overrides`` (Python values; ``None`` means "the profile's default"). Raises
    :class:`ParamError` naming the first bad parameter."""
    if profile not in PROFILES:
        raise ParamError(f"unknown profile '{profile}'; allowed: {', '.join(PROFILES)}")
    params = spec.defaults(profile)
    for name, value in (overrides or {}).items():
        param = spec.param(name)
        if value is not None:
            params[name] = param.validate(value, here=here)
    for constraint in spec.constraints:
        constraint.check(params)
    return params
