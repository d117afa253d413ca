"""Xavier and Kaiming under ReLU: the moments of ReLU of a Gaussian, activation std through
ReLU stacks, and He et al. (2015) Figs. 2-3 analogues (deep ReLU networks without BatchNorm).

The stacks and the theory are :mod:`initstudy.core.propagation`'s; this module holds the
chapter's declarations, measurements and figures.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch

from initstudy.core.propagation import rms_ratio
from initstudy.core.train import STALL_ACCURACY
from initstudy.study.catalog import NotebookSpec, Param, common_params, per, same, subset_fits
from initstudy.study.claims import SANITY, Check, Claim, Contrast, Criterion, interval

__all__ = [
    "SPEC",
    "CLAIMS",
    "RELU_EXACT",
    "relu_moments",
    "xavier_kaiming_measurements",
    "mcnemar_p",
    "two_sided_mcnemar_p",
    "placebo_runs",
    "MCNEMAR_MIN_PAIRS",
    "grid_brackets",
    "PLACEBO_ORDER",
    "he_fig3_per_seed",
    "he_training_glue",
    "he_lr_summary",
    "stall_glue",
    "stall_power",
    "plot_relu_moments",
    "plot_relu_rms",
    "plot_he_training",
    "plot_he_best",
]


# ------------------------------------------------------------------ the chapter's declarations
# The notebook's parameters, validated before any work (run, sweep and the notebook itself), and
# the claims it settles, each with its criterion and negative control, written before the runs
# that measure them. initstudy.chapters wires them into the catalog and the ledger.

SPEC = NotebookSpec(
    name="xavier_kaiming",
    title="Xavier and Kaiming under ReLU",
    summary="What ReLU does to the moments of a Gaussian; activation std through ReLU stacks; He et al. "
            "(2015) Figs. 2-3 analogues: 22- and 30-layer ReLU networks without BatchNorm.",
    data_params=("dataset",),
    constraints=(subset_fits("batch_size"),),
    params=(
        *common_params((3, 15, 40)),
        Param("relu_samples", "int", "draws of z ~ N(0, 1) per seed for the ReLU moments",
              per(100_000, 1_000_000, 10_000_000), min=1000, max=1_000_000_000),
        Param("width", "int", "units per layer of the plain ReLU stacks", per(64, 512, 1024), min=2, max=8192),
        Param("stack_depth", "int", "layers of the plain ReLU stacks (the claim is read at layer 30)",
              per(30, 50, 100), min=2, max=100000),
        Param("batch", "int", "standard-normal inputs pushed through the stacks", per(64, 128, 512),
              min=2, max=65536),
        Param("arch", "str", "the trained network: an MLP, or a plain CNN as He et al.'s",
              per("mlp", "mlp", "mlp"), choices=("mlp", "cnn")),
        Param("he_depths", "list[int]", "depths of the trained ReLU networks (He et al.: 22 and 30; the claim is "
              "read at the deepest, 30 or more)", per([6, 10], [30], [22, 30]), min=3, max=1000),
        Param("he_width", "int", "units (MLP) or first-stage channels (CNN) of the trained networks",
              per(32, 128, 128), min=2, max=8192),
        Param("inits", "list[str]", "inits compared (He et al.'s fan-in Xavier, Glorot's Xavier, Kaiming)",
              same(["xavier-fanin", "kaiming-normal"]),
              choices=("xavier-normal", "xavier-fanin", "kaiming-normal")),
        Param("lrs", "list[float]", "the learning-rate grid, the same for every init (it must bracket both inits' "
              "best rate: a sanity check says whether it did)",
              same([0.0003, 0.001, 0.003, 0.01, 0.03]), min=1e-6, max=10.0),
        Param("momentum", "float", "SGD momentum (He et al. used 0.9)", same(0.9), min=0.0, max=0.999),
        Param("dataset", "str", "the real data set of the training runs",
              per("digits", "fashion-mnist", "fashion-mnist"),
              choices=("digits", "mnist-5k", "fashion-mnist", "mnist", "cifar10")),
        Param("train_subset", "int", "training examples kept (0 = all)", per(1000, 10000, 0), min=0,
              max=1_000_000),
        Param("train_steps", "int", "SGD updates per training run", per(60, 600, 3000), min=1,
              max=10_000_000),
        Param("batch_size", "int", "training mini-batch size", per(64, 64, 128), min=1, max=65536),
        Param("eval_every", "int", "steps between validation evaluations", per(20, 50, 250), min=1, max=1_000_000),
    ),
)

CLAIMS: tuple[Claim, ...] = (
    Claim(
        "relu-halves-variance",
        "Passing a standard normal through ReLU roughly halves its variance and raises its mean.",
        "Kaiming initialisation",
        "Mean, variance and second moment of ReLU(z), z ~ N(0, 1), from 10^6 samples per seed "
        "(exact: 1/sqrt(2 pi) = 0.399, 1/2 - 1/(2 pi) = 0.341 and 1/2).",
        Criterion(
            (
                Check("relu_second_moment", "within", 0.5,
                      "the second moment halves (exactly, in theory: the quantity He et al.'s derivation needs)",
                      margin=0.02, control="input_second_moment", role=SANITY),
                Check("relu_variance", "within", 0.5, "the variance halves", margin=0.02,
                      control="input_variance", asserts="roughly halves its variance"),
                Check("relu_mean", ">=", 0.3, "the mean rises from 0", control="input_mean",
                      asserts="raises its mean"),
            )
        ),
        control="The same samples without the ReLU (z itself): nothing halves and the mean stays 0, so "
                "no check may hold for them.",
        changes=(("every check decided alike", "the second moment's halving is a sanity check (an exact value "
                  "in theory, not the article's words); the variance and the mean decide; 'within' by two "
                  "one-sided tests (90 % interval)",
                  "the verdict reads the article's assertion (the book's verdict rule of December 2026)"),),
        figures=("fig-relu-halves-variance-moments",),
        short='ReLU roughly halves the variance and raises the mean.',
    ),
    Claim(
        "xavier-fails-relu",
        "Xavier init does not suit deep ReLU networks; Kaiming init (Xavier times sqrt 2) fixes it.",
        "Kaiming initialisation",
        "Root mean square (RMS) of the activations at layer 30 over the input's, for a ReLU stack "
        "(equal widths) under Xavier and Kaiming (the RMS, not the std: He et al.'s derivation "
        "preserves the second moment, and a ReLU output's std is at most 0.83 of its RMS); and He et al.'s "
        "Fig. 3 as they ran it: a 30-layer ReLU network without BatchNorm trained with SGD (momentum "
        "0.9) from He's 'Xavier' (fan-in only, std sqrt(1/n)) and from Kaiming on the same seed, which "
        "scale the same standard-normal draws, each at the learning rate chosen on validation from one "
        "grid; per seed, whether it stalled (test accuracy at most 15 %), the two inits compared on the "
        "same seeds by an exact McNemar test; and Kaiming's test accuracy.",
        Criterion(
            (
                Check("relu_xavier_rms_ratio_30", "<=", 0.01, "Xavier's signal vanishes by layer 30",
                      requires=Check("stack_depth", ">=", 30.0, "the stack has at least 30 layers", scale="exact"),
                      scale="log", control="relu_kaiming_rms_ratio_30",
                      asserts="Xavier init does not suit deep ReLU networks"),
                Check("relu_kaiming_rms_ratio_30", "within", 1.0, "Kaiming keeps the RMS", margin=0.5,
                      requires=Check("stack_depth", ">=", 30.0, "the stack has at least 30 layers", scale="exact"),
                      scale="log", control="relu_xavier_rms_ratio_30", asserts="Kaiming init (Xavier times sqrt 2) fixes it"),
                Check("he_fig3_mcnemar_p", "<=", 0.05,
                      "Xavier stalls where Kaiming, on the same draws, does not: the exact two-sided McNemar test "
                      "of the seeds where only one of the two stalled rejects 'no difference' at 5 %, those where only "
                      "Xavier stalled outnumbering those where only Kaiming did (a rejection the other way fails the "
                      "check)",
                      requires=Check("he_depth", ">=", 30.0, "the network has at least 30 layers", scale="exact"),
                      scale="exact", control="placebo_mcnemar_p", significance=True,
                      pairs=("he_fig3_xavier_stalled", "he_fig3_kaiming_stalled"),
                      reverse="he_fig3_mcnemar_reverse_p",
                      asserts="Xavier init does not suit deep ReLU networks"),
                Check("he_fig3_kaiming_best_accuracy", ">=", 0.5,
                      "Kaiming trains (test accuracy at the learning rate chosen on validation)",
                      requires=Check("he_depth", ">=", 30.0, "the network has at least 30 layers", scale="exact"),
                      scale="proportion", control="he_fig3_xavier_best_accuracy", asserts="fixes it"),
                Check("he_fig3_grid_brackets", ">=", 1.0,
                      "the learning-rate grid brackets both inits' best rate: the rate with the best mean "
                      "validation accuracy is inside the grid, not at an edge, for each init that trained "
                      "(1: yes, 0: no)", scale="exact", role=SANITY),
            )
        ),
        control="Each init is the other's control for the signal checks (Kaiming's signal must not pass "
                "Xavier's vanishing check, and Xavier must not pass Kaiming's) and for Kaiming's accuracy. For "
                "the paired stall test, He's fan-in Xavier against itself on the same seeds and learning-rate grid "
                "with another data order (one random stream changed), its rate chosen on its own validation run: its "
                "stalls move with the data order, so its two-sided McNemar test could reject by chance, and it must "
                "not.",
        changes=(("std ratio at layer 30", "RMS ratio at layer 30",
                  "a ReLU output's std is 0.83 of its RMS even in theory; He et al. preserve the second moment"),
                 ("he_fig3_xavier_best_accuracy <= 0.15 (mean over seeds, t interval)",
                  "he_fig3_xavier_stalled >= 0.5 (fraction of seeds stalled, exact binomial interval)",
                  "the seeds split into stalled (at chance) and learning ones; a mean of a two-valued "
                  "outcome with a t interval that can go below chance does not describe 'stalls'"),
                 ("the best final test accuracy over the learning-rate grid (the rate chosen on the test set; a "
                  "diverged run at its accuracy when it stopped)",
                  "the test accuracy, read once, at the learning rate chosen on validation (a diverged run at "
                  "chance); 'within' by two one-sided tests",
                  "a number selected on the test set is not a test number; one divergence rule for the book"),
                 ("Glorot's Xavier; the grid 0.001, 0.01, 0.1; the fraction of Xavier seeds stalled >= 0.5 with "
                  "Kaiming's fraction as an unpaired control; 22 and 30 layers, 6 seeds",
                  "He et al.'s fan-in Xavier against Kaiming on the same draws, compared by an exact McNemar test "
                  "(its placebo: Kaiming with another data order); the grid 0.0003 to 0.03, with a sanity check "
                  "that it brackets both inits' best; 30 layers and 12 seeds on the cpu profile (22 on the gpu "
                  "profile), planned from the earlier run's 4 of 6 Xavier seeds stalled",
                  "He et al.'s Fig. 3 compares He's 'Xavier' (fan-in) with their init; two inits on the same "
                  "draws pair exactly, so the comparison is a paired test; Kaiming's best rate, 0.001, sat at the "
                  "grid's edge; the earlier 6 seeds could not settle a stall count"),
                 ("a McNemar p-value above 0.05 read as the check failing (part of the claim refuted)",
                  "read as unsettled (the claim not shown at this number of seeds, nor refuted); the placebo's "
                  "p-value above 0.05 still fails, so the check discriminates",
                  "not rejecting is no evidence against a difference; changed after the first cpu run of this "
                  "design (5 of 12 seeds stalled only under Xavier, none only under Kaiming: p = 0.0625)"),
                 ("a stall test that could hold or stay open, never fail",
                  "it fails when the same exact test rejects the other way (Kaiming stalling in more seeds than "
                  "Xavier, p <= 0.05)",
                  "a check that cannot fail is not a test of the claim (referee finding); the seeds where only "
                  "Kaiming stalled outnumbering those where only Xavier did, significantly, refute its direction"),
                 ("the placebo: Kaiming against itself with another data order",
                  "the placebo: He's fan-in Xavier against itself with another data order, over the same grid "
                  "with its rate chosen on its own validation run, by the two-sided test",
                  "Kaiming seldom stalls, so its placebo has almost no discordant seeds and its test can never "
                  "reject: a control that cannot pass tells nothing; Xavier's stalls move with the data order, so "
                  "its placebo can pass by chance and is the nearest known-wrong comparison (referee finding, after "
                  "the cpu and fresh-seed runs of the previous design; seeds 2000-2011 were seen, so this claim's "
                  "fresh seeds start at 3000); 15 seeds on the cpu profile, planned by the exact McNemar test's "
                  "power at the discordant rates of those seeds (6 of 12 only Xavier, none only Kaiming)"),),
        contrasts=(Contrast("inits", "He's fan-in Xavier with Kaiming on the same seeds",
                            arms=("xavier-fanin", "kaiming-normal")),
                   Contrast("lrs", "learning rates around both inits' best", distinct=3)),
        figures=("fig-xavier-fails-relu-std", "fig-xavier-fails-relu-training", "fig-xavier-fails-relu-best"),
        fresh_from=3000,
        short='Xavier fails deep ReLU networks; Kaiming (×√2) fixes it.',
    ),
)

# ------------------------------------------------------------------ measurements

#: Exact moments of ReLU(z), z ~ N(0, 1).
RELU_EXACT = {
    "mean": 1.0 / math.sqrt(2.0 * math.pi),
    "variance": 0.5 - 1.0 / (2.0 * math.pi),
    "second_moment": 0.5,
}


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


#: The random stream the paired stall test's placebo draws its other data order from.
PLACEBO_ORDER = "placebo data order"


def mcnemar_p(a: list[float], b: list[float]) -> float:
    """The exact two-sided McNemar p-value of two paired yes/no outcomes per seed (``a`` and
    ``b``, 1.0 for yes; NaN pairs dropped): the binomial test of the seeds where only ``a`` is
    yes against those where only ``b`` is, at one half (scipy's ``binomtest``), for the claim
    that ``a`` is yes more often. 1.0 when no pair differs or when the discordant pairs do not
    point that way (only ``b`` yes at least as often: the test cannot support the claim, so a
    rejection in the other direction never counts for it); NaN when no seed has both outcomes.

    >>> mcnemar_p([1, 1, 1, 1, 1, 1], [0] * 6)  # 6 of 6 discordant pairs one way: 2 / 2^6
    0.03125
    >>> mcnemar_p([0] * 6, [1, 1, 1, 1, 1, 1])  # the same pairs the other way: no support for "a more"
    1.0
    >>> mcnemar_p([1, 0, 1], [1, 0, 1]), mcnemar_p([float("nan")] * 3, [0.0] * 3)
    (1.0, nan)
    """
    from scipy import stats

    pairs = [(x, y) for x, y in zip(a, b) if not (math.isnan(x) or math.isnan(y))]
    if not pairs:
        return math.nan
    only_a = sum(1 for x, y in pairs if x >= 0.5 > y)
    only_b = sum(1 for x, y in pairs if y >= 0.5 > x)
    if only_a <= only_b:
        return 1.0
    return float(stats.binomtest(only_a, only_a + only_b, 0.5).pvalue)


def grid_brackets(finals: pd.DataFrame, depth: int, lrs) -> float:
    """1.0 when the learning-rate grid brackets the best rate of every init that trained at
    ``depth`` (``finals``: one row per init, depth, lr and seed, with ``val_accuracy``): the rate
    whose mean validation accuracy over seeds is highest is neither the grid's smallest nor its
    largest; an init whose best mean stays at or below :data:`STALL_ACCURACY` (it never trained,
    so no rate is its best) is left out. 0.0 otherwise.

    >>> f = pd.DataFrame({"init": "k", "depth": 30, "lr": [0.001, 0.01, 0.1], "seed": 0,
    ...                   "val_accuracy": [0.5, 0.8, 0.1]})
    >>> grid_brackets(f, 30, [0.001, 0.01, 0.1]), grid_brackets(f.assign(val_accuracy=[0.9, 0.8, 0.1]), 30, [0.001, 0.01, 0.1])
    (1.0, 0.0)
    """
    grid = sorted(float(v) for v in lrs)
    means = finals[finals["depth"] == depth].groupby(["init", "lr"])["val_accuracy"].mean()
    for init, per_lr in means.groupby(level="init"):
        per_lr = per_lr.droplevel("init")
        if per_lr.max() <= STALL_ACCURACY:
            continue
        if float(per_lr.idxmax()) in (grid[0], grid[-1]):
            return 0.0
    return 1.0


def xavier_kaiming_measurements(relu: pd.DataFrame, profiles: pd.DataFrame, per_seed: pd.DataFrame,
                                stack_depth: int, he_depth: int, seeds: list[int], finals: pd.DataFrame | None = None,
                                placebo_finals: pd.DataFrame | None = None, lrs=(),
                                xavier: str = "xavier-fanin") -> dict[str, dict[str, list]]:
    """Per-seed values of the ledger's metrics for ``relu-halves-variance`` and
    ``xavier-fails-relu``. ``per_seed``: :func:`he_fig3_per_seed` (one row per init, depth and
    seed: the learning rate chosen on validation and the test accuracy there); ``finals`` every
    run of the grid (:func:`initstudy.core.train.final_accuracy`); ``placebo_finals`` the
    placebo's :func:`he_fig3_per_seed` rows (``xavier`` over the same grid with another data
    order, its rate chosen on its own validation run: :func:`placebo_runs`); ``xavier`` the
    Xavier the trained networks use (He et al.'s fan-in one by default)."""
    at = min(30, stack_depth)
    rel = relu.set_index("seed")
    chosen = per_seed.set_index(["init", "depth", "seed"])

    def best(init: str) -> list[float]:
        """The test accuracy at the learning rate chosen on validation, per seed."""
        return [float(chosen["best_final_accuracy"].get((init, he_depth, s), math.nan)) for s in seeds]

    def stalled(init: str) -> list[float]:
        """1.0 where that accuracy stays <= STALL_ACCURACY."""
        return [math.nan if math.isnan(b) else float(b <= STALL_ACCURACY) for b in best(init)]

    if placebo_finals is not None and len(placebo_finals):
        pl = placebo_finals.set_index("seed")["best_final_accuracy"]
        placebo_stalled = [float(pl[s] <= STALL_ACCURACY) if s in pl.index else math.nan for s in seeds]
    else:
        placebo_stalled = [math.nan for _ in seeds]
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
            "relu_xavier_rms_ratio_30": rms_ratio(profiles, "relu", "xavier-normal", at, seeds),  # square: = fan-in
            "relu_kaiming_rms_ratio_30": rms_ratio(profiles, "relu", "kaiming-normal", at, seeds),
            "stack_depth": [float(stack_depth)],
            "he_fig3_mcnemar_p": [mcnemar_p(stalled(xavier), stalled("kaiming-normal"))],
            "he_fig3_mcnemar_reverse_p": [mcnemar_p(stalled("kaiming-normal"), stalled(xavier))],
            "placebo_mcnemar_p": [two_sided_mcnemar_p(placebo_stalled, stalled(xavier))],
            "he_fig3_xavier_stalled": stalled(xavier),
            "he_fig3_kaiming_stalled": stalled("kaiming-normal"),
            "he_fig3_placebo_stalled": placebo_stalled,
            "he_fig3_xavier_best_accuracy": best(xavier),
            "he_fig3_kaiming_best_accuracy": best("kaiming-normal"),
            "he_fig3_grid_brackets": [grid_brackets(finals, he_depth, lrs) if finals is not None else math.nan],
            "he_depth": [float(he_depth)],
        },
    }


