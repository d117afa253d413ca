"""The training core: K members that share an architecture train as one vectorised model.

Every training experiment of the study goes through :func:`train_ensemble`. The members of a
configuration (seeds, inits, learning rates, even data subsets of one size) are *stacked*
(:func:`torch.func.stack_module_state`): each parameter and buffer gains a leading member
axis, one forward pass runs all members at once (:func:`torch.func.vmap` over
:func:`torch.func.functional_call`), one backward pass gives every member its own gradient
(the members' losses are independent, so the gradient of their sum is each member's own),
and a vectorised SGD or Adam step updates them with per-member learning rates, momentum and
weight decay. BatchNorm keeps running statistics per member.

Per member, exactly as a plain ``torch.nn`` loop would do it (see :func:`member_stream`):

- its own data order: a permutation of the training set per epoch from its own seed;
- its own CIFAR augmentation draws and mixup coefficients and pairings;
- its own learning rate, schedule multiplier, momentum and weight decay, and Fixup's scalar
  group at ``lr * scalar_lr_factor``;
- its own divergence: a member whose loss is not finite at step k is *frozen* (its weights
  and BatchNorm statistics stay those of step k - 1) and recorded as diverged at step k,
  while the others go on.

What each member reads, and when: its training batches; the **validation** split at step 0,
every ``eval_every`` steps and at the end (the curves, and everything a chapter chooses); the
**test** split once, at its end (the last step, or the step it diverged), for the numbers the
claims judge. One divergence rule for every accuracy: a member that diverged counts at chance,
1 / classes, on both splits; the accuracy of the weights it froze with is recorded beside it as
``frozen_accuracy``.

Data stay on the device: each data set is moved there once, each epoch's batch indices are
drawn on the host from the member's generator (so a CPU and a GPU run see the same batches)
and copied once per epoch, and losses and accuracies accumulate on the device; nothing is
copied back to the host between evaluation points. Members too large to fit at once are
split into chunks (:func:`chunk_size`); on the CPU a member's numbers do not depend on its
chunk (tested); a GPU's batched kernels may round differently for another number of members.

On the CPU, convolutional networks run one module call per member ("loop" mode, see
:func:`vectorize_mode`) with each member's convolution weights in channels-last order. What
the core did (member-steps, FLOPs, seconds) is counted in :data:`WORK`; a notebook run
records it in its provenance.

Measurements of what one model costs (``lsuv-cheap``'s timings) use
:func:`initstudy.core.train.race`, a single-model loop.
"""

from __future__ import annotations

import copy
import math
import os
import time
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap
from torch.nn import functional as F

__all__ = ["member_stream", "stream_seed", "train_ensemble", "chunk_size", "signature", "vectorize_mode", "EnsembleResult",
           "MEMORY_BUDGET", "EVAL_BATCH", "Work", "WORK", "reset_work", "pass_flops", "PLAN_ENV", "PLAN_EVAL",
           "planning", "planned_evaluations"]

#: Whether the host reads the members' state every step (None: on the CPU only, where it costs
#: nothing); False follows a GPU's path (masks, and drops members at evaluations) on any device.
_HOST_CHECKS: bool | None = None

#: Test examples per forward pass of an evaluation.
EVAL_BATCH = 1024

#: Bytes of working memory an ensemble chunk may use on the CPU; on a GPU, half its total memory.
MEMORY_BUDGET = 4 * 2**30


@dataclass
class EnsembleResult:
    """One member's outcome (the fields of :class:`initstudy.core.train.TrainResult`)."""

    history: pd.DataFrame
    steps_done: int
    diverged_at: int | None
    final: dict


@dataclass
class Work:
    """What :func:`train_ensemble` did in this process since :func:`reset_work`: the
    member-steps trained, the floating-point operations of their forward and backward passes
    (``train_flop``) and of the evaluations (``eval_flop``), and the wall time spent in the
    training core (``seconds``; it ends with a copy to the host, so a GPU's queue is drained;
    the ``record`` callbacks, e.g. a chapter's probes, are timed apart in ``record_seconds``).
    FLOPs are those of the matrix products and convolutions, as
    :class:`torch.utils.flop_counter.FlopCounterMode` counts them on one member's pass (on
    the ``meta`` device: no computation); elementwise operations are not counted. A model the
    meta device cannot run (its forward reads values) trains as usual; its member-steps are
    counted in ``uncounted_steps`` and its FLOPs are unknown. On a GPU a member that diverged
    is masked until the next evaluation, and its steps until then count. One counter per
    process, not thread-safe: a notebook's kernel, or a Dask worker with one thread."""

    member_steps: int = 0
    train_flop: float = 0.0
    eval_flop: float = 0.0
    seconds: float = 0.0
    record_seconds: float = 0.0
    uncounted_steps: int = 0
    #: The work the configs asked for (every member to its last step, the validation split at
    #: every ``eval_every`` steps and the end, the test split once): what a run without
    #: divergence does. A member that diverges stops training, but is read once more on the
    #: validation split when it is dropped (twice when it diverged at an evaluation step), so
    #: the plan bounds the training work, not every evaluation; in plan mode (:data:`PLAN_ENV`)
    #: the only count.
    planned_member_steps: int = 0
    planned_train_flop: float = 0.0
    planned_eval_flop: float = 0.0

    def as_dict(self) -> dict:
        """The record for a run's provenance, with the rates achieved (GFLOP/s only when every
        member-step's FLOPs were counted)."""
        total = self.train_flop + self.eval_flop
        rate = self.seconds > 0
        return {"member_steps": self.member_steps, "uncounted_steps": self.uncounted_steps,
                "train_gflop": round(self.train_flop / 1e9, 1), "eval_gflop": round(self.eval_flop / 1e9, 1),
                "seconds": round(self.seconds, 3), "record_seconds": round(self.record_seconds, 3),
                "member_steps_per_s": round(self.member_steps / self.seconds, 1) if rate else None,
                "gflop_per_s": round(total / self.seconds / 1e9, 2) if rate and not self.uncounted_steps else None,
                "planned_member_steps": self.planned_member_steps,
                "planned_train_gflop": round(self.planned_train_flop / 1e9, 1),
                "planned_eval_gflop": round(self.planned_eval_flop / 1e9, 1), "plan_mode": planning()}


