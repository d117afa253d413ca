"""Signal propagation through depth at initialisation: measurement and theory.

The forward experiments push a batch of standard-normal inputs through a plain stack
``h_l = act(W_l h_{l-1})`` (no biases, width n) and record, per layer, the mean, std and
second moment of the pre-activations ``z_l`` and activations ``h_l``, the fraction of
saturated units and where float32 first overflows. Layers are independent draws unless
``shared=True``, which multiplies by *one* matrix at every layer, as fast.ai's 100-layer
demonstration that the article echoes.

Theory (infinite width, zero-mean weights with n Var[W] = sigma_w^2): the second moment of
the pre-activations follows the mean-field map

    q_1 = sigma_w^2 E[x^2],   q_{l+1} = sigma_w^2 E_{z ~ N(0, q_l)}[act(z)^2]

(Poole et al. 2016; for ReLU it is Eq. 7-10 of He et al. 2015). For the identity it gives
q_L = sigma_w^(2L) q_0, for ReLU q_L = (sigma_w^2 / 2)^L q_0 (so gain^L on the std, exact),
for tanh the quadrature below, and for the sigmoid, whose mean is 1/2, the same map on the
uncentred second moment.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable

import numpy as np
import pandas as pd
import torch

from .inits import weight_std

__all__ = [
    "ACT_FUNCS",
    "STACK_SCHEMES",
    "scheme_sigma_w2",
    "draw_weight",
    "depth_profile",
    "theory_second_moment",
    "theory_frame",
    "overflow_layers",
    "sigmoid_flat_z",
    "relu_moments",
    "RELU_EXACT",
]

ACT_FUNCS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "identity": lambda z: z,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
}

#: Exact moments of ReLU(z), z ~ N(0, 1).
RELU_EXACT = {
    "mean": 1.0 / math.sqrt(2.0 * math.pi),
    "variance": 0.5 - 1.0 / (2.0 * math.pi),
    "second_moment": 0.5,
}


def _gain_scheme(g: float) -> Callable[[str], float]:
    # "gain g": g times the variance-preserving std of the stack (sqrt(2/n) for ReLU, else 1/sqrt(n))
    return lambda act: g * g * (2.0 if act == "relu" else 1.0)


#: Schemes of the depth experiments. "normal-1" and "normal-0.01" are N(0, 1) and N(0, 0.01^2)
#: whatever the width; the others draw with :func:`initstudy.inits.weight_std` (their one
#: home), uniform ones uniform, the rest normal.
STACK_SCHEMES = ("normal-1", "normal-0.01", "old-uniform", "xavier-uniform", "xavier-normal", "kaiming-normal")


def scheme_sigma_w2(scheme: str, activation: str, width: int) -> float:
    """n Var[W] of a scheme for a square layer of ``width`` units: "normal-1" is N(0, 1) and
    "normal-0.01" N(0, 0.01^2) whatever the width; "gain-0.95" and the like are that gain
    times the stack's variance-preserving init (sqrt(2/n) for ReLU, 1/sqrt(n) otherwise);
    the rest from :func:`initstudy.inits.weight_std` with the scheme's default gain."""
    if scheme.startswith("gain-"):
        return _gain_scheme(float(scheme[5:]))(activation)
    if scheme not in STACK_SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; allowed: {', '.join(STACK_SCHEMES)} or gain-<g>")
    if scheme.startswith("normal-"):
        std = float(scheme[len("normal-"):])
        return std * std * width
    return weight_std(scheme, width, width) ** 2 * width


def draw_weight(scheme: str, activation: str, width: int, generator: torch.Generator) -> torch.Tensor:
    """One ``width x width`` weight of ``scheme`` (uniform schemes uniform, others normal),
    on the generator's device."""
    var = scheme_sigma_w2(scheme, activation, width) / width
    w = torch.empty(width, width, device=generator.device)
    if scheme in ("old-uniform", "xavier-uniform"):
        bound = math.sqrt(3.0 * var)
        return w.uniform_(-bound, bound, generator=generator)
    return w.normal_(0.0, math.sqrt(var), generator=generator)


@torch.no_grad()
def _stats(t: torch.Tensor, activation: str | None) -> dict[str, float]:
    finite = torch.isfinite(t)
    frac_bad = 1.0 - finite.float().mean().item()
    if frac_bad > 0:
        v = t[finite].double()
        if v.numel() == 0:
            return {"nonfinite": frac_bad, "mean": math.nan, "std": math.nan, "second_moment": math.nan}
    else:
        v = t.double()
    out = {
        "nonfinite": frac_bad,
        "mean": v.mean().item(),
        "std": v.std(unbiased=False).item(),
        "second_moment": (v * v).mean().item(),
    }
    if activation == "sigmoid":
        out["saturated"] = ((v * (1 - v)) < 0.0025).double().mean().item()
    elif activation == "tanh":
        out["saturated"] = ((1 - v * v) < 0.01).double().mean().item()
    return out


@torch.no_grad()
def depth_profile(
    activation: str,
    scheme: str,
    width: int,
    depth: int,
    batch: int,
    seed: int,
    shared: bool = False,
    record_every: int = 1,
    device: str = "cpu",
) -> pd.DataFrame:
    """Push ``batch`` standard-normal inputs through ``depth`` layers and return tidy rows
    (layer, site = "pre"/"post", metric, value) every ``record_every`` layers and at every
    layer with a non-finite value. Layer 0 is the input. The pass stops at the first layer
    whose activations are all non-finite (later layers stay so)."""
    act = ACT_FUNCS[activation]
    gen = torch.Generator(device=device).manual_seed(seed)
    h = torch.randn(batch, width, generator=gen, device=device)
    rows = [{"layer": 0, "site": "post", "metric": k, "value": v} for k, v in _stats(h, None).items()]
    w_shared = draw_weight(scheme, activation, width, gen) if shared else None
    for layer in range(1, depth + 1):
        w = w_shared if shared else draw_weight(scheme, activation, width, gen)
        z = h @ w.T
        h = act(z)
        if layer % record_every == 0 or layer == depth or not bool(torch.isfinite(h).all()):
            rows += [{"layer": layer, "site": "pre", "metric": k, "value": v} for k, v in _stats(z, None).items()]
            rows += [{"layer": layer, "site": "post", "metric": k, "value": v}
                     for k, v in _stats(h, activation).items()]
        if not torch.isfinite(h).any():
            break
    df = pd.DataFrame(rows)
    df.insert(0, "seed", seed)
    df.insert(0, "shared", shared)
    df.insert(0, "scheme", scheme)
    df.insert(0, "activation", activation)
    return df


_HERMITE = np.polynomial.hermite_e.hermegauss(101)


def _expect_sq(activation: str, q: float) -> float:
    """E[act(z)^2] for z ~ N(0, q) (closed form for identity and ReLU, else quadrature)."""
    if activation == "identity":
        return q
    if activation == "relu":
        return q / 2.0
    nodes, weights = _HERMITE
    z = math.sqrt(max(q, 0.0)) * nodes
    f = np.tanh(z) if activation == "tanh" else 1.0 / (1.0 + np.exp(-z))
    return float(np.sum(weights * f * f) / math.sqrt(2.0 * math.pi))


def theory_second_moment(activation: str, sigma_w2: float, depth: int, input_second_moment: float = 1.0
                         ) -> tuple[np.ndarray, np.ndarray]:
    """The mean-field map: second moments of pre-activations q_l and of activations
    E[act(z_l)^2], for layers 1..depth (infinite width, independent zero-mean weights).

    >>> q, a = theory_second_moment("relu", 2.0, 3)
    >>> q.tolist(), a.tolist()
    ([2.0, 2.0, 2.0], [1.0, 1.0, 1.0])
    """
    pre = np.empty(depth)
    post = np.empty(depth)
    m = input_second_moment
    with np.errstate(over="ignore", invalid="ignore"):
        for layer in range(depth):
            q = sigma_w2 * m
            pre[layer] = q
            m = _expect_sq(activation, q) if math.isfinite(q) else math.inf
            post[layer] = m
    return pre, post


def theory_frame(activations: Iterable[str], schemes: Iterable[str], width: int, depth: int) -> pd.DataFrame:
    """Theory rows (activation, scheme, layer, site, metric="second_moment", value) to overlay."""
    rows = []
    for activation in activations:
        for scheme in schemes:
            pre, post = theory_second_moment(activation, scheme_sigma_w2(scheme, activation, width), depth)
            for layer in range(depth):
                rows.append({"activation": activation, "scheme": scheme, "layer": layer + 1, "site": "pre",
                             "metric": "second_moment", "value": pre[layer]})
                rows.append({"activation": activation, "scheme": scheme, "layer": layer + 1, "site": "post",
                             "metric": "second_moment", "value": post[layer]})
    return pd.DataFrame(rows)


def overflow_layers(profiles: pd.DataFrame) -> pd.DataFrame:
    """The first layer at which any activation became non-finite, per run (NaN if none)."""
    bad = profiles[(profiles["metric"] == "nonfinite") & (profiles["value"] > 0)]
    keys = ["activation", "scheme", "shared", "seed"]
    first = bad.groupby(keys)["layer"].min()
    runs = profiles[keys].drop_duplicates().set_index(keys)
    runs["overflow_layer"] = first
    return runs.reset_index()


