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

import torch
from torch import nn
from torch.nn import functional as F

from initstudy.core.inits import (  # the one He std and init registry; ResNets use the fan-out
    he_std,
    initialise,
)
from initstudy.core.train import TrainConfig
from initstudy.core.train import param_groups as groups

__all__ = [
    "NORMS",
    "SCALAR_SETS",
    "INITS",
    "SCALAR_LR_FACTOR",
    "fixup_scale",
    "conv3x3",
    "BasicBlock",
    "Bottleneck",
    "ResNet",
    "blocks_for_depth",
    "depth_of",
    "resnet",
    "init_resnet",
    "FixupConstants",
    "fixup_constants",
    "param_groups",
]

NORMS = ("batchnorm", "none")
#: "he-fan-out": He normal (fan-out) convs; "zero-gamma": the same with the last BN of every
#: block at 0 (Goyal et al. 2017, torchvision's zero_init_residual); "fixup" and its
#: ablations: without the zero init, without the L scaling, without scalars (build the
#: model with ``scalars=False`` for the last).
INITS = ("he-fan-out", "zero-gamma", "fixup", "fixup-no-zero-init", "fixup-no-scaling")

#: Which of Fixup's scalars a network carries: "all" (the biases and the multiplier, the
#: recipe), "biases" (the scalar biases only), "multiplier" (the branch multiplier only) or
#: "none". ``True`` and ``False`` stand for "all" and "none".
SCALAR_SETS = ("all", "biases", "multiplier", "none")

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


def scalar_set(scalars: bool | str) -> str:
    """The name in :data:`SCALAR_SETS` of ``scalars`` (``True`` is "all", ``False`` "none").

    >>> scalar_set(True), scalar_set(False), scalar_set("biases")
    ('all', 'none', 'biases')
    """
    if scalars is True or scalars is False:
        return "all" if scalars else "none"
    if scalars not in SCALAR_SETS:
        raise ValueError(f"scalars must be one of {', '.join(SCALAR_SETS)} (or True / False), got {scalars!r}")
    return scalars


