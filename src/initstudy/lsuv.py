"""Layer-sequential unit-variance (LSUV) initialisation, as Mishkin & Matas (2016) define it.

Algorithm 1 of the paper, with its names:

1. pre-initialise every conv and fully connected layer with an orthonormal matrix (Saxe et
   al. 2014);
2. for each such layer L, in the order the forward pass reaches it: while
   ``|Var(B_L) - 1| >= tol_var`` and ``T_i < t_max``: forward a mini-batch, and rescale the
   weights ``W_L <- W_L / sqrt(Var(B_L))``, where ``B_L`` is the layer's whole output blob.

Weights only: biases are left as they are. Defaults ``tol_var = 0.1`` and ``t_max = 10`` (the
paper's implementations in Torch, Keras and PyTorch); :data:`CAFFE` holds the original Caffe
script's 0.02 and 20. With ``fresh_batches`` every forward pass draws a new mini-batch, as
the paper's "forward a mini-batch" reads; by default one fixed batch is used, as the authors'
Caffe and PyTorch code do. ``variant="fastai"`` is the fast.ai course's version, which is
**not the paper's**: it measures after the activation and also shifts the bias
(``bias -= mean; weight /= std``) until mean and std are within ``tol`` of 0 and 1.

Why one rescale usually suffices: with one fixed batch and zero bias, a layer's output is
linear in its weights, so its variance is exactly quadratic in their scale and one rescale
lands on 1 (up to rounding). More iterations appear only with fresh batches (the variance of a
new batch differs), non-zero biases (the output is no longer proportional to the weights) or
when the measured variance is not the layer's own (the fast.ai variant, after a nonlinearity).
"""

from __future__ import annotations

import math
import time
from typing import Callable, Iterator

import numpy as np
import pandas as pd
import torch
from torch import nn

from .inits import init_layers, orthogonal_

__all__ = [
    "TRAIN_INITS",
    "training_sweep",
    "LSUVError",
    "PAPER",
    "CAFFE",
    "ARCHS",
    "eligible_layers",
    "execution_order",
    "lsuv_init",
    "output_variances",
    "build",
    "iteration_sweep",
    "batch_size_sweep",
    "cost_comparison",
    "compare_with_package",
    "lsuv_measurements",
    "TIGHT",
    "preinit_variances",
    "variant_summary",
    "iteration_summary",
    "scale_spread",
    "accuracy_diffs",
    "CHANCE_MARGIN",
    "final_accuracy_summary",
    "describe_accuracies",
    "TOLERANCE_NAMES",
    "mean_intervals",
]

#: (tol_var, t_max) of the paper's reference implementations, and of the original Caffe script.
PAPER = (0.1, 10)
CAFFE = (0.02, 20)
#: The negative control of ``lsuv-1-5-iterations``: a tolerance far below the batch-to-batch
#: noise of a variance estimate (with fresh batches it cannot converge), the paper's t_max.
TIGHT = (0.001, 10)

ELIGIBLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


class LSUVError(ValueError):
    """LSUV cannot proceed; the message names the layer."""


def eligible_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every Linear and Conv1d/2d/3d layer, in registration order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, ELIGIBLE)]


@torch.no_grad()
def execution_order(model: nn.Module, x: torch.Tensor) -> list[tuple[str, nn.Module]]:
    """The eligible layers in the order one forward pass of ``x`` reaches them (found with
    hooks; a layer the forward pass never calls is left out)."""
    order: list[str] = []

    def hook(name):
        def fn(module, inputs, output):
            if name not in order:
                order.append(name)
        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in eligible_layers(model)]
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    named = dict(model.named_modules())
    return [(n, named[n]) for n in order]


def _batch_source(batch) -> Callable[[], torch.Tensor]:
    if isinstance(batch, torch.Tensor):
        return lambda: batch
    if callable(batch):
        return batch
    iterator: Iterator = iter(batch)
    return lambda: next(iterator)


