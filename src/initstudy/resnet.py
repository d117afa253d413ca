"""CIFAR-style residual networks with BatchNorm or none, and Fixup, exactly as the paper and
the authors' CIFAR code define it (Zhang, Dauphin & Ma 2019; hongyi-zhang/Fixup,
``cifar/models/fixup_resnet_cifar.py`` and ``cifar/cifar_train.py``).

The family: a 3x3 stem conv to ``width`` channels, three stages of ``n`` residual blocks
(``width``, 2 ``width``, 4 ``width`` channels; the first block of stages 2 and 3 halves the
map), global average pooling and a linear classifier. With basic blocks (m = 2 layers per
branch) the depth is 6n + 2: 8, 14, 20, 32, 56, 110, 1202, ... The shortcut that changes
shape is "option A", as in the Fixup code: ``AvgPool2d(1, stride)`` and zero channels.

Fixup, step by step (paper Sec. 3), with its constants named:

1. the classification layer and the last layer of every residual branch start at 0;
2. every other layer inside a branch gets He init, scaled by
   ``FIXUP_SCALE = L ** (-1 / (2m - 2))``, where ``L`` is the number of residual branches
   (blocks, not layers: ResNet-20 has L = 9, ResNet-110 L = 54) and ``m`` the number of
   layers per branch. The He std uses the **fan-out**, ``sqrt(2 / (C_out k^2))``, as the
   official code does (the paper's text says "standard initialization"); ``fan="fan_in"``
   selects the other reading. Layers outside the branches (the stem) keep PyTorch's default;
3. a scalar multiplier ``scale`` (init 1) per branch and scalar biases (init 0) before each
   conv, linear and activation: ``bias1a, bias1b, bias2a, bias2b`` in a basic block,
   ``bias1`` after the stem, ``bias2`` before the classifier. Training puts every parameter
   whose name contains "bias" or "scale" in groups at lr / 10 (:func:`param_groups`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from .inits import he_std, initialise  # the one He std and init registry; ResNets use the fan-out

__all__ = [
    "NORMS",
    "INITS",
    "FixupConstants",
    "fixup_scale",
    "he_std",
    "BasicBlock",
    "Bottleneck",
    "ResNet",
    "resnet",
    "depth_of",
    "blocks_for_depth",
    "init_resnet",
    "fixup_constants",
    "param_groups",
    "GROWTH_KINDS",
    "block_growth",
    "growth_sweep",
    "mean_growth",
    "padding_theory",
    "recipe_table",
    "identity_at_init",
    "growth_geometric_means",
    "accuracy_summary",
    "paired_gaps",
    "ablation_table",
    "check_table",
    "overflow_blocks",
    "overflow_text",
    "first_epoch_glue",
    "ablation_glue",
]

NORMS = ("batchnorm", "none")
#: "he-fan-out": He normal (fan-out) convs; "zero-gamma": the same with the last BN of every
#: block at 0 (Goyal et al. 2017, torchvision's zero_init_residual); "fixup" and its
#: ablations: without the zero init, without the L scaling, without scalars (build the
#: model with ``scalars=False`` for the last).
INITS = ("he-fan-out", "zero-gamma", "fixup", "fixup-no-zero-init", "fixup-no-scaling")

#: Fixup's learning-rate factor for its scalar biases and multipliers (cifar_train.py).
SCALAR_LR_FACTOR = 0.1


def fixup_scale(num_branches: int, branch_layers: int) -> float:
    """Fixup's rescaling of the weight layers inside a branch: L ** (-1 / (2m - 2)).

    >>> round(fixup_scale(9, 2), 6), round(fixup_scale(54, 2), 6), round(fixup_scale(16, 3), 6)
    (0.333333, 0.136083, 0.5)
    """
    if branch_layers < 2:
        raise ValueError("a residual branch needs m >= 2 layers for the Fixup rescaling")
    return num_branches ** (-1.0 / (2 * branch_layers - 2))


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def _scalar(value: float) -> nn.Parameter:
    return nn.Parameter(torch.full((1,), float(value)))


class BasicBlock(nn.Module):
    """Two 3x3 convs on the branch (m = 2). ``norm``: BatchNorm after each conv or none;
    ``scalars``: Fixup's scalar biases and multiplier; ``order``: "post" (ReLU after the
    addition, the original ResNet and the Fixup code) or "pre" (pre-activation, no ReLU on
    the main path). The shape-changing shortcut is option A."""

    branch_layers = 2

    def __init__(self, in_planes: int, planes: int, stride: int = 1, norm: str = "batchnorm",
                 scalars: bool = False, order: str = "post"):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        if order not in ("post", "pre"):
            raise ValueError(f"order must be 'post' or 'pre', got {order!r}")
        self.order, self.scalars, self.stride = order, scalars, stride
        self.pad = planes - in_planes
        self.conv1 = conv3x3(in_planes, planes, stride)
        self.conv2 = conv3x3(planes, planes)
        bn_in = in_planes if order == "pre" else planes
        self.bn1 = nn.BatchNorm2d(bn_in) if norm == "batchnorm" else nn.Identity()
        self.bn2 = nn.BatchNorm2d(planes) if norm == "batchnorm" else nn.Identity()
        if scalars:
            self.bias1a, self.bias1b, self.bias2a = _scalar(0), _scalar(0), _scalar(0)
            self.scale, self.bias2b = _scalar(1), _scalar(0)

    @property
    def last_layer(self) -> nn.Conv2d:
        return self.conv2

    @property
    def last_norm(self) -> nn.Module:
        return self.bn2

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1 and self.pad == 0:
            return x
        x = F.avg_pool2d(x, 1, self.stride)  # option A: subsample ...
        return torch.cat([x, torch.zeros(x.shape[0], self.pad, *x.shape[2:], dtype=x.dtype, device=x.device)], 1)

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        if self.order == "pre":
            out = self.conv1(F.relu(self.bn1(x)))
            return self.conv2(F.relu(self.bn2(out)))
        if self.scalars:
            out = F.relu(self.bn1(self.conv1(x + self.bias1a)) + self.bias1b)
            return self.bn2(self.conv2(out + self.bias2a)) * self.scale + self.bias2b
        out = F.relu(self.bn1(self.conv1(x)))
        return self.bn2(self.conv2(out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.order == "pre":
            return self.shortcut(x) + self.branch(x)
        identity = x
        if self.stride != 1 or self.pad:
            identity = self.shortcut(x + self.bias1a if self.scalars else x)  # as the Fixup code
        return F.relu(self.branch(x) + identity)


class Bottleneck(nn.Module):
    """The bottleneck block (m = 3): 1x1 reduce, 3x3, 1x1 expand (x4), post-activation; the
    shape-changing shortcut is a 1x1 conv, as in the Fixup ImageNet code. Scalars: bias1a,
    bias1b, bias2a, bias2b, bias3a, scale, bias3b."""

    branch_layers = 3
    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1, norm: str = "batchnorm",
                 scalars: bool = False, order: str = "post"):
        super().__init__()
        if order != "post":
            raise ValueError("the bottleneck block is post-activation only")
        out_planes = planes * self.expansion
        self.scalars = scalars
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.conv2 = conv3x3(planes, planes, stride)
        self.conv3 = nn.Conv2d(planes, out_planes, 1, bias=False)
        bn = (lambda c: nn.BatchNorm2d(c)) if norm == "batchnorm" else (lambda c: nn.Identity())
        self.bn1, self.bn2, self.bn3 = bn(planes), bn(planes), bn(out_planes)
        self.downsample = (nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)
                           if stride != 1 or in_planes != out_planes else None)
        if scalars:
            for name in ("bias1a", "bias1b", "bias2a", "bias2b", "bias3a", "bias3b"):
                setattr(self, name, _scalar(0))
            self.scale = _scalar(1)

    @property
    def last_layer(self) -> nn.Conv2d:
        return self.conv3

    @property
    def last_norm(self) -> nn.Module:
        return self.bn3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.scalars:
            out = F.relu(self.bn1(self.conv1(x + self.bias1a)) + self.bias1b)
            out = F.relu(self.bn2(self.conv2(out + self.bias2a)) + self.bias2b)
            out = self.bn3(self.conv3(out + self.bias3a)) * self.scale + self.bias3b
            identity = self.downsample(x + self.bias1a) if self.downsample is not None else x
        else:
            out = F.relu(self.bn1(self.conv1(x)))
            out = F.relu(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
            identity = self.downsample(x) if self.downsample is not None else x
        return F.relu(out + identity)


class ResNet(nn.Module):
    """Stem, three stages of residual blocks, pooling, classifier (see the module doc)."""

    def __init__(self, blocks_per_stage: int, in_channels: int = 3, num_classes: int = 10, width: int = 16,
                 norm: str = "batchnorm", scalars: bool = False, block: str = "basic", order: str = "post"):
        super().__init__()
        block_cls = {"basic": BasicBlock, "bottleneck": Bottleneck}[block]
        self.norm, self.scalars, self.block_type = norm, scalars, block
        self.conv1 = conv3x3(in_channels, width)
        self.bn1 = nn.BatchNorm2d(width) if norm == "batchnorm" else nn.Identity()
        if scalars:
            self.bias1 = _scalar(0)
        planes_in = width
        stages = []
        for stage, planes in enumerate((width, 2 * width, 4 * width)):
            layers = []
            for i in range(blocks_per_stage):
                stride = 2 if (stage > 0 and i == 0) else 1
                layers.append(block_cls(planes_in, planes, stride, norm=norm, scalars=scalars, order=order))
                planes_in = planes * getattr(block_cls, "expansion", 1)
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3 = stages
        self.final_bn = nn.BatchNorm2d(planes_in) if (norm == "batchnorm" and order == "pre") else nn.Identity()
        self.pool = nn.AdaptiveAvgPool2d(1)
        if scalars:
            self.bias2 = _scalar(0)
        self.fc = nn.Linear(planes_in, num_classes)

    @property
    def blocks(self) -> list[nn.Module]:
        return [b for stage in (self.layer1, self.layer2, self.layer3) for b in stage]

    @property
    def num_branches(self) -> int:
        """L: the number of residual branches (blocks), as the Fixup code counts it."""
        return len(self.blocks)

    @property
    def branch_layers(self) -> int:
        """m: the number of weight layers in each residual branch."""
        return self.blocks[0].branch_layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn1(self.conv1(x))
        x = F.relu(x + self.bias1 if self.scalars else x)
        x = self.final_bn(self.layer3(self.layer2(self.layer1(x))))
        x = self.pool(x).flatten(1)
        return self.fc(x + self.bias2 if self.scalars else x)


def blocks_for_depth(depth: int, block: str = "basic") -> int:
    """Blocks per stage for a depth 6n + 2 (basic) or 9n + 2 (bottleneck).

    >>> blocks_for_depth(20), blocks_for_depth(110), blocks_for_depth(1202)
    (3, 18, 200)
    """
    per = 6 if block == "basic" else 9
    if depth < per + 2 or (depth - 2) % per:
        raise ValueError(f"a CIFAR ResNet with {block} blocks has depth {per}n + 2 (8, 14, 20, ...), got {depth}")
    return (depth - 2) // per


def depth_of(model: ResNet) -> int:
    return model.num_branches * model.branch_layers + 2


def resnet(depth: int, init: str = "he-fan-out", norm: str | None = None, in_channels: int = 3, num_classes: int = 10,
           width: int = 16, scalars: bool | None = None, block: str = "basic", order: str = "post",
           fan: str = "fan_out", seed: int | None = None) -> ResNet:
    """Build and initialise a CIFAR-style ResNet of ``depth`` layers.

    ``init`` is one of :data:`INITS`. By default a Fixup net has no normalisation and has its
    scalars; the others have BatchNorm. Pass ``norm="none"`` with ``init="he-fan-out"`` for the
    no-normalisation baseline, ``scalars=False`` for the Fixup ablation without scalars.

    >>> net = resnet(20, "fixup", seed=0)
    >>> net.num_branches, net.norm, round(net.layer1[0].conv1.weight.std().item(), 2)
    (9, 'none', 0.04)
    """
    if init not in INITS:
        raise ValueError(f"unknown ResNet init {init!r}; allowed: {', '.join(INITS)}")
    fixup = init.startswith("fixup")
    norm = norm if norm is not None else ("none" if fixup else "batchnorm")
    scalars = scalars if scalars is not None else fixup
    if init == "zero-gamma" and norm != "batchnorm":
        raise ValueError("the zero-gamma init needs BatchNorm (norm='batchnorm')")
    if seed is not None:
        torch.manual_seed(seed)
    net = ResNet(blocks_for_depth(depth, block), in_channels, num_classes, width, norm, scalars, block, order)
    return initialise(net, init, fan=fan, seed=seed)  # the registry's entry runs init_resnet


@torch.no_grad()
def init_resnet(net: ResNet, init: str, fan: str = "fan_out", seed: int | None = None) -> ResNet:
    """Initialise a :class:`ResNet` in place (see :data:`INITS`); registered in
    :data:`initstudy.inits.MODEL_INITS` under the same names."""
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    if init in ("he-fan-out", "zero-gamma"):
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.normal_(0.0, he_std(m.weight, fan), generator=gen)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.fill_(1.0)
                m.bias.zero_()
        if init == "zero-gamma":
            for b in net.blocks:
                b.last_norm.weight.zero_()
        return net
    scale = 1.0 if init == "fixup-no-scaling" else fixup_scale(net.num_branches, net.branch_layers)
    for b in net.blocks:
        inner = [m for m in (getattr(b, "conv1", None), getattr(b, "conv2", None), getattr(b, "conv3", None))
                 if m is not None and m is not b.last_layer]
        for conv in inner:
            conv.weight.normal_(0.0, he_std(conv.weight, fan) * scale, generator=gen)
        if init == "fixup-no-zero-init":
            b.last_layer.weight.normal_(0.0, he_std(b.last_layer.weight, fan) * scale, generator=gen)
        else:
            b.last_layer.weight.zero_()
        if getattr(b, "downsample", None) is not None:
            b.downsample.weight.normal_(0.0, he_std(b.downsample.weight, fan), generator=gen)
    if init == "fixup-no-zero-init":
        bound = 1.0 / math.sqrt(net.fc.in_features)  # the classifier gets PyTorch's default rule
        net.fc.weight.uniform_(-bound, bound, generator=gen)
        net.fc.bias.uniform_(-bound, bound, generator=gen)
    else:
        net.fc.weight.zero_()
        net.fc.bias.zero_()
    return net


@dataclass(frozen=True)
class FixupConstants:
    L: int  # residual branches
    m: int  # weight layers per branch
    scale: float  # L ** (-1 / (2m - 2))
    first_stage_std: float  # std of the first block's first conv: He (fan) * scale


def fixup_constants(net: ResNet, fan: str = "fan_out") -> FixupConstants:
    """The named constants of Fixup for ``net``'s architecture (not read from its weights)."""
    s = fixup_scale(net.num_branches, net.branch_layers)
    return FixupConstants(net.num_branches, net.branch_layers, s, he_std(net.layer1[0].conv1.weight, fan) * s)


