"""A plain, deterministic training loop that records tidy per-step rows.

A run that produces a non-finite loss (NaN or Inf) is *diverged*: the loop records
``diverged_at = k`` (the step whose loss was not finite) and stops cleanly, so a sweep over
learning rates or depths goes on with the next run instead of crashing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable

import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from initstudy.core.data import Dataset, batches

__all__ = [
    "STALL_ACCURACY",
    "counted_accuracy",
    "TrainConfig",
    "TrainResult",
    "train",
    "evaluate",
    "make_optimizer",
    "param_groups",
    "is_scalar_param",
    "crop_flip",
    "sweep",
    "train_many",
    "final_accuracy",
    "compare_inits",
    "steps_to_reach",
    "step_times",
    "race",
]

#: A ten-class network "stalls" (He et al. 2015, Fig. 3) when its test accuracy at the end, at the
#: learning rate chosen on validation, stays at or below this (chance is 10 %).
STALL_ACCURACY = 0.15

Recorder = Callable[[nn.Module, int], Iterable[dict]]


@dataclass(frozen=True)
class TrainConfig:
    """What one training run does. ``steps`` counts optimiser updates.

    Schedule: a linear warm-up from 0 over ``warmup_steps``, then ``lr`` divided by 10 at
    each fraction of the run in ``milestones`` (e.g. (0.5, 0.75): the Fixup CIFAR recipe's
    epochs 100 and 150 of 200). ``scalar_lr_factor``: put every parameter whose name contains
    "bias" or "scale" in a group at ``lr * factor`` (Fixup's scalars at lr / 10).
    ``mixup_alpha`` > 0 trains on mixup pairs (Zhang et al. 2018; Fixup's CIFAR default 1.0);
    ``augment="crop-flip"`` applies the CIFAR augmentation (4-pixel padded random crop and
    horizontal flip) to every training batch.
    """

    steps: int
    batch_size: int = 64
    lr: float = 0.1
    optimizer: str = "sgd"
    momentum: float = 0.0
    weight_decay: float = 0.0
    eval_every: int = 50
    seed: int = 0
    warmup_steps: int = 0
    milestones: tuple[float, ...] = ()
    scalar_lr_factor: float | None = None
    mixup_alpha: float = 0.0
    augment: str | None = None
    #: The seed of the data order alone (default: ``seed``); a placebo that differs from its
    #: condition in the data order only sets it (:func:`initstudy.core.ensemble.stream_seed`).
    order_seed: int | None = None

    def __post_init__(self):
        if self.steps < 0:
            raise ValueError(f"steps must be >= 0, got {self.steps}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        if self.eval_every < 1:
            raise ValueError(f"eval_every must be >= 1, got {self.eval_every}")
        if self.warmup_steps < 0 or self.mixup_alpha < 0:
            raise ValueError("warmup_steps and mixup_alpha must be >= 0")
        if self.augment not in (None, "crop-flip"):
            raise ValueError(f"augment must be None or 'crop-flip', got {self.augment!r}")

    def lr_factor(self, step: int) -> float:
        """The schedule's multiplier of the base learning rate at ``step`` (1-based)."""
        factor = min(1.0, step / self.warmup_steps) if self.warmup_steps else 1.0
        for m in self.milestones:
            if step > m * self.steps:
                factor *= 0.1
        return factor


@dataclass
class TrainResult:
    """The outcome of :func:`train`: tidy history rows and how the run ended."""

    history: pd.DataFrame
    steps_done: int
    diverged_at: int | None
    final: dict = field(default_factory=dict)

    @property
    def diverged(self) -> bool:
        return self.diverged_at is not None


def is_scalar_param(name: str) -> bool:
    """The official Fixup CIFAR script's rule for its slower group: any parameter whose name
    contains "bias" or "scale" (Fixup's scalars, and every other bias too)."""
    return "bias" in name or "scale" in name


def param_groups(model: nn.Module, config: TrainConfig) -> list[dict]:
    """One group at ``config.lr``, or two with ``scalar_lr_factor``: the parameters of
    :func:`is_scalar_param` at ``lr * factor`` ("scalars"), the rest at ``lr`` ("weights")."""
    if config.scalar_lr_factor is None:
        return [{"params": list(model.parameters()), "lr": config.lr, "name": "all"}]
    scalars = [p for n, p in model.named_parameters() if is_scalar_param(n)]
    others = [p for n, p in model.named_parameters() if not is_scalar_param(n)]
    return [{"params": scalars, "lr": config.lr * config.scalar_lr_factor, "name": "scalars"},
            {"params": others, "lr": config.lr, "name": "weights"}]


def make_optimizer(params, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD (with optional momentum) or Adam, from a :class:`TrainConfig`; ``params`` may be
    parameters or parameter groups. Each group remembers its base lr as ``initial_lr``."""
    params = list(params)
    if config.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    else:
        opt = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    for group in opt.param_groups:
        group["initial_lr"] = group["lr"]
    return opt


def crop_flip(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """The CIFAR augmentation on a batch, per example: a random crop of the ``pad``-padded
    image back to its size, and a horizontal flip with probability 1/2 (torchvision's
    RandomCrop(padding=4) and RandomHorizontalFlip, vectorised over the batch); the draws
    from ``generator``, the crop itself :func:`initstudy.core.ensemble.crop_flip_at`."""
    from initstudy.core.ensemble import crop_flip_at

    n = len(x)
    i = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    j = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    return crop_flip_at(x, i, j, flip, pad)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> dict:
    """Mean cross-entropy loss and accuracy of ``model`` on ``(x, y)`` (moved to the model's
    device batch by batch); NaN loss when the outputs are not finite."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total_loss, correct = 0.0, 0
    for start in range(0, len(y), batch_size):
        out = model(x[start : start + batch_size].to(device))
        target = y[start : start + batch_size].to(device)
        total_loss += F.cross_entropy(out, target, reduction="sum").item()
        correct += (out.argmax(1) == target).sum().item()
    model.train(was_training)
    loss = total_loss / len(y)
    return {"loss": loss if math.isfinite(loss) else float("nan"), "accuracy": correct / len(y)}


def train(
    model: nn.Module,
    data: Dataset,
    config: TrainConfig,
    record: Recorder | None = None,
    record_every: int | None = None,
    record_at: Iterable[int] = (),
    device: str = "cpu",
) -> TrainResult:
    """Train ``model`` on ``data`` for ``config.steps`` updates with cross-entropy: a
    one-member :func:`initstudy.core.ensemble.train_ensemble`, so a model trained alone gets the
    numbers it would get as a member of any ensemble.

    History rows (a tidy DataFrame with columns ``step, split, metric, value`` plus any the
    recorder adds): the training loss of every step; validation loss and accuracy (split
    "val") at step 0, every ``eval_every`` steps and at the end; test loss and accuracy once,
    at the end (split "test": the numbers the claims judge); and whatever ``record(model,
    step)`` returns at step 0, every ``record_every`` steps, at the steps in ``record_at`` and
    at the end (after the update of that step, with that step's gradients in ``.grad``). A run
    that diverged at step k ends there: its validation and test accuracy at step k count at
    chance, with the accuracy of its frozen weights beside them (metric ``frozen_accuracy``).

    Batches, mixup coefficients and augmentations come from generators seeded with
    ``config.seed`` (:func:`initstudy.core.ensemble.member_stream`), so the same seed, model and
    data give the same run on the CPU.
    """
    from initstudy.core.ensemble import train_ensemble

    (result,) = train_ensemble([model], data, [config], record=record, record_every=record_every,
                               record_at=record_at, device=device)
    return TrainResult(history=result.history, steps_done=result.steps_done, diverged_at=result.diverged_at,
                       final=result.final)


def train_many(models: list[nn.Module], data, configs: list[TrainConfig], device: str = "cpu",
               record: Recorder | None = None, record_every: int | None = None,
               record_at: Iterable[int] = (), vectorize: str = "auto") -> list[TrainResult]:
    """Train several models, each as if by :func:`train`, as few ensembles as their
    architectures and shared settings allow (:func:`initstudy.core.ensemble.signature`; members
    may differ in seed, learning rate, momentum, weight decay and init). ``data``: one data
    set, or a list with one per model (an ensemble then stacks only equal-sized ones).
    ``vectorize``: see :func:`initstudy.core.ensemble.train_ensemble`."""
    from initstudy.core.ensemble import signature, train_ensemble

    per_model = isinstance(data, (list, tuple))
    record_at = set(record_at)  # used by every group
    groups: dict[tuple, list[int]] = {}
    for i, (m, c) in enumerate(zip(models, configs)):
        shared = (c.steps, c.batch_size, c.optimizer, c.eval_every, c.warmup_steps, c.milestones,
                  c.scalar_lr_factor, c.mixup_alpha, c.augment)
        sizes = (len(data[i].y_train), len(data[i].y_val), len(data[i].y_test)) if per_model else ()
        groups.setdefault((signature(m), shared, sizes), []).append(i)
    out: list[TrainResult | None] = [None] * len(models)
    for idx in groups.values():
        part = [data[i] for i in idx] if per_model else data
        results = train_ensemble([models[i] for i in idx], part, [configs[i] for i in idx], device=device,
                                 record=record, record_every=record_every, record_at=record_at, vectorize=vectorize)
        for i, r in zip(idx, results):
            out[i] = TrainResult(history=r.history, steps_done=r.steps_done, diverged_at=r.diverged_at, final=r.final)
    return out


def sweep(
    data: Dataset,
    runs: Iterable[dict],
    build: Callable[[dict], nn.Module],
    config: Callable[[dict], TrainConfig],
    progress: bool = True,
    desc: str = "runs",
    device: str = "cpu",
) -> pd.DataFrame:
    """Train one model per entry of ``runs`` (dicts of run keys, e.g. init, depth, lr,
    seed) and return every run's history in one tidy table, each row tagged with the run's
    keys and ``diverged_at`` (NaN when the run did not diverge). Runs that share an
    architecture train together as one ensemble (:func:`train_many`).

    ``build(run)`` returns the initialised model; ``config(run)`` its :class:`TrainConfig`.
    """
    runs = list(runs)
    results = train_many([build(r) for r in runs], data, [config(r) for r in runs], device=device)
    frames = []
    for run, result in zip(runs, results):
        df = result.history
        for i, (key, value) in enumerate(run.items()):
            df.insert(i, key, [value] * len(df) if isinstance(value, (list, tuple)) else value)
        df["diverged_at"] = float("nan") if result.diverged_at is None else float(result.diverged_at)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def counted_accuracy(finals: pd.DataFrame, num_classes: int) -> pd.Series:
    """The accuracy each run of ``finals`` counts for (columns ``accuracy`` and, optionally,
    ``diverged_at``): a run that diverged counts at chance, 1 / ``num_classes``, whatever it
    scored when it stopped; the others at their accuracy. (The training core already records
    a diverged run's accuracy at chance; this is the same rule for tables made elsewhere.)

    >>> f = pd.DataFrame({"accuracy": [0.8, 0.5], "diverged_at": [float("nan"), 3.0]})
    >>> counted_accuracy(f, 10).tolist()
    [0.8, 0.1]
    """
    if "diverged_at" not in finals:
        return finals["accuracy"].astype(float)
    return finals["accuracy"].astype(float).where(finals["diverged_at"].isna(), 1.0 / num_classes)


def final_accuracy(history: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per run of a :func:`sweep` table: its test accuracy, read once at its end
    (``accuracy``; a diverged run at chance), its validation accuracy at the same step
    (``val_accuracy``, what a chapter chooses by; a diverged run at chance), the step, and,
    for a diverged run, the test accuracy of the weights it froze with (``frozen_accuracy``,
    NaN otherwise) and the step it diverged (``diverged_at``)."""
    def last_of(split: str, metric: str, name: str) -> pd.DataFrame:
        sel = history[(history["split"] == split) & (history["metric"] == metric)].reset_index(drop=True)
        last = sel.loc[sel.groupby(keys)["step"].idxmax()]  # (unique index labels: idxmax needs them)
        return last[keys + ["step", "value"]].rename(columns={"value": name})

    out = last_of("test", "accuracy", "accuracy")
    out = out.merge(last_of("val", "accuracy", "val_accuracy").drop(columns="step"), on=keys, how="left")
    frozen = last_of("test", "frozen_accuracy", "frozen_accuracy").drop(columns="step")
    out = out.merge(frozen, on=keys, how="left") if len(frozen) else out.assign(frozen_accuracy=float("nan"))
    div = history.groupby(keys)["diverged_at"].first().rename("diverged_at") if "diverged_at" in history else None
    out = out.join(div, on=keys) if div is not None else out.assign(diverged_at=float("nan"))
    return out[keys + ["step", "accuracy", "val_accuracy", "frozen_accuracy", "diverged_at"]].reset_index(drop=True)


def compare_inits(
    data: Dataset,
    *,
    inits: Iterable[str],
    depths: Iterable[int],
    seeds: Iterable[int],
    width: int,
    steps: int,
    activations: Iterable[str] = ("relu",),
    lrs: Iterable[float] = (0.1,),
    arch: str = "mlp",
    batch_size: int = 64,
    momentum: float = 0.0,
    eval_every: int = 50,
    progress: bool = True,
    device: str = "cpu",
    order_stream: str | None = None,
    lr_of: "Callable[[dict], float] | None" = None,
) -> pd.DataFrame:
    """Train the same architecture from each init, over activations x depths x learning
    rates x seeds (SGD, cross-entropy), and return every run's history (see :func:`sweep`).
    ``order_stream``: draw each run's data order from that named stream of its seed
    (:func:`initstudy.core.ensemble.stream_seed`; a placebo that differs in the data order only).
    ``lr_of``: each run's learning rate from its keys instead of ``lrs`` (e.g. the rate chosen on
    validation for its init, depth and seed).

    ``arch="mlp"``: ``depth`` hidden layers of ``width`` units; ``arch="cnn"``:
    :func:`initstudy.core.models.plain_cnn` with ``depth`` conv layers and ``width`` channels.
    Each init uses its default gain (Xavier 1, Kaiming sqrt 2) and zero biases.
    """
    from itertools import product

    from initstudy.core.inits import initialise
    from initstudy.core.models import mlp, plain_cnn

    def build(run: dict) -> nn.Module:
        torch.manual_seed(run["seed"])
        if arch == "mlp":
            net = mlp(data.in_features, [width] * run["depth"], data.num_classes, act=run["activation"])
        else:
            net = plain_cnn(data.input_shape[0], data.num_classes, run["depth"], width, act=run["activation"])
        return initialise(net, run["init"], seed=run["seed"])

    from initstudy.core.ensemble import stream_seed

    def config(run: dict) -> TrainConfig:
        return TrainConfig(steps=steps, batch_size=batch_size, lr=run["lr"], momentum=momentum,
                           eval_every=eval_every, seed=run["seed"],
                           order_seed=None if order_stream is None else stream_seed(run["seed"], order_stream))

    keys = ("activation", "init", "depth", "lr", "seed")
    if lr_of is None:
        runs = [dict(zip(keys, combo)) for combo in product(activations, inits, depths, lrs, seeds)]
    else:
        runs = [{"activation": a, "init": i, "depth": d, "seed": s} for a, i, d, s in
                product(activations, inits, depths, seeds)]
        runs = [{k: (lr_of(r) if k == "lr" else r[k]) for k in keys} for r in runs]
    return sweep(data, runs, build, config, progress=progress, device=device)


def steps_to_reach(history: pd.DataFrame, keys: list[str], fraction: float = 0.5) -> pd.DataFrame:
    """How fast each group (e.g. depth x init) learns at its best learning rate, all on the
    validation curves (the best rate chosen there too): the first evaluation step at which its
    mean validation accuracy over seeds reaches ``start + fraction x (best - start)``, where
    ``start`` is the mean accuracy at step 0 of the group's first key (e.g. the depth) and
    ``best`` the best group's final mean accuracy there. NaN: never."""
    val = history[(history["split"] == "val") & (history["metric"] == "accuracy")]
    curves = val.groupby(keys + ["lr", "step"])["value"].mean().reset_index()
    last = curves.loc[curves.groupby(keys + ["lr"])["step"].idxmax()]
    best_lr = last.loc[last.groupby(keys)["value"].idxmax()][keys + ["lr", "value"]]
    rows = []
    outer = keys[0]
    for _, b in best_lr.iterrows():
        same = best_lr[best_lr[outer] == b[outer]]
        start = curves[(curves[outer] == b[outer]) & (curves["step"] == 0)]["value"].mean()
        target = start + fraction * (same["value"].max() - start)
        sel = curves[(curves[keys] == b[keys]).all(axis=1) & (curves["lr"] == b["lr"])].sort_values("step")
        reached = sel[sel["value"] >= target]["step"]
        rows.append({**{k: b[k] for k in keys}, "best_lr": b["lr"], "final_mean_val_accuracy": b["value"],
                     "target_accuracy": target, "steps_to_target": float(reached.iloc[0]) if len(reached) else math.nan})
    return pd.DataFrame(rows)


def step_times(models: dict, x: torch.Tensor, y: torch.Tensor, steps: int = 30, warmup: int = 5,
               lr: float = 0.01) -> dict[str, list[float]]:
    """Per-step wall times of SGD steps on one batch for several models, interleaved step by
    step so that they share the machine's noise (measured side by side, in one run)."""
    import time

    opts = {k: torch.optim.SGD(m.parameters(), lr=lr, momentum=0.9) for k, m in models.items()}
    times: dict[str, list[float]] = {k: [] for k in models}
    for i in range(warmup + steps):
        for k, m in models.items():
            t0 = time.perf_counter()
            loss = F.cross_entropy(m(x), y)
            opts[k].zero_grad()
            loss.backward()
            opts[k].step()
            if i >= warmup:
                times[k].append(time.perf_counter() - t0)
    return times


def race(models: dict, data: Dataset, config: TrainConfig, setup_seconds: dict | None = None,
         device: str = "cpu") -> pd.DataFrame:
    """Train several models side by side, one step of each in turn on the same batches, and
    record for each its validation accuracy every ``eval_every`` steps against its cumulative
    training wall time (evaluation excluded; ``setup_seconds`` adds a one-off cost, e.g. an
    LSUV init, to a model's clock). Returns rows: model, step, seconds, accuracy (validation)."""
    import time

    gen = torch.Generator().manual_seed(config.seed)
    stream = batches(data.x_train, data.y_train, config.batch_size, gen)
    opts = {k: make_optimizer(param_groups(m.to(device), config), config) for k, m in models.items()}
    clock = {k: float((setup_seconds or {}).get(k, 0.0)) for k in models}
    rows = [{"model": k, "step": 0, "seconds": clock[k], "accuracy": evaluate(m, data.x_val, data.y_val)["accuracy"]}
            for k, m in models.items()]
    for step in range(1, config.steps + 1):
        xb, yb = next(stream)
        xb, yb = xb.to(device), yb.to(device)
        for k, m in models.items():
            m.train()
            t0 = time.perf_counter()
            loss = F.cross_entropy(m(xb), yb)
            opts[k].zero_grad()
            loss.backward()
            opts[k].step()
            clock[k] += time.perf_counter() - t0
        if step % config.eval_every == 0 or step == config.steps:
            for k, m in models.items():
                rows.append({"model": k, "step": step, "seconds": clock[k],
                             "accuracy": evaluate(m, data.x_val, data.y_val)["accuracy"]})
    return pd.DataFrame(rows)
