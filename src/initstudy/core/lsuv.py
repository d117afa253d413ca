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

import pandas as pd
import torch
from torch import nn

from initstudy.core.inits import init_layers, orthogonal_

__all__ = [
    "PAPER",
    "CAFFE",
    "TIGHT",
    "ELIGIBLE",
    "LSUVError",
    "eligible_layers",
    "execution_order",
    "ACTIVATION_TYPES",
    "lsuv_init",
    "output_variances",
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


class _Reached(Exception):
    """Raised by :func:`_output_of`'s hook once it has the layer's output."""


@torch.no_grad()
def _output_of(model: nn.Module, layer: nn.Module, x: torch.Tensor, after: nn.Module | None = None,
               stop: bool = True) -> torch.Tensor:
    """The output of ``layer`` (or of the module ``after`` it) on ``x``. With ``stop``, the
    forward pass stops there: the layers after it cannot change that output (eval mode, no
    gradients), and skipping them halves the work of a deep network's LSUV."""
    captured = {}
    target = after if after is not None else layer

    def fn(module, inputs, output):
        # a whole pass may run an in-place operation on this tensor later (ReLU(inplace=True)):
        # keep a copy of the layer's output as it was
        captured.setdefault("out", output if stop else output.clone())
        if stop:
            raise _Reached

    handle = target.register_forward_hook(fn)
    try:
        model(x)
    except _Reached:
        pass
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
    stop_early: bool = True,
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
        stop_early: each forward pass stops at the layer being measured (the layers after it
            cannot change its output); False runs every pass through the whole network, as the
            authors' code does. The result is the same (tested bit for bit on an MLP, a CNN and
            ResNets with and without BatchNorm); a deep network's LSUV takes about half the time.

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
            out = _output_of(model, layer, x, after, stop=stop_early)
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
                out = _output_of(model, layer, x, after, stop=stop_early)
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