def param_groups(net: nn.Module, lr: float, scalar_lr_factor: float = SCALAR_LR_FACTOR) -> list[dict]:
    """Optimizer groups as the official CIFAR script: every parameter whose name contains
    "bias" or "scale" (Fixup's scalars, and also the classifier's bias) at
    ``lr * scalar_lr_factor``, the rest at ``lr`` (:func:`initstudy.train.param_groups`)."""
    from .train import TrainConfig
    from .train import param_groups as groups

    return groups(net, TrainConfig(steps=0, lr=lr, scalar_lr_factor=scalar_lr_factor))


# ------------------------------------------------------------ variance through residual blocks

#: Block kinds of the variance experiment: no-norm Kaiming with the ReLU after the addition
#: ("post", the original ResNet) or pre-activation ("pre"); BatchNorm post-activation ("bn",
#: batch statistics, as in training); zero-gamma BN; Fixup; Fixup without its zero init.
GROWTH_KINDS = ("post", "pre", "bn", "zero-gamma", "fixup", "fixup-no-zero-init")
#: Kinds whose block is positively homogeneous at init (f(c x) = c f(x) for c > 0), so the
#: activation can be rescaled after every block without changing any ratio.
HOMOGENEOUS = ("post", "pre", "fixup", "fixup-no-zero-init")