#: The work of the training core in this process (:class:`Work`); :func:`reset_work` starts it anew.
WORK = Work()


#: Plan mode: with this environment variable set to 1, :func:`train_ensemble` counts the work
#: each ensemble's configs ask for (:class:`Work`'s ``planned_*``) but trains one step and
#: evaluates on :data:`PLAN_EVAL` examples only, so that a profile's whole training work can be
#: sized on any machine before it is run (``python -m initstudy.study.gpu_run --plan``). Its
#: numbers are not results: a notebook run in plan mode says so in its provenance.
PLAN_ENV = "INITSTUDY_PLAN"
#: The examples of each split a plan-mode evaluation reads.
PLAN_EVAL = 32


def planning() -> bool:
    """Whether the training core is in plan mode (:data:`PLAN_ENV`)."""
    return os.environ.get(PLAN_ENV) == "1"


def planned_evaluations(steps: int, eval_every: int) -> int:
    """How many times a run of ``steps`` steps evaluates its validation split: at step 0, at
    every multiple of ``eval_every`` and at its last step.

    >>> planned_evaluations(430, 430), planned_evaluations(100, 30), planned_evaluations(90, 30)
    (2, 5, 4)
    """
    return 1 + steps // eval_every + (1 if steps % eval_every else 0)


def reset_work() -> None:
    """Start counting :data:`WORK` from zero (a notebook run does, at its start)."""
    WORK.__dict__.update(Work().__dict__)


def pass_flops(model: nn.Module, example: torch.Tensor, batch_size: int, train: bool) -> float:
    """FLOPs of one pass of ``model`` on a batch of ``batch_size`` inputs shaped like
    ``example[0]``: forward, plus the backward of a cross-entropy loss when ``train``, counted
    on a copy on the ``meta`` device (nothing is computed, no random number drawn).

    >>> from initstudy.core.models import mlp
    >>> pass_flops(mlp(784, [128], 10), torch.zeros(1, 784), 64, train=False)  # 2 * 64 * (784*128 + 128*10)
    13008896.0
    """
    from torch.utils.flop_counter import FlopCounterMode

    m = copy.deepcopy(model).to("meta")
    m.train(train)
    for sub in m.modules():  # the caller's hooks are not part of the model's work (and may read values)
        for hooks in (sub._forward_hooks, sub._forward_pre_hooks, sub._backward_hooks, sub._backward_pre_hooks):
            hooks.clear()
    x = torch.empty((batch_size, *example.shape[1:]), dtype=example.dtype, device="meta")
    with FlopCounterMode(display=False) as counter:
        out = m(x)
        if train:
            F.cross_entropy(out, torch.zeros(batch_size, dtype=torch.long, device="meta")).backward()
    return float(counter.get_total_flops())


# --------------------------------------------------------------------------- data streams


def stream_seed(seed: int, stream: str) -> int:
    """The seed of the random stream named ``stream`` of a run of ``seed``: a fixed function of
    both (SHA-256), in [0, 2^31), unrelated to the run's other streams and to other seeds'. A
    placebo that must differ from its condition in exactly one random stream (a weight draw, a
    data order) takes that stream's seed from here, the rest from ``seed``.

    >>> stream_seed(0, "data order") == stream_seed(0, "data order") != stream_seed(1, "data order")
    True
    """
    import hashlib

    return int.from_bytes(hashlib.sha256(f"{int(seed)}:{stream}".encode()).digest()[:4], "little") >> 1


