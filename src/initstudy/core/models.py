"""Models of the study. Each layer is its own named module so probes can hook it.

:func:`mlp` builds a plain multilayer perceptron ``fc1, act1, fc2, act2, ..., out``.
Later chapters add convolutional and residual families here.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

__all__ = ["ACTIVATIONS", "activation", "mlp", "plain_cnn", "small_cnn", "hidden_linears"]

ACTIVATIONS = {
    "identity": nn.Identity,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}


def activation(name: str) -> nn.Module:
    """A fresh activation module by name (one of :data:`ACTIVATIONS`)."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; allowed: {', '.join(ACTIVATIONS)}") from None


def mlp(
    in_features: int,
    widths: Sequence[int],
    out_features: int,
    act: str = "relu",
    bias: bool = True,
    batchnorm: bool = False,
) -> nn.Sequential:
    """A multilayer perceptron: ``Flatten, fc1, act1, ..., fc{d}, act{d}, out`` (with
    ``batchnorm``, a ``bn{i}`` BatchNorm1d between each ``fc{i}`` and ``act{i}``).

    ``widths`` gives the hidden widths (its length is the number of hidden layers). Built
    with PyTorch's default init (the "old uniform" rule); re-initialise with
    :func:`initstudy.core.inits.apply_init`.

    >>> net = mlp(3, [2], 1, act="sigmoid")
    >>> [name for name, _ in net.named_children()]
    ['flatten', 'fc1', 'act1', 'out']
    """
    if not widths:
        raise ValueError("an MLP needs at least one hidden layer (widths is empty)")
    layers: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten())]
    fan_in = in_features
    for i, width in enumerate(widths, start=1):
        layers.append((f"fc{i}", nn.Linear(fan_in, width, bias=bias)))
        if batchnorm:
            layers.append((f"bn{i}", nn.BatchNorm1d(width)))
        layers.append((f"act{i}", activation(act)))
        fan_in = width
    layers.append(("out", nn.Linear(fan_in, out_features, bias=bias)))
    net = nn.Sequential()
    for name, module in layers:
        net.add_module(name, module)
    net.activation_name = act
    return net


def plain_cnn(
    in_channels: int,
    num_classes: int,
    depth: int,
    width: int = 64,
    act: str = "relu",
) -> nn.Sequential:
    """A plain (VGG-like, no shortcut, no normalisation) CNN of ``depth`` 3x3 conv layers,
    in the spirit of He et al. (2015)'s 22- and 30-layer models (Figs. 2-3): three stages of
    equal length, each after the first opening with a stride-2 conv that doubles the
    channels, then global average pooling and a linear classifier.

    >>> net = plain_cnn(3, 10, depth=6, width=8)
    >>> net(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """
    if depth < 3:
        raise ValueError(f"a plain CNN needs at least 3 conv layers, got depth {depth}")
    net = nn.Sequential()
    channels = in_channels
    stage_starts = {depth // 3, 2 * depth // 3}
    out = width
    for i in range(depth):
        stride = 2 if i in stage_starts else 1
        if stride == 2:
            out *= 2
        net.add_module(f"conv{i + 1}", nn.Conv2d(channels, out, 3, stride=stride, padding=1))
        net.add_module(f"act{i + 1}", activation(act))
        channels = out
    net.add_module("pool", nn.AdaptiveAvgPool2d(1))
    net.add_module("flatten", nn.Flatten())
    net.add_module("out", nn.Linear(channels, num_classes))
    net.activation_name = act
    return net


def small_cnn(in_channels: int, num_classes: int, image_size: int, channels: Sequence[int] = (16, 32),
              hidden: int = 64) -> nn.Sequential:
    """A LeNet-like CNN for transfer experiments: (3x3 conv, ReLU, 2x2 max-pool) per entry of
    ``channels``, then ``fc`` (ReLU) and the classifier ``head``, the layer replaced when
    fine-tuning on a new task.

    >>> small_cnn(1, 10, 28)(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """
    net = nn.Sequential()
    c, size = in_channels, image_size
    for i, out in enumerate(channels, start=1):
        net.add_module(f"conv{i}", nn.Conv2d(c, out, 3, padding=1))
        net.add_module(f"act{i}", nn.ReLU())
        net.add_module(f"pool{i}", nn.MaxPool2d(2))
        c, size = out, size // 2
    net.add_module("flatten", nn.Flatten())
    net.add_module("fc", nn.Linear(c * size * size, hidden))
    net.add_module("act_fc", nn.ReLU())
    net.add_module("head", nn.Linear(hidden, num_classes))
    return net


def hidden_linears(net: nn.Module) -> list[tuple[str, nn.Linear]]:
    """The hidden Linear layers of an :func:`mlp` (every ``fc*``, not the output layer)."""
    return [(name, m) for name, m in net.named_children() if name.startswith("fc") and isinstance(m, nn.Linear)]


@torch.no_grad()
def hidden_activations(net: nn.Sequential, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Outputs of every ``act*`` module of an :func:`mlp` on input ``x``."""
    out: dict[str, torch.Tensor] = {}
    h = x
    for name, module in net.named_children():
        h = module(h)
        if name.startswith("act"):
            out[name] = h
    return out
