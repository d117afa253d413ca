"""Measures of symmetry between the hidden units of a layer, and the article's tiny example.

The zero-init argument is about *rows* of a hidden weight matrix W (shape units x inputs):
row j is unit j's incoming weight vector. Units are identical when their rows (and biases)
are equal; they are redundant in a weaker sense when the rows are parallel (rank 1).

- :func:`max_pairwise_distance`: max over unit pairs of ||w_i - w_j||, computed from exact
  differences (``torch.cdist`` uses a matrix-product shortcut whose rounding error, about
  sqrt(eps) * ||w||, would hide the float32 level at which exact symmetry is decided);
- :func:`relative_max_pairwise_distance`: the same divided by the largest row norm;
- :func:`numerical_rank` and :func:`stable_rank` of W;
- :func:`tiny_network_trace`: the article's network (3 inputs, 2 hidden units) step by step.
"""

from __future__ import annotations

import math

import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "max_pairwise_distance",
    "relative_max_pairwise_distance",
    "numerical_rank",
    "stable_rank",
    "layer_symmetry",
    "tiny_network_trace",
]


@torch.no_grad()
def max_pairwise_distance(rows: torch.Tensor) -> float:
    """max_{i<j} ||r_i - r_j|| over the rows of a 2-D tensor (0 for fewer than 2 rows).

    >>> max_pairwise_distance(torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 4.0]]))
    5.0
    """
    r = rows.detach().double().flatten(1)
    if r.shape[0] < 2:
        return 0.0
    best = 0.0
    for i in range(r.shape[0] - 1):  # row by row: exact differences, memory O(units * inputs)
        d = (r[i + 1 :] - r[i]).norm(dim=1).max().item()
        best = max(best, d)
    return best


@torch.no_grad()
def relative_max_pairwise_distance(rows: torch.Tensor) -> float:
    """:func:`max_pairwise_distance` divided by the largest row norm; 0 when all rows are 0.

    >>> relative_max_pairwise_distance(torch.tensor([[1.0, 0.0], [2.0, 0.0]]))
    0.5
    """
    scale = rows.detach().double().flatten(1).norm(dim=1).max().item()
    if scale == 0.0:
        return 0.0
    return max_pairwise_distance(rows) / scale


@torch.no_grad()
def numerical_rank(matrix: torch.Tensor, rtol: float | None = None) -> int:
    """Number of singular values above ``rtol * sigma_max`` (default: max(m, n) * eps of the
    matrix's dtype, as ``torch.linalg.matrix_rank``); 0 for the zero matrix.

    >>> numerical_rank(torch.tensor([[1.0, 2.0], [2.0, 4.0]]))
    1
    """
    m = matrix.detach().flatten(1)
    sv = torch.linalg.svdvals(m.double())
    if sv.numel() == 0 or sv[0].item() == 0.0:
        return 0
    if rtol is None:
        rtol = max(m.shape) * torch.finfo(m.dtype).eps
    return int((sv > rtol * sv[0]).sum().item())


@torch.no_grad()
def stable_rank(matrix: torch.Tensor) -> float:
    """||W||_F^2 / ||W||_2^2, a rank that ignores tiny singular values; 0 for W = 0.

    >>> stable_rank(torch.eye(3))
    3.0
    """
    sv = torch.linalg.svdvals(matrix.detach().flatten(1).double())
    if sv.numel() == 0 or sv[0].item() == 0.0:
        return 0.0
    return ((sv**2).sum() / sv[0] ** 2).item()