def sigmoid_flat_z(ratio: float = 0.01) -> float:
    """The |z| beyond which the sigmoid's derivative is below ``ratio`` times its peak
    (1/4 at 0): sigma(z)(1 - sigma(z)) = ratio / 4, solved exactly.

    >>> round(sigmoid_flat_z(0.01), 3)
    5.986
    """
    s = (1.0 + math.sqrt(1.0 - ratio)) / 2.0
    return math.log(s / (1.0 - s))


def relu_moments(samples: int, seed: int) -> dict[str, float]:
    """Mean, variance and second moment of ReLU(z) over ``samples`` draws of z ~ N(0, 1),
    and the same of z itself (float64)."""
    z = torch.randn(samples, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    r = torch.relu(z)
    return {
        "input_mean": z.mean().item(),
        "input_variance": z.var(unbiased=False).item(),
        "input_second_moment": (z * z).mean().item(),
        "mean": r.mean().item(),
        "variance": r.var(unbiased=False).item(),
        "second_moment": (r * r).mean().item(),
    }


# ------------------------------------------------------------------ gradients at init


def gradient_profile(x: torch.Tensor, y: torch.Tensor, num_classes: int, activation: str, init: str,
                     width: int, depth: int, seed: int, bins: int = 61) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Back-propagated gradients at init (Glorot & Bengio 2010, Fig. 7): for an MLP of
    ``depth`` hidden layers, the std of dL/dz at every hidden pre-activation ``z_l`` and the
    norm of every weight's gradient, on one batch of real data; plus histograms of dL/dz on
    bins shared by all layers of the run. Returns (stats rows, histogram rows)."""
    from .inits import apply_init
    from .models import mlp
    from .probes import capture

    torch.manual_seed(seed)
    net = mlp(x[0].numel(), [width] * depth, num_classes, act=activation)
    apply_init(net, init, seed=seed)
    names = [f"fc{i}" for i in range(1, depth + 1)]
    found, grads = capture(net, x, y, modules=names)
    tag = {"activation": activation, "init": init, "seed": seed}
    rows, hist = [], []
    edge = max(found[n]["grad"].abs().max().item() for n in names) or 1.0
    edges = np.linspace(-edge, edge, bins + 1)
    for i, name in enumerate(names, start=1):
        g = found[name]["grad"].double()
        rows.append({**tag, "layer": i, "metric": "grad_std", "value": g.std(unbiased=False).item()})
        rows.append({**tag, "layer": i, "metric": "weight_grad_norm", "value": grads[f"{name}.weight"].norm().item()})
        counts, _ = np.histogram(g.numpy().ravel(), bins=edges)
        hist += [{**tag, "layer": i, "bin_center": (lo + hi) / 2, "density": c / g.numel()}
                 for lo, hi, c in zip(edges[:-1], edges[1:], counts)]
    return pd.DataFrame(rows), pd.DataFrame(hist)


def saturation_sweep(x: torch.Tensor, y: torch.Tensor, num_classes: int, stds: Iterable[float], width: int,
                     depth: int, seeds: Iterable[int]) -> pd.DataFrame:
    """A deep sigmoid MLP at init with every weight drawn from N(0, s^2), for each ``s``:
    per hidden layer, the fraction of saturated units (sigma'(z) below 1 % of its peak, i.e.
    |z| > 5.99), the mean of sigma'(z) = h(1 - h), the signal left (std of the activations
    across examples, averaged over units) and the norm of the layer's weight gradient."""
    from .inits import apply_init
    from .models import mlp
    from .probes import capture

    rows = []
    for s in stds:
        for seed in seeds:
            torch.manual_seed(seed)
            net = mlp(x[0].numel(), [width] * depth, num_classes, act="sigmoid")
            apply_init(net, "normal", std=float(s), seed=seed)
            acts = [f"act{i}" for i in range(1, depth + 1)]
            found, grads = capture(net, x, y, modules=acts)
            for i, name in enumerate(acts, start=1):
                h = found[name]["output"].double()
                deriv = h * (1 - h)
                tag = {"std": float(s), "seed": seed, "layer": i}
                rows += [
                    {**tag, "metric": "saturated", "value": (deriv < 0.0025).double().mean().item()},
                    {**tag, "metric": "mean_derivative", "value": deriv.mean().item()},
                    {**tag, "metric": "example_std", "value": h.std(dim=0, unbiased=False).mean().item()},
                    {**tag, "metric": "weight_grad_norm", "value": grads[f"fc{i}.weight"].norm().item()},
                ]
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ measurements


def _at_layer(profiles: pd.DataFrame, activation: str, scheme: str, layer: int, seeds, metric="std",
              site="post") -> list[float]:
    sel = profiles[(profiles["activation"] == activation) & (profiles["scheme"] == scheme)
                   & (~profiles["shared"]) & (profiles["site"] == site) & (profiles["metric"] == metric)]
    out = []
    for seed in seeds:
        s = sel[sel["seed"] == seed].set_index("layer")["value"]
        out.append(float(s.get(layer, math.nan) / s.get(0, math.nan)))
    return out


def std_ratio(profiles: pd.DataFrame, activation: str, scheme: str, layer: int, seeds) -> list[float]:
    """Per seed: std of the activations at ``layer`` over the std of the input (layer 0)."""
    return _at_layer(profiles, activation, scheme, layer, seeds)


def rms_ratio(profiles: pd.DataFrame, activation: str, scheme: str, layer: int, seeds) -> list[float]:
    """Per seed: root mean square of the activations at ``layer`` over the input's (the
    quantity He et al.'s derivation preserves; for ReLU outputs std = 0.83 RMS at best)."""
    return [math.sqrt(v) for v in _at_layer(profiles, activation, scheme, layer, seeds, metric="second_moment")]


def signal_depth_measurements(profiles: pd.DataFrame, saturation: pd.DataFrame, gradients: pd.DataFrame,
                              finals: pd.DataFrame, depth: int, seeds: list[int],
                              probe_width: int | None = None) -> dict[str, dict[str, list]]:
    """Per-seed values of the ledger's metrics (and their negative controls) for the four
    claims of the signal-depth chapter.

    ``finals``: final test accuracy per (activation, init, depth, seed), from
    :func:`initstudy.train.final_accuracy`. ``probe_width``: the width of the saturation
    sweep's MLP, whose Xavier std 1/sqrt(width) picks the control's scale (the sweep's std
    nearest it on a log scale)."""
    at = min(100, depth)

    def sat_mean(std: float, metric: str) -> list[float]:
        sel = saturation[(saturation["std"] == std) & (saturation["metric"] == metric)]
        return [float(sel[sel["seed"] == s]["value"].mean()) for s in seeds]

    def signal_ratio(std: float) -> list[float]:
        sel = saturation[(saturation["std"] == std) & (saturation["metric"] == "example_std")]
        out = []
        for s in seeds:
            v = sel[sel["seed"] == s].set_index("layer")["value"]
            out.append(float(v[v.index.max()] / v[1]) if len(v) and v[1] > 0 else math.nan)
        return out

    def grad_ratio(init: str) -> list[float]:
        sel = gradients[(gradients["init"] == init) & (gradients["metric"] == "grad_std")
                        & (gradients["activation"] == "tanh")]
        out = []
        for s in seeds:
            v = sel[sel["seed"] == s].set_index("layer")["value"]
            out.append(float(v[1] / v[v.index.max()]) if len(v) else math.nan)
        return out

    nearest_xavier = xavier_scale_in_sweep(saturation["std"].unique(), probe_width)
    acc = finals.set_index(["activation", "init", "depth", "seed"])["accuracy"]
    deepest = int(finals["depth"].max())
    shallowest = int(finals["depth"].min())

    def accs(activation: str, init: str, d: int) -> list[float]:
        return [float(acc.get((activation, init, d, s), math.nan)) for s in seeds]

    old_deep, xav_deep = accs("tanh", "old-uniform", deepest), accs("tanh", "xavier-uniform", deepest)
    # the control: the old rule's deep tanh MLP against its own shallow one, the check's comparison
    old_shallow_ref = [100 * (d - s) for d, s in zip(old_deep, accs("tanh", "old-uniform", shallowest))]
    xav_shallow = accs("tanh", "xavier-uniform", shallowest)
    sig_deep, sig_shallow = accs("sigmoid", "xavier-uniform", deepest), accs("sigmoid", "xavier-uniform", shallowest)
    return {
        "sigmoid-saturation": {
            "sigmoid_flat_z": [sigmoid_flat_z(0.01)],
            "large_init_saturated_fraction": sat_mean(1.0, "saturated"),
            "small_init_signal_ratio": signal_ratio(0.01),
            "xavier_scale_saturated_fraction": sat_mean(nearest_xavier, "saturated"),
            "xavier_scale_signal_ratio": signal_ratio(nearest_xavier),
        },
        "depth-explode-vanish": {
            "std_ratio_gain_1.05": std_ratio(profiles, "identity", "gain-1.05", at, seeds),
            "std_ratio_gain_0.95": std_ratio(profiles, "identity", "gain-0.95", at, seeds),
            "std_ratio_gain_1.0": std_ratio(profiles, "identity", "gain-1", at, seeds),
            "stack_depth": [float(depth)],
        },
        "old-uniform-vanishes": {
            "old_uniform_grad_ratio": grad_ratio("old-uniform"),
            "xavier_grad_ratio": grad_ratio("xavier-uniform"),
            "old_uniform_accuracy_gap": [100 * (x - o) for x, o in zip(xav_deep, old_deep)],
            "xavier_deep_tanh_accuracy": xav_deep,
        },
        "xavier-unit-variance": {
            "xavier_linear_std_100": std_ratio(profiles, "identity", "xavier-normal", at, seeds),
            "xavier_tanh_std_100": std_ratio(profiles, "tanh", "xavier-normal", at, seeds),
            "std_ratio_gain_0.95": std_ratio(profiles, "identity", "gain-0.95", at, seeds),
            "old_uniform_deep_tanh_vs_shallow": old_shallow_ref,
            "stack_depth": [float(depth)],
            "xavier_deep_tanh_vs_shallow": [100 * (d - s) for d, s in zip(xav_deep, xav_shallow)],
            "shallow_tanh_accuracy": xav_shallow,
            "xavier_deep_sigmoid_vs_shallow": [100 * (d - s) for d, s in zip(sig_deep, sig_shallow)],
            "shallow_sigmoid_accuracy": sig_shallow,
        },
    }


