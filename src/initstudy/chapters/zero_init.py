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

from initstudy.core.inits import gain_for, initialise
from initstudy.core.models import hidden_activations, hidden_linears, mlp
from initstudy.core.train import train_many
from initstudy.study.catalog import NotebookSpec, Param, common_params, same, subset_fits
from initstudy.study.claims import Check, Claim, Criterion
from initstudy.study.words import plural

__all__ = [
    "SPEC",
    "CLAIMS",
    "max_pairwise_distance",
    "relative_max_pairwise_distance",
    "numerical_rank",
    "stable_rank",
    "layer_symmetry",
    "tiny_network_trace",
    "units_identical",
    "SYMMETRY_INITS",
    "init_for_symmetry",
    "symmetry_recorder",
    "symmetry_run",
    "symmetry_sweep",
    "zero_init_measurements",
    "placebo_runs",
    "final_accuracies",
    "accuracy_by_setting",
    "max_over_layers",
    "zrb_final_symmetry",
    "zero_init_findings",
    "zrb_parallel_settings",
    "plot_by_setting",
    "plot_zrb_ranks",
]


# ------------------------------------------------------------------ the chapter's declarations
# The notebook's parameters, validated before any work (run, sweep and the notebook itself), and
# the claims it settles, each with its criterion and negative control, written before the runs
# that measure them. initstudy.chapters wires them into the catalog and the ledger.

SPEC = NotebookSpec(
    name="zero_init",
    title="Zero initialisation: symmetry, and a second way to fail",
    summary="Zero, constant and zero-weight-random-bias inits against random init: symmetry, rank and accuracy.",
    data_params=("dataset",),
    constraints=(subset_fits("batch_size", "train_subset"),),
    params=(
        *common_params((3, 10, 10)),
        Param("dataset", "str", "the real data set to train on",
              {"smoke": "digits", "cpu": "fashion-mnist", "gpu": "fashion-mnist"},
              choices=("digits", "mnist-5k", "fashion-mnist", "mnist")),
        Param("train_subset", "int", "training examples kept (0 = all)",
              {"smoke": 1000, "cpu": 10000, "gpu": 0}, min=0, max=1_000_000),
        Param("width", "int", "units per hidden layer", {"smoke": 16, "cpu": 64, "gpu": 256}, min=2, max=4096),
        Param("depths", "list[int]", "numbers of hidden layers to try", same([1, 2]), min=1, max=8),
        Param("activations", "list[str]", "hidden activations to try", same(["sigmoid", "tanh", "relu"]),
              choices=("sigmoid", "tanh", "relu")),
        Param("steps", "int", "SGD updates per run", {"smoke": 60, "cpu": 600, "gpu": 3000}, min=1, max=1_000_000),
        Param("batch_size", "int", "mini-batch size", same(64), min=1, max=65536),
        Param("lr", "float", "SGD learning rate (no momentum)", same(0.1), min=1e-6, max=10.0),
        Param("record_every", "int", "steps between symmetry measurements",
              {"smoke": 10, "cpu": 25, "gpu": 100}, min=1, max=100000),
        Param("bias_std", "float", "std of the random biases of the zero-weight-random-bias init",
              same(1.0), min=1e-6, max=100.0),
        Param("constant", "float", "the value of every weight under the constant init",
              same(0.05), min=-10.0, max=10.0),
    ),
)

