"""Transfer learning against training from scratch, with few labels.

A small CNN (:func:`initstudy.core.models.small_cnn`) is pretrained on a source data set, saved as
a checkpoint, and fine-tuned (every layer; a new classifier head) on a target data set of
which only ``k`` labelled examples per class are kept; the same network is trained on the
same examples from scratch from each init of the book. Checkpoints are plain state dicts
written atomically and read back with ``torch.load(..., weights_only=True)`` (no pickled
code is ever executed), cached under ``checkpoints/`` by a key made of everything that
determines them.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from initstudy.core.data import Dataset, load
from initstudy.core.inits import initialise
from initstudy.core.models import small_cnn
from initstudy.core.progress import tqdm
from initstudy.core.train import TrainConfig, train, train_many
from initstudy.study.catalog import NotebookSpec, Param, common_params, per, same
from initstudy.study.claims import Check, Claim, Criterion, claim, interval, judge
from initstudy.study.execution import source_hash
from initstudy.study.results import atomic_write_bytes

__all__ = [
    "SPEC",
    "CLAIMS",
    "SCRATCH_INITS",
    "few_labels",
    "PretrainSpec",
    "checkpoint_path",
    "load_checkpoint",
    "pretrain",
    "build_scratch",
    "build_finetune",
    "transfer_sweep",
    "SHUFFLED",
    "PRETRAINED_METHODS",
    "gains",
    "gain_table",
    "accuracy_lines",
    "transfer_measurements",
    "pair_verdicts",
    "PAIRS",
    "CONTROL",
    "load_data",
    "data_table",
    "pretrain_sources",
    "few_label_runs",
    "gains_per_seed",
    "gain_glue",
    "pair_glue",
    "accuracy_figure",
    "gain_figure",
    "imagenet_resnet18",
    "GreyToRGB",
]


# ------------------------------------------------------------------ the chapter's declarations
# The notebook's parameters, validated before any work (run, sweep and the notebook itself), and
# the claims it settles, each with its criterion and negative control, written before the runs
# that measure them. initstudy.chapters wires them into the catalog and the ledger.

#: The fewest training examples of one class in the transfer chapter's smallest target (the
#: digits' training split, after the validation split: 111; tests/test_catalog.py checks it against the data).
TRANSFER_MAX_PER_CLASS = 111


SPEC = NotebookSpec(
    name="transfer",
    title="Does pretraining beat every initialisation?",
    summary="A CNN pretrained on one real data set and fine-tuned on another with few labels, against every init "
            "of the book from scratch; a similar pair (the claim), a dissimilar pair (its scope) and a "
            "shuffled-label source (the negative control).",
    datasets=("mnist-5k", "digits", "fashion-mnist"),
    params=(
        *common_params((2, 5, 20)),
        Param("label_counts", "list[int]", "labelled training examples per class of the target (the smallest is "
              "the verdict's)", per([5, 20], [5, 10, 20, 50, 100], [5, 10, 20, 50, 100]), min=1, max=TRANSFER_MAX_PER_CLASS),
        Param("pretrain_steps", "int", "SGD updates of the pretraining on each source", per(100, 600, 5000), min=1,
              max=10_000_000),
        Param("finetune_steps", "int", "SGD updates of every fine-tuning and from-scratch run",
              per(25, 150, 1000), min=1, max=10_000_000),
        Param("lr", "float", "SGD learning rate (momentum 0.9), the same for every run", same(0.05), min=1e-6,
              max=10.0),
        Param("batch_size", "int", "mini-batch size (capped by the number of labelled examples)", same(32), min=1,
              max=65536),
        Param("source_subset", "int", "Fashion-MNIST training examples used to pretrain the dissimilar pair (0 = all)",
              per(2000, 10000, 0), min=0, max=1_000_000),
        Param("pretrained", "str", "also fine-tune torchvision's ImageNet ResNet-18 (downloads its weights once)",
              same("ours"), choices=("ours", "torchvision-resnet18")),
    ),
)

CLAIMS: tuple[Claim, ...] = (
    Claim(
        "transfer-best",
        "Starting from weights pretrained on a similar task is better than any initialisation.",
        "Transfer learning",
        "A small CNN pretrained on a source data set and fine-tuned (all layers, new classifier head) on "
        "a target with only k labelled examples per class, against the same CNN trained on the same "
        "examples from scratch from each init of the book (old uniform, Xavier, Kaiming, orthogonal, "
        "LSUV), same budget. Metric, per seed, at the fewest labels of the profile: transfer's test "
        "accuracy minus that of the from-scratch init chosen on validation, in points, on the similar pair (MNIST-5k to the "
        "UCI digits at 28x28), which is what the claim is about. A dissimilar pair (Fashion-MNIST to "
        "MNIST-5k) is measured the same way and shown beside the verdict as the scope of the article's "
        "'always', not judged as part of it.",
        Criterion(
            (
                Check("transfer_gain_similar", ">=", 1.0, "transfer beats every init on the similar pair",
                      unit="points", control="shuffled_source_gain_similar",
                      asserts="is better than any initialisation"),
            )
        ),
        control="The same network pretrained on the same source images with their labels shuffled (a source "
                "that cannot carry useful features for the labels), fine-tuned alike: its gain over the best "
                "init must not pass the same check.",
        changes=(("transfer_gain_similar >= 1 and transfer_gain_control >= 1, combined by the general rule",
                  "transfer_gain_similar >= 1 only; the dissimilar pair reported as the claim's scope",
                  "the article's claim is about a similar task; judging the dissimilar pair by the same "
                  "rule made the verdict depend on a case the claim does not make"),
                 ("against the best from-scratch init of each seed, picked on the test images it was then "
                  "compared on; a diverged run at its accuracy when it stopped",
                  "against the from-scratch init of each seed chosen on validation, read once on test; a "
                  "diverged run at chance",
                  "a number selected on the test set is not a test number: picking the best of five inits on "
                  "the test images inflates the baseline"),),
        figures=("fig-transfer-best-gain", "fig-transfer-best-labels"),
        short='Weights pretrained on a similar task beat any initialisation.',
    ),
)

# ------------------------------------------------------------------ measurements

#: The inits trained from scratch: PyTorch's default rule (the old uniform rule, biases too),
#: Xavier, Kaiming, orthogonal and LSUV.
SCRATCH_INITS = ("old-uniform", "xavier-uniform", "kaiming-normal", "orthogonal", "lsuv")


def few_labels(data: Dataset, per_class: int, seed: int) -> Dataset:
    """Keep ``per_class`` labelled training examples of each class (a seeded draw); the
    validation and test splits are unchanged (what the few-label runs choose by, and are judged
    on)."""
    gen = np.random.default_rng(seed)
    y = data.y_train.numpy()
    keep = []
    for c in range(data.num_classes):
        idx = np.flatnonzero(y == c)
        if len(idx) < per_class:
            raise ValueError(f"class {c} of {data.name} has only {len(idx)} training examples, fewer than {per_class}")
        keep.append(gen.choice(idx, size=per_class, replace=False))
    keep = torch.from_numpy(np.sort(np.concatenate(keep)))
    return replace(data, x_train=data.x_train[keep], y_train=data.y_train[keep],
                   info={**data.info, "labels_per_class": per_class})


@dataclass(frozen=True)
class PretrainSpec:
    """Everything that determines a pretrained checkpoint."""

    source: str
    steps: int
    lr: float
    batch_size: int
    seed: int
    channels: tuple[int, ...] = (16, 32)
    hidden: int = 64
    image_size: int = 28
    in_channels: int = 1
    num_classes: int = 10
    #: Pretrain on the source's images with their labels shuffled (a seeded permutation): a
    #: source that cannot carry label-relevant features, the negative control of transfer-best.
    shuffled_labels: bool = False

    def key(self) -> str:
        text = json.dumps({**asdict(self), "src": source_hash()}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def checkpoint_path(spec: PretrainSpec, cache_dir: str | os.PathLike) -> Path:
    return Path(cache_dir) / f"{spec.source}-{spec.key()}.pt"


def load_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state dict read with ``weights_only=True``: tensors only, no code."""
    return torch.load(path, map_location="cpu", weights_only=True)


