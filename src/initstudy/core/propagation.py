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

from initstudy.core.inits import weight_std
from initstudy.core.progress import tqdm

__all__ = [
    "FLOAT32_MAX",
    "FLOAT32_SMALLEST",
    "ACT_FUNCS",
    "STACK_SCHEMES",
    "scheme_sigma_w2",
    "draw_weight",
    "depth_profile",
    "theory_second_moment",
    "theory_frame",
    "overflow_layers",
    "std_ratio",
    "rms_ratio",
    "stack_sweep",
    "plot_rms_by_layer",
    "theory_overflow_layer",
    "theory_underflow_layer",
    "geometric_summary",
    "fixed_point",
    "chi",
    "signal_preserving_std",
]

ACT_FUNCS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "identity": lambda z: z,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
}


def _gain_scheme(g: float) -> Callable[[str], float]:
    # "gain g": g times the variance-preserving std of the stack (sqrt(2/n) for ReLU, else 1/sqrt(n))
    return lambda act: g * g * (2.0 if act == "relu" else 1.0)


#: Schemes of the depth experiments. "normal-1" and "normal-0.01" are N(0, 1) and N(0, 0.01^2)
#: whatever the width; the others draw with :func:`initstudy.core.inits.weight_std` (their one
#: home), uniform ones uniform, the rest normal.
STACK_SCHEMES = ("normal-1", "normal-0.01", "old-uniform", "xavier-uniform", "xavier-normal", "kaiming-normal")


def scheme_sigma_w2(scheme: str, activation: str, width: int) -> float:
    """n Var[W] of a scheme for a square layer of ``width`` units: "normal-1" is N(0, 1) and
    "normal-0.01" N(0, 0.01^2) whatever the width; "gain-0.95" and the like are that gain
    times the stack's variance-preserving init (sqrt(2/n) for ReLU, 1/sqrt(n) otherwise);
    the rest from :func:`initstudy.core.inits.weight_std` with the scheme's default gain."""
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
    with np.errstate(over="ignore"):  # exp(-z) overflows to inf for very negative z: the sigmoid is then 0
        f = np.tanh(z) if activation == "tanh" else 1.0 / (1.0 + np.exp(-z))
    return float(np.sum(weights * f * f) / math.sqrt(2.0 * math.pi))


def _expect_deriv_sq(activation: str, q: float) -> float:
    """E[act'(z)^2] for z ~ N(0, q): closed form for identity and ReLU, else adaptive quadrature
    (for large q the integrand is a spike of width about 1/sqrt(q) at 0, which a fixed
    Gauss-Hermite rule misses: 101 nodes gave chi 1.0 where it is 0.973)."""
    from scipy import integrate

    if activation == "identity":
        return 1.0
    if activation == "relu":
        return 0.5
    r = math.sqrt(max(q, 0.0))

    def deriv(x: float) -> float:
        if activation == "tanh":
            return 1.0 - math.tanh(x) ** 2
        sig = 1.0 / (1.0 + math.exp(-x)) if x > -700 else 0.0
        return sig * (1.0 - sig)

    value, _ = integrate.quad(lambda z: deriv(r * z) ** 2 * math.exp(-z * z / 2) / math.sqrt(2 * math.pi),
                              -12.0, 12.0, points=[0.0], limit=400)
    return float(value)


def fixed_point(activation: str, sigma_w2: float, iterations: int = 2000, q0: float = 1.0) -> float:
    """The fixed point q* of the mean-field variance map q -> sigma_w^2 E[act(z)^2], z ~ N(0, q)
    (Poole et al. 2016, Eq. 3, without biases), iterated from ``q0``; inf where it diverges
    (the identity and ReLU above their critical sigma_w^2), 0 where it vanishes.

    >>> round(fixed_point("tanh", 0.5), 6), fixed_point("relu", 2.0)
    (0.0, 1.0)
    """
    q = q0
    for _ in range(iterations):
        nxt = sigma_w2 * _expect_sq(activation, q)
        if not math.isfinite(nxt) or nxt > 1e30:
            return math.inf
        if abs(nxt - q) <= 1e-12 * max(1.0, q):
            return nxt
        q = nxt
    return q