def member_stream(seed: int, n: int, batch_size: int, steps: int, *, image_shape: tuple | None = None,
                  augment: str | None = None, mixup_alpha: float = 0.0, pad: int = 4, order_seed: int | None = None):
    """A member's random draws, one epoch at a time: yields dicts of tensors for the steps
    of each epoch (``idx`` [s, B]; with ``augment="crop-flip"`` also ``crop_i``, ``crop_j``
    [s, B] in 0..2 pad and ``flip`` [s, B]; with ``mixup_alpha`` > 0 ``lam`` [s] and
    ``perm`` [s, B]). The data order is a fresh permutation of the ``n`` examples each epoch
    (the last incomplete batch dropped), from ``torch.Generator().manual_seed(seed)``;
    augmentation and mixup from two seeds spawned from ``numpy.random.SeedSequence(seed)``
    (NumPy's Beta for the mixup coefficient, as Zhang et al.'s code). The same seed gives the same draws on any device
    and in any ensemble. ``order_seed``: the data order's own seed instead of ``seed`` (a placebo
    that differs in the data order only; augmentation and mixup stay ``seed``'s).

    >>> first = next(member_stream(0, 10, 4, 3))
    >>> first["idx"].shape
    torch.Size([2, 4])
    """
    if batch_size > n:
        raise ValueError(f"batch_size {batch_size} is larger than the {n} examples")
    order_gen = torch.Generator().manual_seed(seed if order_seed is None else order_seed)
    # augmentation and mixup: streams of their own, derived from (seed, purpose), so that
    # member s's augmentation is not member s + 1's data order
    aug_seed, mix_seed = (int(s.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))
                          for s in np.random.SeedSequence(seed).spawn(2))
    aug_gen = torch.Generator().manual_seed(aug_seed)
    mix_gen = torch.Generator().manual_seed(mix_seed)
    mix_rng = np.random.default_rng(mix_seed)
    per_epoch = n // batch_size
    done = 0
    while done < steps:
        s = min(per_epoch, steps - done)
        order = torch.randperm(n, generator=order_gen)
        out = {"idx": order[: per_epoch * batch_size].view(per_epoch, batch_size)[:s]}
        if augment == "crop-flip":
            out["crop_i"] = torch.randint(0, 2 * pad + 1, (s, batch_size), generator=aug_gen)
            out["crop_j"] = torch.randint(0, 2 * pad + 1, (s, batch_size), generator=aug_gen)
            out["flip"] = torch.rand(s, batch_size, generator=aug_gen) < 0.5
        if mixup_alpha > 0:
            out["lam"] = torch.from_numpy(mix_rng.beta(mixup_alpha, mixup_alpha, size=s))
            out["perm"] = torch.argsort(torch.rand(s, batch_size, generator=mix_gen), dim=1)
        done += s
        yield out


def crop_flip_at(x: torch.Tensor, i: torch.Tensor, j: torch.Tensor, flip: torch.Tensor, pad: int = 4) -> torch.Tensor:
    """The CIFAR augmentation with given draws: crop the ``pad``-padded image at offsets
    ``(i, j)`` back to its size, then flip horizontally where ``flip``; ``x`` is [N, C, H, W]
    and the draws [N]."""
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dev = x.device
    rows = (i.to(dev)[:, None] + torch.arange(h, device=dev))[:, None, :, None]
    cols = (j.to(dev)[:, None] + torch.arange(w, device=dev))[:, None, None, :]
    out = padded[torch.arange(n, device=dev)[:, None, None, None], torch.arange(c, device=dev)[None, :, None, None],
                 rows, cols]
    return torch.where(flip.to(dev)[:, None, None, None], out.flip(-1), out)


class _Epochs:
    """The stacked draws of the live members, one epoch at a time, on the device."""

    def __init__(self, configs: Sequence, n: int, config, device):
        self.streams = [member_stream(c.seed, n, config.batch_size, config.steps, augment=config.augment,
                                      mixup_alpha=config.mixup_alpha, order_seed=c.order_seed) for c in configs]
        self.device = device
        self.block: dict | None = None
        self.pos = 0

    def next(self) -> dict:
        if self.block is None or self.pos == len(self.block["idx"]):
            parts = [next(s) for s in self.streams]
            self.block = {k: torch.stack([p[k] for p in parts], dim=1).to(self.device, non_blocking=True)
                          for k in parts[0]}
            self.pos = 0
        step = {k: v[self.pos] for k, v in self.block.items()}
        self.pos += 1
        return step

    def keep(self, alive: list[bool]) -> None:
        """Drop the streams of members that left the ensemble."""
        self.streams = [s for s, a in zip(self.streams, alive) if a]
        if self.block is not None:
            mask = torch.tensor(alive, device=self.device)
            self.block = {k: v[:, mask] for k, v in self.block.items()}


# --------------------------------------------------------------------------- grouping


def signature(model: nn.Module) -> tuple:
    """What members must share to be stacked: the module tree (types and settings, as
    ``repr`` shows them), every parameter's and buffer's name, shape and dtype, and every
    module's public scalar attributes."""
    tensors = [(n, tuple(t.shape), str(t.dtype)) for n, t in model.named_parameters()]
    tensors += [(n, tuple(t.shape), str(t.dtype)) for n, t in model.named_buffers()]
    # plain settings that change what forward does but that neither repr nor the shapes show
    # (a block's order, stride or padding): every module's public scalar attributes
    settings = tuple((n, k, v) for n, m in model.named_modules() for k, v in sorted(vars(m).items())
                     if not k.startswith("_") and k != "training" and isinstance(v, (bool, int, float, str, tuple)))
    return (type(model).__name__, repr(model), tuple(tensors), settings)


def _member_bytes(model: nn.Module, example: torch.Tensor, batch_size: int) -> int:
    """A member's working memory: parameters x 4 (weights, gradients, optimiser state, a
    copy) plus the activations of one training batch x 3 (kept for backward, gradients)."""
    sizes = []
    hooks = [m.register_forward_hook(lambda m, i, o: sizes.append(o.numel() if torch.is_tensor(o) else 0))
             for m in model.modules() if m is not model]
    try:
        with torch.no_grad():
            was = model.training
            model.eval()
            model(example[:1])
            model.train(was)
    finally:
        for h in hooks:
            h.remove()
    per = example.element_size()
    params = sum(p.numel() for p in model.parameters())
    return int(4 * params * per + 3 * batch_size * sum(sizes) * per)