#: A 30-layer net "stalls" (He et al. 2015, Fig. 3) when its best test accuracy over the
#: learning-rate grid stays at or below this (chance is 10 % on ten classes).
STALL_ACCURACY = 0.15


def xavier_kaiming_measurements(relu: pd.DataFrame, profiles: pd.DataFrame, finals: pd.DataFrame,
                                stack_depth: int, he_depth: int, seeds: list[int]) -> dict[str, dict[str, list]]:
    """Per-seed values of the ledger's metrics for ``relu-halves-variance`` and
    ``xavier-fails-relu``. ``finals`` has one row per (init, depth, lr, seed)."""
    at = min(30, stack_depth)
    rel = relu.set_index("seed")

    def best(init: str) -> list[float]:
        sel = finals[(finals["init"] == init) & (finals["depth"] == he_depth)]
        return [float(sel[sel["seed"] == s]["accuracy"].max()) for s in seeds]

    def stalled(init: str) -> list[float]:
        """1.0 where the seed's best accuracy over the lr grid stays <= STALL_ACCURACY."""
        return [math.nan if math.isnan(b) else float(b <= STALL_ACCURACY) for b in best(init)]

    return {
        "relu-halves-variance": {
            "relu_second_moment": [float(rel.loc[s, "second_moment"]) for s in seeds],
            "relu_variance": [float(rel.loc[s, "variance"]) for s in seeds],
            "relu_mean": [float(rel.loc[s, "mean"]) for s in seeds],
            "input_second_moment": [float(rel.loc[s, "input_second_moment"]) for s in seeds],
            "input_variance": [float(rel.loc[s, "input_variance"]) for s in seeds],
            "input_mean": [float(rel.loc[s, "input_mean"]) for s in seeds],
        },
        "xavier-fails-relu": {
            "relu_xavier_rms_ratio_30": rms_ratio(profiles, "relu", "xavier-normal", at, seeds),
            "relu_kaiming_rms_ratio_30": rms_ratio(profiles, "relu", "kaiming-normal", at, seeds),
            "stack_depth": [float(stack_depth)],
            "he_fig3_xavier_stalled": stalled("xavier-normal"),
            "he_fig3_kaiming_stalled": stalled("kaiming-normal"),
            "he_fig3_xavier_best_accuracy": best("xavier-normal"),
            "he_fig3_kaiming_best_accuracy": best("kaiming-normal"),
            "he_depth": [float(he_depth)],
        },
    }


def he_fig3_per_seed(history: pd.DataFrame, seeds: list[int]) -> pd.DataFrame:
    """Per init, depth and seed of the trained ReLU networks (:func:`initstudy.train.compare_inits`
    history): the learning rate whose final test accuracy is best and that accuracy (the quantity
    the stall check reads), ``stalled`` (1.0 when that best final accuracy is at most
    :data:`STALL_ACCURACY`, as :func:`xavier_kaiming_measurements` counts it), the number of
    runs of the grid that diverged, the highest test accuracy seen at any evaluation and rate
    (``peak_accuracy``), and ``first_step_above``: the first evaluation step at which the best
    rate's test accuracy exceeded :data:`STALL_ACCURACY` (NaN: never), so a seed that starts
    learning late can be told apart; ``budget`` is the run's last step.

    A diverged run is counted at the test accuracy of the network at the step it diverged."""
    test = history[(history["split"] == "test") & (history["metric"] == "accuracy")]
    rows = []
    for (init, depth), grp in test.groupby(["init", "depth"]):
        for seed in seeds:
            runs = grp[grp["seed"] == seed]
            if runs.empty:
                continue
            last = runs.loc[runs.groupby("lr")["step"].idxmax()].set_index("lr")
            best_lr = float(last["value"].idxmax())
            curve = runs[runs["lr"] == best_lr].sort_values("step")
            above = curve[curve["value"] > STALL_ACCURACY]["step"]
            best = float(last["value"].max())
            rows.append({"init": init, "depth": int(depth), "seed": int(seed), "best_lr": best_lr,
                         "best_final_accuracy": best, "stalled": float(best <= STALL_ACCURACY),
                         "diverged_runs": int(last["diverged_at"].notna().sum()),
                         "peak_accuracy": float(runs["value"].max()),
                         "first_step_above": float(above.iloc[0]) if len(above) else math.nan,
                         "budget": int(grp["step"].max())})
    return pd.DataFrame(rows)


def _init_order(inits) -> list[str]:
    """Inits in the book's order (Xavier before Kaiming), so every figure gives each the same colour."""
    known = ["xavier-normal", "xavier-fanin", "kaiming-normal"]
    return sorted(dict.fromkeys(inits), key=lambda k: (known.index(k) if k in known else len(known), k))