def pretrain(spec: PretrainSpec, source: Dataset, cache_dir: str | os.PathLike, device: str = "cpu") -> tuple[dict, dict]:
    """The pretrained state dict for ``spec``: read from the cache when present, else trained
    on ``source`` (SGD, momentum 0.9) and saved. Returns (state dict, info)."""
    path = checkpoint_path(spec, cache_dir)
    meta_path = path.with_suffix(".json")
    if path.is_file() and meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        return load_checkpoint(path), {**meta, "cached": True, "path": str(path)}
    if spec.shuffled_labels:
        perm = torch.randperm(len(source.y_train), generator=torch.Generator().manual_seed(spec.seed))
        source = replace(source, y_train=source.y_train[perm])
    torch.manual_seed(spec.seed)
    net = small_cnn(spec.in_channels, spec.num_classes, spec.image_size, spec.channels, spec.hidden)
    result = train(net, source, TrainConfig(steps=spec.steps, batch_size=spec.batch_size, lr=spec.lr, momentum=0.9,
                                            eval_every=spec.steps, seed=spec.seed), device=device)
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())
    meta = {"spec": asdict(spec), "source_test_accuracy": result.final["test_accuracy"],
            "sha256": hashlib.sha256(buf.getvalue()).hexdigest()}
    atomic_write_bytes(meta_path, json.dumps(meta, indent=2, sort_keys=True).encode())
    return state, {**meta, "cached": False, "path": str(path)}


