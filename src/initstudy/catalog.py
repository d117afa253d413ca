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
from dataclasses import dataclass, field
from typing import Any, Mapping

__all__ = [
    "PROFILES",
    "ParamError",
    "Param",
    "NotebookSpec",
    "NOTEBOOKS",
    "notebook",
    "resolve",
    "seeds_list",
]

PROFILES = ("smoke", "cpu", "gpu")
SYSTEM_PARAMS = ("profile", "results_dir")
KINDS = ("int", "float", "str", "bool", "seeds", "list[str]", "list[int]")


class ParamError(ValueError):
    """A parameter value that is not allowed; the message names the parameter."""


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
        return f"a seed count in [1, {int(self.max or 1000)}] or a comma-separated list of distinct seeds >= 0"

    def _error(self, value: Any) -> ParamError:
        return ParamError(f"parameter '{self.name}' must be {self.allowed()}, got {value!r}")

    # -- from the command line ---------------------------------------------------------
    def parse(self, text: str) -> Any:
        """Parse the command-line string ``text`` and validate it."""
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
            else:  # seeds
                value = [int(t) for t in text.split(",")] if "," in text else int(text)
        except ValueError:
            raise self._error(text) from None
        return self.validate(value)

    # -- from Python (papermill, notebooks) ----------------------------------------------
    def validate(self, value: Any) -> Any:
        """Check ``value`` and return it normalised (lists stay lists, seeds stay as given)."""
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
        elif k == "list[int]":
            if not isinstance(value, (list, tuple)) or not value or len(set(value)) != len(value):
                raise self._error(value)
            for v in value:
                if isinstance(v, bool) or not isinstance(v, int):
                    raise self._error(value)
                self._check_range(v, whole=value)
            value = list(value)
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
    claims: tuple[str, ...]
    params: tuple[Param, ...]
    summary: str = ""
    data_params: tuple[str, ...] = ()  # parameters that name a data set (checked before a run)
    extra: dict = field(default_factory=dict)

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


def _common(seeds: tuple[int, int, int], source: str = "auto") -> tuple[Param, ...]:
    return (
        Param("seeds", "seeds", "random seeds: a count n (seeds 0..n-1) or an explicit list",
              {"smoke": seeds[0], "cpu": seeds[1], "gpu": seeds[2]}, max=1000),
        Param("device", "str", "where to compute: auto picks CUDA when present",
              {p: "auto" for p in PROFILES}, choices=("auto", "cpu", "cuda")),
        Param("data_source", "str", "where the data come from (see initstudy.data.load)",
              {p: source for p in PROFILES}, choices=("auto", "local", "torchvision")),
    )


def _same(value) -> dict[str, Any]:
    return {p: value for p in PROFILES}


ZERO_INIT = NotebookSpec(
    name="zero_init",
    title="Zero initialisation and symmetry",
    claims=("zero-symmetry", "zero-random-bias"),
    summary="Zero, constant and zero-weight-random-bias inits against random init: symmetry, rank and accuracy.",
    data_params=("dataset",),
    params=(
        *_common((3, 5, 10)),
        Param("dataset", "str", "the real data set to train on",
              {"smoke": "digits", "cpu": "fashion-mnist", "gpu": "fashion-mnist"},
              choices=("digits", "mnist-5k", "fashion-mnist", "mnist")),
        Param("train_subset", "int", "training examples kept (0 = all)",
              {"smoke": 1000, "cpu": 10000, "gpu": 0}, min=0, max=1_000_000),
        Param("width", "int", "units per hidden layer", {"smoke": 16, "cpu": 64, "gpu": 256}, min=2, max=4096),
        Param("depths", "list[int]", "numbers of hidden layers to try", _same([1, 2]), min=1, max=8),
        Param("activations", "list[str]", "hidden activations to try", _same(["sigmoid", "tanh", "relu"]),
              choices=("sigmoid", "tanh", "relu")),
        Param("steps", "int", "SGD updates per run", {"smoke": 60, "cpu": 600, "gpu": 3000}, min=1, max=1_000_000),
        Param("batch_size", "int", "mini-batch size", _same(64), min=1, max=65536),
        Param("lr", "float", "SGD learning rate (no momentum)", _same(0.1), min=1e-6, max=10.0),
        Param("record_every", "int", "steps between symmetry measurements",
              {"smoke": 10, "cpu": 25, "gpu": 100}, min=1, max=100000),
        Param("bias_std", "float", "std of the random biases of the zero-weight-random-bias init",
              _same(1.0), min=1e-6, max=100.0),
        Param("constant", "float", "the value of every weight under the constant init",
              _same(0.05), min=-10.0, max=10.0),
    ),
)

#: The notebooks of the book, in reading order.
NOTEBOOKS: dict[str, NotebookSpec] = {spec.name: spec for spec in (ZERO_INIT,)}


def notebook(name: str, catalog: Mapping[str, NotebookSpec] | None = None) -> NotebookSpec:
    catalog = NOTEBOOKS if catalog is None else catalog
    try:
        return catalog[name]
    except KeyError:
        raise ParamError(f"unknown notebook '{name}'; allowed: {', '.join(catalog)}") from None


def resolve(spec: NotebookSpec, profile: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The full parameter set of ``spec`` at ``profile``: declared defaults, replaced by
    ``overrides`` (Python values; ``None`` means "the profile's default"). Raises
    :class:`ParamError` naming the first bad parameter."""
    if profile not in PROFILES:
        raise ParamError(f"unknown profile '{profile}'; allowed: {', '.join(PROFILES)}")
    params = spec.defaults(profile)
    for name, value in (overrides or {}).items():
        param = spec.param(name)
        if value is not None:
            params[name] = param.validate(value)
    return params