def he_fig3_per_seed(history: pd.DataFrame, seeds: list[int]) -> pd.DataFrame:
    """Per init, depth and seed of the trained ReLU networks (:func:`initstudy.core.train.compare_inits`
    history): the learning rate chosen on validation (``best_lr``: the best final validation
    accuracy of the grid, :func:`initstudy.core.selection.choose`), the test accuracy at that
    rate, read once at the end (``best_final_accuracy``: the quantity the stall check reads),
    ``stalled`` (1.0 when it is at most :data:`STALL_ACCURACY`), the number of runs of the grid
    that diverged, the highest validation accuracy seen at any evaluation and rate
    (``peak_val_accuracy``), and ``first_step_above``: the first evaluation step at which the
    chosen rate's validation accuracy exceeded :data:`STALL_ACCURACY` (NaN: never), so a seed
    that starts learning late can be told apart; ``budget`` is the run's last step.

    A diverged run counts at chance (validation and test alike), whatever its weights scored
    when they froze."""
    from initstudy.core.selection import choose
    from initstudy.core.train import final_accuracy

    finals = final_accuracy(history, ["init", "depth", "lr", "seed"])
    picked = choose(finals, ["init", "depth", "seed"], "lr")
    val = history[(history["split"] == "val") & (history["metric"] == "accuracy")]
    rows = []
    for r in picked.itertuples():
        if r.seed not in seeds:
            continue
        runs = val[(val["init"] == r.init) & (val["depth"] == r.depth) & (val["seed"] == r.seed)]
        curve = runs[runs["lr"] == r.lr].sort_values("step")
        above = curve[curve["value"] > STALL_ACCURACY]["step"]
        grid = finals[(finals["init"] == r.init) & (finals["depth"] == r.depth) & (finals["seed"] == r.seed)]
        rows.append({"init": r.init, "depth": int(r.depth), "seed": int(r.seed), "best_lr": float(r.lr),
                     "best_final_accuracy": float(r.accuracy), "stalled": float(r.accuracy <= STALL_ACCURACY),
                     "diverged_runs": int(grid["diverged_at"].notna().sum()),
                     "peak_val_accuracy": float(runs["value"].max()),
                     "first_step_above": float(above.iloc[0]) if len(above) else math.nan,
                     "budget": int(history[(history["init"] == r.init) & (history["depth"] == r.depth)]["step"].max())})
    return pd.DataFrame(rows)