def build_scratch(spec: PretrainSpec, init: str, target: Dataset, seed: int) -> nn.Module:
    """The transfer network initialised from scratch with ``init`` (biases 0, except PyTorch's
    default rule, which draws them too; LSUV fitted on the labelled examples)."""
    options = {"old-uniform": {"bias": "old-uniform"}, "lsuv": {"batch": target.x_train}}
    if init not in SCRATCH_INITS:
        raise ValueError(f"unknown init {init!r}; allowed: {', '.join(SCRATCH_INITS)}")
    torch.manual_seed(seed)
    net = small_cnn(spec.in_channels, target.num_classes, spec.image_size, spec.channels, spec.hidden)
    return initialise(net, init, seed=seed, **options.get(init, {}))


def build_finetune(spec: PretrainSpec, state: dict, target: Dataset, seed: int) -> nn.Module:
    """The pretrained network with a new classifier head (PyTorch's default init) for the target."""
    torch.manual_seed(seed)
    net = small_cnn(spec.in_channels, target.num_classes, spec.image_size, spec.channels, spec.hidden)
    body = {k: v for k, v in state.items() if not k.startswith("head.")}
    missing, unexpected = net.load_state_dict(body, strict=False)
    if unexpected or any(not k.startswith("head.") for k in missing):
        raise ValueError(f"checkpoint does not match the network: missing {missing}, unexpected {unexpected}")
    return net


def transfer_sweep(spec: PretrainSpec, state: dict, target: Dataset, *, pair: str, label_counts, seeds,
                   inits=SCRATCH_INITS, config: TrainConfig, extra_methods=(), progress: bool = True,
                   device: str = "cpu", controls: dict | None = None) -> pd.DataFrame:
    """Fine-tune from ``state`` and train from scratch with each init, for each number of
    labels per class and seed (the labelled subset is drawn from the seed), with the same
    budget; ``extra_methods=("imagenet-resnet18",)`` adds torchvision's ImageNet ResNet-18,
    fine-tuned (needs a network once). One row per run: pair, per_class, method, seed,
    accuracy, diverged_at. ``controls`` maps a method name to another (spec, state) fine-tuned
    the same way (e.g. {SHUFFLED: (spec, state)} for the shuffled-label source)."""
    from itertools import product

    rows = []
    controls = controls or {}
    methods = ["transfer", *controls, *inits, *extra_methods]
    grid = list(product(label_counts, seeds, methods))
    nets, datas, configs = [], [], []
    for k, seed, method in tqdm(grid, desc=pair, disable=not progress):
        few = few_labels(target, k, seed)
        if method == "transfer":
            net = build_finetune(spec, state, few, seed)
        elif method in controls:
            net = build_finetune(*controls[method], few, seed)
        elif method == "imagenet-resnet18":
            torch.manual_seed(seed)
            net = GreyToRGB(imagenet_resnet18(few.num_classes))
        else:
            net = build_scratch(spec, method, few, seed)
        nets.append(net)
        datas.append(few)
        configs.append(replace(config, seed=seed, batch_size=min(config.batch_size, len(few.y_train))))
    # Every run trains on its own labelled subset; runs of one size and architecture form one ensemble.
    for (k, seed, method), result in zip(grid, train_many(nets, datas, configs, device=device)):
        rows.append({"pair": pair, "per_class": k, "method": method, "seed": seed,
                     "accuracy": result.final["test_accuracy"], "val_accuracy": result.final["val_accuracy"],
                     "frozen_accuracy": result.final["frozen_test_accuracy"], "diverged_at": result.diverged_at})
    return pd.DataFrame(rows)