def _conv(x: torch.Tensor, w: torch.Tensor, padding: str) -> torch.Tensor:
    if padding == "circular":
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="circular"), w)
    return F.conv2d(x, w, padding=1)


def _bn(x: torch.Tensor, weight: float = 1.0) -> torch.Tensor:
    out = F.batch_norm(x, None, None, training=True)
    return out * weight


@torch.no_grad()
def block_growth(kind: str, blocks: int, width: int = 16, size: int = 8, batch: int = 8, seed: int = 0,
                 padding: str = "circular", rescale: bool = True, record_every: int = 1,
                 device: str = "cpu") -> pd.DataFrame:
    """Push a batch through ``blocks`` residual basic blocks (``width`` channels, ``size`` x
    ``size`` maps, no downsampling) initialised as ``kind`` (see :data:`GROWTH_KINDS`), and
    record, per block, the growth of the output's second moment and variance over the
    input's, and the cumulative log10 RMS. Fixup uses L = ``blocks``.

    With ``rescale`` (homogeneous kinds only) the activation is divided by its RMS after each
    block, so float32 never overflows and the product of the ratios is the growth at any
    depth; without it, the pass stops at the first non-finite block. BatchNorm kinds are
    never rescaled (a BN branch does not scale with its input)."""
    if kind not in GROWTH_KINDS:
        raise ValueError(f"unknown kind {kind!r}; allowed: {', '.join(GROWTH_KINDS)}")
    rescale = rescale and kind in HOMOGENEOUS
    gen = torch.Generator(device=device).manual_seed(seed)
    x = torch.randn(batch, width, size, size, generator=gen, device=device)
    if kind != "pre":
        x = F.relu(x)  # after the stem's ReLU, a post-activation block sees non-negative inputs
    shape = (width, width, 3, 3)
    std = math.sqrt(2.0 / (width * 9))  # He, fan-in = fan-out here
    scale = fixup_scale(blocks, 2)
    log10_rms = 0.5 * math.log10((x * x).mean().item())
    rows = []
    for b in range(1, blocks + 1):
        w1 = torch.empty(shape, device=device).normal_(0.0, std * (scale if kind.startswith("fixup") else 1.0),
                                                        generator=gen)
        if kind == "fixup":
            w2 = torch.zeros(shape, device=device)
        else:
            w2 = torch.empty(shape, device=device).normal_(
                0.0, std * (scale if kind == "fixup-no-zero-init" else 1.0), generator=gen)
        if kind == "pre":
            out = x + _conv(F.relu(_conv(F.relu(x), w1, padding)), w2, padding)
        elif kind in ("bn", "zero-gamma"):
            gamma = 0.0 if kind == "zero-gamma" else 1.0
            out = F.relu(x + _bn(_conv(F.relu(_bn(_conv(x, w1, padding))), w2, padding), gamma))
        else:
            out = F.relu(x + _conv(F.relu(_conv(x, w1, padding)), w2, padding))
        sm_in, sm_out = (x * x).mean().item(), (out * out).mean().item()
        var_in, var_out = x.var(unbiased=False).item(), out.var(unbiased=False).item()
        finite = math.isfinite(sm_out)
        log10_rms += 0.5 * math.log10(sm_out / sm_in) if finite and sm_in > 0 and sm_out > 0 else math.nan
        if b % record_every == 0 or b == blocks or not finite:
            rows += [{"block": b, "metric": "second_moment_ratio", "value": sm_out / sm_in if sm_in else math.nan},
                     {"block": b, "metric": "variance_ratio", "value": var_out / var_in if var_in else math.nan},
                     {"block": b, "metric": "log10_rms", "value": log10_rms},
                     {"block": b, "metric": "finite", "value": float(finite)}]
        if not finite:
            break
        x = out / math.sqrt(sm_out) if rescale else out
    df = pd.DataFrame(rows)
    for i, (k, v) in enumerate({"kind": kind, "padding": padding, "rescaled": rescale, "seed": seed}.items()):
        df.insert(i, k, v)
    return df