def he_training_glue(params: Mapping[str, Any]) -> dict:
    """The text's description of the trained ReLU networks, from the run's parameters
    (``run.params``): ``he-arch`` (MLPs or plain CNNs, in words), ``he-depths`` (the depths
    joined by "and"), ``he-momentum``, ``he-steps`` and ``he-lrs`` (the learning-rate grid, joined by
    commas). Returns a dict from glue name to value."""
    arch = "MLPs" if params["arch"] == "mlp" else "plain CNNs (3x3 convolutions, no BatchNorm)"
    return {"he-arch": arch, "he-depths": " and ".join(map(str, params["he_depths"])),
            "he-momentum": params["momentum"], "he-steps": params["train_steps"],
            "he-lrs": ", ".join(f"{v:g}" for v in params["lrs"])}


def he_lr_summary(finals: pd.DataFrame) -> pd.DataFrame:
    """Every learning rate of the trained ReLU networks (``finals``: one row per init, depth,
    lr and seed, from :func:`initstudy.core.train.final_accuracy`). Returns a table indexed by
    depth, init and lr: the mean over seeds of the final validation accuracy (what the rate is
    chosen by, ``mean_val_accuracy``), the mean and the standard deviation over seeds of the
    test accuracy (``mean_accuracy``, ``std``; a diverged run at chance), the number of runs
    (``runs``) and how many of them diverged (``diverged``)."""
    return finals.groupby(["depth", "init", "lr"]).agg(
        mean_val_accuracy=("val_accuracy", "mean"), mean_accuracy=("accuracy", "mean"), std=("accuracy", "std"),
        runs=("accuracy", "count"), diverged=("diverged_at", lambda d: int(d.notna().sum())))