#: The method name of the negative control: fine-tuned from a source pretrained on shuffled labels.
SHUFFLED = "transfer (shuffled-label source)"
#: Methods that start from pretrained weights (everything else in a sweep is from scratch).
PRETRAINED_METHODS = ("transfer", SHUFFLED, "imagenet-resnet18")


def gains(finals: pd.DataFrame, method: str = "transfer") -> pd.DataFrame:
    """Per pair, labels per class and seed: ``method``'s test accuracy minus that of the
    from-scratch init chosen on validation for the same seed (the best validation accuracy,
    :func:`initstudy.core.selection.choose`), in points (columns pair, per_class, seed, method,
    accuracy, best_scratch, best_init, gain)."""
    from initstudy.core.selection import choose

    scratch = finals[~finals["method"].isin(PRETRAINED_METHODS)]
    chosen = choose(scratch, ["pair", "per_class", "seed"], "method").set_index(["pair", "per_class", "seed"])
    best = chosen["accuracy"].rename("best_scratch").to_frame().join(chosen["method"].rename("best_init"))
    mine = finals[finals["method"] == method].set_index(["pair", "per_class", "seed"])["accuracy"]
    out = mine.to_frame("accuracy").join(best, how="inner").reset_index()
    out["gain"] = 100 * (out["accuracy"] - out["best_scratch"])
    return out.assign(method=method)


def gain_table(finals: pd.DataFrame, methods=("transfer", SHUFFLED)) -> pd.DataFrame:
    """Per pair, method (of those measured) and labels per class: the gain over the best
    from-scratch init of the same seed (:func:`gains`, in points), its mean and two-sided 95 %
    Student-t interval over seeds (the rule of the verdict's check), ``n`` seeds, and
    ``diverged_runs``: the runs of that cell (the method's or any from-scratch init's) that
    diverged. A diverged run counts at chance."""
    rows = []
    for method in methods:
        if method not in set(finals["method"]):
            continue
        g = gains(finals, method)
        for (pair, k), cell in g.groupby(["pair", "per_class"], sort=True):
            n, mean, low, high = interval(cell["gain"].tolist())
            runs = finals[(finals["pair"] == pair) & (finals["per_class"] == k)
                          & (finals["method"].isin([method]) | ~finals["method"].isin(PRETRAINED_METHODS))]
            div = int(runs["diverged_at"].notna().sum()) if "diverged_at" in runs else 0
            rows.append({"pair": pair, "method": method, "per_class": int(k), "n": n, "mean_gain": mean,
                         "low": low, "high": high, "diverged_runs": div})
    return pd.DataFrame(rows)


def accuracy_lines(finals: pd.DataFrame) -> pd.DataFrame:
    """Tidy test accuracies for a figure, per pair, labels per class and seed (column
    ``series``): each pretrained method, the from-scratch init chosen on validation for that
    seed, and the mean of the from-scratch inits."""
    from initstudy.core.selection import choose

    keys = ["pair", "per_class", "seed"]
    scratch = finals[~finals["method"].isin(PRETRAINED_METHODS)]
    frames = [finals[finals["method"].isin(PRETRAINED_METHODS)].rename(columns={"method": "series"})[
        keys + ["series", "accuracy"]]]
    frames.append(choose(scratch, keys, "method")[keys + ["accuracy"]].assign(
        series="from-scratch init chosen on validation (per seed)"))
    frames.append(scratch.groupby(keys)["accuracy"].mean().reset_index().assign(series="mean of the from-scratch inits"))
    return pd.concat(frames, ignore_index=True)[keys + ["series", "accuracy"]]


