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

__all__ = [
    "PROFILES",
    "ParamError",
    "Param",
    "Rule",
    "Constraint",
    "NotebookSpec",
    "NOTEBOOKS",
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
            elif self.kind == "list[float]":
                value = [float(t) for t in text.split(",")] if text else []
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
        if self.rule is not None:
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
    claims: tuple[str, ...]
    params: tuple[Param, ...]
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
DEVICE_RULE = Rule("(cuda only where a CUDA device is visible)", lambda v: v != "cuda" or cuda_visible())

#: The depth of a CIFAR ResNet of basic blocks: 6n + 2 (three stages of n blocks of 2 layers).
RESNET_DEPTH_RULE = Rule("of the form 6n + 2 (8, 14, 20, 26, 32, ...)", lambda d: d >= 8 and (d - 2) % 6 == 0)


def _subset_fits(batch: str, subset: str = "train_subset") -> Constraint:
    """A mini-batch (every one of a list of them) no larger than the training subset it is drawn
    from; a subset of 0 keeps every example."""
    def test(p: Mapping[str, Any]) -> bool:
        sizes = p[batch] if isinstance(p[batch], list) else [p[batch]]
        return p[subset] == 0 or max(sizes) <= p[subset]

    return Constraint((batch, subset), f"{batch} must be at most {subset} unless {subset} is 0 (all examples)", test)


#: The fewest training examples of one class in the transfer chapter's smallest target (the
#: digits' training split: class 8 has 139; tests/test_catalog.py checks it against the data).
TRANSFER_MAX_PER_CLASS = 139


def _common(seeds: tuple[int, int, int], gpu_source: str = "auto") -> tuple[Param, ...]:
    return (
        Param("seeds", "seeds", "random seeds: a count n (seeds 0..n-1) or an explicit list",
              {"smoke": seeds[0], "cpu": seeds[1], "gpu": seeds[2]}, max=1000),
        Param("device", "str", "where to compute: auto picks CUDA when present",
              {p: "auto" for p in PROFILES}, choices=("auto", "cpu", "cuda"), rule=DEVICE_RULE),
        Param("data_source", "str",
              "where the data come from (see initstudy.data.load; torchvision downloads what is missing)",
              {"smoke": "auto", "cpu": "auto", "gpu": gpu_source}, choices=("auto", "local", "torchvision")),
    )


def _per(smoke, cpu, gpu) -> dict[str, Any]:
    return {"smoke": smoke, "cpu": cpu, "gpu": gpu}


def _same(value) -> dict[str, Any]:
    return {p: value for p in PROFILES}


ZERO_INIT = NotebookSpec(
    name="zero_init",
    title="Zero initialisation: symmetry, and a second way to fail",
    claims=("zero-symmetry", "zero-random-bias"),
    summary="Zero, constant and zero-weight-random-bias inits against random init: symmetry, rank and accuracy.",
    data_params=("dataset",),
    constraints=(_subset_fits("batch_size", "train_subset"),),
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

SIGNAL_DEPTH = NotebookSpec(
    name="signal_depth",
    title="The signal through depth",
    claims=("sigmoid-saturation", "depth-explode-vanish", "old-uniform-vanishes", "xavier-unit-variance"),
    summary="Activations and gradients through 100 layers and more at init, theory overlaid; sigmoid "
            "saturation; the old uniform rule against Xavier on deep tanh and sigmoid MLPs.",
    data_params=("dataset",),
    constraints=(_subset_fits("batch_size"),),
    params=(
        *_common((3, 5, 10), gpu_source="torchvision"),
        Param("width", "int", "units per layer of the plain stacks", _per(64, 512, 1024), min=2, max=8192),
        Param("depth", "int", "layers of the plain stacks (the claims are read at layer 100)",
              _per(30, 100, 1000), min=2, max=100000),
        Param("batch", "int", "standard-normal inputs pushed through the stacks", _per(64, 128, 512),
              min=2, max=65536),
        Param("activations", "list[str]", "activations of the stacks",
              _same(["identity", "tanh", "sigmoid", "relu"]), choices=("identity", "tanh", "sigmoid", "relu")),
        Param("schemes", "list[str]", "init schemes of the stacks (normal-1 is N(0, 1), normal-0.01 N(0, 0.01^2))",
              _same(["normal-1", "normal-0.01", "old-uniform", "xavier-uniform", "xavier-normal", "kaiming-normal"]),
              choices=("normal-1", "normal-0.01", "old-uniform", "xavier-uniform", "xavier-normal",
                       "kaiming-normal")),
        Param("gains", "list[float]", "per-layer gains around 1 (times the variance-preserving init)",
              _same([0.9, 0.95, 1.0, 1.05, 1.1]), min=0.1, max=10.0),
        Param("overflow_depth", "int", "layers of the linear stacks run until float32 overflows",
              _per(100, 1000, 5000), min=10, max=1000000),
        Param("shared_seeds", "int", "seeds of the one-matrix-for-every-layer demonstration",
              _per(5, 20, 100), min=1, max=10000),
        Param("saturation_stds", "list[float]", "weight stds s of the sigmoid saturation sweep (N(0, s^2))",
              _same([0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0]), min=1e-6, max=100.0),
        Param("saturation_depth", "int", "hidden layers of the saturation sweep's sigmoid MLP",
              _per(4, 10, 10), min=2, max=1000),
        Param("probe_width", "int", "width of the MLPs probed at init (saturation, gradients)",
              _per(32, 256, 1000), min=2, max=8192),
        Param("dataset", "str", "the real data set of the gradient probes and the training runs",
              _per("digits", "fashion-mnist", "mnist"), choices=("digits", "mnist-5k", "fashion-mnist", "mnist")),
        Param("train_subset", "int", "training examples kept (0 = all)", _per(1000, 10000, 0), min=0,
              max=1_000_000),
        Param("train_depths", "list[int]", "hidden layers of the trained MLPs (the first is the shallow reference)",
              _per([1, 3], [1, 5, 20], [1, 5, 20]), min=1, max=1000),
        Param("train_width", "int", "units per hidden layer of the trained MLPs", _per(32, 128, 1000),
              min=2, max=8192),
        Param("train_steps", "int", "SGD updates per training run", _per(100, 800, 20000), min=1,
              max=10_000_000),
        Param("lr", "float", "SGD learning rate (no momentum, as Glorot & Bengio)", _same(0.1), min=1e-6,
              max=10.0),
        Param("batch_size", "int", "training mini-batch size", _same(64), min=1, max=65536),
        Param("eval_every", "int", "steps between test evaluations", _per(20, 100, 1000), min=1, max=1_000_000),
    ),
)

XAVIER_KAIMING = NotebookSpec(
    name="xavier_kaiming",
    title="Xavier and Kaiming under ReLU",
    claims=("relu-halves-variance", "xavier-fails-relu"),
    summary="What ReLU does to the moments of a Gaussian; activation std through ReLU stacks; He et al. "
            "(2015) Figs. 2-3 analogues: 22- and 30-layer ReLU networks without BatchNorm.",
    data_params=("dataset",),
    constraints=(_subset_fits("batch_size"),),
    params=(
        *_common((3, 6, 6), gpu_source="torchvision"),
        Param("relu_samples", "int", "draws of z ~ N(0, 1) per seed for the ReLU moments",
              _per(100_000, 1_000_000, 10_000_000), min=1000, max=1_000_000_000),
        Param("width", "int", "units per layer of the plain ReLU stacks", _per(64, 512, 1024), min=2, max=8192),
        Param("stack_depth", "int", "layers of the plain ReLU stacks (the claim is read at layer 30)",
              _per(30, 50, 100), min=2, max=100000),
        Param("batch", "int", "standard-normal inputs pushed through the stacks", _per(64, 128, 512),
              min=2, max=65536),
        Param("arch", "str", "the trained network: an MLP, or a plain CNN as He et al.'s",
              _per("mlp", "mlp", "cnn"), choices=("mlp", "cnn")),
        Param("he_depths", "list[int]", "depths of the trained ReLU networks (He et al.: 22 and 30)",
              _per([6, 10], [22, 30], [22, 30]), min=3, max=1000),
        Param("he_width", "int", "units (MLP) or first-stage channels (CNN) of the trained networks",
              _per(32, 128, 64), min=2, max=8192),
        Param("inits", "list[str]", "inits compared (Glorot's Xavier, He's fan-in Xavier, Kaiming)",
              _same(["xavier-normal", "kaiming-normal"]),
              choices=("xavier-normal", "xavier-fanin", "kaiming-normal")),
        Param("lrs", "list[float]", "the learning-rate grid, the same for every init",
              _same([0.001, 0.01, 0.1]), min=1e-6, max=10.0),
        Param("momentum", "float", "SGD momentum (He et al. used 0.9)", _same(0.9), min=0.0, max=0.999),
        Param("dataset", "str", "the real data set of the training runs",
              _per("digits", "fashion-mnist", "cifar10"),
              choices=("digits", "mnist-5k", "fashion-mnist", "mnist", "cifar10")),
        Param("train_subset", "int", "training examples kept (0 = all)", _per(1000, 10000, 0), min=0,
              max=1_000_000),
        Param("train_steps", "int", "SGD updates per training run", _per(60, 600, 20000), min=1,
              max=10_000_000),
        Param("batch_size", "int", "training mini-batch size", _per(64, 64, 128), min=1, max=65536),
        Param("eval_every", "int", "steps between test evaluations", _per(20, 50, 1000), min=1, max=1_000_000),
    ),
)

FIXUP = NotebookSpec(
    name="fixup",
    title="Residual networks without BatchNorm: Fixup",
    claims=("resnet-variance-doubles", "fixup-trains-without-bn"),
    summary="Variance growth through residual blocks up to 10,000 layers; the Fixup paper's Fig. 3 analogue "
            "(first-epoch accuracy against depth); Fixup against BatchNorm and zero-gamma BN; ablations.",
    data_params=("dataset",),
    constraints=(_subset_fits("batch_size"),),
    params=(
        *_common((2, 3, 5), gpu_source="torchvision"),
        Param("growth_width", "int", "channels of the blocks of the variance experiment (the verdict's width)",
              _per(16, 64, 128), min=2, max=1024),
        Param("growth_blocks", "int", "residual blocks of the variance experiment's verdict runs",
              _per(50, 500, 5000), min=2, max=100000),
        Param("range_blocks", "int", "blocks of the 16-channel runs drawn to the paper's 10,000-layer range",
              _per(100, 5000, 5000), min=2, max=100000),
        Param("growth_size", "int", "map size (pixels per side) of the variance experiment", _same(8), min=2, max=256),
        Param("growth_batch", "int", "examples in the variance experiment's batch", _same(8), min=2, max=4096),
        Param("dataset", "str", "the real data set of the training runs", _per("digits", "fashion-mnist", "cifar10"),
              choices=("digits", "mnist-5k", "fashion-mnist", "mnist", "cifar10")),
        Param("resize", "int", "resize images to this many pixels per side (0: keep)", _per(14, 14, 0), min=0,
              max=512),
        Param("train_subset", "int", "training examples kept (0 = all)", _per(500, 6000, 0), min=0, max=1_000_000),
        Param("test_subset", "int", "test examples kept (0 = all)", _per(300, 2000, 0), min=0, max=1_000_000),
        Param("width", "int", "channels of the first stage of the trained ResNets (16 in the paper)",
              _per(8, 16, 16), min=1, max=1024),
        Param("batch_size", "int", "training mini-batch size", _per(32, 64, 128), min=1, max=65536),
        Param("base_lr", "float", "learning rate per 128 examples (the default BN lr 0.1; scaled by batch/128)",
              _same(0.1), min=1e-6, max=10.0),
        Param("weight_decay", "float", "weight decay (the official script's default 1e-4)", _same(1e-4), min=0.0,
              max=1.0),
        Param("warmup_steps", "int", "linear learning-rate warm-up steps (0: none, as the paper)", _same(0), min=0,
              max=1_000_000),
        Param("fan", "str", "fan of Fixup's He std: fan_out as the official code, or fan_in",
              _same("fan_out"), choices=("fan_out", "fan_in")),
        Param("fig3_depths", "list[int]", "depths 6n+2 of the first-epoch experiment (Fixup Fig. 3 analogue)",
              _per([8, 14], [8, 20, 56], [20, 56, 110, 1202]),
              min=8, max=100000, rule=RESNET_DEPTH_RULE),
        Param("fig3_epochs", "float", "training budget of the first-epoch experiment, in epochs of the subset",
              _same(1.0), min=0.01, max=1000.0),
        Param("long_depths", "list[int]", "depths 6n+2 of the longer training runs",
              _per([8], [20, 32], [20, 32, 56, 110]),
              min=8, max=100000, rule=RESNET_DEPTH_RULE),
        Param("long_methods", "list[str]", "methods of the longer runs", _same(["bn", "zero-gamma", "fixup"]),
              choices=("bn", "zero-gamma", "none", "fixup")),
        Param("long_epochs", "float", "training budget of the longer runs, in epochs (lr / 10 at 50 % and 75 %)",
              _per(1.0, 2.0, 200.0), min=0.01, max=10000.0),
        Param("mixup_alpha", "float", "mixup's alpha in the longer runs (0: off; the official default is 1.0)",
              _per(0.0, 0.0, 1.0), min=0.0, max=100.0),
        Param("augment", "str", "augmentation of the longer runs (crop-flip: CIFAR's padded crop and flip)",
              _per("none", "none", "crop-flip"), choices=("none", "crop-flip")),
        Param("ablation_depth", "int", "depth 6n+2 of the Fixup ablations", _per(8, 20, 110),
              min=8, max=100000, rule=RESNET_DEPTH_RULE),
        Param("eval_every", "int", "steps between test evaluations in the longer runs", _per(8, 47, 1000), min=1,
              max=1_000_000),
    ),
)

LSUV = NotebookSpec(
    name="lsuv",
    title="LSUV: layer-sequential unit variance",
    claims=("lsuv-1-5-iterations", "lsuv-batch-size", "lsuv-cheap"),
    summary="Mishkin & Matas's Algorithm 1: iterations per layer across architectures, tolerances, batches and "
            "biases; the batch-size claim with an equivalence margin; LSUV's cost against BatchNorm's; training "
            "curves; the authors' package side by side.",
    data_params=("dataset",),
    constraints=(_subset_fits("batch"), _subset_fits("batch_size"), _subset_fits("batch_sizes")),
    params=(
        *_common((3, 5, 5), gpu_source="torchvision"),
        Param("dataset", "str", "the real data set", _per("digits", "fashion-mnist", "cifar10"),
              choices=("digits", "mnist-5k", "fashion-mnist", "mnist", "cifar10")),
        Param("resize", "int", "resize images to this many pixels per side (0: keep)", _per(0, 14, 0), min=0, max=512),
        Param("train_subset", "int", "training examples kept (0 = all)", _per(1000, 6000, 0), min=0, max=1_000_000),
        Param("test_subset", "int", "test examples kept (0 = all)", _per(300, 2000, 0), min=0, max=1_000_000),
        Param("archs", "list[str]", "architectures of the iteration experiment",
              _same(["mlp-relu", "mlp-tanh", "mlp-sigmoid", "cnn", "resnet", "resnet-bn"]),
              choices=("mlp-relu", "mlp-tanh", "mlp-sigmoid", "cnn", "resnet", "resnet-bn")),
        Param("depth", "int", "hidden layers (MLPs) or conv layers (plain CNN) of the iteration experiment",
              _per(4, 10, 20), min=3, max=1000),
        Param("width", "int", "units per hidden layer of the MLPs", _per(32, 128, 512), min=2, max=8192),
        Param("batch", "int", "LSUV's mini-batch size (iteration experiment, cost)", _per(32, 128, 256), min=2,
              max=65536),
        Param("batch_modes", "list[str]", "one fixed mini-batch, or a fresh one for every forward pass",
              _same(["fixed", "fresh"]), choices=("fixed", "fresh")),
        Param("bias_modes", "list[str]", "zero biases, or PyTorch's default non-zero ones",
              _same(["zero", "default"]), choices=("zero", "default")),
        Param("batch_sizes", "list[int]", "LSUV batch sizes of the batch-size experiment",
              _per([8, 32, 128], [8, 16, 32, 64, 128, 256, 512, 1024], [8, 16, 32, 64, 128, 256, 512, 1024]),
              min=2, max=65536),
        Param("batch_seeds", "int", "seeds of the batch-size experiment (paired comparisons)", _per(2, 10, 30),
              min=1, max=10000),
        Param("batch_depth", "int", "hidden layers of the batch-size experiment's tanh MLP", _per(4, 8, 11), min=1,
              max=1000),
        Param("train_steps", "int", "SGD updates of the training runs", _per(40, 400, 20000), min=1, max=10_000_000),
        Param("lr", "float", "SGD learning rate (momentum 0.9)", _same(0.05), min=1e-6, max=10.0),
        Param("batch_size", "int", "training mini-batch size", _per(32, 64, 128), min=1, max=65536),
        Param("eval_every", "int", "steps between test evaluations", _per(20, 50, 500), min=1, max=1_000_000),
        Param("relu_depth", "int", "hidden layers of the deep ReLU MLP of the training curves", _per(6, 20, 30),
              min=1, max=1000),
        Param("sigmoid_depth", "int", "hidden layers of the sigmoid MLP of the training curves", _per(4, 10, 11),
              min=1, max=1000),
        Param("cost_repeats", "int", "repeats of the cost measurement", _per(3, 3, 5), min=1, max=1000),
        Param("target_accuracy", "float", "test accuracy of the time-to-target race, LSUV against BN",
              _per(0.3, 0.7, 0.8), min=0.0, max=1.0),
    ),
)

TRANSFER = NotebookSpec(
    name="transfer",
    title="Does pretraining beat every initialisation?",
    claims=("transfer-best",),
    summary="A CNN pretrained on one real data set and fine-tuned on another with few labels, against every init "
            "of the book from scratch; a similar pair (the claim), a dissimilar pair (its scope) and a "
            "shuffled-label source (the negative control).",
    datasets=("mnist-5k", "digits", "fashion-mnist"),
    params=(
        *_common((2, 5, 10)),
        Param("label_counts", "list[int]", "labelled training examples per class of the target (the smallest is "
              "the verdict's)", _per([5, 20], [5, 10, 20, 50, 100], [5, 10, 20, 50, 100]), min=1, max=TRANSFER_MAX_PER_CLASS),
        Param("pretrain_steps", "int", "SGD updates of the pretraining on each source", _per(100, 600, 5000), min=1,
              max=10_000_000),
        Param("finetune_steps", "int", "SGD updates of every fine-tuning and from-scratch run",
              _per(25, 150, 1000), min=1, max=10_000_000),
        Param("lr", "float", "SGD learning rate (momentum 0.9), the same for every run", _same(0.05), min=1e-6,
              max=10.0),
        Param("batch_size", "int", "mini-batch size (capped by the number of labelled examples)", _same(32), min=1,
              max=65536),
        Param("source_subset", "int", "Fashion-MNIST training examples used to pretrain the dissimilar pair (0 = all)",
              _per(2000, 10000, 0), min=0, max=1_000_000),
        Param("pretrained", "str", "also fine-tune torchvision's ImageNet ResNet-18 (downloads its weights once)",
              _same("ours"), choices=("ours", "torchvision-resnet18")),
    ),
)

#: The notebooks of the book, in reading order.
NOTEBOOKS: dict[str, NotebookSpec] = {
    spec.name: spec for spec in (ZERO_INIT, SIGNAL_DEPTH, XAVIER_KAIMING, FIXUP, LSUV, TRANSFER)
}


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
    for constraint in spec.constraints:
        constraint.check(params)
    return params