def growth_sweep(kinds, blocks: int, seeds, width: int = 16, size: int = 8, batch: int = 8,
                 padding: str = "circular", rescale: bool = True, record_every: int = 1, progress: bool = True,
                 device: str = "cpu") -> pd.DataFrame:
    """:func:`block_growth` over kinds x seeds, one table."""
    from itertools import product

    from .progress import tqdm

    grid = list(product(kinds, seeds))
    return pd.concat([block_growth(k, blocks, width, size, batch, s, padding, rescale, record_every, device)
                      for k, s in tqdm(grid, desc="blocks", disable=not progress)], ignore_index=True)


def mean_growth(growth: pd.DataFrame, metric: str = "second_moment_ratio") -> pd.DataFrame:
    """Geometric mean of the per-block ratio, per kind, padding and seed."""
    sel = growth[growth["metric"] == metric].copy()
    sel["log"] = np.log(sel["value"])
    out = sel.groupby(["kind", "padding", "seed"])["log"].mean().apply(np.exp).rename("geometric_mean_ratio")
    return out.reset_index()


def padding_theory(size: int, blocks_kind: str = "pre") -> float:
    """Mean-field growth of the second moment through one no-norm Kaiming pre-activation
    block with zero padding on a ``size`` x ``size`` map: 1 + (branch gain), where each 3x3
    conv multiplies the per-pixel second moment by 2/9 times the sum over its valid taps and
    each ReLU halves it (He init; circular padding gives exactly 2)."""
    ones = torch.ones(1, 1, size, size, dtype=torch.float64)
    kernel = torch.ones(1, 1, 3, 3, dtype=torch.float64) / 9.0
    s = F.conv2d(ones * 0.5, kernel, padding=1) * 2.0  # relu halves, conv: valid-tap mean times 2
    s = F.conv2d(s * 0.5, kernel, padding=1) * 2.0
    return 1.0 + s.mean().item()


# ------------------------------------------------------------------------- training