@torch.no_grad()
def layer_symmetry(layer: nn.Linear, outputs: torch.Tensor | None = None) -> dict[str, float]:
    """Symmetry measures of one hidden layer: distances between its units' incoming weight
    rows (with and without the bias), ranks, and, given the layer's activations on a probe
    batch (examples x units), the relative max pairwise distance between units' outputs."""
    w = layer.weight
    stats = {
        "weight_distance": max_pairwise_distance(w),
        "weight_rel_distance": relative_max_pairwise_distance(w),
        "weight_norm": w.detach().double().norm().item(),
        "numerical_rank": float(numerical_rank(w)),
        "stable_rank": stable_rank(w),
    }
    if layer.bias is not None:
        full = torch.cat([w, layer.bias.unsqueeze(1)], dim=1)
        stats["param_rel_distance"] = relative_max_pairwise_distance(full)
    if outputs is not None:
        stats["output_rel_distance"] = relative_max_pairwise_distance(outputs.T)
    return stats


def tiny_network_trace(
    x: torch.Tensor,
    y: torch.Tensor,
    activation: str = "sigmoid",
    weight: float | torch.Tensor = 0.0,
    bias: float | torch.Tensor = 0.0,
    steps: int = 3,
    lr: float = 0.5,
) -> pd.DataFrame:
    """The article's network, worked step by step: 3 inputs, 2 hidden units, 1 output.

    out_j = act(x . w_j + b_j) for the hidden units j = 1, 2 (the article writes the
    pre-activation Out_j = X1 W1j + X2 W2j + X3 W3j), and a linear output trained on the
    squared error. Every hidden weight starts at ``weight`` (a float for a constant, or a
    (2, 3) tensor), the hidden biases at ``bias`` (float or tensor of 2); the output weights
    start at 0.5 each (non-zero, so the hidden layer receives gradients unless it is the
    source of the symmetry).

    Returns one row per (step, unit): the unit's weights, bias, output on the first example,
    and the gradient of its weights at that step (before the update).
    """
    act = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}[activation]
    w1 = torch.as_tensor(weight, dtype=torch.float64).expand(2, 3).clone().requires_grad_()
    b1 = torch.as_tensor(bias, dtype=torch.float64).expand(2).clone().requires_grad_()
    w2 = torch.full((1, 2), 0.5, dtype=torch.float64, requires_grad=True)
    x = torch.as_tensor(x, dtype=torch.float64).reshape(-1, 3)
    y = torch.as_tensor(y, dtype=torch.float64).reshape(-1, 1)
    rows = []
    for step in range(steps + 1):
        for p in (w1, b1, w2):
            p.grad = None
        hidden = act(x @ w1.T + b1)
        loss = F.mse_loss(hidden @ w2.T, y)
        loss.backward()
        for unit in range(2):
            rows.append(
                {
                    "step": step,
                    "unit": f"h{unit + 1}",
                    "w": [round(v, 6) for v in w1[unit].tolist()],
                    "b": round(b1[unit].item(), 6),
                    "output": round(hidden[0, unit].item(), 6),
                    "grad_w": [round(v, 6) for v in w1.grad[unit].tolist()],
                    "loss": round(loss.item(), 6),
                }
            )
        with torch.no_grad():
            for p in (w1, b1, w2):
                p -= lr * p.grad
    return pd.DataFrame(rows)


def units_identical(trace: pd.DataFrame) -> bool:
    """True when, at every step of a :func:`tiny_network_trace`, both units have the same
    weights, bias and output."""
    for _, g in trace.groupby("step"):
        a, b = g.iloc[0], g.iloc[1]
        if a["w"] != b["w"] or a["b"] != b["b"] or not math.isclose(a["output"], b["output"], abs_tol=0):
            return False
    return True


# --------------------------------------------------------------- the zero-init experiment

#: The inits the zero-init chapter compares, by the names its tables use.
SYMMETRY_INITS = ("zero", "zero-weights-random-bias", "constant", "kaiming")


