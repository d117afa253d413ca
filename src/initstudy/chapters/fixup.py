"""Residual networks without BatchNorm: the chapter's declarations, the variance through residual
blocks at init, the training sweeps (the Fixup paper's Fig. 3 analogue, longer runs, ablations),
and the chapter's tables, figures and glue. The networks and Fixup itself are
:mod:`initstudy.core.resnets`'s.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from initstudy.core.progress import tqdm
from initstudy.core.resnets import SCALAR_LR_FACTOR, fixup_constants, fixup_scale, param_groups, resnet
from initstudy.core.train import TrainConfig, sweep
from initstudy.study import claims
from initstudy.study.catalog import NotebookSpec, Param, Rule, common_params, per, same, subset_fits
from initstudy.study.claims import Check, Claim, Criterion, interval
from initstudy.study.words import joined

__all__ = [
    "SPEC",
    "CLAIMS",
    "GROWTH_KINDS",
    "HOMOGENEOUS",
    "block_growth",
    "growth_sweep",
    "mean_growth",
    "padding_theory",
    "METHODS",
    "resnet_sweep",
    "LEFT_TO_GPU",
    "GPU_PROFILE_SECONDS",
    "work_plan",
    "left_to_gpu_table",
    "nonorm_failures",
    "nonorm_failures_text",
    "overflow_blocks",
    "overflow_text",
    "first_epoch_glue",
    "ablation_glue",
    "fixup_measurements",
    "scalars_measurements",
    "SCALAR_ABLATIONS",
    "LEARNED_AT_LEAST",
    "gap_by_step",
    "gap_trend",
    "gap_trend_glue",
    "plot_scalar_gains",
    "recipe_table",
    "identity_at_init",
    "growth_geometric_means",
    "accuracy_summary",
    "paired_gaps",
    "ablation_table",
    "check_table",
    "plot_growth",
    "plot_depth_rms",
    "plot_first_epoch",
    "plot_training_curves",
]


# ------------------------------------------------------------------ the chapter's declarations
# The notebook's parameters, validated before any work (run, sweep and the notebook itself), and
# the claims it settles, each with its criterion and negative control, written before the runs
# that measure them. initstudy.chapters wires them into the catalog and the ledger.

#: The depth of a CIFAR ResNet of basic blocks: 6n + 2 (three stages of n blocks of 2 layers).
RESNET_DEPTH_RULE = Rule("of the form 6n + 2 (8, 14, 20, 26, 32 and so on)", lambda d: d >= 8 and (d - 2) % 6 == 0)


SPEC = NotebookSpec(
    name="fixup",
    title="Residual networks without BatchNorm: Fixup",
    summary="Variance growth through residual blocks up to 10,000 layers; the Fixup paper's Fig. 3 analogue "
            "(first-epoch accuracy against depth); Fixup against BatchNorm and zero-gamma BN; ablations.",
    data_params=("dataset",),
    constraints=(subset_fits("batch_size"), subset_fits("fig3_batch", "fig3_subset")),
    params=(
        *common_params((2, 3, 10)),
        Param("growth_width", "int", "channels of the blocks of the variance experiment (the verdict's width)",
              per(16, 64, 128), min=2, max=1024),
        Param("growth_blocks", "int", "residual blocks of the variance experiment's verdict runs",
              per(50, 500, 5000), min=2, max=100000),
        Param("range_blocks", "int", "blocks of the 16-channel runs drawn to the paper's 10,000-layer range",
              per(100, 5000, 5000), min=2, max=100000),
        Param("growth_size", "int", "map size (pixels per side) of the variance experiment", same(8), min=2, max=256),
        Param("growth_batch", "int", "examples in the variance experiment's batch", same(8), min=2, max=4096),
        Param("dataset", "str", "the real data set of the training runs", per("digits", "fashion-mnist", "fashion-mnist"),
              choices=("digits", "mnist-5k", "fashion-mnist", "mnist", "cifar10")),
        Param("resize", "int", "resize images to this many pixels per side (0: keep)", per(14, 14, 0), min=0,
              max=512),
        Param("train_subset", "int", "training examples kept (0 = all)", per(500, 6000, 0), min=0, max=1_000_000),
        Param("test_subset", "int", "test and validation examples kept, each (0 = all)", per(300, 2000, 0), min=0,
              max=1_000_000),
        Param("width", "int", "channels of the first stage of the trained ResNets (16 in the paper)",
              per(8, 16, 16), min=1, max=1024),
        Param("batch_size", "int", "training mini-batch size", per(32, 64, 128), min=1, max=65536),
        Param("base_lr", "float", "learning rate per 128 examples (the default BN lr 0.1; scaled by batch/128)",
              same(0.1), min=1e-6, max=10.0),
        Param("weight_decay", "float", "weight decay (the official script's default 1e-4)", same(1e-4), min=0.0,
              max=1.0),
        Param("warmup_steps", "int", "linear learning-rate warm-up steps (0: none, as the paper)", same(0), min=0,
              max=1_000_000),
        Param("fan", "str", "fan of Fixup's He std: fan_out as the official code, or fan_in",
              same("fan_out"), choices=("fan_out", "fan_in")),
        Param("fig3_depths", "list[int]", "depths 6n+2 of the first-epoch experiment (Fixup Fig. 3 analogue): BN, "
              "Fixup and no normalisation at each", per([8, 14], [20], [20, 56, 110]),
              min=8, max=100000, rule=RESNET_DEPTH_RULE),
        Param("fig3_epochs", "float", "training budget of the first-epoch experiment, in epochs of its training set",
              same(1.0), min=0.01, max=1000.0),
        Param("fig3_subset", "int", "training examples of the first-epoch experiment (0 = the whole training split, "
              "as the paper's one epoch of CIFAR-10)", per(500, 0, 0), min=0, max=1_000_000),
        Param("fig3_batch", "int", "mini-batch of the first-epoch experiment (the paper's 128; its lr is base_lr x "
              "fig3_batch / 128)", per(32, 128, 128), min=1, max=65536),
        Param("nonorm_depths", "list[int]", "deeper depths 6n+2 at which only the no-normalisation network trains "
              "for the first epoch (a run that diverges stops, so the count is cheap; BN and Fixup are not run there; "
              "a depth also in fig3_depths is read from those runs)",
              per([20], [56, 110], [110]), min=8, max=100000, rule=RESNET_DEPTH_RULE),
        Param("longer", "bool", "run the longer runs and the ablations (the cpu profile leaves them to the gpu "
              "profile: see the chapter's list of what each profile runs)", per(True, False, True)),
        Param("long_depths", "list[int]", "depths 6n+2 of the longer training runs",
              per([8], [20, 32], [20]),
              min=8, max=100000, rule=RESNET_DEPTH_RULE),
        Param("long_methods", "list[str]", "methods of the longer runs", same(["bn", "zero-gamma", "fixup"]),
              choices=("bn", "zero-gamma", "none", "fixup")),
        Param("long_epochs", "float", "training budget of the longer runs, in epochs (lr / 10 at 50 % and 75 %; the paper's schedule: 200)",
              per(1.0, 2.0, 3.0), min=0.01, max=10000.0),
        Param("mixup_alpha", "float", "mixup's alpha in the longer runs (0: off; the official default is 1.0)",
              per(0.0, 0.0, 1.0), min=0.0, max=100.0),
        Param("augment", "str", "augmentation of the longer runs (crop-flip: CIFAR's padded crop and flip)",
              per("none", "none", "crop-flip"), choices=("none", "crop-flip")),
        Param("ablation_depth", "int", "depth 6n+2 of the Fixup ablations", per(8, 20, 20),
              min=8, max=100000, rule=RESNET_DEPTH_RULE),
        Param("eval_every", "int", "steps between validation evaluations in the longer runs", per(8, 47, 235), min=1,
              max=1_000_000),
    ),
)

CLAIMS: tuple[Claim, ...] = (
    Claim(
        "resnet-variance-doubles",
        "Without BatchNorm, a Kaiming-initialised ResNet doubles the variance of its output at "
        "each residual block, so it explodes exponentially with depth.",
        "Fixup initialisation",
        "Geometric-mean per-block growth of the output's second moment at init (the growth that "
        "compounds with depth), over hundreds of blocks, for pre-activation and post-activation "
        "(ReLU after the add) basic blocks of a no-normalisation Kaiming ResNet, at the profile's width (64 channels on the cpu profile). "
        "Convolutions use circular padding here, so that no image boundary shrinks the branch and the "
        "number measures the topology the claim is about; zero-padded and narrower (16-channel) "
        "numbers are reported beside it.",
        Criterion(
            (
                Check("preact_block_growth", "within", 2.0, "pre-activation blocks double it", margin=0.2,
                      scale="log", control="bn_block_growth",
                      asserts="doubles the variance of its output at each residual block"),
                Check("postact_block_growth", "within", 2.0, "post-activation blocks double it", margin=0.2,
                      scale="log", control="bn_block_growth",
                      asserts="doubles the variance of its output at each residual block"),
            )
        ),
        control="The same Kaiming ResNet with BatchNorm in every branch: each block adds about one unit of "
                "variance instead of doubling it, so its per-block growth must not pass the doubling check.",
        changes=(("zero padding, width 16", "circular padding, width 64 (zero-padded and 16-channel numbers beside)",
                  "at width 16 the compounded pre-activation growth is 1.76, a finite-width effect, and zero "
                  "padding lowers it further: neither is the topology the claim is about"),
                 ("'within' by a two-sided 95 % interval", "'within' by two one-sided tests at 5 % (a 90 % interval)",
                  "the standard equivalence test (the book's verdict rule of December 2026)"),),
        figures=("fig-resnet-variance-doubles-growth", "fig-resnet-variance-doubles-depth"),
        short='Without BatchNorm, a Kaiming ResNet doubles its output variance per block.',
    ),
    Claim(
        "fixup-trains-without-bn",
        "Standard-init ResNets train only with BatchNorm; Fixup trains deep ResNets without any "
        "normalisation.",
        "Fixup initialisation",
        "Test accuracy after the profile's first-epoch budget at the deepest depth tested (at least "
        "50 layers for a verdict), at the default BN learning rate (Fixup paper, Fig. 3 analogue), for "
        "no-norm Kaiming, BN and Fixup.",
        Criterion(
            (
                Check("nonorm_deep_accuracy", "<=", 0.2, "no-norm Kaiming fails (diverges or stays near chance)",
                      requires=Check("deepest_depth", ">=", 50.0, "the deepest network has at least 50 layers",
                                     scale="exact"),
                      scale="proportion", control="bn_deep_accuracy",
                      asserts="Standard-init ResNets train only with BatchNorm"),
                Check("fixup_minus_bn_deep", ">=", -5.0, "Fixup comes within 5 points of BN", unit="points",
                      requires=Check("bn_deep_accuracy", ">=", 0.5, "the BN network learned within the budget",
                                     scale="proportion"),
                      control="nonorm_minus_bn_deep",
                      asserts="Fixup trains deep ResNets without any normalisation"),
            )
        ),
        control="BN must not pass the 'fails without normalisation' check, and the no-norm Kaiming ResNet "
                "(the claim's known failure) must not come within 5 points of BN.",
        changes=(("no preconditions", "BN must have learned (>= 50 %) and the deepest net have >= 50 layers",
                  "a run too short for BN itself to learn cannot say anything about Fixup against BN"),
                 ("a diverged run at the test accuracy of the weights it froze with",
                  "a diverged run at chance; the test split read once, at the end",
                  "one divergence rule for every accuracy of the book"),
                 ("the first epoch on the cpu profile: 94 steps of batch 64 at lr 0.05 over a 6,000-image subset, "
                  "depths 8, 20 and 56",
                  "one epoch over the whole training split (55,000 images: 430 steps of 128, the 429 full batches "
                  "of one shuffle, its last 88 images dropped, then the first batch of the next) at lr 0.1, as the "
                  "paper's Fig. 3 over CIFAR-10; ResNet-20 for BN, Fixup and no normalisation, no normalisation "
                  "alone at 56 and 110 layers; the 50-layer check left to the gpu profile",
                  "a 94-step race mostly measures how fast Fixup's zero classifier leaves zero, not the paper's "
                  "first epoch (issue 24, after runs on seeds 0-2 and the fresh seeds 2000-2002, so this claim's "
                  "fresh seeds start at 3000)"),),
        figures=("fig-fixup-trains-without-bn-depth", "fig-fixup-trains-without-bn-training"),
        fresh_from=3000,
        short='Standard ResNets need BatchNorm; Fixup trains deep ResNets without it.',
    ),
    Claim(
        "fixup-scalars-help",
        "Adding a scalar bias (initialised at 0) before each convolution, linear layer and activation "
        "significantly improves Fixup's training; a scalar multiplier on each residual branch improves "
        "it further.",
        "Fixup initialisation",
        "Final test accuracy of Fixup ResNets at the ablation depth after the longer runs' budget, paired "
        "by seed (the same seed draws the same weights and batches for every variant), in points: the "
        "network with the scalar biases only minus the one with no scalars (the biases' gain), and the "
        "full recipe minus the biases only (the multiplier's gain). 'Significantly' is read as at least "
        "1 point over the whole 95 % interval.",
        Criterion(
            (
                Check("bias_scalars_gain", ">=", 1.0, "the scalar biases raise the accuracy by at least 1 point",
                      unit="points",
                      requires=Check("no_scalars_accuracy", ">=", 0.3,
                                     "Fixup without scalars learned (at least 30 %, three times chance)",
                                     scale="proportion"),
                      control="placebo_gain", asserts="significantly improves Fixup's training"),
                Check("multiplier_gain", ">=", 1.0, "the multiplier raises it by at least 1 point more",
                      unit="points",
                      requires=Check("biases_only_accuracy", ">=", 0.3,
                                     "Fixup with the scalar biases only learned (at least 30 %)",
                                     scale="proportion"),
                      control="placebo_gain", asserts="improves it further"),
            )
        ),
        control="A change that cannot help: Fixup without scalars against itself, on the same seeds and weights "
                "with another data order (one random stream changed, paired by seed as the gains are). Its "
                "difference must not pass the 'at least 1 point' check.",
        changes=(("the placebo on a second block of seeds", "the placebo on the same seeds with another data order",
                  "the gains are paired within a seed, so the placebo must be too: it then carries the same noise "
                  "as the contrast it controls"),),
        figures=("fig-fixup-scalars-help-gains",),
        short="Fixup's scalar biases help training significantly; its branch multiplier helps further.",
    ),
)

# ------------------------------------------------------------------ measurements

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
    "fixup-no-multiplier": {"init": "fixup", "scalars": "biases"},
}

#: The scalar ablations of ``fixup-scalars-help``: no scalars, the scalar biases only (no
#: multiplier), and the full recipe; each step adds one kind of scalar.
SCALAR_ABLATIONS = ("fixup-no-scalars", "fixup-no-multiplier", "fixup")

#: A network "learned" within the budget when its accuracy is at least this (three times
#: chance on ten classes): the precondition of the scalar checks.
LEARNED_AT_LEAST = 0.3


#: The random stream the scalar placebo draws its other data order from.
PLACEBO_ORDER = "placebo data order"


def resnet_sweep(data, *, methods, depths, seeds, width: int, steps: int, lr: float, batch_size: int = 128,
                 momentum: float = 0.9, weight_decay: float = 1e-4, warmup_steps: int = 0,
                 milestones: tuple[float, ...] = (), mixup_alpha: float = 0.0, augment: str | None = None,
                 eval_every: int = 50, fan: str = "fan_out", progress: bool = True, device: str = "cpu",
                 order_stream: str | None = None) -> pd.DataFrame:
    """Train a ResNet per method x depth x seed with the official CIFAR recipe's optimiser
    (SGD, momentum, weight decay; Fixup's scalars at lr / 10, see :data:`SCALAR_LR_FACTOR`)
    and return every run's history (:func:`initstudy.core.train.sweep`; diverged runs recorded).
    ``order_stream``: draw each run's data order from that named stream of its seed
    (:func:`initstudy.core.ensemble.stream_seed`), the weights and everything else from the seed
    (a placebo that differs in the data order only)."""
    from initstudy.core.ensemble import stream_seed

    from itertools import product

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
                           mixup_alpha=mixup_alpha, augment=augment,
                           order_seed=None if order_stream is None else stream_seed(run["seed"], order_stream))

    runs = [{"method": m, "depth": d, "seed": s} for m, d, s in product(methods, depths, seeds)]
    return sweep(data, runs, build, config, progress=progress, desc="resnets", device=device)


# --------------------------------------------------------- what each profile runs, and its work

#: What the cpu profile leaves to the gpu profile, written before the cpu run that omits it:
#: per experiment of :func:`work_plan`, the claim it serves and what would settle it there.
#: The cpu profile affords the first epoch at ResNet-20 for all three methods (the whole training
#: split at batch 128 and lr 0.1, as the paper's Fig. 3) and the count of no-normalisation
#: failures at 56 and 110 layers (a diverged run stops); everything else is the gpu profile's.
LEFT_TO_GPU = {
    "first epoch": ("fixup-trains-without-bn",
                    "the check that standard init fails without normalisation is read at 50 layers or more, with "
                    "BN trained beside it as its control: ResNet-56 and ResNet-110, BN, Fixup and no normalisation, "
                    "on the whole 28x28 training split, 10 seeds (the cpu profile stops at ResNet-20)"),
    "no normalisation, deeper": ("fixup-trains-without-bn",
                                 "evidence only: at depths where BN and Fixup are not trained, the no-normalisation "
                                 "runs carry no control, so they cannot decide the check"),
    "longer runs": ("",
                    "Fixup against BN and zero-gamma BN over several epochs with the official augmentation and "
                    "mixup; reported beside the verdicts (the ledger judges the first epoch), so no budget settles "
                    "a claim here"),
    "ablations": ("fixup-scalars-help",
                  "Fixup's scalars train at lr / 10, so at a few hundred steps they barely move: the ablation needs "
                  "epochs of the whole training split (the gpu profile's ResNet-20 over its longer runs' budget, "
                  "10 seeds); no pilot at that budget exists yet, so its seed count is not planned from a power "
                  "estimate"),
}

#: The compute the whole gpu profile must fit in: 5 minutes of one GPU (issue 24: start-up, data
#: and a rerun of a failed chapter then fit a 15-minute lease). This chapter's share is not set:
#: the rate its own work needs to fit all of it is a lower bound on what the GPU must sustain.
GPU_PROFILE_SECONDS = 300.0


@functools.lru_cache(maxsize=None)
def _image_flops(depth: int, image_shape: tuple[int, ...], width: int) -> tuple[float, float]:
    """FLOPs per image of one forward pass and of one training pass (forward and backward)
    of the chapter's ResNet at ``depth``: the convolutions and the classifier, which torch's
    FLOP counter counts (linear in the batch, and the same for every method: BatchNorm and
    Fixup's scalars add element-wise work only, which it does not count)."""
    from initstudy.core.ensemble import pass_flops

    net = resnet(depth, "he-fan-out", norm="none", in_channels=image_shape[0], num_classes=10, width=width, seed=0)
    x = torch.zeros(1, *image_shape)
    return pass_flops(net, x, 1, train=False), pass_flops(net, x, 1, train=True)


def work_plan(profile: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """The chapter's training experiments at ``profile``'s parameters (or at ``params``, a run's
    resolved parameters), before any run: per experiment, whether it runs, its runs, steps per
    run and work in TFLOP (each training step, each validation evaluation and the one test pass,
    by torch's FLOP counter). An upper bound for runs that diverge, which stop early (the
    no-normalisation runs at 56 layers and more diverge within a few steps)."""
    from initstudy.core.data import SIZES, split_sizes
    from initstudy.study.catalog import resolve, seeds_list

    p = dict(params) if params is not None else resolve(SPEC, profile, here=False)
    seeds = len(seeds_list(p["seeds"]))
    sizes = split_sizes(p["dataset"])
    shape = SIZES[p["dataset"]][2]
    if p["resize"]:
        shape = (shape[0], p["resize"], p["resize"])
    n_eval = {k: (min(p["test_subset"], sizes[k]) if p["test_subset"] else sizes[k]) for k in ("val", "test")}
    fig3_n = min(p["fig3_subset"], sizes["train"]) if p["fig3_subset"] else sizes["train"]
    long_n = min(p["train_subset"], sizes["train"]) if p["train_subset"] else sizes["train"]
    fig3_steps = max(1, round(p["fig3_epochs"] * math.ceil(fig3_n / p["fig3_batch"])))
    long_steps = max(1, round(p["long_epochs"] * math.ceil(long_n / p["batch_size"])))

    def tflop(runs, steps: int, batch: int, evals: int) -> float:
        total = 0.0
        for method, depth in runs:
            forward, training = _image_flops(depth, shape, p["width"])
            total += steps * batch * training + forward * (evals * n_eval["val"] + n_eval["test"])
        return seeds * total / 1e12

    ablation_runs = [(m, p["ablation_depth"]) for m in ["fixup-no-zero-init", "fixup-no-scaling", "fixup-no-scalars",
                                                        "fixup-no-multiplier", "fixup-no-scalars"]]
    if not (p["ablation_depth"] in p["long_depths"] and "fixup" in p["long_methods"]):
        ablation_runs.append(("fixup", p["ablation_depth"]))
    extra = [d for d in p["nonorm_depths"] if d not in p["fig3_depths"]]
    experiments = [
        ("first epoch", True, [(m, d) for m in ("bn", "fixup", "none") for d in p["fig3_depths"]], fig3_steps,
         p["fig3_batch"], 2),
        ("no normalisation, deeper", bool(extra), [("none", d) for d in extra], fig3_steps, p["fig3_batch"], 2),
        ("longer runs", p["longer"], [(m, d) for m in p["long_methods"] for d in p["long_depths"]], long_steps,
         p["batch_size"], 2 + long_steps // p["eval_every"]),
        ("ablations", p["longer"], ablation_runs, long_steps, p["batch_size"], 2 + long_steps // p["eval_every"]),
    ]
    rows = []
    for name, runs_it, runs, steps, batch, evals in experiments:
        rows.append({"experiment": name, "profile": profile, "runs it": bool(runs_it),
                     "depths": ", ".join(map(str, sorted({d for _, d in runs}))), "runs": seeds * len(runs),
                     "steps per run": steps, "batch": batch, "images": f"{shape[1]}x{shape[2]}",
                     "TFLOP": tflop(runs, steps, batch, evals) if runs_it else 0.0})
    return pd.DataFrame(rows)


def left_to_gpu_table(this_run: pd.DataFrame, gpu: pd.DataFrame) -> pd.DataFrame:
    """:func:`work_plan` of this run and of the gpu profile side by side, one line each
    ("ResNet-20: 9 runs x 430 steps, 26.0 TFLOP", or "not run"), with the claim each experiment
    serves and what the gpu profile settles that a smaller run cannot (:data:`LEFT_TO_GPU`).

    >>> plan = pd.DataFrame({"experiment": ["ablations"], "runs it": [False], "depths": ["20"], "runs": [15],
    ...                      "steps per run": [188], "TFLOP": [0.0]})
    >>> left_to_gpu_table(plan, plan.assign(**{"runs it": True, "TFLOP": 1663.6}))["gpu profile"].iloc[0]
    'ResNet-20: 15 runs x 188 steps, 1,664 TFLOP'
    """
    def line(r) -> str:
        if not r["runs it"]:
            return "not run"
        tflop = f"{r['TFLOP']:,.0f}" if r["TFLOP"] >= 100 else f"{r['TFLOP']:.2g}"
        return f"ResNet-{r['depths']}: {r['runs']} runs x {r['steps per run']} steps, {tflop} TFLOP"

    out = pd.DataFrame({"experiment": this_run["experiment"],
                        "claim": this_run["experiment"].map(lambda e: LEFT_TO_GPU[e][0]),
                        "this run": this_run.apply(line, axis=1).tolist()})
    out = out.merge(pd.DataFrame({"experiment": gpu["experiment"], "gpu profile": gpu.apply(line, axis=1).tolist()}),
                    on="experiment")
    out["what the gpu profile settles"] = out["experiment"].map(lambda e: LEFT_TO_GPU[e][1])
    return out


def nonorm_failures(finals: pd.DataFrame, chance: float = 0.1, fails_at: float = 0.2) -> pd.DataFrame:
    """Per depth, the no-normalisation runs of the first-epoch experiment (``finals``: columns
    method, depth, seed, accuracy, diverged_at): how many seeds diverged (and at which steps),
    how many ended at or below ``fails_at`` (the claim's "fails" threshold, a diverged run
    counting at ``chance``), and the per-seed accuracies."""
    rows = []
    none = finals[finals["method"] == "none"]
    for depth, grp in none.sort_values("seed").groupby("depth"):
        div = grp["diverged_at"].dropna().astype(int).tolist()
        acc = np.where(grp["diverged_at"].notna(), chance, grp["accuracy"].astype(float))
        rows.append({"depth": int(depth), "seeds": len(grp), "diverged": len(div),
                     "diverged at steps": " / ".join(map(str, div)) or "none",
                     "at or below": fails_at, "failed": int((acc <= fails_at).sum()),
                     "not measured": int(np.isnan(acc).sum()),
                     "per_seed": " / ".join(f"{100 * a:.1f}" for a in acc)})
    return pd.DataFrame(rows, columns=["depth", "seeds", "diverged", "diverged at steps", "at or below", "failed",
                                       "not measured", "per_seed"])


def nonorm_failures_text(table: pd.DataFrame) -> str:
    """:func:`nonorm_failures` in words, one clause per depth.

    >>> nonorm_failures_text(pd.DataFrame({"depth": [56], "seeds": [3], "diverged": [3],
    ...     "diverged at steps": ["2 / 2 / 3"], "at or below": [0.2], "failed": [3]}))
    '56 layers: 3 of 3 seeds diverged (at steps 2 / 2 / 3), 3 of 3 ended at or below 20 %'
    >>> nonorm_failures_text(pd.DataFrame(columns=["depth"]))
    'no run without normalisation at this profile'
    """
    if table.empty:
        return "no run without normalisation at this profile"
    return "; ".join(f"{r['depth']} layers: {r['diverged']} of {r['seeds']} seeds diverged"
                     + (f" (at steps {r['diverged at steps']})" if r["diverged"] else "")
                     + f", {r['failed']} of {r['seeds']} ended at or below {100 * r['at or below']:.0f} %"
                     for _, r in table.iterrows())


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
            "fig3-gaps": gaps_text(gaps, "{} layers".format),
            **gap_signs_glue(gaps, "fig3", lambda ds: joined(ds, "layer"))}


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


def scalars_measurements(ablation_finals: pd.DataFrame | None, placebo_finals: pd.DataFrame | None,
                         seeds: list[int]) -> dict[str, dict]:
    """Per-seed values of ``fixup-scalars-help``'s metrics from the ablation's final accuracies
    (columns method, depth, seed, accuracy; one depth) and the placebo: Fixup without scalars on
    the same seeds with another data order (``placebo_finals``, paired by seed). Points for
    differences, fractions for accuracies. Every method of :data:`SCALAR_ABLATIONS` must have
    every seed, and the placebo the same seeds, at the same one depth. ``None`` for both tables:
    the ablation was not run at this profile (:data:`LEFT_TO_GPU`), so every value is NaN (not
    measured) and the claim is judged inconclusive."""
    if (ablation_finals is None) != (placebo_finals is None):
        raise ValueError("scalars_measurements: the ablation and its placebo run together (both tables, or "
                         "neither when the profile leaves the ablation out)")
    if ablation_finals is None:
        nan = [float("nan")] * len(seeds)
        return {"fixup-scalars-help": {k: list(nan) for k in ("bias_scalars_gain", "multiplier_gain", "placebo_gain",
                                                              "no_scalars_accuracy", "biases_only_accuracy")}}
    depths = set(ablation_finals["depth"]) | set(placebo_finals["depth"])
    if len(depths) != 1:
        raise ValueError(f"scalars_measurements: the ablation and the placebo must share one depth, got {sorted(depths)}")
    acc = ablation_finals.set_index(["method", "seed"])["accuracy"]
    missing = [(m, s) for m in SCALAR_ABLATIONS for s in seeds if (m, s) not in acc.index]
    if missing:
        raise ValueError(f"scalars_measurements: no final accuracy for (method, seed) {missing}")
    placebo = placebo_finals[placebo_finals["method"] == SCALAR_ABLATIONS[0]].set_index("seed")["accuracy"]
    if sorted(placebo.index) != sorted(seeds):
        raise ValueError(f"scalars_measurements: the placebo has runs of {SCALAR_ABLATIONS[0]} for the seeds "
                         f"{sorted(placebo.index)}, not {sorted(seeds)}")

    def per_seed(method: str) -> list[float]:
        return [float(acc.loc[(method, s)]) for s in seeds]

    none, biases, full = (per_seed(m) for m in SCALAR_ABLATIONS)
    return {"fixup-scalars-help": {
        "bias_scalars_gain": [100 * (b - n) for b, n in zip(biases, none)],
        "multiplier_gain": [100 * (f - b) for f, b in zip(full, biases)],
        "placebo_gain": [100 * (float(placebo.loc[s]) - n) for s, n in zip(seeds, none)],
        "no_scalars_accuracy": none,
        "biases_only_accuracy": biases,
    }}


def gap_by_step(history: pd.DataFrame, full: str, others) -> pd.DataFrame:
    """Each of ``others`` minus ``full`` in points of validation accuracy at every evaluation step
    of a :func:`resnet_sweep` history, paired by seed (:func:`paired_gaps` per step): how a gap
    evolves over the run (the curves are validation curves; the test split is read once, at the
    end). A seed that diverged counts at chance from the step it diverged on, and has no
    evaluation after it, so it drops out of the later steps."""
    val = history[(history["split"] == "val") & (history["metric"] == "accuracy")]
    finals = val.rename(columns={"value": "accuracy"})[["method", "seed", "step", "accuracy"]]
    out = [paired_gaps(finals, other, full, ["step"]) for other in others]
    return pd.concat(out, ignore_index=True).rename(columns={"a": "method", "b": "minus"})


def gap_trend(gaps: pd.DataFrame) -> pd.DataFrame:
    """Per method of :func:`gap_by_step`: the gap at the first evaluation after step 0 and at the
    last, each with its paired 95 % interval; ``ahead_early`` when the method was ahead of the
    full recipe at the first evaluation (its interval above 0), and ``lead_shrank`` when its mean
    lead was still positive at the end but smaller than at the first evaluation."""
    rows = []
    for method, grp in gaps[gaps["step"] > 0].sort_values("step").groupby("method"):
        first, last = grp.iloc[0], grp.iloc[-1]
        rows.append({"method": method, "minus": first["minus"], "first_step": int(first["step"]),
                     "first_points": first["mean_points"], "first_low": first["low"], "first_high": first["high"],
                     "last_step": int(last["step"]), "last_points": last["mean_points"], "last_low": last["low"],
                     "last_high": last["high"], "ahead_early": bool(first["low"] > 0),
                     "lead_shrank": bool(0 < last["mean_points"] < first["mean_points"])})
    return pd.DataFrame(rows)


def gap_trend_glue(trend: pd.DataFrame) -> dict:
    """The glued text of :func:`gap_trend`, per method: "+23.5 [+10.1, +36.9] at step 94"."""
    out = {}
    for r in trend.itertuples():
        out[f"gap-{r.method}-first"] = f"{r.first_points:+.1f} [{r.first_low:+.1f}, {r.first_high:+.1f}] at step {r.first_step}"
        out[f"gap-{r.method}-last"] = f"{r.last_points:+.1f} [{r.last_low:+.1f}, {r.last_high:+.1f}] at step {r.last_step}"
    return out


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
    the logit scale (the judge's ``proportion`` rule, :func:`initstudy.study.claims.interval`), min,
    max, the per-seed values in seed order, and how many runs diverged. Every seed counts: a
    diverged run at the test accuracy of its network at the step it diverged."""
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
    :func:`initstudy.study.claims.interval`), the per-seed differences, and whether the interval
    excludes 0 (``settled_sign``: "above 0", "below 0" or "contains 0")."""
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
                     "per_seed": " / ".join(f"{v:+.1f}" for v in d), "settled_sign": sign,
                     "seeds_below": int((d < 0).sum()), "seeds_above": int((d > 0).sum())})
    return pd.DataFrame(rows)


def gaps_text(gaps: pd.DataFrame, name) -> str:
    """A :func:`paired_gaps` table (one row per depth) as the text gives it: "<name(depth)>
    <mean> [<low>, <high>]" in points, one decimal, joined by "; " ("" for no rows).

    >>> gaps_text(pd.DataFrame({"depth": [20], "mean_points": [-25.4], "low": [-52.8], "high": [1.85]}),
    ...           "ResNet-{}".format)
    'ResNet-20 -25.4 [-52.8, +1.9]'
    """
    return "; ".join(f"{name(r.depth)} {r.mean_points:+.1f} [{r.low:+.1f}, {r.high:+.1f}]" for r in gaps.itertuples())


def long_gap_glue(gaps: pd.DataFrame) -> dict:
    """The longer runs' glued values from their :func:`paired_gaps` table: ``long-gaps``
    ("ResNet-20 -25.4 [-52.8, +1.9]; ...", points) and :func:`gap_signs_glue` under "long"."""
    return {"long-gaps": gaps_text(gaps, "ResNet-{}".format),
            **gap_signs_glue(gaps, "long", lambda ds: joined([f"ResNet-{d}" for d in ds]))}


def gap_signs_glue(gaps: pd.DataFrame, prefix: str, names) -> dict:
    """Where the intervals of a :func:`paired_gaps` table (one row per depth) lie, in words,
    and how many seed pairs were below and above 0: ``<prefix>-gap-signs`` ("lay below 0 at 8
    and 20 layers and contained 0 at 56 layers", ``names(depths)`` naming a list of depths),
    ``<prefix>-pairs``, ``<prefix>-pairs-below`` and ``<prefix>-pairs-above``.

    >>> g = pd.DataFrame({"depth": [8, 20, 56], "settled_sign": ["below 0", "below 0", "contains 0"],
    ...                   "seeds": [3, 3, 3], "seeds_below": [3, 3, 2], "seeds_above": [0, 0, 1]})
    >>> glue = gap_signs_glue(g, "fig3", lambda ds: joined(ds, "layer"))
    >>> glue["fig3-gap-signs"], glue["fig3-pairs-below"], glue["fig3-pairs"]
    ('lay below 0 at 8 and 20 layers and contained 0 at 56 layers', 8, 9)
    """
    words = {"below 0": "lay below 0 at", "contains 0": "contained 0 at", "above 0": "lay above 0 at"}
    parts = [f"{text} {names(gaps.loc[gaps['settled_sign'] == sign, 'depth'].tolist())}"
             for sign, text in words.items() if (gaps["settled_sign"] == sign).any()]
    return {f"{prefix}-gap-signs": joined(parts), f"{prefix}-pairs": int(gaps["seeds"].sum()),
            f"{prefix}-pairs-below": int(gaps["seeds_below"].sum()),
            f"{prefix}-pairs-above": int(gaps["seeds_above"].sum())}


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


def check_table(measurements, claim_id: str = "fixup-trains-without-bn") -> pd.DataFrame:
    """Every check of ``claim_id`` (the training claim by default) judged on its measurements, as
    :func:`initstudy.study.claims.judge` does, with its precondition (``requires``) judged on its
    own: status, n, centre, interval, so that the text can say which check or precondition decided
    the verdict. ``measurements`` is :func:`fixup_measurements`' dict of every claim."""
    measurements = measurements[claim_id]
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
    order = ["bn", "fixup", "none", "fixup-no-zero-init", "zero-gamma", "fixup-no-scaling", "fixup-no-scalars",
             "fixup-no-multiplier"]
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


def plot_scalar_gains(measurements: dict, threshold: float = 1.0):
    """The verdict's quantities of ``fixup-scalars-help`` (``measurements``: the chapter's
    measurements by claim id, as :func:`scalars_measurements` returns them), in points of test accuracy, paired by
    seed: the scalar biases' gain, the multiplier's gain and the placebo (a change that cannot
    help); dots: seeds, black bar: the judge's mean and 95 % t interval (the ``linear`` rule of
    :func:`initstudy.study.claims.interval`), dashed: the criterion's +1 point. Returns
    ``(figure, plotted data)``."""
    import matplotlib.pyplot as plt

    labels = {"bias_scalars_gain": "scalar biases\n(biases only minus none)",
              "multiplier_gain": "multiplier\n(full minus biases only)",
              "placebo_gain": "placebo\n(no scalars, other seeds)"}
    measurements = measurements["fixup-scalars-help"]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    rows = []
    for i, (metric, label) in enumerate(labels.items()):
        values = measurements[metric]
        ax.plot([i] * len(values), values, "o", color="C0" if metric != "placebo_gain" else "grey", ms=5, alpha=0.7)
        n, mean, low, high = interval(values, "linear")
        if n >= 2 and math.isfinite(low) and math.isfinite(high):
            ax.errorbar([i], [mean], yerr=[[mean - low], [high - mean]], fmt="s", color="k", ms=5, capsize=4, lw=1.2)
        rows += [{"quantity": metric, "seed_index": k, "points": v, "mean": mean, "low": low, "high": high}
                 for k, v in enumerate(values)]
    ax.axhline(0, color="grey", lw=0.8)
    ax.axhline(threshold, color="k", ls="--", lw=1, label=f"criterion: at least {threshold:+g} point")
    ax.set_xticks(range(len(labels)), list(labels.values()))
    ax.set(ylabel="gain in test accuracy (points)", xlabel="what is added")
    ax.legend(loc="best", frameon=False, fontsize=11)
    fig.tight_layout()
    return fig, pd.DataFrame(rows)


def plot_training_curves(history: pd.DataFrame, facet: str = "depth", title: str = "ResNet-{}"):
    """Validation accuracy during training, one panel per ``facet`` value, one thin line per seed
    and colour per method (a diverged run's line ends at chance, where it counts). Returns
    ``(figure, plotted data)``."""
    import matplotlib.pyplot as plt

    data = history[(history["split"] == "val") & (history["metric"] == "accuracy")][
        ["method", "depth", "seed", "step", "value", "diverged_at"]].rename(columns={"value": "val_accuracy"})
    palette = _method_palette(data["method"])
    panels = sorted(data[facet].unique())
    fig, axes = plt.subplots(1, len(panels), figsize=(min(8, 1.0 + 3.4 * len(panels)), 3.6), sharey=True,
                             squeeze=False)
    for ax, value in zip(axes[0], panels):
        for method in palette:
            for _, d in data[(data[facet] == value) & (data["method"] == method)].groupby("seed"):
                ax.plot(d["step"], d["val_accuracy"], color=palette[method], lw=0.9, alpha=0.8)
        ax.set_title(title.format(value), fontsize=11)
        ax.set(xlabel="SGD step", ylim=(0, 1))
    axes[0][0].set_ylabel("validation accuracy")
    handles = [plt.Line2D([], [], color=c, lw=2) for c in palette.values()]
    fig.legend(handles, list(palette), loc="lower center", ncol=len(palette), frameon=False, bbox_to_anchor=(0.5, 0.0))
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig, data