#: The methods the chapter trains: how each network is built and initialised.
METHODS: dict[str, dict] = {
    "bn": {"init": "he-fan-out", "norm": "batchnorm"},
    "zero-gamma": {"init": "zero-gamma", "norm": "batchnorm"},
    "none": {"init": "he-fan-out", "norm": "none"},
    "fixup": {"init": "fixup"},
    "fixup-no-zero-init": {"init": "fixup-no-zero-init"},
    "fixup-no-scaling": {"init": "fixup-no-scaling"},
    "fixup-no-scalars": {"init": "fixup", "scalars": False},
}


def resnet_sweep(data, *, methods, depths, seeds, width: int, steps: int, lr: float, batch_size: int = 128,
                 momentum: float = 0.9, weight_decay: float = 1e-4, warmup_steps: int = 0,
                 milestones: tuple[float, ...] = (), mixup_alpha: float = 0.0, augment: str | None = None,
                 eval_every: int = 50, fan: str = "fan_out", progress: bool = True, device: str = "cpu") -> pd.DataFrame:
    """Train a ResNet per method x depth x seed with the official CIFAR recipe's optimiser
    (SGD, momentum, weight decay; Fixup's scalars at lr / 10, see :data:`SCALAR_LR_FACTOR`)
    and return every run's history (:func:`initstudy.train.sweep`; diverged runs recorded)."""
    from itertools import product

    from .train import TrainConfig, sweep

    def build(run: dict) -> nn.Module:
        spec = METHODS[run["method"]]
        return resnet(run["depth"], spec["init"], norm=spec.get("norm"), in_channels=data.input_shape[0],
                      num_classes=data.num_classes, width=width, scalars=spec.get("scalars"), fan=fan,
                      seed=run["seed"])

    def config(run: dict) -> TrainConfig:
        fixup = METHODS[run["method"]]["init"].startswith("fixup")
        return TrainConfig(steps=steps, batch_size=batch_size, lr=lr, momentum=momentum, weight_decay=weight_decay,
                           eval_every=eval_every, seed=run["seed"], warmup_steps=warmup_steps,
                           milestones=tuple(milestones), scalar_lr_factor=SCALAR_LR_FACTOR if fixup else None,
                           mixup_alpha=mixup_alpha, augment=augment)

    runs = [{"method": m, "depth": d, "seed": s} for m, d, s in product(methods, depths, seeds)]
    return sweep(data, runs, build, config, progress=progress, desc="resnets", device=device)


def overflow_blocks(kinds, blocks: int, width: int, size: int, batch: int, seeds, device: str = "cpu") -> pd.DataFrame:
    """Per kind and seed, the first block at which the unrescaled signal of a zero-padded
    stack of ``blocks`` blocks leaves float32's range (None: it never does)."""
    rows = []
    for kind in kinds:
        for seed in seeds:
            raw = block_growth(kind, blocks, width, size, batch, seed, padding="zeros", rescale=False, device=device)
            bad = raw[(raw["metric"] == "finite") & (raw["value"] == 0)]["block"]
            rows.append({"kind": kind, "seed": seed, "first non-finite block": int(bad.min()) if len(bad) else None,
                         "blocks run": blocks})
    return pd.DataFrame(rows)


def overflow_text(overflow: pd.DataFrame) -> str:
    """":func:`overflow_blocks` in words: the range of first non-finite blocks per kind."""
    hit = overflow.dropna(subset=["first non-finite block"])
    return ", ".join(f"{k} {int(v.min())}-{int(v.max())}" if v.min() != v.max() else f"{k} {int(v.min())}"
                     for k, v in hit.groupby("kind")["first non-finite block"]) or "none"


def first_epoch_glue(summary: pd.DataFrame, gaps: pd.DataFrame, depths) -> dict:
    """The first-epoch section's glued values: the deepest depth, each method's per-seed
    accuracies there, and Fixup minus BN per depth with its interval."""
    deepest = max(depths)
    at_deepest = summary[summary["depth"] == deepest].set_index("method")
    return {"fig3-deepest": deepest, **{f"fig3-{m}-seeds": at_deepest.loc[m, "per_seed"] for m in at_deepest.index},
            "fig3-gaps": "; ".join(f"{r.depth} layers {r.mean_points:+.1f} [{r.low:+.1f}, {r.high:+.1f}]"
                                   for r in gaps.itertuples())}


def ablation_glue(table: pd.DataFrame) -> dict:
    """The ablation section's glued values from :func:`ablation_table`: the order, which
    ablations rank above or tie with full Fixup, and the settled differences."""
    above = table[table["rank"] < table.set_index("method").loc["fixup", "rank"]]
    settled = table[table["settled_sign"].isin(["above 0", "below 0"])]
    return {
        "ablation-order": ", ".join(f"{r.rank}. {r.method} {100 * r.mean:.1f} %" for r in table.itertuples()),
        "ablation-above-full": ", ".join(above["method"]) or "none",
        "ablation-tied-full": ", ".join(table[(table["rank"] == 1) & (table["method"] != "fixup")]["method"])
                              or "none",
        "ablation-settled": "; ".join(f"{r.method} {r.minus_full_points:+.1f} [{r.minus_full_low:+.1f}, "
                                      f"{r.minus_full_high:+.1f}] points" for r in settled.itertuples()) or "none",
    }


