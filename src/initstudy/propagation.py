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


#: Schemes of the depth experiments, as n Var[W] (= sigma_w^2) for a square n x n layer. For
#: the uniform ones the distribution is uniform with that variance, else normal.
STACK_SCHEMES: dict[str, Callable[[str], float] | str] = {
    "normal-1": "absolute:1.0",
    "normal-0.01": "absolute:0.01",
    "old-uniform": lambda act: 1.0 / 3.0,
    "xavier-uniform": lambda act: 1.0,
    "xavier-normal": lambda act: 1.0,
    "kaiming-normal": lambda act: 2.0,
}


def scheme_sigma_w2(scheme: str, activation: str, width: int) -> float:
    """n Var[W] of a scheme for a square layer of ``width`` units: "normal-1" is N(0, 1) and
    "normal-0.01" N(0, 0.01^2) whatever the width; "gain-0.95" and the like are that gain
    times the stack's variance-preserving init (sqrt(2/n) for ReLU, 1/sqrt(n) otherwise)."""
    if scheme.startswith("gain-"):
        return _gain_scheme(float(scheme[5:]))(activation)
    rule = STACK_SCHEMES[scheme]
    if isinstance(rule, str):
        std = float(rule.split(":")[1])
        return std * std * width
    return rule(activation)


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
    5.987
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
                              finals: pd.DataFrame, depth: int, seeds: list[int]) -> dict[str, dict[str, list]]:
    """Per-seed values of the ledger's metrics for the four claims of the signal-depth chapter.

    ``finals``: final test accuracy per (activation, init, depth, seed), from
    :func:`initstudy.train.final_accuracy`."""
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

    acc = finals.set_index(["activation", "init", "depth", "seed"])["accuracy"]
    deepest = int(finals["depth"].max())
    shallowest = int(finals["depth"].min())

    def accs(activation: str, init: str, d: int) -> list[float]:
        return [float(acc.get((activation, init, d, s), math.nan)) for s in seeds]

    old_deep, xav_deep = accs("tanh", "old-uniform", deepest), accs("tanh", "xavier-uniform", deepest)
    xav_shallow = accs("tanh", "xavier-uniform", shallowest)
    sig_deep, sig_shallow = accs("sigmoid", "xavier-uniform", deepest), accs("sigmoid", "xavier-uniform", shallowest)
    return {
        "sigmoid-saturation": {
            "sigmoid_flat_z": [sigmoid_flat_z(0.01)],
            "large_init_saturated_fraction": sat_mean(1.0, "saturated"),
            "small_init_signal_ratio": signal_ratio(0.01),
        },
        "depth-explode-vanish": {
            "std_ratio_gain_1.05": std_ratio(profiles, "identity", "gain-1.05", at, seeds),
            "std_ratio_gain_0.95": std_ratio(profiles, "identity", "gain-0.95", at, seeds),
            "stack_depth": [float(depth)],
        },
        "old-uniform-vanishes": {
            "old_uniform_grad_ratio": grad_ratio("old-uniform"),
            "old_uniform_accuracy_gap": [100 * (x - o) for x, o in zip(xav_deep, old_deep)],
            "xavier_deep_tanh_accuracy": xav_deep,
        },
        "xavier-unit-variance": {
            "xavier_linear_std_100": std_ratio(profiles, "identity", "xavier-normal", at, seeds),
            "xavier_tanh_std_100": std_ratio(profiles, "tanh", "xavier-normal", at, seeds),
            "stack_depth": [float(depth)],
            "xavier_deep_tanh_vs_shallow": [100 * (d - s) for d, s in zip(xav_deep, xav_shallow)],
            "shallow_tanh_accuracy": xav_shallow,
            "xavier_deep_sigmoid_vs_shallow": [100 * (d - s) for d, s in zip(sig_deep, sig_shallow)],
            "shallow_sigmoid_accuracy": sig_shallow,
        },
    }


def xavier_kaiming_measurements(relu: pd.DataFrame, profiles: pd.DataFrame, finals: pd.DataFrame,
                                stack_depth: int, he_depth: int, seeds: list[int]) -> dict[str, dict[str, list]]:
    """Per-seed values of the ledger's metrics for ``relu-halves-variance`` and
    ``xavier-fails-relu``. ``finals`` has one row per (init, depth, lr, seed)."""
    at = min(30, stack_depth)
    rel = relu.set_index("seed")

    def best(init: str) -> list[float]:
        sel = finals[(finals["init"] == init) & (finals["depth"] == he_depth)]
        return [float(sel[sel["seed"] == s]["accuracy"].max()) for s in seeds]

    return {
        "relu-halves-variance": {
            "relu_second_moment": [float(rel.loc[s, "second_moment"]) for s in seeds],
            "relu_variance": [float(rel.loc[s, "variance"]) for s in seeds],
            "relu_mean": [float(rel.loc[s, "mean"]) for s in seeds],
        },
        "xavier-fails-relu": {
            "relu_xavier_rms_ratio_30": rms_ratio(profiles, "relu", "xavier-normal", at, seeds),
            "relu_kaiming_rms_ratio_30": rms_ratio(profiles, "relu", "kaiming-normal", at, seeds),
            "stack_depth": [float(stack_depth)],
            "he_fig3_xavier_best_accuracy": best("xavier-normal"),
            "he_fig3_kaiming_best_accuracy": best("kaiming-normal"),
            "he_depth": [float(he_depth)],
        },
    }


# ------------------------------------------------------------------ sweeps and plots


def stack_sweep(activations: Iterable[str], schemes: Iterable[str], seeds: Iterable[int], width: int, depth: int,
                batch: int, shared: bool = False, record_every: int = 1, progress: bool = True,
                device: str = "cpu") -> pd.DataFrame:
    """:func:`depth_profile` over activations x schemes x seeds, with a progress bar (the
    random streams of a CUDA device differ from the CPU's: same statistics, other draws)."""
    from itertools import product

    from tqdm.auto import tqdm

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
    g.figure.text(0.01, 0.005, "dashed: mean-field theory (infinite width)", fontsize=8)
    plt.close(g.figure)
    return g.figure


FLOAT32_MAX = float(torch.finfo(torch.float32).max)


def theory_overflow_layer(scheme: str, activation: str, width: int) -> float:
    """The layer at which the theory's RMS of a linear or ReLU stack passes float32's largest
    value (inf for a gain <= 1)."""
    sigma_w2 = scheme_sigma_w2(scheme, activation, width)
    per_layer = sigma_w2 / (2.0 if activation == "relu" else 1.0)
    if per_layer <= 1.0:
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