@torch.no_grad()
def _output_of(model: nn.Module, layer: nn.Module, x: torch.Tensor, after: nn.Module | None = None) -> torch.Tensor:
    captured = {}
    target = after if after is not None else layer

    def fn(module, inputs, output):
        captured.setdefault("out", output)

    handle = target.register_forward_hook(fn)
    try:
        model(x)
    finally:
        handle.remove()
    if "out" not in captured:
        raise LSUVError(f"layer {_name_of(model, target)}: the forward pass never reached it")
    return captured["out"]


def _name_of(model: nn.Module, module: nn.Module) -> str:
    return next((n for n, m in model.named_modules() if m is module), type(module).__name__)


ACTIVATION_TYPES = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.LeakyReLU, nn.GELU)


def _next_module(model: nn.Module, name: str) -> nn.Module | None:
    """The activation registered right after ``name`` in the same parent (as in a
    Sequential), for the fast.ai variant; ``None`` (measure the layer itself) otherwise."""
    parent_name, _, child = name.rpartition(".")
    parent = dict(model.named_modules())[parent_name] if parent_name else model
    children = list(parent.named_children())
    i = [n for n, _ in children].index(child)
    nxt = children[i + 1][1] if i + 1 < len(children) else None
    return nxt if isinstance(nxt, ACTIVATION_TYPES) else None


@torch.no_grad()
def lsuv_init(
    model: nn.Module,
    batch,
    tol_var: float = PAPER[0],
    t_max: int = PAPER[1],
    *,
    fresh_batches: bool = False,
    orthonormal: bool = True,
    order: str = "execution",
    variant: str = "paper",
    seed: int | None = None,
) -> pd.DataFrame:
    """Initialise ``model`` in place with LSUV and return a per-layer record.

    Args:
        batch: a tensor (the fixed mini-batch), or a callable / iterable giving batches
            (needed for ``fresh_batches=True``; without it only the first batch is used).
        tol_var, t_max: stop when ``|Var - 1| < tol_var`` or after ``t_max`` rescalings.
        fresh_batches: draw a new batch for every forward pass.
        orthonormal: orthonormal pre-init (step 1; biases are not touched).
        order: "execution" (hooks on a forward pass) or "registration" (module order).
        variant: "paper", or "fastai" (not the paper's: after the activation, with a bias shift).
        seed: seed of the orthonormal pre-init.

    Returns one row per layer: ``layer, position, iterations`` (rescalings, T_i),
    ``forward_passes``, ``var_before``, ``var_after`` (on the last batch seen), ``scale`` (the
    product of all rescalings), ``converged`` and ``seconds``.

    Raises :class:`LSUVError` for a model without eligible layers, a batch too small to
    estimate a variance, or an output variance of 0 or not finite (naming the layer).
    """
    if variant not in ("paper", "fastai"):
        raise LSUVError(f"variant must be 'paper' or 'fastai', got {variant!r}")
    if order not in ("execution", "registration"):
        raise LSUVError(f"order must be 'execution' or 'registration', got {order!r}")
    if t_max < 1 or not tol_var > 0:
        raise LSUVError(f"t_max must be >= 1 and tol_var > 0, got {t_max} and {tol_var}")
    layers = eligible_layers(model)
    if not layers:
        raise LSUVError("the model has no Linear or Conv layer for LSUV")
    source = _batch_source(batch)
    first = source()
    if first.shape[0] < 2:
        raise LSUVError(f"a batch of {first.shape[0]} example cannot estimate a variance; use at least 2")
    was_training = model.training
    model.eval()
    try:
        if orthonormal:
            device = next(model.parameters()).device  # a CUDA tensor needs a CUDA generator
            gen = torch.Generator(device=device).manual_seed(seed) if seed is not None else None
            for _, layer in init_layers(model):
                orthogonal_(layer.weight, generator=gen)
        if order == "execution":
            layers = execution_order(model, first)
        rows = []
        x = first
        for position, (name, layer) in enumerate(layers):
            t0 = time.perf_counter()
            after = _next_module(model, name) if variant == "fastai" else None
            out = _output_of(model, layer, x, after)
            if out.numel() < 2:
                raise LSUVError(f"layer {name}: its output has {out.numel()} value(s), too few for a variance")
            var = out.double().var().item()
            var_before, scale, iterations, passes = var, 1.0, 0, 1
            mean = out.double().mean().item()
            while iterations < t_max:
                if not math.isfinite(var) or var == 0.0:
                    raise LSUVError(f"layer {name}: output variance is {var} (zero or not finite), cannot rescale")
                if variant == "paper":
                    if abs(var - 1.0) < tol_var:
                        break
                    factor = 1.0 / math.sqrt(var)
                else:
                    if abs(mean) < tol_var and abs(math.sqrt(var) - 1.0) < tol_var:
                        break
                    if layer.bias is not None:
                        layer.bias.sub_(mean)
                    factor = 1.0 / math.sqrt(var)
                layer.weight.mul_(factor)
                scale *= factor
                iterations += 1
                if fresh_batches:
                    x = source()
                out = _output_of(model, layer, x, after)
                passes += 1
                var = out.double().var().item()
                mean = out.double().mean().item()
            converged = (abs(var - 1.0) < tol_var) if variant == "paper" else (
                abs(mean) < tol_var and abs(math.sqrt(var) - 1.0) < tol_var)
            rows.append({"layer": name, "position": position, "iterations": iterations, "forward_passes": passes,
                         "var_before": var_before, "var_after": var, "scale": scale, "converged": converged,
                         "seconds": time.perf_counter() - t0})
    finally:
        model.train(was_training)
    return pd.DataFrame(rows)