def transfer_measurements(finals: pd.DataFrame, seeds) -> dict[str, list[float]]:
    """Per seed, at the fewest labels: transfer's accuracy minus that of the from-scratch init
    chosen on validation for that seed, in points, on the similar pair (the claim), on the dissimilar pair
    (its scope) and, on the similar pair, from the shuffled-label source (the negative control)."""
    out = {}
    fewest = finals["per_class"].min()
    for pair, method, metric in (("similar", "transfer", "transfer_gain_similar"),
                                 ("dissimilar", "transfer", "transfer_gain_dissimilar"),
                                 ("similar", SHUFFLED, "shuffled_source_gain_similar")):
        g = gains(finals, method)
        g = g[(g["pair"] == pair) & (g["per_class"] == fewest)].set_index("seed")["gain"]
        out[metric] = [float(g.get(s, float("nan"))) for s in seeds]
    return out


def by_claim(measurements: dict[str, list[float]]) -> dict[str, dict[str, list[float]]]:
    """:func:`transfer_measurements` under the chapter's one claim, for
    :meth:`~initstudy.study.run.Run.verdicts`."""
    (claim,) = CLAIMS
    return {claim.id: measurements}


def pair_verdicts(measurements: dict[str, list[float]]) -> pd.DataFrame:
    """The similar pair (the claim) and the dissimilar pair (its scope), each judged by the
    ``transfer-best`` check on its own, and the shuffled-label control judged alike."""
    base = claim("transfer-best")
    check = base.criterion.checks[0]
    rows = []
    for label, metric in (("similar (the claim)", "transfer_gain_similar"),
                          ("dissimilar (scope)", "transfer_gain_dissimilar"),
                          ("shuffled-label source (negative control)", "shuffled_source_gain_similar")):
        single = Claim(f"{base.id}:{metric}", base.statement, base.article_section, base.metric,
                       Criterion((replace(check, metric=metric, control=None),)))
        j = judge(single, measurements)
        c = j.checks[0]
        rows.append({"pair": label, "verdict": j.verdict, "gain (points)": c.mean,
                     "95% CI low": c.low, "95% CI high": c.high, "seeds": c.n, "rule": c.rule})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ the notebook's steps
# Data, checkpoints, runs, tables, glue and figures, in the order the notebook shows them.

#: The two pairs, in the order of the figures' panels: the claim's, then its scope.
PAIRS = ("similar", "dissimilar")
#: The role of the shuffled-label source among the pretrained networks (the negative control).
CONTROL = "control (labels shuffled)"


def load_data(data_source: str = "auto", source_subset: int | None = None) -> tuple[Dataset, Dataset, Dataset]:
    """The chapter's data sets: MNIST-5k, the UCI digits resized to 28x28 and Fashion-MNIST
    (``source_subset`` training examples; 0 or None: all), in that order."""
    mnist5k = load("mnist-5k", source=data_source)
    digits = load("digits", resize=28)
    fashion = load("fashion-mnist", source=data_source, subset=source_subset or None)
    return mnist5k, digits, fashion


def data_table(mnist5k: Dataset, digits: Dataset, fashion: Dataset) -> pd.DataFrame:
    """One row per role a data set plays (source or target of each pair, and the control's
    source): its name, training and test sizes and input shape."""
    roles = (("similar: source", mnist5k), ("similar: target", digits), ("dissimilar: source", fashion),
             ("dissimilar: target", mnist5k), ("control: source, labels shuffled", mnist5k))
    return pd.DataFrame([{"role": r, "data set": d.name, "train": len(d.y_train), "test": len(d.y_test),
                          "input": "x".join(map(str, d.input_shape))} for r, d in roles])


def pretrain_sources(sources: dict[str, Dataset], cache_dir: str | os.PathLike, *, steps: int, lr: float,
                     seed: int, batch_size: int = 64, device: str = "cpu") -> tuple[dict, dict, pd.DataFrame]:
    """Pretrain (or read from the cache, :func:`pretrain`) the source of each pair of
    ``sources`` ({"similar": ..., "dissimilar": ...}) and, as :data:`CONTROL`, the similar
    pair's source with its labels shuffled. Returns ({role: spec}, {role: state dict}, a table
    of one row per role: source, its test accuracy, whether it came from the cache, the
    checkpoint's file name and the first 16 hex digits of its SHA-256)."""
    specs = {pair: PretrainSpec(src.name, steps=steps, lr=lr, batch_size=batch_size, seed=seed)
             for pair, src in sources.items()}
    specs[CONTROL] = replace(specs["similar"], shuffled_labels=True)
    states, infos = {}, []
    for role, src in (("similar", sources["similar"]), ("dissimilar", sources["dissimilar"]),
                      (CONTROL, sources["similar"])):
        states[role], info = pretrain(specs[role], src, cache_dir, device=device)
        infos.append({"source of": role, "source": src.name, "source test accuracy": info["source_test_accuracy"],
                      "loaded from the cache": info["cached"], "checkpoint": info["path"].rsplit("/", 1)[-1],
                      "sha256": info["sha256"][:16]})
    return specs, states, pd.DataFrame(infos)