def init_for_symmetry(net: nn.Module, init: str, activation: str, seed: int,
                      bias_std: float = 1.0, constant: float = 0.05) -> nn.Module:
    """Initialise an MLP for the zero-init chapter.

    - "zero": every weight and bias 0 (the article's case);
    - "zero-weights-random-bias": weights 0, biases N(0, bias_std^2);
    - "constant": every weight ``constant``, biases 0 (symmetric, but non-zero);
    - "kaiming": He normal init with the activation's gain (the random control).
    """
    from .inits import apply_init, gain_for

    if init == "zero":
        return apply_init(net, "zero")
    if init == "zero-weights-random-bias":
        return apply_init(net, "zero", bias="normal", bias_std=bias_std, seed=seed)
    if init == "constant":
        return apply_init(net, "constant", value=constant)
    if init == "kaiming":
        return apply_init(net, "kaiming-normal", gain=gain_for(activation), seed=seed)
    raise ValueError(f"unknown init {init!r}; allowed: {', '.join(SYMMETRY_INITS)}")


def symmetry_run(data, *, init: str, activation: str, depth: int, width: int, seed: int,
                 config, bias_std: float = 1.0, constant: float = 0.05,
                 record_every: int | None = None, probe_size: int = 256, device: str = "cpu") -> pd.DataFrame:
    """Train one MLP and record, at steps 1, 2, 4, ... below ``record_every`` and then every
    ``record_every`` steps, each hidden layer's
    symmetry measures (:func:`layer_symmetry`) and each layer's weight and bias gradient
    norms, beside the loss and test accuracy. Returns tidy rows tagged with the run's
    init, activation, depth and seed."""
    from dataclasses import replace

    from .models import hidden_activations, hidden_linears, mlp
    from .train import train

    torch.manual_seed(seed)
    net = mlp(data.in_features, [width] * depth, data.num_classes, act=activation)
    init_for_symmetry(net, init, activation, seed, bias_std, constant)
    probe_x = data.x_test[:probe_size].to(device)

    def record(model, step):
        acts = hidden_activations(model, probe_x)
        for i, (name, layer) in enumerate(hidden_linears(model), start=1):
            for metric, value in layer_symmetry(layer, acts[f"act{i}"]).items():
                yield {"metric": metric, "layer": name, "value": value}
        for pname, p in model.named_parameters():
            if p.grad is not None:
                layer, kind = pname.rsplit(".", 1)
                yield {"metric": f"{kind}_grad_norm", "layer": layer, "value": p.grad.norm().item()}

    early = [2**k for k in range(12) if 2**k < (record_every or config.eval_every)]
    result = train(net, data, replace(config, seed=seed), record=record, record_every=record_every,
                   record_at=early, device=device)
    df = result.history
    df.insert(0, "seed", seed)
    df.insert(0, "depth", depth)
    df.insert(0, "activation", activation)
    df.insert(0, "init", init)
    if "layer" not in df:
        df["layer"] = None
    return df


def symmetry_sweep(data, *, inits, activations, depths, seeds, width: int, config,
                   bias_std: float = 1.0, constant: float = 0.05, record_every: int | None = None,
                   progress: bool = True, device: str = "cpu") -> pd.DataFrame:
    """:func:`symmetry_run` over every init x activation x depth x seed, with a progress
    bar; one tidy table."""
    from itertools import product

    from tqdm.auto import tqdm

    grid = list(product(inits, activations, depths, seeds))
    frames = []
    for init, act, depth, seed in tqdm(grid, desc="runs", disable=not progress):
        frames.append(symmetry_run(data, init=init, activation=act, depth=depth, width=width, seed=seed,
                                   config=config, bias_std=bias_std, constant=constant,
                                   record_every=record_every, device=device))
    return pd.concat(frames, ignore_index=True)


def _metric(df: pd.DataFrame, metric: str, **where) -> pd.DataFrame:
    sel = df["metric"] == metric
    for key, value in where.items():
        sel &= df[key] == value
    return df[sel]