def chunk_size(model: nn.Module, example: torch.Tensor, batch_size: int, device: str | torch.device = "cpu",
               budget: int | None = None) -> int:
    """How many members of ``model``'s shape train at once within ``budget`` bytes
    (:data:`MEMORY_BUDGET` on the CPU, half the GPU's total memory); at least 1. The budget
    does not depend on the moment (free memory would), so the same run always forms the
    same chunks."""
    if budget is None:
        dev = torch.device(device)
        if dev.type == "cuda":
            budget = torch.cuda.get_device_properties(dev).total_memory // 2
        else:
            budget = MEMORY_BUDGET
    return max(1, int(budget // max(1, _member_bytes(model, example, batch_size))))


# --------------------------------------------------------------------------- the core


def _on_device(t: torch.Tensor, device, cache: dict) -> torch.Tensor:
    key = (id(t), str(device))
    if key not in cache:
        cache[key] = t.to(device)
    return cache[key]


def train_ensemble(models: Sequence[nn.Module], data, configs: Sequence, *, record=None,
                   record_every: int | None = None, record_at: Iterable[int] = (), device: str = "cpu",
                   chunk: int | None = None, vectorize: str = "auto",
                   channels_last: bool | None = None) -> list[EnsembleResult]:
    """Train ``models`` (same :func:`signature`) as one ensemble; ``configs[k]`` is member
    k's :class:`initstudy.core.train.TrainConfig` (they may differ in ``seed``, ``lr``,
    ``momentum`` and ``weight_decay``; everything else must be equal). ``data`` is one
    :class:`initstudy.core.data.Dataset` for all members or a list, one per member, of equal sizes.

    Returns one result per member with the history rows of :func:`initstudy.core.train.train`.
    The trained weights are written back into ``models``. ``record(model, step)``: as in
    :func:`initstudy.core.train.train`, called per member on its module (weights, BatchNorm
    statistics and ``.grad`` loaded) at the recording steps. ``chunk``: members per chunk
    (default :func:`chunk_size`). ``vectorize``: "vmap", "loop" or "auto"
    (:func:`vectorize_mode`). ``channels_last``: each member's convolution weights in
    channels-last order (:func:`_member_layout`); default: in "loop" mode on the CPU.
    """
    models = list(models)
    configs = list(configs)
    if len(models) != len(configs):
        raise ValueError(f"{len(models)} models but {len(configs)} configs")
    if not models:
        return []
    datas = list(data) if isinstance(data, (list, tuple)) else None
    if datas is not None and len(datas) != len(models):
        raise ValueError(f"{len(models)} models but {len(datas)} data sets")
    first = configs[0]
    shared = ("steps", "batch_size", "optimizer", "eval_every", "warmup_steps", "milestones", "scalar_lr_factor",
              "mixup_alpha", "augment")
    for c in configs[1:]:
        for f in shared:
            if getattr(c, f) != getattr(first, f):
                raise ValueError(f"ensemble members must share {f}: {getattr(first, f)!r} and {getattr(c, f)!r}")
    sig = signature(models[0])
    for m in models[1:]:
        if signature(m) != sig:
            raise ValueError("ensemble members must share an architecture (parameter and buffer names and shapes)")
    if vectorize not in ("auto", "vmap", "loop"):
        raise ValueError(f"vectorize must be 'auto', 'vmap' or 'loop', got {vectorize!r}")
    record_at = set(record_at)
    if chunk is None and len(models) == 1:
        chunk = 1
    if chunk is None:
        p0 = next(models[0].parameters())
        x0 = (datas[0] if datas else data).x_train[:1].to(device=p0.device, dtype=p0.dtype)
        chunk = chunk_size(models[0], x0, first.batch_size, device)
    results: list[EnsembleResult] = []
    cache: dict = {}
    t0, recorded = time.perf_counter(), WORK.record_seconds
    for start in range(0, len(models), chunk):
        part = slice(start, start + chunk)
        results += _train_chunk(models[part], datas[part] if datas else data, configs[part], record=record,
                                record_every=record_every, record_at=record_at, device=device, cache=cache,
                                vectorize=vectorize, channels_last=channels_last)
    WORK.seconds += time.perf_counter() - t0 - (WORK.record_seconds - recorded)
    return results


def _stack_data(data, device, cache):
    """The training, validation and test tensors on the device, as ``{split: (x, y,
    per_member)}``: with a list of data sets, the training sets stacked [K, n, ...], and the
    validation and test sets too unless they are one and the same for every member."""
    datas = list(data) if isinstance(data, (list, tuple)) else None
    out = {}
    for split in ("train", "val", "test"):
        fx, fy = f"x_{split}", f"y_{split}"
        if datas is None:
            out[split] = (_on_device(getattr(data, fx), device, cache), _on_device(getattr(data, fy), device, cache),
                          False)
        elif split != "train" and all(getattr(d, fx) is getattr(datas[0], fx) and getattr(d, fy) is getattr(datas[0], fy)
                                      for d in datas):
            out[split] = (_on_device(getattr(datas[0], fx), device, cache),
                          _on_device(getattr(datas[0], fy), device, cache), False)
        else:
            out[split] = (torch.stack([getattr(d, fx) for d in datas]).to(device),
                          torch.stack([getattr(d, fy) for d in datas]).to(device), True)
    return out


def vectorize_mode(model: nn.Module, device: torch.device) -> str:
    """How the members' forward and backward passes run: "vmap" (one batched pass) on a GPU
    and for networks without convolutions; "loop" (one pass per member, the rest of the
    step still vectorised) for convolutional networks on the CPU, where vmap turns the
    members' convolutions into a grouped convolution that oneDNN runs 1.2-1.5x slower than
    separate ones (measured by ``make bench``); there each member's convolution weights are
    in channels-last order (:func:`_member_layout`). The rule is fixed, not timed, so the same run
    always takes the same path and gives the same numbers."""
    convolutional = any(isinstance(m, nn.modules.conv._ConvNd) for m in model.modules())
    return "loop" if (device.type == "cpu" and convolutional) else "vmap"


def _member_layout(t: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """A detached copy of the stacked tensor ``t`` for training. With ``channels_last``,
    stacked 2-d convolution weights [K, out, in, kh, kw] are laid out so that each member's
    weight ``t[i]`` is in channels-last order: oneDNN then runs the member's convolutions,
    and the ReLU and max-pooling after them, in NHWC. ``make bench`` times both layouts side
    by side; on the study's 2-core CPU the transfer chapter's small CNN trained 1.55x faster
    and Fixup ResNet-20 1.2x (medians of 3, evaluations included). The values are the same;
    only their order in memory differs, so the kernels (and the last bits of their sums) may
    differ.

    >>> w = _member_layout(torch.zeros(3, 16, 8, 3, 3), channels_last=True)
    >>> w[0].is_contiguous(memory_format=torch.channels_last), w[0].stride(), w.shape
    (True, (72, 1, 24, 8), torch.Size([3, 16, 8, 3, 3]))
    """
    t = t.detach()
    if channels_last and t.dim() == 5:
        # the canonical channels-last strides, also along axes of size 1 (a 1-channel input
        # layer): oneDNN picks the layout from the strides themselves
        k, out, cin, kh, kw = t.shape
        return torch.empty_strided(t.shape, (out * kh * kw * cin, kh * kw * cin, 1, kw * cin, cin),
                                   dtype=t.dtype, device=t.device).copy_(t)
    return t.clone()


def _train_chunk(models, data, configs, *, record, record_every, record_at, device, cache,
                 vectorize, channels_last) -> list[EnsembleResult]:
    """Train one chunk. The stacked tensors hold the *live* members only: a member whose loss
    is not finite is frozen at once (masked update, BatchNorm statistics restored) and, at
    the next point where the host looks (every step on the CPU, where it costs nothing;
    each evaluation on a GPU), evaluated, written back and dropped, so it costs no more
    compute."""
    from initstudy.core.train import is_scalar_param

    first = configs[0]
    k_all = len(models)
    dev = torch.device(device)
    for m in models:
        m.to(dev)
    base = copy.deepcopy(models[0]).to("meta")
    params, buffers = stack_module_state(models)
    mode = vectorize_mode(models[0], dev) if vectorize == "auto" else vectorize
    # one module call per member on the CPU: each member's convolution weights in channels-last order
    if channels_last is None:
        channels_last = mode == "loop" and dev.type == "cpu"
    params = {n: _member_layout(p, channels_last).requires_grad_(True) for n, p in params.items()}
    buffers = {n: b.clone() for n, b in buffers.items()}

    def nhwc(x: torch.Tensor) -> torch.Tensor:
        """A member's image batch in the layout of its weights (oneDNN picks the layout from
        both operands; for a 1-channel image the two orders are the same memory anyway)."""
        return x.contiguous(memory_format=torch.channels_last) if channels_last and x.dim() == 4 else x
    dtype = next(iter(params.values())).dtype
    splits = _stack_data(data, dev, cache)
    x_train, y_train, per_member = splits["train"]
    n_train = x_train.shape[1] if per_member else len(y_train)
    sizes = {k: (x.shape[1] if per else len(y)) for k, (x, y, per) in splits.items()}
    # chance: what a diverged member counts for (one rule for every accuracy the study reads)
    chance = 1.0 / (data[0] if isinstance(data, (list, tuple)) else data).num_classes
    example = (x_train[0] if per_member else x_train)[:1].to(dtype)
    try:
        step_flop = pass_flops(base, example, first.batch_size, train=True)
        example_flop = pass_flops(base, example, 1, train=False)
        counted = True
    except Exception:  # noqa: BLE001 (a model the meta device cannot run: its work is not counted, training goes on)
        step_flop = example_flop = 0.0
        counted = False
    plan = planning()
    WORK.planned_member_steps += k_all * first.steps
    WORK.planned_train_flop += k_all * first.steps * step_flop
    WORK.planned_eval_flop += k_all * example_flop * (
        sizes["val"] * planned_evaluations(first.steps, first.eval_every) + sizes["test"])
    steps_run = min(first.steps, 1) if plan else first.steps

    def view(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return values.view(-1, *([1] * (like.dim() - 1)))

    lr = torch.tensor([c.lr for c in configs], dtype=dtype, device=dev)
    group_factor = {n: (first.scalar_lr_factor if first.scalar_lr_factor is not None and is_scalar_param(n) else 1.0)
                    for n in params}
    opt = _Optimizer(first.optimizer, params,
                     torch.tensor([c.momentum for c in configs], dtype=dtype, device=dev),
                     torch.tensor([c.weight_decay for c in configs], dtype=dtype, device=dev))
    live = list(range(k_all))  # original index of each stacked member
    live_idx = torch.arange(k_all, device=dev)
    active = torch.ones(k_all, dtype=torch.bool, device=dev)
    diverged_at = torch.zeros(k_all, dtype=torch.long, device=dev)
    losses = torch.full((first.steps, k_all), float("nan"), dtype=dtype, device=dev)

    def forward(p, b, x):
        return functional_call(base, (p, b), (x,))

    vmapped = {True: vmap(forward, in_dims=(0, 0, 0)), False: vmap(forward, in_dims=(0, 0, None))}
    member_params: list[list[nn.Parameter]] = []

    def bind() -> None:
        """Loop mode: each live member's own module runs on views of the stacked tensors
        (parameters and BatchNorm buffers), so a training step is a plain module call per
        member, with no functional_call overhead, while the optimiser updates the stack."""
        member_params.clear()
        if mode != "loop":
            return
        for j, i in enumerate(live):
            own = []
            for name, t in params.items():
                owner, attr = _owner(models[i], name)
                owner._parameters[attr] = nn.Parameter(t.detach()[j])
                own.append(owner._parameters[attr])
            for name, t in buffers.items():
                owner, attr = _owner(models[i], name)
                owner._buffers[attr] = t[j]
            member_params.append(own)
            models[i].train()

    def batched(p: dict, b: dict, x: torch.Tensor, per: bool = True) -> torch.Tensor:
        """Every stacked member on its inputs: ``x`` [K, B, ...], or [B, ...] shared by all
        (``per=False``); returns [K, B, classes]."""
        if mode == "vmap":
            return vmapped[per](p, b, x)
        k = len(next(iter(p.values())))
        shared = None if per else nhwc(x)
        return torch.stack([forward({n: t[i] for n, t in p.items()}, {n: t[i] for n, t in b.items()},
                                    nhwc(x[i]) if per else shared) for i in range(k)])

    @torch.no_grad()
    def evaluate(p: dict, b: dict, rows: torch.Tensor | None = None, split: str = "val") -> tuple[torch.Tensor, torch.Tensor]:
        """Mean loss and accuracy of the stacked members ``p, b`` on ``split`` ("val" during
        training; "test" once per member, at its end); their sets are ``x[rows]`` when each
        member has its own."""
        x_all, y_all, per = splits[split]
        n_eval = min(sizes[split], PLAN_EVAL) if plan else sizes[split]
        base.eval()
        k = len(next(iter(p.values())))
        total = torch.zeros(k, dtype=torch.float64, device=dev)
        correct = torch.zeros(k, dtype=torch.long, device=dev)
        for s in range(0, n_eval, EVAL_BATCH):
            e = min(s + EVAL_BATCH, n_eval)
            if per:
                xb, yb = x_all[rows, s:e].to(dtype), y_all[rows, s:e]
                out = batched(p, b, xb)
            else:
                xb, yb = x_all[s:e].to(dtype), y_all[s:e].expand(k, -1)
                out = batched(p, b, xb, per=False)
            total += F.cross_entropy(out.flatten(0, 1), yb.flatten(), reduction="none").view(k, -1).sum(1)
            correct += (out.argmax(-1) == yb).sum(1)
        base.train()
        WORK.eval_flop += k * example_flop * n_eval
        return total / n_eval, correct.double() / n_eval

    evals: list[tuple[int, list[int], torch.Tensor, torch.Tensor]] = []  # validation, during training
    tests: dict[int, tuple[float, float]] = {}  # original index -> test loss and accuracy, read once at its end
    frozen: dict[int, tuple[float, float]] = {}  # original index -> validation loss, accuracy of its frozen weights
    records: list[list[dict]] = [[] for _ in range(k_all)]
    record_every = record_every or first.eval_every

    def do_record(step: int) -> None:
        t0 = time.perf_counter()
        alive = active.tolist()
        for j, i in enumerate(live):
            if alive[j]:
                _load_member(models[i], params, buffers, j)
                for row in record(models[i], step):
                    records[i].append({"step": step, "split": "probe", **row})
        WORK.record_seconds += time.perf_counter() - t0

    def drop_frozen() -> None:
        """Evaluate, write back and drop the members that diverged (host-side bookkeeping)."""
        nonlocal params, buffers, live, live_idx, active, lr
        alive = active.tolist()
        if all(alive):
            return
        dead = [j for j, a in enumerate(alive) if not a]
        sel = torch.tensor(dead, device=dev)
        with torch.no_grad():
            p_dead, b_dead = {n: t[sel] for n, t in params.items()}, {n: t[sel] for n, t in buffers.items()}
            vl, va = evaluate(p_dead, b_dead, live_idx[sel])
            tl, ta = evaluate(p_dead, b_dead, live_idx[sel], split="test")  # its end: the test set, once
        for j, v_l, v_a, t_l, t_a in zip(dead, vl.tolist(), va.tolist(), tl.tolist(), ta.tolist()):
            frozen[live[j]] = (v_l, v_a)
            tests[live[j]] = (t_l, t_a)
            _load_member(models[live[j]], params, buffers, j, grads=False)
        keep = torch.tensor(alive, device=dev)
        params = {n: (_member_layout(t.detach()[keep], True) if channels_last else t.detach()[keep]).requires_grad_(True)
                  for n, t in params.items()}
        buffers = {n: t[keep] for n, t in buffers.items()}
        opt.keep(params, keep)
        lr, live_idx, active = lr[keep], live_idx[keep], active[keep]
        live = [i for i, a in zip(live, alive) if a]
        epochs.keep(alive)
        bind()

    bind()
    evals.append((0, list(live), *evaluate(params, buffers, live_idx)))
    if record is not None:
        do_record(0)
    epochs = _Epochs(configs, n_train, first, dev)
    base.train()
    step = 0
    for step in range(1, steps_run + 1):
        if not live:
            break
        k = len(live)
        WORK.member_steps += k
        WORK.train_flop += k * step_flop
        WORK.uncounted_steps += 0 if counted else k
        rows = torch.arange(k, device=dev)
        draw = epochs.next()
        idx = draw["idx"]  # [K, B]
        if per_member:
            xb, yb = x_train[live_idx[:, None], idx].to(dtype), y_train[live_idx[:, None], idx]
        else:
            xb, yb = x_train[idx].to(dtype), y_train[idx]
        if "crop_i" in draw:
            shape = xb.shape
            xb = crop_flip_at(xb.flatten(0, 1), draw["crop_i"].flatten(), draw["crop_j"].flatten(),
                              draw["flip"].flatten()).view(shape)
        saved = {n: b.clone() for n, b in buffers.items()}  # restored for members that diverge
        # "loop" mode: each member's own module (bound to its views of the stack, see bind);
        # its gradients come back per member, not scattered into the stack K times.
        def train_forward(x: torch.Tensor) -> torch.Tensor:
            if mode == "loop":
                return torch.stack([models[i](nhwc(x[j])) for j, i in enumerate(live)])
            return batched(params, buffers, x)

        if "lam" in draw:
            lam = draw["lam"].to(dtype)
            perm = draw["perm"]
            mixed = view(lam, xb) * xb + view(1 - lam, xb) * xb[rows[:, None], perm]
            out = train_forward(mixed)
            ce = lambda t: F.cross_entropy(out.flatten(0, 1), t.flatten(), reduction="none").view(k, -1).mean(1)
            loss = lam * ce(yb) + (1 - lam) * ce(yb[rows[:, None], perm])
        else:
            out = train_forward(xb)
            loss = F.cross_entropy(out.flatten(0, 1), yb.flatten(), reduction="none").view(k, -1).mean(1)
        finite = torch.isfinite(loss)
        diverged_at[live_idx] = torch.where(active & ~finite, step, diverged_at[live_idx])
        active = active & finite
        losses[step - 1, live_idx] = torch.where(active, loss.detach(), torch.nan)
        total = torch.where(active, loss, 0).sum()
        if mode != "loop":
            grads = torch.autograd.grad(total, list(params.values()), allow_unused=True)
        else:  # each member's gradients from its own parameters, stacked
            flat = torch.autograd.grad(total, [p for own in member_params for p in own], allow_unused=True)
            n_p = len(params)
            grads = [torch.stack([torch.zeros_like(member_params[j][q]) if flat[j * n_p + q] is None
                                  else flat[j * n_p + q] for j in range(k)]) for q in range(n_p)]
        factor = first.lr_factor(step)
        # On the CPU, reading whether every member is active costs nothing (no device to wait
        # for): a member that diverged is dropped at once. On a GPU the mask is applied, with
        # no sync, until the next evaluation.
        host_checks = dev.type == "cpu" if _HOST_CHECKS is None else _HOST_CHECKS
        all_active = host_checks and bool(active.all())
        with torch.no_grad():
            grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params.values(), grads)]
            if record is not None:
                for p, g in zip(params.values(), grads):
                    p.grad = torch.where(view(active, g), g, 0)
            keep = None if all_active else [view(active, p) for p in params.values()]
            rates = [view(lr * (factor * group_factor[n]), p) for n, p in params.items()]
            opt.step(grads, rates, keep, step)
            if not all_active:
                for name, b in buffers.items():
                    b.copy_(torch.where(view(active, b), b, saved[name]))
        last = step == steps_run
        if step % first.eval_every == 0 or last:
            evals.append((step, list(live), *evaluate(params, buffers, live_idx)))
        if record is not None and (step % record_every == 0 or step in record_at or last):
            do_record(step)
        if host_checks and not all_active or (step % first.eval_every == 0 or last):
            drop_frozen()

    if live:  # the end: every member that trained to it reads the test set, once
        tl, ta = evaluate(params, buffers, live_idx, split="test")
        for i, t_l, t_a in zip(live, tl.tolist(), ta.tolist()):
            tests[i] = (t_l, t_a)

    # ---- back to the host: one copy of the losses, the evaluations and the divergence steps
    if mode == "loop":  # the modules own their tensors again (no views into the stack)
        for m in models:
            for name, t in list(m.named_parameters()):
                owner, attr = _owner(m, name)
                owner._parameters[attr] = nn.Parameter(t.detach().clone(memory_format=torch.contiguous_format))
            for name, t in list(m.named_buffers()):
                owner, attr = _owner(m, name)
                owner._buffers[attr] = t.clone()
    for j, i in enumerate(live):
        _load_member(models[i], params, buffers, j, grads=False)
    div = diverged_at.cpu().tolist()
    loss_host = losses[:step].cpu().numpy()
    final: dict[int, tuple[float, float]] = {}
    eval_rows: list[list[tuple]] = [[] for _ in range(k_all)]
    finite = lambda v: v if math.isfinite(v) else float("nan")  # noqa: E731
    for s, members, tl, ta in evals:
        for i, l_, a_ in zip(members, tl.cpu().tolist(), ta.cpu().tolist()):
            if div[i] and s >= div[i]:
                continue
            eval_rows[i] += [(s, "val", "loss", finite(l_)), (s, "val", "accuracy", a_)]
            final[i] = (l_, a_)
    results = []
    for i in range(k_all):
        d = div[i] or None
        rows = list(eval_rows[i])
        last_step = d if d is not None else step
        rows += [(s, "train", "loss", float(loss_host[s - 1, i])) for s in range(1, last_step + 1)]
        t_loss, t_acc = tests[i]
        if d is None:
            rows += [(step, "test", "loss", finite(t_loss)), (step, "test", "accuracy", t_acc)]
            v_loss, v_acc = final[i]
            out = {"val_loss": finite(v_loss), "val_accuracy": v_acc, "test_loss": finite(t_loss),
                   "test_accuracy": t_acc, "frozen_val_accuracy": float("nan"), "frozen_test_accuracy": float("nan")}
        else:  # diverged: counted at chance; the accuracy of the weights it froze with, labelled, beside it
            fv = frozen[i][1]
            rows += [(d, "val", "accuracy", chance), (d, "val", "frozen_accuracy", fv),
                     (d, "test", "accuracy", chance), (d, "test", "frozen_accuracy", t_acc)]
            out = {"val_loss": float("nan"), "val_accuracy": chance, "test_loss": float("nan"),
                   "test_accuracy": chance, "frozen_val_accuracy": fv, "frozen_test_accuracy": t_acc}
        df = pd.DataFrame(rows, columns=["step", "split", "metric", "value"])
        if records[i]:
            df = pd.concat([df, pd.DataFrame(records[i])], ignore_index=True)
        df = df.sort_values("step", kind="stable").reset_index(drop=True)
        steps_done = step if d is None else d - 1
        results.append(EnsembleResult(history=df, steps_done=steps_done, diverged_at=d,
                                      final={**out, "steps_done": steps_done, "diverged_at": d}))
    return results


class _Optimizer:
    """``torch.optim.SGD`` (dampening 0, no Nesterov) or ``torch.optim.Adam`` (betas 0.9,
    0.999, eps 1e-8), vectorised over the stacked members of ``params``: per-member
    ``momentum`` and ``decay`` vectors, and per-member learning rates at each step. A member
    whose ``keep`` is false is not updated (its weights stay as they are)."""

    def __init__(self, kind: str, params: dict, momentum: torch.Tensor, decay: torch.Tensor):
        self.kind = kind
        self.params = list(params.values())
        self.momentum = momentum if bool(momentum.any()) else None
        self.decay = decay if bool(decay.any()) else None
        self.bufs = [torch.zeros_like(p) for p in self.params] if (kind == "adam" or self.momentum is not None) else None
        self.second = [torch.zeros_like(p) for p in self.params] if kind == "adam" else None

    def keep(self, params: dict, mask: torch.Tensor) -> None:
        """Continue with the members in ``mask`` only (``params``: their stacked weights)."""
        self.params = list(params.values())
        self.momentum = None if self.momentum is None else self.momentum[mask]
        self.decay = None if self.decay is None else self.decay[mask]
        self.bufs = None if self.bufs is None else [b[mask] for b in self.bufs]
        self.second = None if self.second is None else [b[mask] for b in self.second]

    @staticmethod
    def _views(values: torch.Tensor, params: list[torch.Tensor]) -> list[torch.Tensor]:
        return [values.view(-1, *([1] * (p.dim() - 1))) for p in params]

    def step(self, grads: list[torch.Tensor], rates: list[torch.Tensor], keep: list[torch.Tensor] | None,
             step: int) -> None:
        params = self.params
        if self.decay is not None:
            grads = torch._foreach_add(grads, torch._foreach_mul(params, self._views(self.decay, params)))
        if self.kind == "sgd":
            if self.momentum is not None:  # buf = momentum * buf + g (the first step gives g, as torch's SGD)
                torch._foreach_mul_(self.bufs, self._views(self.momentum, params))
                torch._foreach_add_(self.bufs, grads)
                grads = self.bufs
            if keep is not None:  # frozen members get no update (their direction may be NaN)
                grads = [torch.where(k, g, 0) for g, k in zip(grads, keep)]
            torch._foreach_addcmul_(params, grads, [-r for r in rates])  # p -= rate * direction
            return
        b1, b2, eps = 0.9, 0.999, 1e-8
        torch._foreach_lerp_(self.bufs, grads, 1 - b1)
        torch._foreach_mul_(self.second, b2)
        torch._foreach_addcmul_(self.second, grads, grads, value=1 - b2)
        bc1, bc2 = 1 - b1**step, 1 - b2**step
        denom = torch._foreach_add(torch._foreach_div(torch._foreach_sqrt(self.second), math.sqrt(bc2)), eps)
        updates = torch._foreach_div(torch._foreach_mul(self.bufs, [r / bc1 for r in rates]), denom)
        if keep is not None:
            updates = [torch.where(k, u, 0) for u, k in zip(updates, keep)]
        torch._foreach_sub_(params, updates)


def _owner(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    """The submodule that holds the parameter or buffer ``name`` and its attribute name."""
    path, _, attr = name.rpartition(".")
    return (model.get_submodule(path) if path else model), attr


def _load_member(model: nn.Module, params: dict, buffers: dict, i: int, grads: bool = True) -> None:
    """Copy member ``i``'s weights, buffers and (with ``grads``) gradients into ``model``."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(params[name][i])
            if grads:
                g = params[name].grad
                p.grad = None if g is None else g[i].clone()
        for name, b in model.named_buffers():
            b.copy_(buffers[name][i])