def fixup_measurements(growth: pd.DataFrame, fig3_finals: pd.DataFrame, seeds: list[int]) -> dict[str, dict]:
    """Per-seed values of the ledger's metrics for ``resnet-variance-doubles`` (from the
    circular-padding growth runs) and ``fixup-trains-without-bn`` (from the first-epoch
    runs at the deepest depth)."""
    geo = mean_growth(growth[growth["padding"] == "circular"]).set_index(["kind", "seed"])["geometric_mean_ratio"]
    deepest = int(fig3_finals["depth"].max())
    acc = fig3_finals[fig3_finals["depth"] == deepest].set_index(["method", "seed"])["accuracy"]

    def per_seed(series, key) -> list[float]:
        return [float(series.get((key, s), float("nan"))) for s in seeds]

    bn, fixup = per_seed(acc, "bn"), per_seed(acc, "fixup")
    return {
        "resnet-variance-doubles": {
            "preact_block_growth": per_seed(geo, "pre"),
            "postact_block_growth": per_seed(geo, "post"),
            "bn_block_growth": per_seed(geo, "bn"),
        },
        "fixup-trains-without-bn": {
            "nonorm_deep_accuracy": per_seed(acc, "none"),
            "deepest_depth": [float(deepest)],
            "fixup_minus_bn_deep": [100 * (f - b) for f, b in zip(fixup, bn)],
            "nonorm_minus_bn_deep": [100 * (n - b) for n, b in zip(per_seed(acc, "none"), bn)],
            "bn_deep_accuracy": bn,
        },
    }


# --------------------------------------------------------------- the chapter's tables and figures


@torch.no_grad()
def recipe_table(depths=(20, 32, 56, 110, 1202), fan: str = "fan_out", lr: float = 0.1) -> pd.DataFrame:
    """Fixup's constants for the CIFAR family, one row per depth: L, m, the branch scaling, the
    recipe's first-stage conv1 std beside the std actually drawn, whether every conv2 and the
    classifier are zero, the number of scalar parameters and the learning-rate groups (all
    read from detached weights)."""
    rows = []
    for depth in depths:
        net = resnet(depth, "fixup", fan=fan, seed=0)
        c = fixup_constants(net, fan)
        groups = param_groups(net, lr)
        rows.append({"ResNet": depth, "L (branches)": c.L, "m": c.m, "scale L^(-1/(2m-2))": c.scale,
                     "first-stage conv1 std (recipe)": c.first_stage_std,
                     "conv1 std (drawn)": net.layer1[0].conv1.weight.detach().std().item(),
                     "every conv2 zero": all(b.conv2.weight.detach().abs().max().item() == 0 for b in net.blocks),
                     "classifier zero": (net.fc.weight.detach().abs().max().item() == 0
                                         and net.fc.bias.detach().abs().max().item() == 0),
                     "scalar parameters": sum(p.numel() for n, p in net.named_parameters()
                                              if "bias" in n or "scale" in n),
                     "lr groups (x base lr)": " / ".join(f"{g['name']} {g['lr'] / lr:g}" for g in groups)})
    return pd.DataFrame(rows)