def zero_init_measurements(df: pd.DataFrame) -> dict[str, dict[str, list[float]]]:
    """Per-seed values of the ledger's metrics for ``zero-symmetry`` and ``zero-random-bias``
    from a :func:`symmetry_sweep` table (see the criteria in :mod:`initstudy.claims`)."""
    seeds = sorted(df["seed"].unique())
    last = df.groupby(["init", "activation", "depth", "seed"])["step"].transform("max") == df["step"]
    acc = _metric(df[last], "accuracy", split="test").set_index(["init", "activation", "depth", "seed"])["value"]

    def per_seed(frame: pd.DataFrame, how: str) -> list[float]:
        g = frame.groupby("seed")["value"].agg(how)
        return [float(g.get(s, float("nan"))) for s in seeds]

    control = acc.xs("kaiming", level="init")
    gap = (control - acc.xs("zero", level="init")) * 100.0
    zero_gap = [float(gap.xs(s, level="seed").min()) for s in seeds]
    control_min = [float(control.xs(s, level="seed").min()) for s in seeds]
    return {
        "zero-symmetry": {
            "zero_units_rel_distance": per_seed(_metric(df, "weight_rel_distance", init="zero"), "max"),
            "zero_max_rank": per_seed(_metric(df, "numerical_rank", init="zero"), "max"),
            "zero_accuracy_gap": zero_gap,
            "control_accuracy": control_min,
        },
        "zero-random-bias": {
            "zrb_log10_weight_norm": [  # a norm of exactly 0 counts as 1e-30
                math.log10(max(v, 1e-30))
                for v in per_seed(_metric(df[last], "weight_norm", init="zero-weights-random-bias", layer="fc1"),
                                  "min")
            ],
            "zrb_units_rel_distance": per_seed(
                _metric(df[last], "weight_rel_distance", init="zero-weights-random-bias"), "max"),
        },
    }


def zero_init_findings(df: pd.DataFrame) -> dict[str, float]:
    """The numbers the zero-init chapter's text quotes, computed from a
    :func:`symmetry_sweep` table (means over seeds; accuracies in %)."""
    last = df.groupby(["init", "activation", "depth", "seed"])["step"].transform("max") == df["step"]
    acc = _metric(df[last], "accuracy", split="test").groupby(["init", "activation", "depth"])["value"].mean() * 100
    grads = df[df["metric"].str.endswith("_grad_norm")]
    dead = grads[(grads["init"] == "zero") & grads["activation"].isin(["tanh", "relu"])]
    dead_hidden = dead[dead["layer"] != "out"]
    dead_out_w = dead[(dead["layer"] == "out") & (dead["metric"] == "weight_grad_norm")]
    dead_out_b = dead[(dead["layer"] == "out") & (dead["metric"] == "bias_grad_norm")]
    zrb = df[df["init"] == "zero-weights-random-bias"]
    zrb_last = zrb[last.loc[zrb.index]]
    early = zrb[(zrb["step"] > 0) & (zrb["step"] <= 2)]
    findings = {
        "zero-accuracy-max": acc.xs("zero", level="init").max(),
        "zero-tanh-relu-accuracy-max": acc.xs("zero", level="init").drop("sigmoid", level="activation").max(),
        "zero-sigmoid-accuracy-max": acc.xs("zero", level="init").xs("sigmoid", level="activation").max(),
        "constant-accuracy-max": acc.xs("constant", level="init").max(),
        "kaiming-accuracy-min": acc.xs("kaiming", level="init").min(),
        "zrb-accuracy-max": acc.xs("zero-weights-random-bias", level="init").max(),
        "zrb-accuracy-min": acc.xs("zero-weights-random-bias", level="init").min(),
        "deepest": float(acc.index.get_level_values("depth").max()),
        "zrb-deepest-accuracy-max": acc.xs("zero-weights-random-bias", level="init")
        .xs(acc.index.get_level_values("depth").max(), level="depth").max(),
        "kaiming-deepest-accuracy-min": acc.xs("kaiming", level="init")
        .xs(acc.index.get_level_values("depth").max(), level="depth").min(),
        "zero-dead-hidden-grad-max": dead_hidden["value"].max() if len(dead_hidden) else float("nan"),
        "zero-dead-out-weight-grad-max": dead_out_w["value"].max() if len(dead_out_w) else float("nan"),
        "zero-dead-out-bias-grad-max": dead_out_b["value"].max() if len(dead_out_b) else float("nan"),
        "zrb-early-rank-max": _metric(early, "numerical_rank")["value"].max(),
        "zrb-final-stable-rank-max": _metric(zrb_last, "stable_rank")["value"].max(),
        "zrb-final-rank-max": _metric(zrb_last, "numerical_rank")["value"].max(),
        "zrb-final-rel-distance-min": _metric(zrb_last, "weight_rel_distance")["value"].min(),
        "zrb-final-output-distance-min": _metric(zrb_last, "output_rel_distance")["value"].min(),
    }
    return {k: float(v) for k, v in findings.items()}