def placebo_runs(data, stall: pd.DataFrame, params, seeds, device: str = "cpu",
                 init: str = "xavier-fanin") -> pd.DataFrame:
    """The paired stall test's placebo: ``init`` (He's fan-in Xavier, whose stalls the test
    counts) again at the deepest depth over the same learning-rate grid, with the data order
    from the stream :data:`PLACEBO_ORDER` (the weights and all else the seed's), so that its
    rate is chosen on its own validation run as the arm it is compared with was: reusing that
    arm's chosen rate would regress to the mean and stall more often, biasing the control.
    ``stall``: :func:`he_fig3_per_seed`'s rows at that depth; ``params``: the run's parameters.
    Returns the history (:func:`initstudy.core.train.compare_inits`); :func:`he_fig3_per_seed`
    of it gives the placebo's chosen rate and test accuracy per seed."""
    from initstudy.core.train import compare_inits

    depth = int(stall["depth"].max())
    have = set(stall.loc[stall["init"] == init, "seed"])
    return compare_inits(data, inits=[init], depths=[depth], seeds=[s for s in seeds if s in have],
                         width=params["he_width"], steps=params["train_steps"], activations=["relu"],
                         lrs=params["lrs"], arch=params["arch"], batch_size=params["batch_size"],
                         momentum=params["momentum"], eval_every=params["train_steps"], device=device,
                         order_stream=PLACEBO_ORDER, progress=False)