def plot_relu_moments(relu: pd.DataFrame, seed: int, draws: int = 200_000):
    """Left: densities (histograms) of z ~ N(0, 1) and relu(z) from ``draws`` draws of
    ``seed``; right: mean, variance and second moment of z and relu(z) per seed (``relu``, one
    row per seed from :func:`relu_moments`; bars: mean over seeds, dots: seeds) beside the
    exact values. Returns ``(figure, plotted data)``."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    z = torch.randn(draws, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).numpy()
    edges = np.linspace(-4.0, 4.0, 81)
    hist = []
    for what, values in (("z ~ N(0, 1)", z), ("relu(z)", np.maximum(z, 0.0))):
        density, _ = np.histogram(values, bins=edges, density=True)
        hist += [{"panel": "density", "seed": seed, "what": what, "x": float((a + b) / 2), "value": float(d)}
                 for a, b, d in zip(edges[:-1], edges[1:], density)]
    quantities = {"mean": "mean", "variance": "variance", "second moment": "second_moment"}
    moments = []
    for _, r in relu.iterrows():
        for label, key in quantities.items():
            moments.append({"panel": "moments", "seed": int(r["seed"]), "what": "z ~ N(0, 1)", "x": label,
                            "value": float(r[f"input_{key}"])})
            moments.append({"panel": "moments", "seed": int(r["seed"]), "what": "relu(z), measured", "x": label,
                            "value": float(r[key])})
    for label, key in quantities.items():
        moments.append({"panel": "moments", "seed": math.nan, "what": "relu(z), exact", "x": label,
                        "value": RELU_EXACT[key]})
    hist, moments = pd.DataFrame(hist), pd.DataFrame(moments)
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.4), gridspec_kw={"width_ratios": [1, 1.2]})
    colors = sns.color_palette("colorblind", 3)
    for (what, d), color in zip(hist.groupby("what", sort=False), colors):
        axes[0].stairs(d["value"].to_numpy(), edges, fill=True, alpha=0.5, color=color, label=what)
    axes[0].set(ylim=(0, 1.0), xlabel="value", ylabel="density")
    order = ["z ~ N(0, 1)", "relu(z), measured", "relu(z), exact"]
    sns.barplot(data=moments, x="x", y="value", hue="what", hue_order=order, errorbar=None, ax=axes[1],
                palette=colors)
    axes[1].set(xlabel="moment", ylabel="value of the moment")
    handles, labels = axes[1].get_legend_handles_labels()
    axes[1].get_legend().remove()
    axes[1].set_xticks(range(len(quantities)), [q.replace(" ", "\n") for q in quantities])
    axes[0].legend(loc="upper left", frameon=False)
    fig.legend(handles, labels, loc="lower center", ncol=3, frameon=False, bbox_to_anchor=(0.5, 0.0))
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig, pd.concat([hist, moments], ignore_index=True)


def plot_relu_rms(profiles: pd.DataFrame, theory: pd.DataFrame, schemes: list[str], activation: str = "relu"):
    """RMS of the activations by layer of the plain stacks, one thin line per seed and colour
    per scheme (log scale, so no interval band can reach 0), with the mean-field theory as
    dashed lines of the same colour. Returns ``(figure, plotted data)``."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    post = profiles[(profiles["site"] == "post") & (profiles["metric"] == "second_moment")
                    & (profiles["activation"] == activation) & profiles["scheme"].isin(schemes)
                    & ~profiles["shared"]]
    measured = post[["scheme", "seed", "layer", "value"]].assign(source="measured")
    th = theory[(theory["activation"] == activation) & (theory["site"] == "post")
                & theory["scheme"].isin(schemes)][["scheme", "layer", "value"]].assign(source="theory", seed=math.nan)
    data = pd.concat([measured, th], ignore_index=True)
    data["rms"] = data["value"].astype(float) ** 0.5
    data = data.drop(columns="value")
    palette = dict(zip(schemes, sns.color_palette("colorblind", len(schemes))))
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for scheme in schemes:
        for seed, d in data[(data["scheme"] == scheme) & (data["source"] == "measured")].groupby("seed"):
            ax.plot(d["layer"], d["rms"], color=palette[scheme], lw=0.9, alpha=0.7,
                    label=f"{scheme} (one line per seed)" if seed == min(measured["seed"]) else None)
        t = data[(data["scheme"] == scheme) & (data["source"] == "theory")]
        ax.plot(t["layer"], t["rms"], color=palette[scheme], ls="--", lw=1.2, label=f"{scheme}, theory")
    ax.set(yscale="log", xlabel="layer", ylabel="RMS of activations (log scale)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, frameon=False, fontsize=11)
    fig.tight_layout()
    return fig, data


def plot_he_training(history: pd.DataFrame):
    """Test accuracy during training of the plain ReLU networks, one panel per depth (rows)
    and learning rate (columns), one thin line per seed and colour per init; a cross marks the
    step at which a run diverged (its line stops there). Returns ``(figure, plotted data)``."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    data = history[(history["split"] == "test") & (history["metric"] == "accuracy")][
        ["init", "depth", "lr", "seed", "step", "value", "diverged_at"]].rename(columns={"value": "test_accuracy"})
    inits = _init_order(data["init"])
    palette = dict(zip(inits, sns.color_palette("colorblind", len(inits))))
    depths, lrs = sorted(data["depth"].unique()), sorted(data["lr"].unique())
    fig, axes = plt.subplots(len(depths), len(lrs), figsize=(8, 1.1 + 2.0 * len(depths)), sharex=True, sharey=True,
                             squeeze=False)
    for i, depth in enumerate(depths):
        for j, lr in enumerate(lrs):
            ax = axes[i][j]
            for init in inits:
                sel = data[(data["depth"] == depth) & (data["lr"] == lr) & (data["init"] == init)]
                for _, d in sel.groupby("seed"):
                    d = d.sort_values("step")
                    ax.plot(d["step"], d["test_accuracy"], color=palette[init], lw=0.9, alpha=0.75)
                    if d["diverged_at"].notna().any():
                        ax.plot(d["step"].iloc[-1], d["test_accuracy"].iloc[-1], "x", color="k", ms=6)
            ax.set_title(f"{depth} layers, lr {lr:g}", fontsize=11)
            ax.set_ylim(0, 1)
            if j == 0:
                ax.set_ylabel("test accuracy")
            if i == len(depths) - 1:
                ax.set_xlabel("SGD step")
    handles = [plt.Line2D([], [], color=palette[k], lw=2) for k in inits]
    handles.append(plt.Line2D([], [], marker="x", color="k", ls=""))
    fig.legend(handles, inits + ["run diverged"], loc="lower center", ncol=len(inits) + 1, frameon=False,
               bbox_to_anchor=(0.5, 0.0))
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig, data


def plot_he_best(per_seed: pd.DataFrame):
    """The stall check's own quantity: per seed, the best final test accuracy over the
    learning-rate grid, by depth and init, with the stall line :data:`STALL_ACCURACY`.
    Returns ``(figure, plotted data)``."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    data = per_seed[["init", "depth", "seed", "best_lr", "best_final_accuracy", "stalled"]].copy()
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    inits = _init_order(data["init"])
    sns.stripplot(data=data, x="depth", y="best_final_accuracy", hue="init", hue_order=inits, dodge=True,
                  jitter=0.15, size=7, ax=ax, palette=dict(zip(inits, sns.color_palette("colorblind", len(inits)))))
    ax.axhline(STALL_ACCURACY, color="k", ls="--", lw=1, label=f"stall line ({STALL_ACCURACY:.0%})")
    ax.set(ylim=(0, 1), xlabel="depth (layers)", ylabel="best final test accuracy\nover the lr grid")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    return fig, data


# ------------------------------------------------------------------ sweeps and plots


def stack_sweep(activations: Iterable[str], schemes: Iterable[str], seeds: Iterable[int], width: int, depth: int,
                batch: int, shared: bool = False, record_every: int = 1, progress: bool = True,
                device: str = "cpu") -> pd.DataFrame:
    """:func:`depth_profile` over activations x schemes x seeds, with a progress bar (the
    random streams of a CUDA device differ from the CPU's: same statistics, other draws)."""
    from itertools import product

    from .progress import tqdm

    grid = list(product(activations, schemes, seeds))
    frames = [depth_profile(a, s, width, depth, batch, seed, shared=shared, record_every=record_every, device=device)
              for a, s, seed in tqdm(grid, desc="stacks", disable=not progress)]
    return pd.concat(frames, ignore_index=True)


def plot_rms_by_layer(profiles: pd.DataFrame, theory: pd.DataFrame, activations: list[str], schemes: list[str],
                      col_wrap: int | None = None, height: float = 2.8):
    """Root mean square of the activations by layer (mean and 95 % band over seeds, log
    scale), one panel per activation, one colour per scheme, with the mean-field theory as
    dashed lines of the same colour. Returns the figure."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    post = profiles[(profiles["site"] == "post") & (profiles["metric"] == "second_moment")
                    & profiles["activation"].isin(activations) & profiles["scheme"].isin(schemes)
                    & ~profiles["shared"]].copy()
    post["rms"] = post["value"] ** 0.5
    palette = dict(zip(schemes, sns.color_palette("colorblind", len(schemes))))
    g = sns.relplot(data=post, x="layer", y="rms", hue="scheme", hue_order=schemes, col="activation",
                    col_order=activations, col_wrap=col_wrap, kind="line", errorbar=("ci", 95), height=height,
                    aspect=1.2, palette=palette, facet_kws={"sharey": False})
    for activation, ax in g.axes_dict.items():
        th = theory[(theory["activation"] == activation) & (theory["site"] == "post")]
        for scheme in schemes:
            t = th[th["scheme"] == scheme]
            with np.errstate(invalid="ignore"):
                ax.plot(t["layer"], np.sqrt(t["value"].to_numpy(dtype=float)), ls="--", lw=1, color=palette[scheme])
        ax.set_yscale("log")
    g.set_titles("{col_name}")
    g.set_axis_labels("layer", "RMS of activations")
    g.figure.text(0.01, 0.005, "dashed: mean-field theory (infinite width)", fontsize=11)
    plt.close(g.figure)
    return g.figure


FLOAT32_MAX = float(torch.finfo(torch.float32).max)


def theory_overflow_layer(scheme: str, activation: str, width: int) -> float:
    """The layer at which the theory's RMS of a linear or ReLU stack passes float32's largest
    value (inf for a gain <= 1)."""
    sigma_w2 = scheme_sigma_w2(scheme, activation, width)
    per_layer = sigma_w2 / (2.0 if activation == "relu" else 1.0)
    if per_layer <= 1.0 + 1e-12:  # balanced inits (up to the rounding of their std): never
        return math.inf
    return math.log(FLOAT32_MAX) / (0.5 * math.log(per_layer))


def shared_matrix_spectral_radius(scheme: str, activation: str, width: int, batch: int, seed: int,
                                  device: str = "cpu") -> float:
    """Largest |eigenvalue| of the one matrix that :func:`depth_profile` uses at every layer
    with ``shared=True`` (same generator stream: the inputs are drawn first, then the
    matrix). A product of L copies grows like this radius to the power L."""
    gen = torch.Generator(device=device).manual_seed(seed)
    torch.randn(batch, width, generator=gen, device=device)
    w = draw_weight(scheme, activation, width, gen)
    return float(torch.linalg.eigvals(w.double().cpu()).abs().max())


# ------------------------------------------------------------------ signal-depth figures and summaries

#: The smallest positive float32 (a subnormal): activations below about half of it round to 0.
FLOAT32_SMALLEST = float(torch.finfo(torch.float32).smallest_normal) * 2.0 ** -23


def xavier_scale_in_sweep(stds: Iterable[float], width: int | None) -> float:
    """The weight std of a saturation sweep nearest (on a log scale) Xavier's 1/sqrt(width)
    for a square layer: the negative control's scale (NaN without a width or stds)."""
    stds = sorted(float(v) for v in stds)
    if not width or not stds:
        return math.nan
    return min(stds, key=lambda v: abs(math.log(v) + 0.5 * math.log(width)))


def theory_underflow_layer(scheme: str, activation: str, width: int) -> float:
    """The layer at which the theory's RMS of a linear or ReLU stack falls below float32's
    smallest positive (subnormal) value (inf for a gain >= 1)."""
    sigma_w2 = scheme_sigma_w2(scheme, activation, width)
    per_layer = sigma_w2 / (2.0 if activation == "relu" else 1.0)
    if per_layer >= 1.0 - 1e-12:  # balanced inits (up to the rounding of their std): never
        return math.inf
    return math.log(FLOAT32_SMALLEST) / (0.5 * math.log(per_layer))


def range_exits(profiles: pd.DataFrame, width: int) -> pd.DataFrame:
    """Per scheme of a :func:`stack_sweep` table of linear stacks: how many runs left float32's
    range and where. ``overflowed_runs``/``first_overflow_layer``: runs with an infinite or NaN
    activation and the median first such layer; ``underflowed_runs``/``first_underflow_layer``:
    runs whose activations all became exactly 0 and the median first such layer (medians over
    the runs that did; NaN when none did); the theory's layers for both; ``depth_run``."""
    runs = overflow_layers(profiles)
    post = profiles[(profiles["site"] == "post") & (profiles["metric"] == "second_moment")]
    zero = post[post["value"] == 0].groupby(["activation", "scheme", "shared", "seed"])["layer"].min()
    runs = runs.set_index(["activation", "scheme", "shared", "seed"])
    runs["underflow_layer"] = zero
    runs = runs.reset_index()
    out = runs.groupby(["activation", "scheme"]).agg(
        runs=("seed", "count"), overflowed_runs=("overflow_layer", "count"),
        first_overflow_layer=("overflow_layer", "median"), underflowed_runs=("underflow_layer", "count"),
        first_underflow_layer=("underflow_layer", "median")).reset_index()
    out["theory_overflow_layer"] = [theory_overflow_layer(s, a, width)
                                    for a, s in zip(out["activation"], out["scheme"])]
    out["theory_underflow_layer"] = [theory_underflow_layer(s, a, width)
                                     for a, s in zip(out["activation"], out["scheme"])]
    out["depth_run"] = int(profiles["layer"].max())
    return out


def rms_ratio_by_layer(profiles: pd.DataFrame, activations: Iterable[str], schemes: Iterable[str]) -> pd.DataFrame:
    """Per seed and layer of independent-layer stacks: RMS of the activations over the input's
    (``rms_ratio``), inf where an activation was infinite or NaN (overflow; the pass stops
    there) and 0 where all were exactly 0 (underflow). Tidy: activation, scheme, seed, layer."""
    sel = profiles[profiles["activation"].isin(list(activations)) & profiles["scheme"].isin(list(schemes))
                   & ~profiles["shared"] & (profiles["site"] == "post")
                   & profiles["metric"].isin(["second_moment", "nonfinite"])]
    wide = sel.pivot_table(index=["activation", "scheme", "seed", "layer"], columns="metric", values="value",
                           dropna=False).dropna(how="all").reset_index()
    base = wide[wide["layer"] == 0].set_index(["activation", "scheme", "seed"])["second_moment"]
    ratio = np.sqrt(wide["second_moment"].to_numpy(dtype=float)
                    / base.reindex(pd.MultiIndex.from_frame(wide[["activation", "scheme", "seed"]])).to_numpy())
    ratio[wide["nonfinite"].to_numpy(dtype=float) > 0] = np.inf
    return wide[["activation", "scheme", "seed", "layer"]].assign(rms_ratio=ratio)


def geometric_summary(frame: pd.DataFrame, by: list[str], value: str, confidence: float = 0.95) -> pd.DataFrame:
    """Per group of ``by`` (one value per seed): ``n``, the geometric mean and the Student-t
    interval of log10 of the values, back-transformed (a band that cannot reach 0 on a log
    axis), and ``zero``/``infinite``: how many seeds were exactly 0 or not finite. The mean
    and band are NaN in a group with such a seed (a log scale cannot show them: figures mark
    those points instead)."""
    from scipy import stats

    rows = []
    for key, g in frame.groupby(by, sort=True):
        v = g[value].to_numpy(dtype=float)
        zero, infinite = int((v == 0).sum()), int((~np.isfinite(v)).sum())
        n, mean, low, high = len(v), math.nan, math.nan, math.nan
        if zero == 0 and infinite == 0 and (v > 0).all():
            logs = np.log10(v)
            mean = float(10 ** logs.mean())
            if n > 1:
                half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * logs.std(ddof=1) / math.sqrt(n)
                low, high = float(10 ** (logs.mean() - half)), float(10 ** (logs.mean() + half))
            else:
                low = high = mean
        rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,))), "n": n, "gmean": mean, "low": low,
                     "high": high, "zero": zero, "infinite": infinite})
    return pd.DataFrame(rows)