def _status(judgement, metric: str) -> str:
    return next(c.status for c in judgement.checks if c.metric == metric)


def reading_zero_symmetry(judgement, findings: dict[str, float]) -> str:
    """The chapter's reading of the ``zero-symmetry`` verdict, chosen by which checks held."""
    identical = _status(judgement, "zero_units_rel_distance")
    gap = _status(judgement, "zero_accuracy_gap")
    parts = []
    if identical == "holds":
        parts.append("The symmetry argument holds as stated: from all-zero weights the units of every layer "
                     "stayed exact copies of one another throughout training.")
    elif identical == "fails":
        parts.append("Contrary to the symmetry argument, the units of some layer drifted apart from all-zero "
                     "weights (float32 rounding is the only source of difference there).")
    else:
        parts.append("Whether the units stay identical could not be settled at this profile.")
    if gap == "holds":
        parts.append(f"Zero init fell far behind random init (random init reached at least "
                     f"{findings['kaiming-accuracy-min']:.1f} %, zero init at most {findings['zero-accuracy-max']:.1f} %).")
    elif gap == "fails":
        parts.append("Yet zero init was not clearly worse than random init in this budget.")
    else:
        parts.append("The accuracy comparison is not settled at this profile (too few seeds, or the random-init "
                     "control did not learn within the budget).")
    if findings["zero-dead-hidden-grad-max"] == 0.0:
        parts.append("The article explains only half of the failure: with tanh or ReLU units no weight ever "
                     "received a non-zero gradient (zero activations and zero output weights block them), so those "
                     "networks learn nothing but the output bias. Symmetry is what is left when the signal is not "
                     "zero: with the sigmoid, or with a non-zero constant.")
    return " ".join(parts)


def reading_zero_random_bias(judgement, findings: dict[str, float]) -> str:
    """The chapter's reading of the ``zero-random-bias`` verdict, chosen by which checks held."""
    moved = _status(judgement, "zrb_log10_weight_norm")
    identical = _status(judgement, "zrb_units_rel_distance")
    parts = []
    parts.append({"holds": "The first half holds: the weights became non-zero.",
                  "fails": "The first half fails: the weights stayed (near) zero.",
                  "unsettled": "Whether the weights move is not settled at this profile."}[moved])
    if identical == "fails":
        parts.append(f"The second half does not hold: the units were never identical (smallest final relative "
                     f"distance between two weight rows {findings['zrb-final-rel-distance-min']:.2f}). The rows "
                     f"started parallel (numerical rank at most {findings['zrb-early-rank-max']:.0f} over the first "
                     f"two steps) and then left their shared direction (final rank up to "
                     f"{findings['zrb-final-rank-max']:.0f}). Random biases do break the symmetry, and these "
                     f"networks reached up to {findings['zrb-accuracy-max']:.1f} % where all-zero init reached at most "
                     f"{findings['zero-accuracy-max']:.1f} %. With {findings['deepest']:.0f} hidden "
                     f"layer{'s' if findings['deepest'] > 1 else ''} they reached "
                     f"at most {findings['zrb-deepest-accuracy-max']:.1f} %, against at least "
                     f"{findings['kaiming-deepest-accuracy-min']:.1f} % for random init.")
    elif identical == "holds":
        parts.append("The second half holds too: the units' weight rows stayed identical.")
    else:
        parts.append("Whether the units stay identical is not settled at this profile.")
    return " ".join(parts)