def chi(activation: str, sigma_w2: float) -> float:
    """The slope of the mean-field correlation map at its fixed point, chi = sigma_w^2
    E[act'(z)^2] with z ~ N(0, q*) (Poole et al. 2016, Eq. 5; Schoenholz et al. 2017): below 1
    two inputs' activations converge with depth (the signal that tells examples apart is lost),
    above 1 they diverge; at 1 the signal is preserved.

    >>> chi("relu", 2.0), round(chi("tanh", 1.0), 2)  # tanh: q* -> 0 only like 1/l, so 1 - 5e-4 here
    (1.0, 1.0)
    """
    q = fixed_point(activation, sigma_w2)
    if not math.isfinite(q):
        q = 1.0  # a homogeneous activation: chi does not depend on the scale of q
    return sigma_w2 * _expect_deriv_sq(activation, q)


def signal_preserving_std(activation: str, width: int) -> float:
    """The weight std s of a square layer of ``width`` inputs (every weight N(0, s^2), no bias)
    that preserves the signal through a deep ``activation`` stack at init: chi = 1
    (:func:`chi`), solved for sigma_w^2 = width s^2 by bisection on a log scale. The one home
    of this scale, shared by every chapter that needs it: 1/sqrt(width) for the identity and
    tanh (Xavier's), sqrt(2/width) for ReLU (He's), and about 10/sqrt(width) for the sigmoid,
    whose slope of 1/4 at 0 and mean of 1/2 put it far above Xavier's.

    >>> round(signal_preserving_std("relu", 200), 6), signal_preserving_std("tanh", 100)
    (0.1, 0.1)
    """
    if activation in ("identity", "relu", "tanh"):
        # closed forms: chi = sigma_w^2 for the identity, sigma_w^2 / 2 for ReLU; for tanh without
        # biases q* = 0 up to sigma_w = 1, where chi = sigma_w^2 tanh'(0)^2 reaches 1
        return math.sqrt((2.0 if activation == "relu" else 1.0) / width)
    lo, hi = math.log(1e-2), math.log(1e6)
    for _ in range(60):
        mid = (lo + hi) / 2
        if chi(activation, math.exp(mid)) < 1.0:
            lo = mid
        else:
            hi = mid
    return math.sqrt(math.exp((lo + hi) / 2) / width)


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


# ------------------------------------------------------------------ sweeps and plots


def stack_sweep(activations: Iterable[str], schemes: Iterable[str], seeds: Iterable[int], width: int, depth: int,
                batch: int, shared: bool = False, record_every: int = 1, progress: bool = True,
                device: str = "cpu") -> pd.DataFrame:
    """:func:`depth_profile` over activations x schemes x seeds, with a progress bar (the
    random streams of a CUDA device differ from the CPU's: same statistics, other draws)."""
    from itertools import product

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


#: The largest float32: a signal past it overflows to inf.
FLOAT32_MAX = float(torch.finfo(torch.float32).max)

#: The smallest positive float32 (a subnormal): activations below about half of it round to 0.
FLOAT32_SMALLEST = float(torch.finfo(torch.float32).smallest_normal) * 2.0 ** -23


def theory_overflow_layer(scheme: str, activation: str, width: int) -> float:
    """The layer at which the theory's RMS of a linear or ReLU stack passes float32's largest
    value (inf for a gain <= 1)."""
    sigma_w2 = scheme_sigma_w2(scheme, activation, width)
    per_layer = sigma_w2 / (2.0 if activation == "relu" else 1.0)
    if per_layer <= 1.0 + 1e-12:  # balanced inits (up to the rounding of their std): never
        return math.inf
    return math.log(FLOAT32_MAX) / (0.5 * math.log(per_layer))


def theory_underflow_layer(scheme: str, activation: str, width: int) -> float:
    """The layer at which the theory's RMS of a linear or ReLU stack falls below float32's
    smallest positive (subnormal) value (inf for a gain >= 1)."""
    sigma_w2 = scheme_sigma_w2(scheme, activation, width)
    per_layer = sigma_w2 / (2.0 if activation == "relu" else 1.0)
    if per_layer >= 1.0 - 1e-12:  # balanced inits (up to the rounding of their std): never
        return math.inf
    return math.log(FLOAT32_SMALLEST) / (0.5 * math.log(per_layer))


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