def two_sided_mcnemar_p(a: list[float], b: list[float]) -> float:
    """The exact two-sided McNemar p-value whichever way the discordant pairs point (a placebo
    has no direction: a rejection either way is a pass of its check).

    >>> two_sided_mcnemar_p([0] * 6, [1] * 6), two_sided_mcnemar_p([1] * 6, [0] * 6)
    (0.03125, 0.03125)
    """
    return min(mcnemar_p(a, b), mcnemar_p(b, a))


#: The fewest discordant pairs, all one way, for which the exact two-sided McNemar test can reject
#: at 5 %: 2 x 2^-k <= 0.05 from k = 6 on.
MCNEMAR_MIN_PAIRS = 6


def stall_glue(stall: pd.DataFrame, he_depth: int, n_seeds: int, xavier: str = "xavier-fanin",
               placebo_finals: pd.DataFrame | None = None) -> dict:
    """The text's numbers and phrases of the stall check, from ``stall``: the rows of
    :func:`he_fig3_per_seed` at the deepest trained depth ``he_depth``, over ``n_seeds`` seeds.
    Returns a dict from glue name to value: ``he-depth``, ``stall-line`` (the stall line in %),
    ``stall-n`` (``n_seeds``), ``xavier-stalled-k`` and ``kaiming-stalled-k`` (stalled seeds of
    each init), ``xavier-late-seeds`` (the Xavier seeds not stalled whose best rate passed the
    line only in the second half of the budget, described, or "none") and
    ``xavier-fell-back-seeds`` (the stalled Xavier seeds whose validation accuracy rose above
    the line at some evaluation, with their peak, or "none")."""
    xname = xavier
    xavier = stall[stall["init"] == xname]
    late = xavier[(xavier["stalled"] == 0) & (xavier["first_step_above"] > xavier["budget"] / 2)]
    fell_back = xavier[(xavier["stalled"] == 1) & (xavier["peak_val_accuracy"] > STALL_ACCURACY)]
    return {
        "he-depth": he_depth, "stall-line": 100 * STALL_ACCURACY, "stall-n": n_seeds,
        "xavier-stalled-k": int(stall[stall["init"] == xname]["stalled"].sum()),
        "kaiming-stalled-k": int(stall.query("init == 'kaiming-normal'")["stalled"].sum()),
        "xavier-late-seeds": "; ".join(
            f"seed {r.seed} (above the line from step {r.first_step_above:.0f} of {r.budget}, "
            f"final {100 * r.best_final_accuracy:.1f} % at lr {r.best_lr:g})" for r in late.itertuples()) or "none",
        "xavier-fell-back-seeds": ", ".join(
            f"seed {r.seed} (validation peak {100 * r.peak_val_accuracy:.1f} %)" for r in fell_back.itertuples()) or "none",
        **_paired_glue(stall, xname, placebo_finals),
    }


