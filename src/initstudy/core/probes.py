"""Per-layer activation and gradient statistics, recorded by hooks that change nothing.

A :class:`Probe` is a context manager: inside it, every forward pass (and, with
``backward=True``, every backward pass) through the watched modules adds one record per
module; on exit the hooks are removed. Statistics are taken over the whole output tensor
(all examples, all units), as in Glorot & Bengio (2010, Figs. 2-7):

- ``mean``, ``std``, ``second_moment`` (mean of x^2) and ``nonfinite`` (fraction of NaN/Inf);
- ``example_std``: for batched tensors, the std across examples averaged over units: the
  part of the signal that still tells inputs apart (0 when all examples look the same);
- ``saturated``: for sigmoid and tanh outputs, the fraction of units whose derivative is
  below 1 % of its value at 0 (sigmoid: |z| > 6.0, tanh: |z| > 3.0, the flat regions);
- ``zero_fraction``: for ReLU outputs, the fraction of units at exactly 0;
- optionally a histogram of the values over fixed bins.

Gradients (``direction="backward"``) are those of the loss with respect to each module's
output, dL/dy, the quantity whose layer-to-layer shrinking Glorot & Bengio's Fig. 7 shows.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

__all__ = ["Probe", "tensor_stats", "forward_stats", "backward_stats", "capture", "SATURATION_DERIVATIVE_RATIO"]

#: A unit is saturated when its activation's derivative is below this fraction of the
#: derivative at 0 (for the sigmoid that is |z| > 6.0: the article's "about +-6").
SATURATION_DERIVATIVE_RATIO = 0.01

_DEFAULT_KINDS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ReLU, nn.Tanh, nn.Sigmoid, nn.Identity)


@torch.no_grad()
def tensor_stats(t: torch.Tensor, kind: str | None = None) -> dict[str, float]:
    """Summary statistics of a tensor, over all its elements.

    ``kind`` is the module type that produced it ("Sigmoid", "Tanh", "ReLU", ...): it adds
    ``saturated`` (sigmoid, tanh) or ``zero_fraction`` (ReLU).

    >>> tensor_stats(torch.tensor([0.0, 1.0, 0.0, 1.0]))["second_moment"]
    0.5
    """
    t = t.detach().double()
    finite = torch.isfinite(t)
    n = t.numel()
    stats = {"nonfinite": 1.0 - finite.sum().item() / n if n else 0.0}
    v = t[finite]
    if v.numel() == 0:
        stats.update(mean=float("nan"), std=float("nan"), second_moment=float("nan"))
    else:
        stats.update(
            mean=v.mean().item(),
            std=v.std(unbiased=False).item(),
            second_moment=(v * v).mean().item(),
        )
    if t.dim() >= 2 and t.shape[0] > 1 and bool(finite.all()):
        # the signal: how much the units' values differ between examples (std over the batch,
        # averaged over units); 0 when every example gives the same activations
        stats["example_std"] = t.flatten(1).std(dim=0, unbiased=False).mean().item()
    if kind == "Sigmoid" and v.numel():
        stats["saturated"] = ((v * (1 - v)) < SATURATION_DERIVATIVE_RATIO * 0.25).double().mean().item()
    elif kind == "Tanh" and v.numel():
        stats["saturated"] = ((1 - v * v) < SATURATION_DERIVATIVE_RATIO).double().mean().item()
    elif kind == "ReLU" and v.numel():
        stats["zero_fraction"] = (v == 0).double().mean().item()
    return stats


class Probe:
    """Record statistics of module outputs (and output gradients) through hooks.

    >>> net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    >>> with Probe(net) as probe:
    ...     _ = net(torch.randn(16, 4))
    >>> sorted(probe.frame()["module"].unique())
    ['0', '1', '2']
    """

    def __init__(
        self,
        model: nn.Module,
        modules: Sequence[str] | None = None,
        kinds: tuple[type, ...] = _DEFAULT_KINDS,
        backward: bool = False,
        bins: Sequence[float] | np.ndarray | None = None,
    ):
        self.model = model
        named = dict(model.named_modules())
        if modules is None:
            self.watched = [(n, m) for n, m in named.items() if n and isinstance(m, kinds)]
        else:
            unknown = [n for n in modules if n not in named]
            if unknown:
                raise ValueError(f"no module named {', '.join(unknown)} in the model")
            self.watched = [(n, named[n]) for n in modules]
        self.backward = backward
        self.bins = None if bins is None else np.asarray(bins, dtype=float)
        self.rows: list[dict] = []
        self.hist_rows: list[dict] = []
        self._handles: list = []
        self._calls: dict[tuple[str, str], int] = {}

    def _record(self, name: str, kind: str, direction: str, t: torch.Tensor) -> None:
        call = self._calls.get((name, direction), 0)
        self._calls[(name, direction)] = call + 1
        stats = tensor_stats(t, kind if direction == "forward" else None)
        base = {"module": name, "kind": kind, "direction": direction, "call": call}
        self.rows.extend({**base, "metric": k, "value": v} for k, v in stats.items())
        if self.bins is not None:
            values = t.detach().double().flatten()
            values = values[torch.isfinite(values)].cpu().numpy()
            counts, edges = np.histogram(values, bins=self.bins)
            self.hist_rows.extend(
                {**base, "bin_left": lo, "bin_right": hi, "count": int(c)}
                for lo, hi, c in zip(edges[:-1], edges[1:], counts)
            )

    def __enter__(self) -> "Probe":
        for name, module in self.watched:
            self._handles.append(module.register_forward_hook(self._hook(name, type(module).__name__)))
        return self

    def _hook(self, name: str, kind: str):
        def hook(module, inputs, output):
            self._record(name, kind, "forward", output)
            if self.backward and isinstance(output, torch.Tensor) and output.requires_grad:
                # dL/d(output), recorded when the backward pass reaches this tensor
                output.register_hook(lambda grad: self._record(name, kind, "backward", grad))

        return hook

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def frame(self) -> pd.DataFrame:
        """The records as a tidy table: module, kind, direction, call, metric, value."""
        return pd.DataFrame(self.rows, columns=["module", "kind", "direction", "call", "metric", "value"])

    def histograms(self) -> pd.DataFrame:
        """Histogram counts (when ``bins`` was given): module, kind, direction, call, bin_left, bin_right, count."""
        return pd.DataFrame(
            self.hist_rows, columns=["module", "kind", "direction", "call", "bin_left", "bin_right", "count"]
        )


def forward_stats(model: nn.Module, x: torch.Tensor, **probe_options) -> pd.DataFrame:
    """One forward pass of ``x`` under a :class:`Probe` (no gradients): its tidy table."""
    with torch.no_grad(), Probe(model, **probe_options) as probe:
        model(x)
    return probe.frame()


def backward_stats(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn=nn.functional.cross_entropy, **probe_options
) -> pd.DataFrame:
    """One forward and backward pass under a :class:`Probe` with ``backward=True``; adds the
    norm of every weight's gradient as rows with direction "weight-grad". Gradients already
    in ``.grad`` are left as they were."""
    saved = {n: (p.grad.clone() if p.grad is not None else None) for n, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = None
    with Probe(model, backward=True, **probe_options) as probe:
        loss_fn(model(x), y).backward()
    frame = probe.frame()
    extra = [
        {"module": n.rsplit(".", 1)[0], "kind": "weight", "direction": "weight-grad", "call": 0,
         "metric": "norm", "value": p.grad.norm().item()}
        for n, p in model.named_parameters()
        if n.endswith("weight") and p.grad is not None
    ]
    for n, p in model.named_parameters():
        p.grad = saved[n]
    return pd.concat([frame, pd.DataFrame(extra)], ignore_index=True)


def capture(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None, modules: Sequence[str] | None = None,
    loss_fn=nn.functional.cross_entropy,
) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, torch.Tensor]]:
    """The outputs of the named modules on ``x`` (detached copies) and, given labels ``y``,
    the gradients of the loss with respect to those outputs, ``{name: {"output", "grad"}}``,
    and the gradients of the parameters, ``{parameter name: grad}``. The model's ``.grad``
    fields are left as they were."""
    named = dict(model.named_modules())
    modules = list(modules) if modules is not None else [n for n in named if n]
    unknown = [n for n in modules if n not in named]
    if unknown:
        raise ValueError(f"no module named {', '.join(unknown)} in the model")
    found: dict[str, dict[str, torch.Tensor]] = {n: {} for n in modules}
    handles = []

    def hook(name):
        def fn(module, inputs, output):
            found[name]["output"] = output.detach().clone()
            if y is not None and output.requires_grad:
                output.register_hook(lambda g: found[name].__setitem__("grad", g.detach().clone()))
        return fn

    for name in modules:
        handles.append(named[name].register_forward_hook(hook(name)))
    param_grads: dict[str, torch.Tensor] = {}
    try:
        if y is None:
            with torch.no_grad():
                model(x)
        else:
            saved = {n: p.grad for n, p in model.named_parameters()}
            for p in model.parameters():
                p.grad = None
            loss_fn(model(x), y).backward()
            for n, p in model.named_parameters():
                if p.grad is not None:
                    param_grads[n] = p.grad.detach().clone()
                p.grad = saved[n]
    finally:
        for h in handles:
            h.remove()
    return found, param_grads