def few_label_runs(specs: dict, states: dict, targets: dict[str, Dataset], *, label_counts, seeds, steps: int,
                   batch_size: int, lr: float, pretrained: str = "ours", device: str = "cpu") -> pd.DataFrame:
    """The run table of both pairs (:func:`transfer_sweep`): on ``targets["similar"]``,
    fine-tuning from the similar source and from :data:`CONTROL` against every init from
    scratch; on ``targets["dissimilar"]``, from the dissimilar source against every init. All
    runs: ``steps`` SGD updates, momentum 0.9, evaluated at the end; ``pretrained=
    "torchvision-resnet18"`` adds torchvision's ImageNet ResNet-18 to both pairs. ``specs`` and
    ``states`` as :func:`pretrain_sources` returns them."""
    config = TrainConfig(steps=steps, batch_size=batch_size, lr=lr, momentum=0.9, eval_every=steps)
    extra = ("imagenet-resnet18",) if pretrained == "torchvision-resnet18" else ()
    common = dict(label_counts=label_counts, seeds=seeds, config=config, extra_methods=extra, device=device)
    return pd.concat([
        transfer_sweep(specs["similar"], states["similar"], targets["similar"], pair="similar",
                       controls={SHUFFLED: (specs[CONTROL], states[CONTROL])}, **common),
        transfer_sweep(specs["dissimilar"], states["dissimilar"], targets["dissimilar"], pair="dissimilar", **common),
    ])


def gains_per_seed(finals: pd.DataFrame, methods=("transfer", SHUFFLED)) -> pd.DataFrame:
    """:func:`gains` of each of ``methods``, one below the other (a method not in ``finals``
    adds no rows)."""
    return pd.concat([gains(finals, m) for m in methods], ignore_index=True)


def gain_glue(table: pd.DataFrame, method: str = "transfer") -> dict[str, str]:
    """``gains-<pair>`` for each pair of :func:`gain_table`'s ``table``: ``method``'s mean gain
    by labels per class, as "5: +1.23, 20: -0.50" (labels ascending, points, two decimals)."""
    rows = table[table["method"] == method].sort_values(["pair", "per_class"])
    return {f"gains-{pair}": ", ".join(f"{int(r.per_class)}: {r.mean_gain:+.2f}" for r in g.itertuples())
            for pair, g in rows.groupby("pair")}


def pair_glue(pairs: pd.DataFrame) -> dict:
    """The verdicts section's glued values from :func:`pair_verdicts`: for each row, keyed by
    the first word of its ``pair`` (similar, dissimilar, shuffled-label), ``pair-<key>`` (its
    verdict), ``pair-<key>-gain`` (mean gain, points), ``pair-<key>-low`` and
    ``pair-<key>-high`` (its 95 % interval)."""
    keyed = pairs.assign(key=pairs["pair"].str.split().str[0]).set_index("key")
    out = {}
    for suffix, column in (("", "verdict"), ("-gain", "gain (points)"), ("-low", "95% CI low"),
                           ("-high", "95% CI high")):
        out.update({f"pair-{k}{suffix}": v for k, v in keyed[column].items()})
    return out


def _label_ticks(ax, label_counts) -> None:
    ax.set_xticks(label_counts, [str(k) for k in label_counts])
    ax.minorticks_off()