def _log10_ticks(ax, low: float, high: float) -> None:
    """A log axis from ``low`` to ``high`` with at most about six labelled decades."""
    import matplotlib.ticker as mticker

    lo, hi = math.floor(math.log10(low)), math.ceil(math.log10(high))
    step = max(1, math.ceil((hi - lo) / 6))
    ax.set_yscale("log")
    ax.set_ylim(10.0 ** lo, 10.0 ** hi)
    ax.yaxis.set_major_locator(mticker.FixedLocator([10.0 ** k for k in range(lo - lo % step, hi + 1, step)]))
    ax.yaxis.set_minor_locator(mticker.NullLocator())


def _geo_panel(ax, summary: pd.DataFrame, x: str, color, label: str | None, lw: float = 1.6) -> tuple[float, float]:
    """Geometric mean line and band of one curve; returns the (min, max) of what was drawn."""
    s = summary.sort_values(x)
    ax.plot(s[x], s["gmean"], color=color, lw=lw, label=label)
    ax.fill_between(s[x], s["low"], s["high"], color=color, alpha=0.25, lw=0)
    shown = pd.concat([s["gmean"], s["low"], s["high"]]).dropna()
    shown = shown[(shown > 0) & np.isfinite(shown)]
    return (float(shown.min()), float(shown.max())) if len(shown) else (math.nan, math.nan)


def _mark_exits(ax, summary: pd.DataFrame, x: str, color, every: bool = False) -> None:
    """Markers on the panel's edge at the first x (``every``: at each x) where a seed's value
    was 0 (bottom, down triangle) or infinite (top, up triangle)."""
    s = summary.sort_values(x)
    for col, y, marker in (("zero", 0.0, "v"), ("infinite", 1.0, "^")):
        hit = s[s[col] > 0][x]
        if len(hit):
            xs = hit.tolist() if every else [hit.iloc[0]]
            ax.plot(xs, [y] * len(xs), marker=marker, color=color, ms=8, ls="",
                    transform=ax.get_xaxis_transform(), clip_on=False)


def _exit_handles(labels=("first layer where a seed underflowed to 0",
                           "first layer where a seed overflowed (inf or NaN)")):
    import matplotlib.pyplot as plt

    return ([plt.Line2D([], [], marker="v", color="0.3", ls="", ms=8),
             plt.Line2D([], [], marker="^", color="0.3", ls="", ms=8)], list(labels))