def _paired_glue(stall: pd.DataFrame, xavier: str, placebo_finals: pd.DataFrame | None) -> dict:
    """The paired stall test's numbers: seeds where only Xavier or only Kaiming stalled, McNemar's
    p, the placebo's stalled seeds and its p, and the fewest discordant pairs that can reject."""
    x = stall[stall["init"] == xavier].set_index("seed")["stalled"]
    k = stall[stall["init"] == "kaiming-normal"].set_index("seed")["stalled"]
    seeds = sorted(set(x.index) & set(k.index))
    out = {"only-xavier": int(sum(x[s] >= 0.5 > k[s] for s in seeds)),
           "only-kaiming": int(sum(k[s] >= 0.5 > x[s] for s in seeds)),
           "mcnemar-p": mcnemar_p([float(x[s]) for s in seeds], [float(k[s]) for s in seeds]),
           "mcnemar-min-pairs": MCNEMAR_MIN_PAIRS}
    if placebo_finals is not None and len(placebo_finals):
        pl = placebo_finals.set_index("seed")["best_final_accuracy"]
        stalled = [float(pl[s] <= STALL_ACCURACY) if s in pl.index else math.nan for s in seeds]
        out.update({"placebo-stalled-k": int(sum(v == 1.0 for v in stalled)),
                    "placebo-only": int(sum(v >= 0.5 > x[s] for v, s in zip(stalled, seeds))),
                    "placebo-only-xavier": int(sum(x[s] >= 0.5 > v for v, s in zip(stalled, seeds))),
                    "placebo-p": two_sided_mcnemar_p(stalled, [float(x[s]) for s in seeds])})
    return out