CLAIMS: tuple[Claim, ...] = (
    Claim(
        "zero-symmetry",
        "If every weight starts at zero, all hidden units of a layer compute the same output and "
        "receive the same update, so they stay identical for ever and the network cannot learn: "
        "zero initialisation does not work.",
        "Zero initialisation",
        "From all-zero weights and biases, trained with plain SGD (sigmoid, tanh and ReLU hidden "
        "units, 1 and 2 hidden layers): the largest relative distance between two units' incoming "
        "weight rows at any recorded step, the largest numerical rank of a hidden weight matrix, "
        "and the test-accuracy gap to the same network from random (Kaiming) init.",
        Criterion(
            (
                Check("zero_units_rel_distance", "<=", 1e-4,
                      "units stay identical up to float32 rounding (max over activations, depths, layers, steps)",
                      scale="log", control="random_units_rel_distance", asserts="they stay identical for ever"),
                Check("zero_max_rank", "<=", 1.0,
                      "every hidden weight matrix has rank <= 1 throughout training", control="random_max_rank",
                      asserts="they stay identical for ever"),
                Check("zero_accuracy_gap", ">=", 10.0,
                      "random init beats zero init by at least 10 points (worst case over activations and depths)",
                      unit="points", asserts="zero initialisation does not work", control="placebo_accuracy_gap",
                      requires=Check("control_accuracy", ">=", 0.5,
                                     "the random-init control reaches 50 % test accuracy in the budget "
                                     "(worst case over activations and depths)", scale="proportion")),
            )
        ),
        figures=("fig-zero-symmetry-distance", "fig-zero-symmetry-accuracy"),
        control="The same networks from random (Kaiming) init, trained alike: their units start different, "
                "so the symmetry checks (distance between units, rank) must not hold for them. For the accuracy "
                "gap, Kaiming against itself with another data order (one random stream changed, paired by "
                "seed as the gap is), which must not pass the 10-point check.",
        changes=(("the accuracy gap without a control; accuracies at the last test evaluation, a diverged run "
                  "at its accuracy when it stopped",
                  "a placebo of the accuracy gap (Kaiming against itself, another data order); the test split "
                  "read once, a diverged run at chance",
                  "every check needs a control that can fail; one divergence rule for the book"),),
        short='All-zero weights keep every hidden unit identical, so zero init cannot learn.',
    ),
    Claim(
        "zero-random-bias",
        "With zero weights but random non-zero biases, training makes the weights non-zero, yet "
        "the hidden units still stay identical (symmetric).",
        "Zero initialisation",
        "From zero weights and N(0, 1) biases, trained as for zero-symmetry: the norm of the "
        "first hidden layer's weights at the end (log10), and the largest relative distance between two "
        "units' incoming weight rows at the end (identical units have distance 0; the rank is "
        "reported beside it to show whether rows are parallel).",
        Criterion(
            (
                Check("zrb_log10_weight_norm", ">=", -3.0,
                      "the hidden weights become non-zero: log10 of the smallest final norm of the first "
                      "hidden layer over activations and depths is at least -3 (judged on a log scale: "
                      "these norms spread over orders of magnitude between seeds)",
                      control="zero_log10_weight_norm", asserts="training makes the weights non-zero"),
                Check("zrb_units_rel_distance", "<=", 1e-4,
                      "the units' weight rows stay identical up to float32 rounding (largest over activations and depths)",
                      scale="log", control="random_units_rel_distance_final",
                      asserts="the hidden units still stay identical"),
            )
        ),
        control="For the 'identical units' check, the same networks from random (Kaiming) init: units that start "
                "different must not pass it at the end of training. For the 'weights become non-zero' check, the "
                "same networks from all-zero weights and biases (zero-symmetry's init: with tanh and ReLU no "
                "gradient reaches the hidden weights), which must not pass it.",
        changes=(("zrb_weight_norm >= 1e-3 (t interval of the norms)", "zrb_log10_weight_norm >= -3 (t interval of log10)",
                  "a t interval of a skewed positive quantity went below 0"),
                 ("no control for the weight-norm check", "the all-zero init as its control",
                  "every check needs a control that can fail"),),
        figures=("fig-zero-random-bias-rank",),
        short='Zero weights with random biases: the weights move, but the units stay identical.',
    ),
)

# ------------------------------------------------------------------ measurements

@torch.no_grad()
def max_pairwise_distance(rows: torch.Tensor) -> float:
    """max_{i<j} ||r_i - r_j|| over the rows of a 2-D tensor (0 for fewer than 2 rows).

    >>> max_pairwise_distance(torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 4.0]]))
    5.0
    """
    r = rows.detach().double().flatten(1)
    if r.shape[0] < 2:
        return 0.0
    # torch.pdist takes exact differences (no Gram-matrix shortcut, which would lose the
    # zeros of symmetric rows).
    return torch.pdist(r).max().item()


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
def numerical_rank(matrix: torch.Tensor, rtol: float | None = None,
                   singular_values: torch.Tensor | None = None) -> int:
    """Number of singular values above ``rtol * sigma_max`` (default: max(m, n) * eps of the
    matrix's dtype, as ``torch.linalg.matrix_rank``); 0 for the zero matrix.

    >>> numerical_rank(torch.tensor([[1.0, 2.0], [2.0, 4.0]]))
    1
    """
    m = matrix.detach().flatten(1)
    sv = torch.linalg.svdvals(m.double()) if singular_values is None else singular_values
    if sv.numel() == 0 or sv[0].item() == 0.0:
        return 0
    if rtol is None:
        rtol = max(m.shape) * torch.finfo(m.dtype).eps
    return int((sv > rtol * sv[0]).sum().item())