def log_axis_plain(ax, axis: str = "y") -> None:
    """A log axis labelled at 1, 2 and 5 times powers of ten in plain numbers (for axes that
    span few decades, where matplotlib's minor labels collide)."""
    import matplotlib.ticker as mticker

    target = ax.yaxis if axis == "y" else ax.xaxis
    (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
    target.set_major_locator(mticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    target.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_locator(mticker.NullLocator())


def plot_rms_ratio(ratios: pd.DataFrame, theory: pd.DataFrame, activations: list[str], schemes: list[str],
                   ncols: int = 2, hlines: tuple[tuple[float, str], ...] = (), panel_height: float = 2.6,
                   titles: dict[str, str] | None = None):
    """RMS of the activations over the input's, by layer (from :func:`rms_ratio_by_layer`):
    per scheme the geometric mean over seeds and the t interval of its log10 (a band that
    cannot reach 0), one panel per activation, the mean-field theory dashed in the same colour
    (drawn only inside the measured range, which sets the axis); a panel whose values span less
    than a factor 10 gets a linear axis. A curve stops where a seed left float32's range, marked
    on the panel's edge (underflow to 0 at the bottom, overflow at the top). ``hlines``:
    dotted reference lines (value, label; an empty label shares the previous line's entry);
    ``titles``: panel titles by activation. Returns the figure."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    colors = sns.color_palette("colorblind", 10)  # orange and vermillion are far apart in this order
    palette = dict(zip(schemes, [colors[i] for i in (0, 1, 2, 4, 7, 9, 3, 5, 6, 8)]))
    nrows = math.ceil(len(activations) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(7.6, 0.9 + panel_height * nrows), squeeze=False, sharex=True)
    for ax in axes.flat[len(activations):]:
        ax.set_visible(False)
    for i, (activation, ax) in enumerate(zip(activations, axes.flat)):
        lows, highs = [], []
        for scheme in schemes:
            d = ratios[(ratios["activation"] == activation) & (ratios["scheme"] == scheme)]
            if d.empty:
                continue
            summ = geometric_summary(d, ["layer"], "rms_ratio")
            lo, hi = _geo_panel(ax, summ, "layer", palette[scheme], scheme if i == 0 else None)
            lows.append(lo)
            highs.append(hi)
            _mark_exits(ax, summ, "layer", palette[scheme])
            th = theory[(theory["activation"] == activation) & (theory["scheme"] == scheme)
                        & (theory["site"] == "post")]
            with np.errstate(invalid="ignore", over="ignore"):
                ax.plot(th["layer"], np.sqrt(th["value"].to_numpy(dtype=float)), ls="--", lw=1, color=palette[scheme])
        low, high = np.nanmin(lows), np.nanmax(highs)
        for value, _ in hlines:
            if value > 0:
                low, high = min(low, value), max(high, value)
        for value, _ in hlines:
            ax.axhline(value, color="k", lw=0.8, ls=":")
        if high / low >= 10:
            _log10_ticks(ax, low, high)
            ax.set_ylabel("RMS / input RMS\n(log scale)")
        else:
            pad = 0.08 * (high - low) or 0.05 * high
            ax.set_ylim(low - pad, high + pad)
            ax.set_ylabel("RMS / input RMS")
        ax.set_title({"identity": "linear", **(titles or {})}.get(activation, activation), fontsize=11)
        if i >= len(activations) - ncols:
            ax.set_xlabel("layer")
            ax.xaxis.set_tick_params(labelbottom=True)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    handles.append(plt.Line2D([], [], color="0.3", ls="--", lw=1))
    labels.append("mean-field theory")
    for value, label in hlines:
        if label:
            handles.append(plt.Line2D([], [], color="k", ls=":", lw=0.8))
            labels.append(label)
    exit_h, exit_l = _exit_handles()
    fig.tight_layout()
    if len(activations) < axes.size:  # the legend in the empty panel's place
        fig.legend(handles + exit_h, labels + exit_l, loc="center", bbox_to_anchor=axes.flat[-1].get_position(),
                   ncol=1, frameon=False, fontsize=11)
    else:
        fig.legend(handles + exit_h, labels + exit_l, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2,
                   frameon=False, fontsize=11)
    return fig


def plot_saturation(saturation: pd.DataFrame, control_std: float):
    """The sigmoid saturation sweep by weight std s (log axis), four panels: the fraction of
    saturated units (mean over hidden layers; the large-init check's quantity), the signal left
    at the last hidden layer over that at the first (the small-init check's quantity), the mean
    derivative and the weight-gradient norm at the first, middle and last hidden layers. Lines:
    mean over seeds with the range over seeds (linear panels) or geometric mean with the t
    interval of its log10 (log panels). Returns ``(figure, plotted data)``."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    depth = int(saturation["layer"].max())
    sat = (saturation[saturation["metric"] == "saturated"].groupby(["std", "seed"])["value"].mean()
           .rename("value").reset_index().assign(quantity="saturated fraction, mean over layers", layer=math.nan))
    sig = saturation[saturation["metric"] == "example_std"].pivot_table(index=["std", "seed"], columns="layer",
                                                                          values="value")
    sig = (sig[depth] / sig[1]).rename("value").reset_index().assign(quantity=f"signal ratio, layer {depth} / layer 1",
                                                                     layer=math.nan)
    layers = sorted({1, (depth + 1) // 2, depth})
    per_layer = saturation[saturation["metric"].isin(["mean_derivative", "weight_grad_norm"])
                           & saturation["layer"].isin(layers)].rename(columns={"metric": "quantity"})
    data = pd.concat([sat, sig, per_layer], ignore_index=True)[["quantity", "std", "layer", "seed", "value"]]
    fig, axes = plt.subplots(2, 2, figsize=(7.6, 5.8), sharex=True)
    (a, b), (c, d) = axes
    blue = sns.color_palette("colorblind", 1)[0]
    s = sat.groupby("std")["value"].agg(["mean", "min", "max"]).reset_index()
    a.plot(s["std"], s["mean"], color=blue, lw=1.6)
    a.fill_between(s["std"], s["min"], s["max"], color=blue, alpha=0.25, lw=0)
    a.axhline(0.5, color="k", ls=":", lw=0.8)
    a.set(ylim=(-0.03, 1.03), ylabel="fraction of units\nsaturated")
    summ = geometric_summary(sig, ["std"], "value")
    lo, hi = _geo_panel(b, summ, "std", blue, None)
    _mark_exits(b, summ, "std", blue, every=True)
    b.axhline(0.01, color="k", ls=":", lw=0.8)
    _log10_ticks(b, min(lo, 0.01), max(hi, 0.01))
    b.set_ylabel(f"signal left: layer {depth}\nover layer 1 (log scale)")
    colors = dict(zip(layers, sns.color_palette("viridis", len(layers))))
    for layer in layers:
        m = per_layer[(per_layer["quantity"] == "mean_derivative") & (per_layer["layer"] == layer)]
        m = m.groupby("std")["value"].agg(["mean", "min", "max"]).reset_index()
        c.plot(m["std"], m["mean"], color=colors[layer], lw=1.6, label=f"hidden layer {layer}")
        c.fill_between(m["std"], m["min"], m["max"], color=colors[layer], alpha=0.25, lw=0)
        g = geometric_summary(per_layer[(per_layer["quantity"] == "weight_grad_norm") & (per_layer["layer"] == layer)],
                              ["std"], "value")
        _geo_panel(d, g, "std", colors[layer], None)
        _mark_exits(d, g, "std", colors[layer], every=True)
    c.set(ylim=(0, 0.26), ylabel="mean derivative\nof the sigmoid")
    g_all = per_layer[per_layer["quantity"] == "weight_grad_norm"]["value"]
    g_all = g_all[(g_all > 0) & np.isfinite(g_all)]
    _log10_ticks(d, float(g_all.min()), float(g_all.max()))
    d.set_ylabel("weight-gradient norm\n(log scale)")
    for ax in axes.flat:
        ax.set_xscale("log")
        for v, ls in ((0.01, "-."), (1.0, "-."), (control_std, "--")):
            ax.axvline(v, color="0.45", ls=ls, lw=0.9)
    for ax in (c, d):
        ax.set_xlabel("weight std s (log scale)")
    handles, labels = c.get_legend_handles_labels()
    handles += [plt.Line2D([], [], color="k", ls=":", lw=0.8), plt.Line2D([], [], color="0.45", ls="-.", lw=0.9),
                plt.Line2D([], [], color="0.45", ls="--", lw=0.9)]
    labels += ["the checks' thresholds", "the claim's scales, s = 0.01 and 1",
               f"the control's scale, s = {control_std:g}"]
    exit_h, exit_l = _exit_handles(("a scale where a seed's value was exactly 0",
                                    "a scale where a seed's value was infinite or NaN"))
    handles, labels = handles + exit_h, labels + exit_l
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, frameon=False, fontsize=11)
    fig.tight_layout()
    return fig, data


def plot_gradient_profiles(grad_stats: pd.DataFrame, grad_hist: pd.DataFrame, seed: int):
    """Top: histograms of dL/dz at each hidden layer at init for one seed, old uniform rule and
    Xavier (Glorot & Bengio 2010, Fig. 7); bottom: the check's own quantity, std of dL/dz at
    each layer over that at the last hidden layer, geometric mean over seeds with the t interval
    of its log10, and the check's threshold 0.5. Returns ``(figure, plotted data)``."""
    import matplotlib.pyplot as plt
    import matplotlib.ticker as mticker
    import seaborn as sns

    inits = list(dict.fromkeys(grad_stats["init"]))
    std = grad_stats[grad_stats["metric"] == "grad_std"]
    last = std[std["layer"] == std["layer"].max()].set_index(["init", "seed"])["value"]
    ratio = std.assign(value=std["value"].to_numpy() / last.reindex(
        pd.MultiIndex.from_frame(std[["init", "seed"]])).to_numpy(), quantity="grad std / last layer's")
    hist = grad_hist[grad_hist["seed"] == seed].rename(columns={"density": "value"}).assign(quantity="histogram")
    data = pd.concat([ratio[["quantity", "init", "seed", "layer", "value"]],
                      hist[["quantity", "init", "seed", "layer", "bin_center", "value"]]], ignore_index=True)
    fig = plt.figure(figsize=(7.6, 5.6))
    grid = fig.add_gridspec(2, len(inits))
    layers = sorted(hist["layer"].unique())
    colors = dict(zip(layers, sns.color_palette("viridis", len(layers))))
    for j, init in enumerate(inits):
        ax = fig.add_subplot(grid[0, j])
        for layer in layers:
            h = hist[(hist["init"] == init) & (hist["layer"] == layer)]
            ax.plot(h["bin_center"], h["value"], color=colors[layer], lw=1.3, label=f"layer {layer}")
        ax.set(title=init, xlabel="dL/dz", ylabel="fraction of values" if j == 0 else "")
        ax.xaxis.set_major_locator(mticker.MaxNLocator(3, symmetric=True))
        ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
        if j == len(inits) - 1:
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=11)
    ax = fig.add_subplot(grid[1, :])
    palette = dict(zip(inits, sns.color_palette("colorblind", len(inits))))
    lows, highs = [0.5], [0.5]
    for init in inits:
        summ = geometric_summary(ratio[ratio["init"] == init], ["layer"], "value")
        lo, hi = _geo_panel(ax, summ, "layer", palette[init], init)
        lows.append(lo)
        highs.append(hi)
    ax.axhline(0.5, color="k", ls=":", lw=0.8, label="the check's threshold, 0.5")
    _log10_ticks(ax, np.nanmin(lows), np.nanmax(highs))
    ax.yaxis.set_major_formatter(mticker.LogFormatterSciNotation())
    ax.set(xlabel="hidden layer", ylabel="std of dL/dz over\nthe last layer's (log)", xticks=layers)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=11)
    fig.tight_layout()
    return fig, data


def accuracy_gap_by_depth(history: pd.DataFrame, finals: pd.DataFrame, old: str = "old-uniform",
                          new: str = "xavier-uniform") -> pd.DataFrame:
    """Per activation and depth of :func:`initstudy.train.compare_inits` runs: the final test
    accuracy (%) of both inits (mean over seeds), the gap new minus old in points (mean and
    two-sided 95 % t interval over seeds), the best test accuracy the old init's runs reached at
    any evaluation (highest over seeds, a fraction), ``old_stalled`` (that best at most
    :data:`STALL_ACCURACY`), diverged runs of each init (a diverged run counts at the test
    accuracy of the weights it had at the step whose loss was not finite), and whether the
    depth is the deepest / the shallow reference of the sweep."""
    from .claims import interval

    test = history[(history["split"] == "test") & (history["metric"] == "accuracy")]
    peak = test.groupby(["activation", "init", "depth", "seed"])["value"].max()
    acc = finals.set_index(["activation", "init", "depth", "seed"])
    rows = []
    for (activation, depth), _ in finals.groupby(["activation", "depth"]):
        a_old = acc.loc[(activation, old, depth)]
        a_new = acc.loc[(activation, new, depth)]
        seeds = sorted(set(a_old.index) & set(a_new.index))
        gaps = [100.0 * (a_new.loc[s, "accuracy"] - a_old.loc[s, "accuracy"]) for s in seeds]
        n, mean, low, high = interval(gaps)
        best_old = float(peak.loc[(activation, old, depth)].max())
        rows.append({"activation": activation, "depth": int(depth), "seeds": n,
                     "old_accuracy_mean": 100.0 * a_old["accuracy"].mean(),
                     "new_accuracy_mean": 100.0 * a_new["accuracy"].mean(),
                     "gap_mean": mean, "gap_low": low, "gap_high": high,
                     "old_best_max": best_old, "old_stalled": best_old <= STALL_ACCURACY,
                     "old_diverged_runs": int(a_old["diverged_at"].notna().sum()),
                     "new_diverged_runs": int(a_new["diverged_at"].notna().sum())})
    out = pd.DataFrame(rows)
    out["deepest"] = out["depth"] == out["depth"].max()
    out["reference"] = out["depth"] == out["depth"].min()
    return out


def accuracy_gap_glue(gaps: pd.DataFrame, activation: str = "tanh") -> dict:
    """The numbers and phrases the signal-depth chapter pastes from
    :func:`accuracy_gap_by_depth`: one line per depth (numbers only), the depths whose gap is
    clearly above one point although the old rule trained, those whose gap is not clearly above
    one point, the deepest depth, and the gap at 5 hidden layers (Glorot & Bengio's depth; NaN
    when not trained)."""
    rows = gaps[gaps["activation"] == activation].sort_values("depth")
    lines = []
    for _, r in rows.iterrows():
        lines.append(
            f"- **{r['depth']} hidden layer{'s' if r['depth'] > 1 else ''}**: final test accuracy "
            f"{r['new_accuracy_mean']:.1f} % under Xavier and {r['old_accuracy_mean']:.1f} % under the old rule "
            f"(means over {r['seeds']} seeds); Xavier's lead {r['gap_mean']:.2f} points (95 % interval "
            f"{r['gap_low']:.2f} to {r['gap_high']:.2f}); best test accuracy of the old rule at any evaluation "
            f"{100 * r['old_best_max']:.1f} %; diverged runs {r['old_diverged_runs']} (old rule) and "
            f"{r['new_diverged_runs']} (Xavier).")
    deep = rows[~rows["reference"]]
    clear = deep["gap_low"] >= 1
    five = rows[rows["depth"] == 5]

    def depths(sel) -> str:
        return ", ".join(str(d) for d in sel["depth"]) or "no depth"

    return {
        f"gap-lines-{activation}": "\n".join(lines),
        "gap-trained-depths": depths(deep[clear & ~deep["old_stalled"]]),
        "gap-small-depths": depths(deep[~clear]),
        "gap-deepest-depth": float(rows["depth"].max()),
        f"gap-{activation}-5": float(five["gap_mean"].iloc[0]) if len(five) else math.nan,
        f"gap-{activation}-5-low": float(five["gap_low"].iloc[0]) if len(five) else math.nan,
        f"gap-{activation}-5-high": float(five["gap_high"].iloc[0]) if len(five) else math.nan,
    }


def range_exit_glue(exits: pd.DataFrame) -> dict:
    """Phrases and numbers of :func:`range_exits` for the text: which schemes overflowed or
    underflowed, in how many runs and where (numbers only), and per scheme the median first
    overflow layer and the theory's."""
    out = {}
    for kind in ("overflow", "underflow"):
        hit = exits[exits[f"{kind}ed_runs"] > 0]
        out[f"{kind}-summary"] = "; ".join(
            f"{r['scheme']} in {r[f'{kind}ed_runs']} of {r['runs']} runs, median first layer "
            f"{r[f'first_{kind}_layer']:.0f} (theory {r[f'theory_{kind}_layer']:.0f})"
            for _, r in hit.iterrows()) or "none"
    for _, r in exits.iterrows():
        out[f"overflow-{r['scheme']}"] = float(r["first_overflow_layer"])
        out[f"theory-overflow-{r['scheme']}"] = float(r["theory_overflow_layer"])
    return out



# ------------------------------------------------------------------ the interactive figure: a slider over the gain

#: The gains of the interactive figure's slider, times the variance-preserving init (the
#: "gain-g" schemes): 0.5 to 1.5 by 0.05, so that 0.9, 0.95, 1, 1.05 and 1.1 are among them.
SLIDER_GAINS: tuple[float, ...] = tuple(round(0.5 + 0.05 * i, 2) for i in range(21))


@torch.no_grad()
def gain_grid(activations: Iterable[str], gains: Iterable[float], seeds: Iterable[int], width: int, depth: int,
              batch: int, device: str = "cpu", max_layers: int = 200) -> pd.DataFrame:
    """RMS of the activations over the input's, layer by layer, through stacks of ``depth``
    independent square layers (no biases) of every gain of ``gains`` ("gain-g": weights
    N(0, g^2 c / n), c = 2 for ReLU and 1 otherwise) and every activation: the grid behind the
    interactive figure (:func:`interactive_gain_figure`).

    Per seed, one input batch and one standard-normal matrix E_l per layer serve every gain and
    every activation (layer l's weights are g sqrt(c/n) E_l): common random numbers, so that a
    curve moves smoothly with the slider and differences between gains are not noise. Recorded
    at layer 0 (ratio 1), every ``ceil(depth / max_layers)`` layers and at the last. Columns
    activation, gain, seed, layer, rms_ratio; NaN once an activation is not finite (overflow),
    0 where every activation underflowed to 0."""
    acts = list(activations)
    gains = [float(g) for g in gains]
    seeds = [int(s) for s in seeds]
    unknown = [a for a in acts if a not in ACT_FUNCS]
    if unknown:
        raise ValueError(f"unknown activation {unknown[0]!r}; allowed: {', '.join(ACT_FUNCS)}")
    if not acts or not gains or not seeds:
        raise ValueError("gain_grid needs at least one activation, one gain and one seed")
    if min(gains) <= 0 or not all(math.isfinite(g) for g in gains):
        raise ValueError(f"gains must be positive and finite, got {min(gains)!r}")
    for name, value in (("width", width), ("depth", depth), ("batch", batch), ("max_layers", max_layers)):
        if int(value) < 1:
            raise ValueError(f"{name} must be at least 1, got {value!r}")
    every = max(1, math.ceil(depth / max_layers))
    recorded = [layer for layer in range(depth + 1) if layer % every == 0 or layer == depth]
    g = torch.tensor(gains, dtype=torch.float32, device=device).view(-1, 1, 1)
    frames = []
    for seed in seeds:
        gen = torch.Generator(device=device).manual_seed(seed)
        x = torch.randn(batch, width, generator=gen, device=device)
        rms0 = float(x.double().pow(2).mean().sqrt())
        h = {a: x.expand(len(gains), batch, width) for a in acts}
        scale = {a: g * math.sqrt((2.0 if a == "relu" else 1.0) / width) for a in acts}
        out = {a: np.full((len(gains), len(recorded)), np.nan) for a in acts}
        for a in acts:
            out[a][:, 0] = 1.0
        column = 1
        for layer in range(1, depth + 1):
            e = torch.randn(width, width, generator=gen, device=device)
            keep = layer in recorded[column:column + 1]
            for a in acts:
                h[a] = ACT_FUNCS[a]((h[a] @ e.T) * scale[a])
                if keep:
                    with np.errstate(invalid="ignore", over="ignore"):
                        rms = h[a].double().pow(2).mean(dim=(1, 2)).sqrt().cpu().numpy() / rms0
                    out[a][:, column] = np.where(np.isfinite(rms), rms, np.nan)
            column += keep
        for a in acts:
            frames.append(pd.DataFrame({
                "activation": a, "gain": np.repeat(gains, len(recorded)), "seed": seed,
                "layer": np.tile(recorded, len(gains)), "rms_ratio": out[a].ravel()}))
    return pd.concat(frames, ignore_index=True)


def gain_grid_summary(grid: pd.DataFrame) -> pd.DataFrame:
    """Per activation, gain and layer of :func:`gain_grid`: the geometric mean of the RMS
    ratio over seeds (``gmean``, NaN from the first layer where a seed left float32's range,
    see :func:`geometric_summary`) and the mean-field theory's (``theory``: the square root of
    the activations' second moment, input second moment 1)."""
    if grid.empty:
        raise ValueError("gain_grid_summary: the grid is empty")
    summary = geometric_summary(grid, ["activation", "gain", "layer"], "rms_ratio")
    depth = int(grid["layer"].max())
    theory = {}
    for (activation, gain), _ in summary.groupby(["activation", "gain"]):
        _, post = theory_second_moment(activation, _gain_scheme(float(gain))(activation), depth)
        with np.errstate(invalid="ignore", over="ignore"):
            theory[(activation, gain)] = np.concatenate([[1.0], np.sqrt(post)])
    summary["theory"] = [float(theory[(a, g)][layer]) for a, g, layer in
                         zip(summary["activation"], summary["gain"], summary["layer"])]
    return summary[["activation", "gain", "layer", "n", "gmean", "low", "high", "zero", "infinite", "theory"]]


_ACT_LABEL = {"identity": "linear", "tanh": "tanh", "sigmoid": "sigmoid", "relu": "ReLU"}


def _shown(values) -> list:
    """Values for a log axis, as JSON: 4 significant digits, null (a gap in the curve) where not
    positive or not finite."""
    return [float(f"{v:.4g}") if math.isfinite(v) and v > 0 else None for v in map(float, values)]


def interactive_gain_figure(summary: pd.DataFrame, initial_gain: float = 1.0,
                            thresholds: tuple[float, ...] = (10.0, 0.1)):
    """The interactive figure of :func:`gain_grid_summary`: RMS of the activations over the
    input's by layer, measured (solid; geometric mean over seeds) and the mean-field theory
    (dashed), one colour per activation (a legend entry shows or hides both); a slider over the
    gain (each step restyles every curve: precomputed, no kernel) and a menu to show one
    activation or all. Dotted: ``thresholds``. A plotly figure; its JavaScript (plotly.js) is
    not included: the book serves it (see :mod:`initstudy.bookext`)."""
    import plotly.graph_objects as go

    acts = [a for a in ("identity", "relu", "tanh", "sigmoid") if a in set(summary["activation"])]
    acts += sorted(set(summary["activation"]) - set(acts))
    gains = sorted(float(g) for g in summary["gain"].unique())
    if not gains:
        raise ValueError("interactive_gain_figure: no gain in the summary")
    start = min(range(len(gains)), key=lambda i: abs(gains[i] - initial_gain))
    colors = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9"]  # Okabe-Ito, colour-blind safe
    values = pd.concat([summary["gmean"], summary["theory"]]).to_numpy(dtype=float)
    values = values[np.isfinite(values) & (values > 0)]
    lo = max(math.floor(math.log10(min(values.min(), *thresholds))), -12) if len(values) else -3
    hi = min(math.ceil(math.log10(max(values.max(), *thresholds))), 12) if len(values) else 3
    curves = {}
    for a in acts:
        for gain in gains:
            d = summary[(summary["activation"] == a) & (summary["gain"] == gain)].sort_values("layer")
            curves[(a, gain)] = (d["layer"].tolist(), _shown(d["gmean"]), _shown(d["theory"]))
    fig = go.Figure()
    for i, a in enumerate(acts):
        layers, measured, theory = curves[(a, gains[start])]
        color = colors[i % len(colors)]
        label = _ACT_LABEL.get(a, a)
        fig.add_trace(go.Scatter(x=layers, y=measured, mode="lines", name=label, legendgroup=a,
                                 line={"color": color, "width": 2.5},
                                 hovertemplate="layer %{x}: %{y:.3g}<extra>" + label + "</extra>"))
        fig.add_trace(go.Scatter(x=layers, y=theory, mode="lines", name=f"{label} (theory)", legendgroup=a,
                                 showlegend=False, line={"color": color, "width": 1.5, "dash": "dash"},
                                 hovertemplate="layer %{x}: %{y:.3g}<extra>" + label + " (theory)</extra>"))
    steps = []
    for gain in gains:
        ys = []
        for a in acts:
            _, measured, theory = curves[(a, gain)]
            ys += [measured, theory]
        steps.append({"method": "restyle", "label": f"{gain:g}", "args": [{"y": ys}]})
    menu = [{"method": "restyle", "label": "all activations", "args": [{"visible": [True] * (2 * len(acts))}]}]
    for i, a in enumerate(acts):
        menu.append({"method": "restyle", "label": _ACT_LABEL.get(a, a),
                     "args": [{"visible": [j // 2 == i for j in range(2 * len(acts))]}]})
    depth = int(summary["layer"].max())
    fig.update_layout(
        height=600, margin={"l": 70, "r": 20, "t": 110, "b": 40}, template="plotly_white",
        font={"size": 14},
        xaxis={"title": {"text": "layer"}, "range": [0, depth]},
        yaxis={"title": {"text": "RMS of the activations / input's"}, "type": "log", "range": [lo, hi],
               "exponentformat": "power"},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0, "xanchor": "left",
                "title": {"text": "solid: measured, dashed: theory"}},
        shapes=[{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": t, "y1": t,
                 "line": {"color": "black", "width": 1, "dash": "dot"}} for t in thresholds],
        sliders=[{"active": start, "currentvalue": {"prefix": "gain g = "}, "pad": {"t": 50}, "steps": steps}],
        updatemenus=[{"type": "dropdown", "buttons": menu, "x": 0.0, "xanchor": "left", "y": 1.2,
                      "yanchor": "bottom", "active": 0, "showactive": True}],
    )
    return fig


def plot_gain_grid(summary: pd.DataFrame):
    """The interactive figure's data at a glance, for print and the figures index: one panel
    per activation, one curve per gain of the grid (colour: the gain), geometric mean over
    seeds; log axis. Returns the matplotlib figure."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize, TwoSlopeNorm

    acts = [a for a in ("identity", "relu", "tanh", "sigmoid") if a in set(summary["activation"])]
    acts += sorted(set(summary["activation"]) - set(acts))
    gains = sorted(float(g) for g in summary["gain"].unique())
    if min(gains) < 1.0 < max(gains):  # below 1 blue, above red, 1 itself grey
        norm = TwoSlopeNorm(vmin=min(gains), vcenter=1.0, vmax=max(gains))
    else:
        norm = Normalize(vmin=min(gains) - 1e-9, vmax=max(gains) + 1e-9)
    cmap = plt.get_cmap("coolwarm")
    ncols = 2 if len(acts) > 1 else 1
    nrows = math.ceil(len(acts) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(7.6, 0.8 + 2.6 * nrows), squeeze=False, sharex=True)
    for ax in axes.flat[len(acts):]:
        ax.set_visible(False)
    for i, (a, ax) in enumerate(zip(acts, axes.flat)):
        d = summary[summary["activation"] == a]
        for gain in gains:
            s = d[d["gain"] == gain].sort_values("layer")
            y = s["gmean"].to_numpy(dtype=float)
            y = np.where(np.isfinite(y) & (y > 0), y, np.nan)
            ax.plot(s["layer"], y, color=cmap(norm(gain)), lw=1.8 if gain == 1.0 else 1.1)
        shown = d["gmean"].to_numpy(dtype=float)
        shown = shown[np.isfinite(shown) & (shown > 0)]
        if len(shown) and shown.max() / shown.min() >= 10:
            _log10_ticks(ax, max(shown.min(), 1e-12), min(shown.max(), 1e12))
        if i % ncols == 0:
            ax.set_ylabel("RMS / input RMS")
        ax.set_title(_ACT_LABEL.get(a, a) + (" (log scale)" if ax.get_yscale() == "log" else ""), fontsize=11)
        if i >= len(acts) - ncols:
            ax.set_xlabel("layer")
            ax.xaxis.set_tick_params(labelbottom=True)
    fig.tight_layout(rect=(0, 0, 0.88, 1))
    bar = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=list(axes.flat), fraction=0.04, pad=0.03)
    bar.set_label("gain g (times the variance-preserving init)")
    return fig


__all__ += ["SLIDER_GAINS", "gain_grid", "gain_grid_summary", "interactive_gain_figure", "plot_gain_grid"]