def accuracy_figure(finals: pd.DataFrame, label_counts):
    """Test accuracy against labelled examples per class (log axis, ticks at ``label_counts``),
    one panel per pair: each pretrained method, the from-scratch init chosen on validation for each seed and the
    mean of the from-scratch inits (:func:`accuracy_lines`; mean and 95 % bootstrap interval
    over seeds). Returns (figure, the plotted data)."""
    import seaborn as sns

    lines = accuracy_lines(finals)
    cb = sns.color_palette("colorblind")
    palette = {"transfer": cb[0], SHUFFLED: cb[1], "from-scratch init chosen on validation (per seed)": cb[2],
               "mean of the from-scratch inits": cb[7], "imagenet-resnet18": cb[4]}
    palette = {k: v for k, v in palette.items() if k in set(lines["series"])}
    g = sns.relplot(data=lines, x="per_class", y="accuracy", hue="series", style="series", col="pair",
                    col_order=list(PAIRS), kind="line", markers=True, dashes=False, err_style="bars",
                    errorbar=("ci", 95), height=3.2, aspect=1.1, palette=palette)
    g.set(xscale="log")
    for ax in g.axes.flat:
        _label_ticks(ax, label_counts)
    g.set_titles("{col_name} pair")
    g.set_axis_labels("labelled examples per class", "test accuracy")
    sns.move_legend(g, "upper center", bbox_to_anchor=(0.45, 0.02), ncol=2, title=None, frameon=False)
    return g.figure, lines


def gain_figure(per_seed: pd.DataFrame, table: pd.DataFrame, label_counts):
    """The verdict's quantity against labelled examples per class (log axis, ticks at
    ``label_counts``), one panel per pair: the gain over the from-scratch init chosen on validation for each
    seed (dots, :func:`gains_per_seed`) and its mean and 95 % Student-t interval (bars,
    :func:`gain_table`), for transfer and the shuffled-label source (shifted right a little);
    lines at 0 and at the check's threshold, +1 point. Returns (figure, the plotted per-seed
    data)."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.lines import Line2D

    colours = dict(zip(["transfer", SHUFFLED], sns.color_palette("colorblind")[:2]))
    offset = {"transfer": 1.0, SHUFFLED: 1.12}
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.4), sharey=True)
    for ax, pair in zip(axes, PAIRS):
        for method, colour in colours.items():
            pts = per_seed[(per_seed["pair"] == pair) & (per_seed["method"] == method)]
            ci = table[(table["pair"] == pair) & (table["method"] == method)]
            if ci.empty:
                continue
            ax.scatter(pts["per_class"] * offset[method], pts["gain"], color=colour, s=10, alpha=0.5)
            ax.errorbar(ci["per_class"] * offset[method], ci["mean_gain"],
                        yerr=[ci["mean_gain"] - ci["low"], ci["high"] - ci["mean_gain"]], color=colour,
                        marker="o", capsize=3)
        ax.axhline(0, color="grey", lw=1)
        ax.axhline(1, color="black", ls="--", lw=1)
        ax.set(xscale="log", title=f"{pair} pair", xlabel="labelled examples per class",
               ylabel="gain over the init chosen\non validation (points)" if pair == "similar" else "")
        _label_ticks(ax, label_counts)
    handles = [Line2D([], [], color=c, marker="o") for c in colours.values()] + [
        Line2D([], [], color="black", ls="--", lw=1)]
    fig.legend(handles, ["transfer (mean, 95 % CI; dots: seeds)", "shuffled-label source (control)",
                         "the check's threshold, +1 point"], loc="upper center", bbox_to_anchor=(0.5, 0.02),
               ncol=2, frameon=False)
    fig.tight_layout()
    return fig, per_seed


def imagenet_resnet18(num_classes: int) -> nn.Module:
    """torchvision's ResNet-18 with its ImageNet weights and a new classifier head, for users
    with a network (the weights are downloaded once into torch's cache). Inputs: 3 channels."""
    import torchvision

    try:
        net = torchvision.models.resnet18(weights=torchvision.models.ResNet18_Weights.IMAGENET1K_V1)
    except Exception as err:  # no network, or a corrupt cache
        raise RuntimeError(
            "torchvision's pretrained ResNet-18 weights could not be loaded "
            f"({type(err).__name__}: {err}); they need a network once (then torch's cache), "
            "or use pretrained='ours'"
        ) from None
    net.fc = nn.Linear(net.fc.in_features, num_classes)
    return net


class GreyToRGB(nn.Module):
    """Repeat a 1-channel image to 3 channels and upsample it to ``size`` (for ImageNet nets)."""

    def __init__(self, net: nn.Module, size: int = 64):
        super().__init__()
        self.net, self.size = net, size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        return self.net(nn.functional.interpolate(x, size=(self.size, self.size), mode="bilinear",
                                                  align_corners=False))