@torch.no_grad()
def identity_at_init(depth: int = 20, in_channels: int = 1, width: int = 16, size: int = 14, batch: int = 4,
                     seed: int = 0) -> pd.DataFrame:
    """Push a non-negative batch through the first stage of a freshly built Fixup ResNet and
    record, per block, the largest |block(x) - x| (0 when the block is the identity)."""
    net = resnet(depth, "fixup", in_channels=in_channels, width=width, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    h = torch.relu(torch.randn(batch, width, size, size, generator=gen))
    rows = []
    for i, block in enumerate(net.layer1, start=1):
        out = block(h)
        rows.append({"block": i, "max |block(x) - x|": (out - h).abs().max().item()})
        h = out
    return pd.DataFrame(rows)


def growth_geometric_means(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per setting (a label: e.g. "circular", "zeros", "zeros_16"), kind and seed: the geometric
    mean of the per-block growth of the second moment over the chain (over the blocks recorded),
    the number of blocks of the chain and the compounded growth over all of them (log10)."""
    out = []
    for setting, growth in frames.items():
        sel = growth[growth["metric"] == "second_moment_ratio"]
        geo = mean_growth(sel)
        blocks = sel.groupby(["kind", "padding", "seed"])["block"].max().rename("blocks").reset_index()
        geo = geo.merge(blocks, on=["kind", "padding", "seed"])
        geo["log10_compounded"] = geo["blocks"] * np.log10(geo["geometric_mean_ratio"])
        out.append(geo.assign(setting=setting))
    return pd.concat(out, ignore_index=True)[["setting", "kind", "padding", "seed", "blocks", "geometric_mean_ratio",
                                              "log10_compounded"]]


def accuracy_summary(finals: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Final test accuracy per group (e.g. depth x method): seeds, the mean and 95 % interval on
    the logit scale (the judge's ``proportion`` rule, :func:`initstudy.claims.interval`), min,
    max, the per-seed values in seed order, and how many runs diverged. Every seed counts: a
    diverged run at the test accuracy of its network at the step it diverged."""
    from .claims import interval

    rows = []
    for key, grp in finals.sort_values("seed").groupby(by):
        key = key if isinstance(key, tuple) else (key,)
        acc = grp["accuracy"].astype(float).tolist()
        n, centre, low, high = interval(acc, "proportion")
        rows.append({**dict(zip(by, key)), "seeds": n, "mean": float(np.mean(acc)), "logit_centre": centre,
                     "low": low, "high": high, "min": min(acc), "max": max(acc),
                     "per_seed": " / ".join(f"{100 * a:.1f}" for a in acc),
                     "diverged": int(grp["diverged_at"].notna().sum())})
    return pd.DataFrame(rows)


def paired_gaps(finals: pd.DataFrame, a: str, b: str, by: list[str] | None = None, key: str = "method") -> pd.DataFrame:
    """``a`` minus ``b`` in points of test accuracy, paired by seed, per group of ``by``: the
    mean and 95 % t interval of the per-seed differences (the judge's ``linear`` rule,
    :func:`initstudy.claims.interval`), the per-seed differences, and whether the interval
    excludes 0 (``settled_sign``: "above 0", "below 0" or "contains 0")."""
    from .claims import interval

    by = by or []
    groups = finals.groupby(by) if by else [((), finals)]
    rows = []
    for k, grp in groups:
        k = k if isinstance(k, tuple) else (k,)
        wide = grp.pivot_table(index="seed", columns=key, values="accuracy")
        d = (100 * (wide[a] - wide[b])).dropna()
        n, mean, low, high = interval(d.tolist(), "linear")
        sign = "above 0" if low > 0 else "below 0" if high < 0 else "contains 0"
        rows.append({**dict(zip(by, k)), "a": a, "b": b, "seeds": n, "mean_points": mean, "low": low, "high": high,
                     "per_seed": " / ".join(f"{v:+.1f}" for v in d), "settled_sign": sign})
    return pd.DataFrame(rows)


def ablation_table(finals: pd.DataFrame, full: str = "fixup") -> pd.DataFrame:
    """The ablations against the full recipe: per method, the accuracy summary
    (:func:`accuracy_summary`), its rank by mean accuracy (1 = highest), and the method minus
    ``full`` in points, paired by seed, with its 95 % interval (:func:`paired_gaps`)."""
    acc = accuracy_summary(finals, ["method"])
    acc["rank"] = acc["mean"].rank(ascending=False, method="min").astype(int)
    gaps = pd.concat([paired_gaps(finals, m, full) for m in acc["method"] if m != full], ignore_index=True)
    gaps = gaps.rename(columns={"a": "method", "mean_points": "minus_full_points", "low": "minus_full_low",
                                "high": "minus_full_high", "per_seed": "minus_full_per_seed"})
    out = acc.merge(gaps[["method", "minus_full_points", "minus_full_low", "minus_full_high", "minus_full_per_seed",
                          "settled_sign"]], on="method", how="left")
    return out.sort_values("rank").reset_index(drop=True)


def check_table(claim_id: str, measurements) -> pd.DataFrame:
    """Every check of ``claim_id`` judged on ``measurements`` as :func:`initstudy.claims.judge`
    does, with its precondition (``requires``) judged on its own: status, n, centre, interval,
    so that the text can say which check or precondition decided the verdict."""
    from . import claims

    c = claims.claim(claim_id)
    judged = claims.judge(c, measurements)
    rows = []
    for chk, res in zip(c.criterion.checks, judged.checks):
        row = {"metric": chk.metric, "rule": chk.rule_text(), "status": res.status, "n": res.n, "mean": res.mean,
               "low": res.low, "high": res.high, "requires": "none", "requires_rule": "", "requires_status": "none",
               "requires_n": 0, "requires_mean": math.nan, "requires_low": math.nan, "requires_high": math.nan}
        if chk.requires is not None:
            pre = claims.Claim(f"{claim_id}-precondition", "", "", "", claims.Criterion((chk.requires,)))
            r = claims.judge(pre, measurements).checks[0]
            row.update(requires=chk.requires.metric, requires_rule=chk.requires.rule_text(), requires_status=r.status,
                       requires_n=r.n, requires_mean=r.mean, requires_low=r.low, requires_high=r.high)
        rows.append(row)
    return pd.DataFrame(rows)


def _method_palette(methods) -> dict:
    import seaborn as sns

    # one colour per method across every figure of the chapter
    order = ["bn", "fixup", "none", "fixup-no-zero-init", "zero-gamma", "fixup-no-scaling", "fixup-no-scalars"]
    colours = dict(zip(order, sns.color_palette("colorblind", len(order))))
    methods = sorted(dict.fromkeys(methods), key=lambda m: order.index(m) if m in order else len(order))
    extra = iter(sns.color_palette("colorblind", 10)[len(order):])
    return {m: colours[m] if m in colours else next(extra) for m in methods}


def plot_growth(geo: pd.DataFrame, ratios: pd.DataFrame, kinds, band: tuple[float, float] = (1.8, 2.2)):
    """Left: the per-block growth of the second moment at init, block by block over the chain
    and the seeds (boxes), by kind of block and padding; right: the verdict's quantity, each
    seed's geometric mean over the chain, with the criterion's band around 2 (shaded). Log
    scales. Returns ``(figure, plotted data)``."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    kinds = list(kinds)
    fig, axes = plt.subplots(1, 2, figsize=(8, 4.2), sharey=True, gridspec_kw={"width_ratios": [1.3, 1]})
    palette = dict(zip(sorted(ratios["padding"].unique()), sns.color_palette("colorblind", 2)))
    sns.boxplot(data=ratios, y="kind", x="value", hue="padding", order=kinds, ax=axes[0], fliersize=1,
                palette=palette, orient="h")
    sns.stripplot(data=geo, y="kind", x="geometric_mean_ratio", hue="padding", order=kinds, ax=axes[1],
                  palette=palette, dodge=True, orient="h", size=6, legend=False)
    from matplotlib.ticker import FixedLocator, NullLocator

    for ax, values in zip(axes, (ratios["value"], geo["geometric_mean_ratio"])):
        ax.axvline(2.0, color="k", ls=":", lw=1)
        ax.set(xscale="log")
        lo, hi = float(values[values > 0].min()), float(values.max())
        ticks = [t for t in (0.5, 0.7, 1, 1.5, 2, 3, 5, 10, 20, 50, 100) if lo / 1.5 <= t <= hi * 1.5]
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels([f"{t:g}" for t in ticks])
    axes[1].axvspan(*band, color="grey", alpha=0.2, lw=0)
    axes[0].set(xlabel="growth per block\n(second moment, log scale)", ylabel="kind of block")
    axes[1].set(xlabel="geometric mean per seed\n(log scale; shaded: 2 ± 0.2)", ylabel="")
    sns.move_legend(axes[0], "lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, title="padding", frameon=False)
    fig.tight_layout()
    data = pd.concat([ratios.assign(quantity="per-block growth"),
                      geo.rename(columns={"geometric_mean_ratio": "value"}).assign(quantity="geometric mean per seed")],
                     ignore_index=True)
    return fig, data


def plot_depth_rms(depth_rms: pd.DataFrame, kinds, layers_max: int):
    """log10 of the RMS after each block of the long chains, by kind, against the article's
    doubling of the variance per block (dotted) and float32's largest value (dashed). Returns
    ``(figure, plotted data)``."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    kinds = list(kinds)
    fig, ax = plt.subplots(figsize=(8, 4.2))
    sns.lineplot(data=depth_rms, x="layers", y="value", hue="kind", hue_order=kinds, ax=ax, errorbar=None,
                 palette=dict(zip(kinds, sns.color_palette("colorblind", len(kinds)))))
    layers = np.array([0, layers_max])
    ax.plot(layers, 0.5 * np.log10(2) * layers / 2, "k:", lw=1, label="article: variance x2 per block")
    ax.axhline(np.log10(np.finfo(np.float32).max), color="grey", lw=0.8, ls="--", label="float32 limit")
    ax.set(ylabel="log10 RMS of the block output", xlabel="layers (two per block)")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    return fig, depth_rms


def plot_first_epoch(finals: pd.DataFrame, gaps: pd.DataFrame, depths, margin: float = -5.0):
    """Left: test accuracy after the first-epoch budget against depth (log axis), one dot per
    seed and a line through the means per method, crosses on runs that diverged; right: the
    verdict's quantity, Fixup minus BN in points per depth (dots: seeds; bar: mean and 95 %
    interval from :func:`paired_gaps`), with the criterion's -5 points dashed. Returns
    ``(figure, plotted data)``."""
    import matplotlib.pyplot as plt

    palette = _method_palette(finals["method"])
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.8), gridspec_kw={"width_ratios": [1.3, 1]})
    ax = axes[0]
    for method, grp in finals.groupby("method"):
        means = grp.groupby("depth")["accuracy"].mean()
        ax.plot(means.index, means.values, "-", color=palette[method], label=method)
        ax.plot(grp["depth"], grp["accuracy"], "o", color=palette[method], ms=4, alpha=0.7)
    div = finals[finals["diverged_at"].notna()]
    if len(div):
        ax.plot(div["depth"], div["accuracy"], "x", color="k", ms=8, label="diverged", ls="")
    ax.set(xscale="log", ylabel="test accuracy after the budget", xlabel="depth (layers, log scale)", ylim=(0, 1))
    ax.set_xticks(list(depths), [str(d) for d in depths])
    ax.minorticks_off()
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=4, frameon=False, fontsize=11,
              handletextpad=0.3, columnspacing=0.8)
    ax = axes[1]
    wide = finals.pivot_table(index=["depth", "seed"], columns="method", values="accuracy").reset_index()
    per_seed = wide.assign(gap=100 * (wide["fixup"] - wide["bn"]))[["depth", "seed", "gap"]]
    pos = {d: i for i, d in enumerate(depths)}
    ax.plot(per_seed["depth"].map(pos), per_seed["gap"], "o", color=palette["fixup"], ms=4, alpha=0.7)
    g = gaps.set_index("depth")
    ax.errorbar(g.index.map(pos), g["mean_points"], yerr=[g["mean_points"] - g["low"], g["high"] - g["mean_points"]],
                fmt="s", color="k", ms=5, capsize=4, lw=1.2)
    ax.axhline(0, color="grey", lw=0.8)
    ax.axhline(margin, color="k", ls="--", lw=1)
    ax.set_xticks(range(len(depths)), [str(d) for d in depths])
    ax.set(xlabel="depth (layers)", ylabel="Fixup minus BN (points)")
    fig.tight_layout()
    data = pd.concat([finals.assign(quantity="accuracy"),
                      per_seed.rename(columns={"gap": "fixup_minus_bn_points"}).assign(quantity="fixup minus bn")],
                     ignore_index=True)
    return fig, data