class _Scalars:
    """Fixup's scalars of a block or network: ``self.biases`` adds the scalar biases (0 when
    absent), ``self.multiplier`` the branch's multiplier (1 when absent)."""

    def _set_scalars(self, scalars: bool | str) -> None:
        kind = scalar_set(scalars)
        self.scalars = kind
        self.biases = kind in ("all", "biases")
        self.multiplier = kind in ("all", "multiplier")

    def _b(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return x + getattr(self, name) if self.biases else x

    def _m(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale if self.multiplier else x


class BasicBlock(_Scalars, nn.Module):
    """Two 3x3 convs on the branch (m = 2). ``norm``: BatchNorm after each conv or none;
    ``scalars``: which of Fixup's scalar biases and multiplier it carries (:data:`SCALAR_SETS`); ``order``: "post" (ReLU after the
    addition, the original ResNet and the Fixup code) or "pre" (pre-activation, no ReLU on
    the main path). The shape-changing shortcut is option A."""

    branch_layers = 2

    def __init__(self, in_planes: int, planes: int, stride: int = 1, norm: str = "batchnorm",
                 scalars: bool | str = False, order: str = "post"):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        if order not in ("post", "pre"):
            raise ValueError(f"order must be 'post' or 'pre', got {order!r}")
        self._set_scalars(scalars)
        self.order, self.stride = order, stride
        self.pad = planes - in_planes
        self.conv1 = conv3x3(in_planes, planes, stride)
        self.conv2 = conv3x3(planes, planes)
        bn_in = in_planes if order == "pre" else planes
        self.bn1 = nn.BatchNorm2d(bn_in) if norm == "batchnorm" else nn.Identity()
        self.bn2 = nn.BatchNorm2d(planes) if norm == "batchnorm" else nn.Identity()
        if self.biases:
            self.bias1a, self.bias1b, self.bias2a, self.bias2b = _scalar(0), _scalar(0), _scalar(0), _scalar(0)
        if self.multiplier:
            self.scale = _scalar(1)

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
        out = F.relu(self._b(self.bn1(self.conv1(self._b(x, "bias1a"))), "bias1b"))
        return self._b(self._m(self.bn2(self.conv2(self._b(out, "bias2a")))), "bias2b")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.order == "pre":
            return self.shortcut(x) + self.branch(x)
        identity = x
        if self.stride != 1 or self.pad:
            identity = self.shortcut(self._b(x, "bias1a"))  # as the Fixup code
        return F.relu(self.branch(x) + identity)


class Bottleneck(_Scalars, nn.Module):
    """The bottleneck block (m = 3): 1x1 reduce, 3x3, 1x1 expand (x4), post-activation; the
    shape-changing shortcut is a 1x1 conv, as in the Fixup ImageNet code. Scalars: bias1a,
    bias1b, bias2a, bias2b, bias3a, scale, bias3b."""

    branch_layers = 3
    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1, norm: str = "batchnorm",
                 scalars: bool | str = False, order: str = "post"):
        super().__init__()
        if order != "post":
            raise ValueError("the bottleneck block is post-activation only")
        out_planes = planes * self.expansion
        self._set_scalars(scalars)
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.conv2 = conv3x3(planes, planes, stride)
        self.conv3 = nn.Conv2d(planes, out_planes, 1, bias=False)
        bn = (lambda c: nn.BatchNorm2d(c)) if norm == "batchnorm" else (lambda c: nn.Identity())
        self.bn1, self.bn2, self.bn3 = bn(planes), bn(planes), bn(out_planes)
        self.downsample = (nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)
                           if stride != 1 or in_planes != out_planes else None)
        if self.biases:
            for name in ("bias1a", "bias1b", "bias2a", "bias2b", "bias3a", "bias3b"):
                setattr(self, name, _scalar(0))
        if self.multiplier:
            self.scale = _scalar(1)

    @property
    def last_layer(self) -> nn.Conv2d:
        return self.conv3

    @property
    def last_norm(self) -> nn.Module:
        return self.bn3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self._b(self.bn1(self.conv1(self._b(x, "bias1a"))), "bias1b"))
        out = F.relu(self._b(self.bn2(self.conv2(self._b(out, "bias2a"))), "bias2b"))
        out = self._b(self._m(self.bn3(self.conv3(self._b(out, "bias3a")))), "bias3b")
        identity = self.downsample(self._b(x, "bias1a")) if self.downsample is not None else x
        return F.relu(out + identity)


class ResNet(_Scalars, nn.Module):
    """Stem, three stages of residual blocks, pooling, classifier (see the module doc)."""

    def __init__(self, blocks_per_stage: int, in_channels: int = 3, num_classes: int = 10, width: int = 16,
                 norm: str = "batchnorm", scalars: bool | str = False, block: str = "basic", order: str = "post"):
        super().__init__()
        block_cls = {"basic": BasicBlock, "bottleneck": Bottleneck}[block]
        self._set_scalars(scalars)
        self.norm, self.block_type = norm, block
        self.conv1 = conv3x3(in_channels, width)
        self.bn1 = nn.BatchNorm2d(width) if norm == "batchnorm" else nn.Identity()
        if self.biases:
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
        if self.biases:
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
        x = F.relu(self._b(x, "bias1"))
        x = self.final_bn(self.layer3(self.layer2(self.layer1(x))))
        x = self.pool(x).flatten(1)
        return self.fc(self._b(x, "bias2"))


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
           width: int = 16, scalars: bool | str | None = None, block: str = "basic", order: str = "post",
           fan: str = "fan_out", seed: int | None = None) -> ResNet:
    """Build and initialise a CIFAR-style ResNet of ``depth`` layers.

    ``init`` is one of :data:`INITS`. By default a Fixup net has no normalisation and has its
    scalars; the others have BatchNorm. Pass ``norm="none"`` with ``init="he-fan-out"`` for the
    no-normalisation baseline, ``scalars=False`` for the Fixup ablation without scalars, and
    ``scalars="biases"`` or ``"multiplier"`` for the ablations that keep one kind
    (:data:`SCALAR_SETS`).

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
    :data:`initstudy.core.inits.MODEL_INITS` under the same names."""
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
    ``lr * scalar_lr_factor``, the rest at ``lr`` (:func:`initstudy.core.train.param_groups`)."""
    return groups(net, TrainConfig(steps=0, lr=lr, scalar_lr_factor=scalar_lr_factor))