def stall_power(n_seeds: int, max_seeds: int = 20) -> pd.DataFrame:
    """How many seeds an outcome where every seed stalls needs before the lower end of its
    exact (Clopper-Pearson) 95 % interval clears one half, the stall check's threshold.
    Returns one row: ``seeds`` (``n_seeds``), ``all_stalled_low`` (that lower end with
    ``n_seeds`` seeds, all stalled) and ``seeds_needed`` (the fewest seeds, up to
    ``max_seeds``, whose lower end is at least one half). ``n_seeds`` is at most ``max_seeds``."""
    power = pd.DataFrame([{"seeds": n, "all_stalled_low": interval([1.0] * n, "binomial")[2]}
                          for n in range(1, max_seeds + 1)])
    need = int(power[power["all_stalled_low"] >= 0.5]["seeds"].min())
    this = power.set_index("seeds").loc[n_seeds, "all_stalled_low"]
    return pd.DataFrame([{"seeds": n_seeds, "all_stalled_low": this, "seeds_needed": need}])


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
    """Validation accuracy during training of the plain ReLU networks, one panel per depth
    (rows) and learning rate (columns), one thin line per seed and colour per init; a cross
    marks the step at which a run diverged (its line stops there, at the accuracy of its
    frozen weights). Returns ``(figure, plotted data)``."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    curves = history[(history["split"] == "val") & (history["metric"] == "accuracy")
                     & ~(history["diverged_at"].notna() & (history["step"] >= history["diverged_at"]))]
    frozen = history[(history["split"] == "val") & (history["metric"] == "frozen_accuracy")]
    data = pd.concat([curves, frozen])[["init", "depth", "lr", "seed", "step", "value", "diverged_at"]].rename(
        columns={"value": "val_accuracy"}).sort_values(["init", "depth", "lr", "seed", "step"], kind="stable")
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
                    ax.plot(d["step"], d["val_accuracy"], color=palette[init], lw=0.9, alpha=0.75)
                    if d["diverged_at"].notna().any():
                        ax.plot(d["step"].iloc[-1], d["val_accuracy"].iloc[-1], "x", color="k", ms=6)
            ax.set_title(f"{depth} layers, lr {lr:g}", fontsize=11)
            ax.set_ylim(0, 1)
            if j == 0:
                ax.set_ylabel("validation accuracy")
            if i == len(depths) - 1:
                ax.set_xlabel("SGD step")
    handles = [plt.Line2D([], [], color=palette[k], lw=2) for k in inits]
    handles.append(plt.Line2D([], [], marker="x", color="k", ls=""))
    fig.legend(handles, inits + ["run diverged"], loc="lower center", ncol=len(inits) + 1, frameon=False,
               bbox_to_anchor=(0.5, 0.0))
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig, data


#: The most seeds per group the He stall figure draws as a swarm (more do not fit side by side).
SWARM_MAX = 12


def plot_he_best(per_seed: pd.DataFrame):
    """The stall check's own quantity: per seed, the test accuracy at the learning rate chosen
    on validation, by depth and init, with the stall line :data:`STALL_ACCURACY`.
    Returns ``(figure, plotted data)``."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    data = per_seed[["init", "depth", "seed", "best_lr", "best_final_accuracy", "stalled"]].copy()
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    inits = _init_order(data["init"])
    # a swarm, not a jittered strip: seeds at the same accuracy (at chance) sit side by side, none
    # hidden; with more seeds than a swarm can place (the gpu profile's 40), a jittered strip
    palette = dict(zip(inits, sns.color_palette("colorblind", len(inits))))
    if data.groupby(["depth", "init"]).size().max() <= SWARM_MAX:
        sns.swarmplot(data=data, x="depth", y="best_final_accuracy", hue="init", hue_order=inits, dodge=True,
                      size=7, ax=ax, palette=palette)
    else:
        sns.stripplot(data=data, x="depth", y="best_final_accuracy", hue="init", hue_order=inits, dodge=True,
                      jitter=0.3, size=4, alpha=0.7, ax=ax, palette=palette)
    ax.axhline(STALL_ACCURACY, color="k", ls="--", lw=1, label=f"stall line ({STALL_ACCURACY:.0%})")
    ax.set(ylim=(0, 1), xlabel="depth (layers)", ylabel="test accuracy at the\nrate chosen on validation")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    return fig, data