@torch.no_grad()
def stable_rank(matrix: torch.Tensor, singular_values: torch.Tensor | None = None) -> float:
    """||W||_F^2 / ||W||_2^2, a rank that ignores tiny singular values; 0 for W = 0.

    >>> stable_rank(torch.eye(3))
    3.0
    """
    sv = torch.linalg.svdvals(matrix.detach().flatten(1).double()) if singular_values is None else singular_values
    if sv.numel() == 0 or sv[0].item() == 0.0:
        return 0.0
    return ((sv**2).sum() / sv[0] ** 2).item()


@torch.no_grad()
def layer_symmetry(layer: nn.Linear, outputs: torch.Tensor | None = None) -> dict[str, float]:
    """Symmetry measures of one hidden layer: distances between its units' incoming weight
    rows (with and without the bias), ranks, and, given the layer's activations on a probe
    batch (examples x units), the relative max pairwise distance between units' outputs."""
    w = layer.weight
    sv = torch.linalg.svdvals(w.detach().flatten(1).double())  # once, for both ranks
    stats = {
        "weight_distance": max_pairwise_distance(w),
        "weight_rel_distance": relative_max_pairwise_distance(w),
        "weight_norm": w.detach().double().norm().item(),
        "numerical_rank": float(numerical_rank(w, singular_values=sv)),
        "stable_rank": stable_rank(w, singular_values=sv),
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
    options = {"zero": ("zero", {}), "zero-weights-random-bias": ("zero-weights-random-bias", {"bias_std": bias_std}),
               "constant": ("constant", {"value": constant}),
               "kaiming": ("kaiming-normal", {"gain": gain_for(activation)})}
    if init not in options:
        raise ValueError(f"unknown init {init!r}; allowed: {', '.join(SYMMETRY_INITS)}")
    name, kw = options[init]
    return initialise(net, name, seed=seed, **kw)


def symmetry_recorder(probe_x: torch.Tensor):
    """The zero-init chapter's probe: each hidden layer's symmetry measures
    (:func:`layer_symmetry`) on ``probe_x`` and each layer's weight and bias gradient norms."""
    def record(model, step):
        acts = hidden_activations(model, probe_x)
        for i, (name, layer) in enumerate(hidden_linears(model), start=1):
            for metric, value in layer_symmetry(layer, acts[f"act{i}"]).items():
                yield {"metric": metric, "layer": name, "value": value}
        for pname, p in model.named_parameters():
            if p.grad is not None:
                layer, kind = pname.rsplit(".", 1)
                yield {"metric": f"{kind}_grad_norm", "layer": layer, "value": p.grad.norm().item()}

    return record


def symmetry_run(data, *, init: str, activation: str, depth: int, width: int, seed: int,
                 config, bias_std: float = 1.0, constant: float = 0.05,
                 record_every: int | None = None, probe_size: int = 256, device: str = "cpu") -> pd.DataFrame:
    """Train one MLP and record, at steps 1, 2, 4, ... below ``record_every`` and then every
    ``record_every`` steps, each hidden layer's symmetry measures (:func:`layer_symmetry`)
    and each layer's weight and bias gradient norms, beside the loss and test accuracy.
    Returns tidy rows tagged with the run's init, activation, depth and seed (one run of
    :func:`symmetry_sweep`, which gives the same numbers)."""
    return symmetry_sweep(data, inits=[init], activations=[activation], depths=[depth], seeds=[seed], width=width,
                          config=config, bias_std=bias_std, constant=constant, record_every=record_every,
                          probe_size=probe_size, device=device)


def symmetry_sweep(data, *, inits, activations, depths, seeds, width: int, config,
                   bias_std: float = 1.0, constant: float = 0.05, record_every: int | None = None,
                   probe_size: int = 256, progress: bool = True, device: str = "cpu") -> pd.DataFrame:
    """:func:`symmetry_run` over every init x activation x depth x seed, trained as
    ensembles (:func:`initstudy.core.train.train_many`); one tidy table."""
    from dataclasses import replace
    from itertools import product

    grid = list(product(inits, activations, depths, seeds))
    nets = []
    for init, act, depth, seed in grid:
        torch.manual_seed(seed)
        net = mlp(data.in_features, [width] * depth, data.num_classes, act=act)
        nets.append(init_for_symmetry(net, init, act, seed, bias_std, constant))
    early = [2**k for k in range(12) if 2**k < (record_every or config.eval_every)]
    # vectorize="loop": each member through the plain matrix products of a single model. The
    # symmetry of a zero init is exact only as long as every unit's sums are rounded alike; a
    # batched product (vmap) rounds units differently, and training amplifies the difference
    # (measured: 2e-7 after 2 steps, O(1) by step 400 for a sigmoid MLP), so the chapter would
    # measure its kernel, not the init.
    results = train_many(nets, data, [replace(config, seed=seed) for *_, seed in grid], device=device,
                         record=symmetry_recorder(data.x_val[:probe_size].to(device)), record_every=record_every,
                         record_at=early, vectorize="loop")
    frames = []
    for (init, act, depth, seed), result in zip(grid, results):
        df = result.history
        df.insert(0, "seed", seed)
        df.insert(0, "depth", depth)
        df.insert(0, "activation", act)
        df.insert(0, "init", init)
        if "layer" not in df:
            df["layer"] = None
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def _metric(df: pd.DataFrame, metric: str, **where) -> pd.DataFrame:
    sel = df["metric"] == metric
    for key, value in where.items():
        sel &= df[key] == value
    return df[sel]


#: The random stream the accuracy gap's placebo draws its other data order from.
PLACEBO_ORDER = "placebo data order"


def placebo_runs(data, *, activations, depths, seeds, width: int, config, device: str = "cpu") -> pd.DataFrame:
    """Kaiming init again for every activation, depth and seed of the sweep, with the data order
    drawn from the stream :data:`PLACEBO_ORDER` of the seed (the weights and everything else as
    the seed's): the placebo of the accuracy gap. Returns the history rows, tagged like
    :func:`symmetry_sweep`'s (init "kaiming (placebo)"), without the symmetry probes."""
    from dataclasses import replace
    from itertools import product

    from initstudy.core.ensemble import stream_seed

    grid = list(product(activations, depths, seeds))
    nets = []
    for act, depth, seed in grid:
        torch.manual_seed(seed)
        nets.append(init_for_symmetry(mlp(data.in_features, [width] * depth, data.num_classes, act=act), "kaiming",
                                      act, seed))
    configs = [replace(config, seed=seed, order_seed=stream_seed(seed, PLACEBO_ORDER)) for *_, seed in grid]
    results = train_many(nets, data, configs, device=device, vectorize="loop")
    frames = []
    for (act, depth, seed), result in zip(grid, results):
        df = result.history
        for i, (k, v) in enumerate({"init": "kaiming (placebo)", "activation": act, "depth": depth,
                                    "seed": seed}.items()):
            df.insert(i, k, v)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def zero_init_measurements(df: pd.DataFrame, placebo: pd.DataFrame | None = None) -> dict[str, dict[str, list[float]]]:
    """Per-seed values of the ledger's metrics for ``zero-symmetry`` and ``zero-random-bias``
    from a :func:`symmetry_sweep` table (see the criteria in :mod:`initstudy.study.claims`) and
    the accuracy gap's placebo (:func:`placebo_runs`)."""
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
    if placebo is not None and len(placebo):
        p_last = placebo.groupby(["activation", "depth", "seed"])["step"].transform("max") == placebo["step"]
        p_acc = _metric(placebo[p_last], "accuracy", split="test").set_index(["activation", "depth", "seed"])["value"]
        p_gap = (control - p_acc) * 100.0
        placebo_gap = [float(p_gap.xs(s, level="seed").min()) for s in seeds]
    else:
        placebo_gap = [float("nan") for _ in seeds]
    return {
        "zero-symmetry": {
            "zero_units_rel_distance": per_seed(_metric(df, "weight_rel_distance", init="zero"), "max"),
            "zero_max_rank": per_seed(_metric(df, "numerical_rank", init="zero"), "max"),
            "zero_accuracy_gap": zero_gap,
            "placebo_accuracy_gap": placebo_gap,
            "control_accuracy": control_min,
            # negative control: the random-init networks, aggregated the same way
            "random_units_rel_distance": per_seed(_metric(df, "weight_rel_distance", init="kaiming"), "max"),
            "random_max_rank": per_seed(_metric(df, "numerical_rank", init="kaiming"), "max"),
        },
        "zero-random-bias": {
            "zrb_log10_weight_norm": [  # a norm of exactly 0 counts as 1e-30
                math.log10(max(v, 1e-30))
                for v in per_seed(_metric(df[last], "weight_norm", init="zero-weights-random-bias", layer="fc1"),
                                  "min")
            ],
            "zero_log10_weight_norm": [  # the control: all-zero weights and biases, read the same way
                math.log10(max(v, 1e-30))
                for v in per_seed(_metric(df[last], "weight_norm", init="zero", layer="fc1"), "min")
            ],
            "zrb_units_rel_distance": per_seed(
                _metric(df[last], "weight_rel_distance", init="zero-weights-random-bias"), "max"),
            "random_units_rel_distance_final": per_seed(_metric(df[last], "weight_rel_distance", init="kaiming"),
                                                        "max"),
        },
    }


def final_accuracies(df: pd.DataFrame) -> pd.DataFrame:
    """One row per run (init, activation, depth, seed) of a :func:`symmetry_sweep` table: the
    test accuracy (in %), read once at the run's end, that step, and whether the run diverged.
    A diverged run stops at the step whose loss was not finite and counts at chance (see
    :func:`initstudy.core.train.train`)."""
    keys = ["init", "activation", "depth", "seed"]
    test = _metric(df, "accuracy", split="test")
    last = test.loc[test.groupby(keys)["step"].idxmax()]
    out = last[keys + ["step", "value"]].rename(columns={"value": "accuracy"}).set_index(keys)
    out["accuracy"] = out["accuracy"] * 100.0
    loss = _metric(df, "loss", split="train")
    diverged = loss["value"].isna().groupby([loss[k] for k in keys]).any()
    out["diverged"] = diverged.reindex(out.index, fill_value=False).astype(bool)
    return out.reset_index()


def accuracy_by_setting(finals: pd.DataFrame) -> pd.DataFrame:
    """Final test accuracy (%) per (init, activation, depth) over seeds, from
    :func:`final_accuracies`: number of seeds, mean, lowest and highest seed, diverged runs."""
    g = finals.groupby(["init", "activation", "depth"])
    out = g["accuracy"].agg(seeds="count", mean="mean", min="min", max="max")
    out["diverged_runs"] = g["diverged"].sum().astype(int)
    return out.reset_index()


def max_over_layers(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """``metric`` of a :func:`symmetry_sweep` table, maximised over the hidden layers of each
    run at each recorded step: one row per (init, activation, depth, seed, step)."""
    keys = ["init", "activation", "depth", "seed", "step"]
    return _metric(df, metric).groupby(keys)["value"].max().reset_index()


def zrb_final_symmetry(df: pd.DataFrame) -> pd.DataFrame:
    """Zero weights with random biases, at the end of each run: per (activation, depth, seed,
    hidden layer) the relative max distance between two units' weight rows and between their
    outputs on the probe batch, the numerical and stable ranks and the weight norm; and the
    largest numerical rank over steps 1 and 2 (``early_rank_max``)."""
    zrb = df[df["init"] == "zero-weights-random-bias"]
    keys = ["activation", "depth", "seed", "layer"]
    last = zrb[zrb.groupby(["activation", "depth", "seed"])["step"].transform("max") == zrb["step"]]
    metrics = ["weight_rel_distance", "output_rel_distance", "numerical_rank", "stable_rank", "weight_norm"]
    out = last[last["metric"].isin(metrics)].pivot_table(index=keys, columns="metric", values="value")
    early = _metric(zrb[(zrb["step"] > 0) & (zrb["step"] <= 2)], "numerical_rank")
    out["early_rank_max"] = early.groupby(keys)["value"].max()
    out.columns.name = None
    return out.reset_index()


def zero_init_findings(df: pd.DataFrame) -> dict[str, float | str]:
    """The numbers the zero-init chapter's text quotes, computed from a
    :func:`symmetry_sweep` table (accuracies in %). ``*-seed-min``/``*-seed-max``: the lowest
    or highest final accuracy of any seed in any setting (activation x depth);
    ``*-mean-min``/``*-mean-max``: the lowest or highest mean over seeds of one setting."""
    finals = final_accuracies(df)
    by_setting = accuracy_by_setting(finals)
    deepest = int(finals["depth"].max())
    grads = df[df["metric"].str.endswith("_grad_norm")]
    dead = grads[(grads["init"] == "zero") & grads["activation"].isin(["tanh", "relu"])]
    dead_hidden = dead[dead["layer"] != "out"]
    dead_out_w = dead[(dead["layer"] == "out") & (dead["metric"] == "weight_grad_norm")]
    dead_out_b = dead[(dead["layer"] == "out") & (dead["metric"] == "bias_grad_norm")]
    zrb = zrb_final_symmetry(df)
    findings = {
        "seeds": float(finals["seed"].nunique()),
        "settings": float(len(finals[["activation", "depth"]].drop_duplicates())),
        "deepest": float(deepest),
        "diverged-runs": float(finals["diverged"].sum()),
        "zero-dead-hidden-grad-max": dead_hidden["value"].max() if len(dead_hidden) else float("nan"),
        "zero-dead-out-weight-grad-max": dead_out_w["value"].max() if len(dead_out_w) else float("nan"),
        "zero-dead-out-bias-grad-max": dead_out_b["value"].max() if len(dead_out_b) else float("nan"),
        "zrb-early-rank-max": zrb["early_rank_max"].max(),
        "zrb-final-rank-max": zrb["numerical_rank"].max(),
        "zrb-final-rank-min": zrb["numerical_rank"].min(),
        "zrb-final-stable-rank-max": zrb["stable_rank"].max(),
        "zrb-final-rel-distance-min": zrb["weight_rel_distance"].min(),
        "zrb-final-output-distance-min": zrb["output_rel_distance"].min(),
    }
    short = {"kaiming": "kaiming", "zero": "zero", "constant": "constant", "zero-weights-random-bias": "zrb"}
    for init, name in short.items():
        f, s = finals[finals["init"] == init], by_setting[by_setting["init"] == init]
        deep = f[f["depth"] == deepest]
        findings.update({
            f"{name}-accuracy-seed-min": f["accuracy"].min(), f"{name}-accuracy-seed-max": f["accuracy"].max(),
            f"{name}-accuracy-mean-min": s["mean"].min(), f"{name}-accuracy-mean-max": s["mean"].max(),
            f"{name}-deepest-accuracy-seed-min": deep["accuracy"].min(),
            f"{name}-deepest-accuracy-seed-max": deep["accuracy"].max(),
        })
    zero_sig = finals[(finals["init"] == "zero") & (finals["activation"] == "sigmoid")]
    zero_other = finals[(finals["init"] == "zero") & (finals["activation"] != "sigmoid")]
    findings["zero-sigmoid-accuracy-seed-max"] = zero_sig["accuracy"].max()
    findings["zero-tanh-relu-accuracy-seed-max"] = zero_other["accuracy"].max()
    numbers = {k: float(v) for k, v in findings.items()}
    # the same counts in words, their nouns in the right number
    words = {"deepest-text": plural(deepest, "hidden layer"),
             "diverged-runs-text": plural(numbers["diverged-runs"], "run")}
    return {**numbers, **words}


def zrb_parallel_settings(zrb: pd.DataFrame) -> str:
    """The settings (activation, hidden layers) of :func:`zrb_final_symmetry` in which every
    seed ended with every hidden weight matrix of numerical rank <= 1 (parallel rows), as a
    phrase ("relu with 2 hidden layers"); "" when there is none."""
    rank = zrb.groupby(["activation", "depth"])["numerical_rank"].max()
    found = [f"{a} with {d} hidden layer{'s' if d > 1 else ''}" for (a, d), r in rank.items() if r <= 1]
    return ", ".join(found)


# ------------------------------------------------------------------------------ figures


def _palette(values, order=None) -> dict:
    """Colour-blind-safe colours with orange and vermillion never side by side."""
    import seaborn as sns

    colors = sns.color_palette("colorblind", 10)
    keys = order or sorted(set(values))
    return dict(zip(keys, [colors[i] for i in (0, 1, 2, 4, 7, 9)]))


def _activation_order(frame: pd.DataFrame) -> list[str]:
    known = ["sigmoid", "tanh", "relu"]
    present = set(frame["activation"])
    return [a for a in known if a in present] + sorted(present - set(known))


def plot_by_setting(frame: pd.DataFrame, y: str, ylabel: str, hue: str = "init", symlog_y: float | None = None,
                    hline: tuple[float, str] | None = None):
    """One panel per activation (columns) and number of hidden layers (rows): ``y`` against
    the SGD step (symmetric-log axis), one colour per ``hue``; the line is the mean over
    seeds and the band the range over seeds (lowest to highest seed), which stays inside the
    data. ``symlog_y``: the linear threshold of a symmetric-log y axis (None: linear);
    ``hline``: (value, label) of a dotted reference line. Legend below the panels."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    order = [i for i in SYMMETRY_INITS if i in set(frame[hue])] if hue == "init" else None
    g = sns.relplot(data=frame, x="step", y=y, hue=hue, hue_order=order, style=hue, style_order=order,
                    col="activation", col_order=_activation_order(frame), row="depth", kind="line",
                    errorbar=("pi", 100), height=2.1, aspect=1.15, palette=_palette(frame[hue], order),
                    facet_kws={"margin_titles": False})
    g.set(xscale="symlog", xlim=(0, None))
    if symlog_y is not None:  # 0, then decades from symlog_y up to the data's largest value
        top = max(1.0, float(frame[y].max()))
        ticks = [0.0] + [10.0 ** k for k in range(round(math.log10(symlog_y)), math.ceil(math.log10(top)) + 1, 2)]
        for ax in g.axes.flat:
            ax.set_yscale("symlog", linthresh=symlog_y)
            ax.set_ylim(-0.3 * symlog_y, 2.0 * top)  # a margin below 0 so that curves at 0 show
            ax.set_yticks(ticks)
            ax.yaxis.set_minor_locator(plt.NullLocator())
    if hline is not None:
        for ax in g.axes.flat:
            ax.axhline(hline[0], color="k", lw=0.8, ls=":", label=hline[1])
    for (depth, activation), ax in g.axes_dict.items():
        ax.set_title(f"{activation}, {plural(depth, 'hidden layer')}", size=11)
    g.set_axis_labels("SGD step", ylabel)
    sns.move_legend(g, "upper center", bbox_to_anchor=(0.5, 0.0), ncol=4, title=None, frameon=False)
    if hline is not None:
        g.figure.text(0.5, -0.09, f"dotted: {hline[1]}", ha="center", va="top", fontsize=11)
    return g.figure


def plot_zrb_ranks(frame: pd.DataFrame):
    """Zero weights with random biases: numerical and stable rank of the first hidden layer's
    weight matrix by SGD step, one colour per number of hidden layers (line: mean over seeds;
    band: range over seeds)."""
    import seaborn as sns

    frame = frame.assign(rank=frame["metric"].map({"numerical_rank": "numerical rank", "stable_rank": "stable rank"}),
                         layers=frame["depth"].map(lambda d: plural(d, "hidden layer")))
    g = sns.relplot(data=frame, x="step", y="value", hue="layers", row="rank", col="activation",
                    col_order=_activation_order(frame), kind="line",
                    errorbar=("pi", 100), height=2.1, aspect=1.15, facet_kws={"sharey": "row"},
                    palette="colorblind")
    g.set(xscale="symlog", xlim=(0, None))
    g.set_titles("{col_name}", size=11)
    for (rank, _), ax in g.axes_dict.items():
        ax.set_ylabel(rank)
    for ax in g.axes[1]:
        ax.set_title("")
    g.set_xlabels("SGD step")
    sns.move_legend(g, "upper center", bbox_to_anchor=(0.5, 0.0), ncol=3, title=None, frameon=False)
    return g.figure