@torch.no_grad()
def output_variances(model: nn.Module, x: torch.Tensor) -> pd.DataFrame:
    """The variance of every eligible layer's whole output on ``x`` (e.g. a held-out batch),
    in execution order."""
    found: dict[str, float] = {}

    def hook(name):
        def fn(module, inputs, output):
            found.setdefault(name, output.double().var().item())  # returns None: output unchanged
        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in eligible_layers(model)]
    was_training = model.training
    model.eval()
    try:
        model(x)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return pd.DataFrame([{"layer": n, "position": i, "variance": v} for i, (n, v) in enumerate(found.items())])


# --------------------------------------------------------------------------- experiments

ARCHS = ("mlp-relu", "mlp-tanh", "mlp-sigmoid", "cnn", "resnet", "resnet-bn")


def build(arch: str, data, depth: int, width: int, seed: int, bias: str = "zero") -> nn.Module:
    """A network of the LSUV experiments, before LSUV: deep MLPs ("mlp-<activation>", depth
    hidden layers of width units), a plain CNN (depth conv layers), a ResNet-20 without
    ("resnet") or with ("resnet-bn") BatchNorm. ``bias``: "zero", or "default" (PyTorch's
    U[-1/sqrt(n_in), 1/sqrt(n_in)], where the layer has a bias)."""
    from .models import mlp, plain_cnn
    from .resnet import resnet

    torch.manual_seed(seed)
    if arch.startswith("mlp-"):
        net = mlp(data.in_features, [width] * depth, data.num_classes, act=arch[4:])
    elif arch == "cnn":
        net = plain_cnn(data.input_shape[0], data.num_classes, depth, max(4, width // 8))
    elif arch in ("resnet", "resnet-bn"):
        net = resnet(20, "he-fan-out", norm="none" if arch == "resnet" else "batchnorm",
                     in_channels=data.input_shape[0], num_classes=data.num_classes, seed=seed)
    else:
        raise ValueError(f"unknown architecture {arch!r}; allowed: {', '.join(ARCHS)}")
    if bias == "zero":
        for _, m in eligible_layers(net):
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return net


def iteration_sweep(data, *, archs, tolerances, batch_modes, bias_modes, seeds, depth: int, width: int,
                    batch_size: int, progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """LSUV over architectures x (tol_var, t_max) x fixed/fresh batches x zero/default biases
    x seeds: the per-layer records, and every layer's output variance on a held-out batch (the
    test set's first ``batch_size`` examples, never used for fitting)."""
    from itertools import product

    from .progress import tqdm

    heldout = data.x_test[:batch_size]
    records, variances = [], []
    grid = list(product(archs, tolerances, batch_modes, bias_modes, seeds))
    for arch, (tol, t_max), mode, bias, seed in tqdm(grid, desc="lsuv", disable=not progress):
        net = build(arch, data, depth, width, seed, bias)
        gen = torch.Generator().manual_seed(seed)

        def draw():
            return data.x_train[torch.randint(0, len(data.y_train), (batch_size,), generator=gen)]

        rec = lsuv_init(net, draw if mode == "fresh" else draw(), tol, t_max, fresh_batches=mode == "fresh",
                        seed=seed)
        tag = {"arch": arch, "tol_var": tol, "t_max": t_max, "batches": mode, "bias": bias, "seed": seed}
        records.append(rec.drop(columns="seconds").assign(**tag))
        variances.append(output_variances(net, heldout).assign(**tag))
    return pd.concat(records, ignore_index=True), pd.concat(variances, ignore_index=True)


def preinit_variances(data, *, archs, seeds, depth: int, width: int, batch_size: int) -> pd.DataFrame:
    """Every layer's output variance on the held-out batch after LSUV's orthonormal pre-init
    alone (step 1 of Algorithm 1, without the rescaling): the negative control of the
    unit-variance check. Same networks, seeds and held-out batch as :func:`iteration_sweep`."""
    heldout = data.x_test[:batch_size]
    frames = []
    for arch in archs:
        for seed in seeds:
            net = build(arch, data, depth, width, seed)
            gen = torch.Generator().manual_seed(seed)
            with torch.no_grad():
                for _, layer in init_layers(net):
                    orthogonal_(layer.weight, generator=gen)
            frames.append(output_variances(net.eval(), heldout).assign(arch=arch, seed=seed))
    return pd.concat(frames, ignore_index=True)


def batch_size_sweep(data, *, batch_sizes, seeds, depth: int, width: int, activation: str, config,
                     progress: bool = True, device: str = "cpu",
                     control_lr_factor: float | None = 0.5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """For each seed and batch size: LSUV fitted on one batch of that size (the first examples
    of a seeded permutation, so smaller batches are subsets of larger ones), then the same
    training run (same seed, data order and budget). Returns (per-layer scales, final test
    accuracy per run; column ``variant`` is "lsuv").

    ``control_lr_factor``: also train, per seed, the largest batch's network with the learning
    rate times this factor (``variant`` "lr x<factor>"): a change known to matter, the negative
    control of the "negligible" check."""
    from dataclasses import replace

    from .progress import tqdm

    from .models import mlp
    from .train import train_many

    scales, finals, nets, configs = [], [], [], []
    for seed in tqdm(list(seeds), desc="seeds", disable=not progress):
        order = torch.randperm(len(data.y_train), generator=torch.Generator().manual_seed(seed))
        for bs in batch_sizes:
            torch.manual_seed(seed)
            net = mlp(data.in_features, [width] * depth, data.num_classes, act=activation)
            rec = lsuv_init(net, data.x_train[order[:bs]], seed=seed)
            scales.append(rec[["layer", "position", "scale", "iterations"]].assign(seed=seed, batch_size=bs))
            nets.append(net)
            configs.append(replace(config, seed=seed))
            finals.append({"seed": seed, "batch_size": bs, "variant": "lsuv"})
        if control_lr_factor is not None:
            bs = max(batch_sizes)
            torch.manual_seed(seed)
            net = mlp(data.in_features, [width] * depth, data.num_classes, act=activation)
            lsuv_init(net, data.x_train[order[:bs]], seed=seed)
            nets.append(net)
            configs.append(replace(config, seed=seed, lr=config.lr * control_lr_factor))
            finals.append({"seed": seed, "batch_size": bs, "variant": f"lr x{control_lr_factor:g}"})
    for row, result in zip(finals, train_many(nets, data, configs, device=device)):
        row.update(accuracy=result.final["test_accuracy"], diverged_at=result.diverged_at)
    return pd.concat(scales, ignore_index=True), pd.DataFrame(finals)


#: The training comparison's conditions: each a registry init (:data:`initstudy.inits.MODEL_INITS`)
#: and whether the MLP has BatchNorm. "kaiming" is He normal (fan-in, gain sqrt 2).
TRAIN_INITS: dict[str, tuple[str, bool]] = {
    "lsuv": ("lsuv", False),
    "orthogonal": ("orthogonal", False),
    "kaiming": ("kaiming-normal", False),
    "kaiming+bn": ("kaiming-normal", True),
}


def training_sweep(data, *, seeds, width: int, relu_depth: int, sigmoid_depth: int, lsuv_batch: int, config,
                   inits=tuple(TRAIN_INITS), activations=("relu", "sigmoid"), device: str = "cpu") -> pd.DataFrame:
    """Train MLPs (``relu_depth`` or ``sigmoid_depth`` hidden layers of ``width``) from each
    init of :data:`TRAIN_INITS` per activation and seed (LSUV fitted on ``lsuv_batch``
    training examples drawn with the seed), as ensembles (:func:`initstudy.train.sweep`);
    every run's history."""
    from dataclasses import replace

    from .inits import initialise
    from .models import mlp
    from .train import sweep

    def build(r: dict) -> nn.Module:
        name, batchnorm = TRAIN_INITS[r["init"]]
        torch.manual_seed(r["seed"])
        depth = relu_depth if r["activation"] == "relu" else sigmoid_depth
        net = mlp(data.in_features, [width] * depth, data.num_classes, act=r["activation"], batchnorm=batchnorm)
        options = {}
        if name == "lsuv":
            order = torch.randperm(len(data.y_train), generator=torch.Generator().manual_seed(r["seed"]))
            options["batch"] = data.x_train[order[:lsuv_batch]]
        return initialise(net, name, seed=r["seed"], **options)

    runs = [{"activation": a, "init": i, "seed": s} for a in activations for i in inits for s in seeds]
    return sweep(data, runs, build, lambda r: replace(config, seed=r["seed"]), device=device)


def lsuv_measurements(records: pd.DataFrame, variances: pd.DataFrame, scales: pd.DataFrame, finals: pd.DataFrame,
                      cost: pd.DataFrame, seeds: list[int], batch_seeds: list[int],
                      tight: pd.DataFrame | None = None, preinit: pd.DataFrame | None = None,
                      ) -> dict[str, dict[str, list]]:
    """Per-seed (or per-repeat) values of the ledger's metrics for the three LSUV claims, and
    of their negative controls: ``tight`` (records of :func:`iteration_sweep` at
    :data:`TIGHT`, same settings), ``preinit`` (:func:`preinit_variances`), the halved
    learning rate rows of ``finals`` and the per-step cost in ``cost``."""
    paper = records[(records["tol_var"] == PAPER[0]) & (records["t_max"] == PAPER[1])]
    held = variances[(variances["tol_var"] == PAPER[0]) & (variances["t_max"] == PAPER[1])]
    control = finals[finals["variant"] != "lsuv"] if "variant" in finals else finals.iloc[:0]
    finals = finals[finals["variant"] == "lsuv"] if "variant" in finals else finals
    small, large = min(finals["batch_size"]), max(finals["batch_size"])
    acc = finals.set_index(["seed", "batch_size"])["accuracy"]
    ctl_acc = control.set_index("seed")["accuracy"]
    nan = float("nan")
    spread = scale_spread(scales).set_index(["seed", "batch_size"])["max_abs_log_scale_ratio"]

    def scale_diff(seed: int) -> float:
        return float(spread[(seed, small)])

    return {
        "lsuv-1-5-iterations": {
            "lsuv_max_iterations": [float(paper[paper["seed"] == s]["iterations"].max()) for s in seeds],
            "lsuv_heldout_variance": [float(held[held["seed"] == s]["variance"].mean()) for s in seeds],
            "lsuv_max_iterations_tight": ([float(tight[tight["seed"] == s]["iterations"].max()) for s in seeds]
                                          if tight is not None else []),
            "orthonormal_heldout_variance": ([float(preinit[preinit["seed"] == s]["variance"].mean()) for s in seeds]
                                             if preinit is not None else []),
        },
        "lsuv-batch-size": {
            "lsuv_small_batch_accuracy_diff": [100 * (acc[(s, small)] - acc[(s, large)]) for s in batch_seeds],
            "lsuv_small_batch_scale_diff": [scale_diff(s) for s in batch_seeds],
            "lsuv_halved_lr_accuracy_diff": [100 * (ctl_acc.get(s, nan) - acc[(s, large)]) for s in batch_seeds],
        },
        "lsuv-cheap": {
            "lsuv_cost_fraction_of_bn": cost["fraction_of_bn_overhead"].tolist(),
            "lsuv_cost_fraction_of_bn_step": cost["fraction_of_bn_step_overhead"].tolist()
            if "fraction_of_bn_step_overhead" in cost else [],
        },
    }


def variant_summary(records: pd.DataFrame, by: str = "variant") -> pd.DataFrame:
    """Per group of :func:`lsuv_init` records (e.g. the paper's rule and the fast.ai
    variant): ``layers``, ``max_iterations``, ``not_converged`` (layers that ran out of
    rescalings), and ``max_abs_var_error``, the largest ``|var_after - 1|`` on the fitted batch."""
    out = records.groupby(by, sort=False).agg(
        layers=("layer", "size"), max_iterations=("iterations", "max"),
        not_converged=("converged", lambda c: int((~c.astype(bool)).sum())),
        max_abs_var_error=("var_after", lambda v: float((v - 1.0).abs().max())))
    return out.reset_index()


#: Names of the tolerances, for tables and the book's text.
TOLERANCE_NAMES = {PAPER: "paper", CAFFE: "caffe", TIGHT: "tight (control)"}


def mean_intervals(df: pd.DataFrame, by, value: str, scale: str = "linear") -> pd.DataFrame:
    """Per group ``by``: ``n``, ``mean``, ``low`` and ``high`` of ``value`` by the ledger's rule
    for ``scale`` (:func:`initstudy.claims.interval`: "linear" the mean and its two-sided 95 %
    Student-t interval, "log" the geometric mean and the interval of the log), for figures that
    show a check's own interval."""
    from .claims import interval

    rows = []
    for key, cell in df.groupby(list(by), sort=True):
        n, mean, low, high = interval(cell[value].tolist(), scale)
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, key)), "n": n, "mean": mean, "low": low, "high": high})
    return pd.DataFrame(rows)