def plot_training_curves(history: pd.DataFrame, facet: str = "depth", title: str = "ResNet-{}"):
    """Test accuracy during training, one panel per ``facet`` value, one thin line per seed and
    colour per method. Returns ``(figure, plotted data)``."""
    import matplotlib.pyplot as plt

    data = history[(history["split"] == "test") & (history["metric"] == "accuracy")][
        ["method", "depth", "seed", "step", "value", "diverged_at"]].rename(columns={"value": "test_accuracy"})
    palette = _method_palette(data["method"])
    panels = sorted(data[facet].unique())
    fig, axes = plt.subplots(1, len(panels), figsize=(min(8, 1.0 + 3.4 * len(panels)), 3.6), sharey=True,
                             squeeze=False)
    for ax, value in zip(axes[0], panels):
        for method in palette:
            for _, d in data[(data[facet] == value) & (data["method"] == method)].groupby("seed"):
                ax.plot(d["step"], d["test_accuracy"], color=palette[method], lw=0.9, alpha=0.8)
        ax.set_title(title.format(value), fontsize=11)
        ax.set(xlabel="SGD step", ylim=(0, 1))
    axes[0][0].set_ylabel("test accuracy")
    handles = [plt.Line2D([], [], color=c, lw=2) for c in palette.values()]
    fig.legend(handles, list(palette), loc="lower center", ncol=len(palette), frameon=False, bbox_to_anchor=(0.5, 0.0))
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig, data