def iteration_summary(records: pd.DataFrame, by=("tol_var", "t_max", "batches", "bias"),
                      heldout: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per setting of :func:`iteration_sweep` (all architectures and seeds together; column
    ``tolerance`` names it by :data:`TOLERANCE_NAMES`): the
    number of layers fitted, the largest and mean number of rescalings per layer, the layers
    that needed none (``zero_iterations``), needed more than one (``over_one``) or more than 5
    (``over_five``), and those that ran out of rescalings (``not_converged``); with ``heldout``
    (the held-out variances of the same sweep), their mean, min and max per group."""
    it = records["iterations"]
    frame = records.assign(_zero=it.eq(0), _over_one=it.gt(1), _over_five=it.gt(5),
                           _not=~records["converged"].astype(bool))
    frame["tolerance"] = [TOLERANCE_NAMES.get((tol, t), f"tol {tol:g}, t_max {t}")
                          for tol, t in zip(frame["tol_var"], frame["t_max"])]
    out = frame.groupby(["tolerance", *by], sort=True).agg(
        layers=("layer", "size"), max_iterations=("iterations", "max"), mean_iterations=("iterations", "mean"),
        zero_iterations=("_zero", "sum"), over_one=("_over_one", "sum"), over_five=("_over_five", "sum"),
        not_converged=("_not", "sum"))
    out = out.reset_index().astype({c: int for c in ("layers", "max_iterations", "zero_iterations", "over_one",
                                                     "over_five", "not_converged")})
    if heldout is not None:
        held = heldout.groupby(list(by))["variance"].agg(["mean", "min", "max"]).add_prefix("heldout_variance_")
        out = out.join(held, on=list(by))
    return out


def scale_spread(scales: pd.DataFrame) -> pd.DataFrame:
    """Per seed and LSUV batch size of :func:`batch_size_sweep`: the largest
    ``|ln(scale / scale at the largest batch)|`` over the layers (the quantity of the
    ``lsuv-batch-size`` scale check; 0 at the largest batch by construction)."""
    largest = scales["batch_size"].max()
    ref = scales[scales["batch_size"] == largest].set_index(["seed", "layer"])["scale"].rename("ref")
    joined = scales.join(ref, on=["seed", "layer"])
    joined["abs_log_ratio"] = np.abs(np.log(joined["scale"] / joined["ref"]))
    out = joined.groupby(["seed", "batch_size"])["abs_log_ratio"].max().rename("max_abs_log_scale_ratio")
    return out.reset_index()


def accuracy_diffs(finals: pd.DataFrame) -> pd.DataFrame:
    """Per row of :func:`batch_size_sweep`'s final accuracies: the test accuracy minus that
    of the same seed's LSUV run at the largest batch, in points (column ``diff_points``; the
    halved learning rate control is paired with the same reference)."""
    lsuv_rows = finals[finals["variant"] == "lsuv"] if "variant" in finals else finals
    largest = lsuv_rows["batch_size"].max()
    ref = lsuv_rows[lsuv_rows["batch_size"] == largest].set_index("seed")["accuracy"]
    return finals.assign(diff_points=100 * (finals["accuracy"] - finals["seed"].map(ref)))


#: A run that did not diverge is "stuck at chance" when its final test accuracy is at most
#: chance (1 / classes) plus this margin.
CHANCE_MARGIN = 0.02


def final_accuracy_summary(finals: pd.DataFrame, keys, num_classes: int,
                           chance_margin: float = CHANCE_MARGIN) -> pd.DataFrame:
    """Final test accuracy per group ``keys`` over ALL its seeds (``finals``: one row per run
    with ``accuracy`` and ``diverged_at``, as :func:`initstudy.train.final_accuracy` gives).

    The rule, stated in column ``rule``: a diverged run (``diverged_at`` not NaN) is counted
    at chance, 1 / ``num_classes``, whatever it scored when it stopped; a run that did not
    diverge is *stuck at chance* when it ends at most ``chance_margin`` above chance. Columns:
    ``seeds``, ``mean_accuracy`` (diverged at chance), ``min_accuracy``, ``max_accuracy``,
    ``diverged``, ``stuck_at_chance``, ``learned`` (the rest), ``mean_learned_accuracy`` (over
    the runs that learned; NaN when none did), ``chance`` and ``rule``."""
    keys = list(keys)
    chance = 1.0 / num_classes
    df = finals.copy()
    diverged = df["diverged_at"].notna() if "diverged_at" in df else pd.Series(False, index=df.index)
    df["_counted"] = np.where(diverged, chance, df["accuracy"])
    df["_diverged"] = diverged
    df["_stuck"] = ~diverged & (df["accuracy"] <= chance + chance_margin)
    df["_learned_acc"] = df["accuracy"].where(~df["_diverged"] & ~df["_stuck"])
    out = df.groupby(keys, sort=False).agg(
        seeds=("_counted", "size"), mean_accuracy=("_counted", "mean"), min_accuracy=("_counted", "min"),
        max_accuracy=("_counted", "max"), diverged=("_diverged", "sum"), stuck_at_chance=("_stuck", "sum"),
        mean_learned_accuracy=("_learned_acc", "mean")).reset_index()
    out["diverged"] = out["diverged"].astype(int)
    out["stuck_at_chance"] = out["stuck_at_chance"].astype(int)
    out["learned"] = out["seeds"] - out["diverged"] - out["stuck_at_chance"]
    out["chance"] = chance
    out["rule"] = (f"mean over all seeds; a diverged run counted at chance ({100 * chance:.0f} %); stuck at chance: "
                   f"final accuracy at most {100 * (chance + chance_margin):.0f} %")
    return out


def describe_accuracies(summary: pd.DataFrame, label: str = "init") -> str:
    """One clause per row of :func:`final_accuracy_summary`, e.g. ``"lsuv 45.3 % (1 of 5
    seeds stuck at chance)"``, joined with semicolons (for the book's text)."""
    parts = []
    for _, r in summary.iterrows():
        notes = []
        if r["diverged"]:
            notes.append(f"{r['diverged']} of {r['seeds']} diverged")
        if r["stuck_at_chance"]:
            notes.append(f"{r['stuck_at_chance']} of {r['seeds']} stuck at chance")
        extra = f" ({', '.join(notes)})" if notes else ""
        parts.append(f"{r[label]} {100 * r['mean_accuracy']:.1f} %{extra}")
    return "; ".join(parts)


def cost_comparison(data, *, repeats: int, batch_size: int, epoch_steps: int, timing_steps: int = 20,
                    device: str = "cpu") -> pd.DataFrame:
    """LSUV's wall time on a ResNet-20 without BatchNorm, against the extra time BatchNorm
    adds per training step (the same ResNet-20 with and without BN, steps interleaved so
    that both see the same machine noise), times ``epoch_steps``. One row per repeat."""
    import statistics

    from .train import step_times

    rows = []
    x = data.x_train[:batch_size].to(device)
    y = data.y_train[:batch_size].to(device)
    for r in range(repeats):
        net = build("resnet", data, 20, 16, seed=r).to(device)
        t0 = time.perf_counter()
        lsuv_init(net, x, seed=r)
        lsuv_s = time.perf_counter() - t0
        models = {"bn": build("resnet-bn", data, 20, 16, seed=r).to(device), "none": net}
        times = step_times(models, x, y, steps=timing_steps)
        bn_step, plain_step = statistics.median(times["bn"]), statistics.median(times["none"])
        overhead = bn_step - plain_step
        rows.append({"repeat": r, "lsuv_seconds": lsuv_s, "bn_step_seconds": bn_step, "plain_step_seconds": plain_step,
                     "bn_overhead_per_step": overhead, "epoch_steps": epoch_steps,
                     "bn_overhead_per_epoch": overhead * epoch_steps,
                     "fraction_of_bn_overhead": lsuv_s / (overhead * epoch_steps) if overhead > 0 else float("inf"),
                     "fraction_of_bn_step_overhead": lsuv_s / overhead if overhead > 0 else float("inf")})
    return pd.DataFrame(rows)


def compare_with_package(net_builder: Callable[[], nn.Module], x: torch.Tensor, heldout: torch.Tensor,
                         seed: int = 0) -> pd.DataFrame:
    """This library's LSUV against the authors' ``lsuv`` package (PyPI) on the same network
    and batch: per layer, the held-out output variance after each and this library's
    iteration count. The package tolerates on the std (0.1), follows module registration
    order and uses the global random state for its orthonormal init."""
    import contextlib
    import io

    from lsuv import lsuv_with_singlebatch

    ours = net_builder()
    rec = lsuv_init(ours, x, seed=seed)
    theirs = net_builder()
    torch.manual_seed(seed)
    with contextlib.redirect_stdout(io.StringIO()):
        lsuv_with_singlebatch(theirs, x, verbose=False)
    a = output_variances(ours, heldout).rename(columns={"variance": "variance_initstudy"})
    b = output_variances(theirs, heldout)[["layer", "variance"]].rename(columns={"variance": "variance_lsuv_package"})
    out = a.merge(b, on="layer").merge(rec[["layer", "iterations"]], on="layer")
    registration = [n for n, _ in eligible_layers(ours)]
    out["registration_position"] = [registration.index(n) for n in out["layer"]]
    return out
