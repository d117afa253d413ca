import dataclasses
import math
import pickle

import pandas as pd
import pytest
import torch

from initstudy.chapters import transfer
from initstudy.core import data
from initstudy.core.train import TrainConfig


@pytest.fixture(scope="module")
def digits28():
    return data.load("digits", resize=28)


@pytest.fixture(scope="module")
def digits8():
    return data.load("digits")


def test_few_labels_is_class_balanced_and_seeded(digits28):
    few = transfer.few_labels(digits28, 5, seed=0)
    assert len(few.y_train) == 50 and torch.bincount(few.y_train).tolist() == [5] * 10
    assert torch.equal(few.y_train, transfer.few_labels(digits28, 5, seed=0).y_train)
    assert not torch.equal(few.x_train, transfer.few_labels(digits28, 5, seed=1).x_train)
    assert len(few.y_test) == len(digits28.y_test)
    with pytest.raises(ValueError, match="fewer than 1000"):
        transfer.few_labels(digits28, 1000, 0)


def test_checkpoints_are_cached_and_loaded_safely(digits28, tmp_path):
    spec = transfer.PretrainSpec("digits", steps=5, lr=0.05, batch_size=32, seed=0)
    state, info = transfer.pretrain(spec, digits28, tmp_path)
    assert not info["cached"] and transfer.checkpoint_path(spec, tmp_path).is_file()
    again, info2 = transfer.pretrain(spec, digits28, tmp_path)
    assert info2["cached"] and info2["sha256"] == info["sha256"]
    assert all(torch.equal(state[k], again[k]) for k in state)
    # weights_only refuses a checkpoint that would run code when unpickled
    evil = tmp_path / "evil.pt"

    class Boom:
        def __reduce__(self):
            return (print, ("this ran",))

    torch.save({"x": Boom()}, evil)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        transfer.load_checkpoint(evil)
    other = transfer.PretrainSpec("digits", steps=6, lr=0.05, batch_size=32, seed=0)
    assert transfer.checkpoint_path(other, tmp_path) != transfer.checkpoint_path(spec, tmp_path)


def test_finetune_keeps_the_body_and_replaces_the_head(digits28, tmp_path):
    spec = transfer.PretrainSpec("digits", steps=5, lr=0.05, batch_size=32, seed=0)
    state, _ = transfer.pretrain(spec, digits28, tmp_path)
    net = transfer.build_finetune(spec, state, digits28, seed=1)
    assert torch.equal(net.conv1.weight, state["conv1.weight"]) and torch.equal(net.fc.weight, state["fc.weight"])
    assert not torch.equal(net.head.weight, state["head.weight"])
    for init in transfer.SCRATCH_INITS:
        scratch = transfer.build_scratch(spec, init, transfer.few_labels(digits28, 5, 0), seed=0)
        assert not torch.equal(scratch.conv1.weight, state["conv1.weight"])
    with pytest.raises(ValueError, match="unknown init"):
        transfer.build_scratch(spec, "zero", digits28, 0)


def _chosen(rows):
    """A table of chosen runs (per_class, seed, method, accuracy), as choose_rates returns."""
    return pd.DataFrame(rows, columns=["per_class", "seed", "method", "accuracy"])


def test_the_similar_source_is_mnist_s_digit_box_at_8x8():
    mnist, digits, fashion = transfer.load_data("local", 500)
    assert mnist.input_shape == digits.input_shape == fashion.input_shape == (1, 8, 8)
    assert mnist.info["crop"] == transfer.MNIST_BOX == 20 and "crop" not in digits.info
    assert len(fashion.y_train) == 500
    # the box fills the frame: the 28x28 images reduced whole leave a border of near-background
    whole = data.load("mnist-5k", source="local", resize=8, standardize=False)
    boxed = data.load("mnist-5k", source="local", crop=20, resize=8, standardize=False)
    border = lambda x: torch.cat([x[..., 0, :], x[..., -1, :]], -1).mean().item()  # noqa: E731
    assert border(boxed.x_train) > 3 * border(whole.x_train)
    t = transfer.data_table(mnist, digits, fashion)
    assert t["data set"].tolist() == ["mnist-5k", "mnist-5k", "fashion-mnist", "digits"]
    assert t.iloc[3][["train", "validation", "test"]].tolist() == [1149, 288, 360]  # 1797 digits


def test_pretrain_sources_one_network_per_source_and_seed(digits8, tmp_path):
    specs, states, table = transfer.pretrain_sources({"similar": digits8, "dissimilar": digits8}, tmp_path,
                                                     steps=3, lr=0.05, seeds=[4, 5], batch_size=16)
    assert list(specs) == [(r, s) for s in (4, 5) for r in ("similar", "shuffled", "dissimilar")]
    assert specs[("shuffled", 4)] == dataclasses.replace(specs[("similar", 4)], shuffled_labels=True)
    assert specs[("similar", 4)] == transfer.PretrainSpec("digits", steps=3, lr=0.05, batch_size=16, seed=4,
                                                          image_size=8, data=transfer.data_digest(digits8))
    # another source of the same name (a subset) is another checkpoint
    fewer = dataclasses.replace(digits8, x_train=digits8.x_train[:100], y_train=digits8.y_train[:100])
    assert transfer.data_digest(fewer) != transfer.data_digest(digits8)
    # the same spec twice (both sources are the digits here): the second is read from the cache
    assert table["loaded from the cache"].tolist() == [False, False, True] * 2
    assert table["sha256"].str.len().tolist() == [16] * 6
    assert not torch.equal(states[("similar", 4)]["conv1.weight"], states[("similar", 5)]["conv1.weight"])
    assert not torch.equal(states[("similar", 4)]["conv1.weight"], states[("shuffled", 4)]["conv1.weight"])


def test_sweep_chooses_every_method_s_rate_on_validation(digits8, tmp_path):
    specs, states, _ = transfer.pretrain_sources({"similar": digits8, "dissimilar": digits8}, tmp_path,
                                                 steps=3, lr=0.05, seeds=[0, 1], batch_size=16)
    cfg = TrainConfig(steps=3, batch_size=16, lr=0.05, eval_every=3)
    runs = transfer.transfer_sweep(specs, states, digits8, label_counts=[5], seeds=[0, 1], lrs=[0.01, 0.1],
                                   inits=("xavier-uniform", "lsuv"), config=cfg, progress=False)
    methods = {transfer.SIMILAR, transfer.SHUFFLED, transfer.DISSIMILAR, "xavier-uniform", "lsuv"}
    assert len(runs) == 2 * 5 * 2 and set(runs["method"]) == methods and set(runs["lr"]) == {0.01, 0.1}
    chosen = transfer.choose_rates(runs)
    assert len(chosen) == 2 * 5
    # derived here from the run table: per method and seed, the rate of the better validation accuracy
    for r in chosen.itertuples():
        cell = runs[(runs["method"] == r.method) & (runs["seed"] == r.seed)].sort_values("lr")
        best = cell.loc[cell["val_accuracy"].idxmax()]  # ties: the smaller rate, first after sorting
        assert r.lr == best["lr"] and r.accuracy == best["accuracy"]


def test_gains_compare_each_init_on_its_own():
    chosen = _chosen([(5, s, m, a) for s, accs in ((0, (0.80, 0.70, 0.75, 0.60, 0.79)), (1, (0.82, 0.79, 0.70, 0.65, 0.5)))
                      for m, a in zip((transfer.SIMILAR, "xavier-uniform", "lsuv", transfer.SHUFFLED,
                                       transfer.DISSIMILAR), accs)])
    g = transfer.gains(chosen, inits=("xavier-uniform", "lsuv")).set_index(["init", "seed"])["gain"]
    assert g.to_dict() == pytest.approx({("xavier-uniform", 0): 10.0, ("xavier-uniform", 1): 3.0,
                                         ("lsuv", 0): 5.0, ("lsuv", 1): 12.0})
    per_seed = transfer.gains_per_seed(chosen)
    assert set(per_seed["method"]) == {transfer.SIMILAR, transfer.SHUFFLED, transfer.DISSIMILAR}
    t = transfer.gain_table(per_seed).set_index(["method", "init"])
    assert t.loc[(transfer.SIMILAR, "lsuv"), "mean_gain"] == pytest.approx(8.5)
    assert t.loc[(transfer.SHUFFLED, "xavier-uniform"), "mean_gain"] == pytest.approx(-12.0)
    assert t.loc[(transfer.SIMILAR, "lsuv"), "low"] < 8.5 < t.loc[(transfer.SIMILAR, "lsuv"), "high"]
    m = transfer.transfer_measurements(chosen, [0, 1])
    assert len(m) == 15 and m["transfer_gain_over_xavier"] == pytest.approx([10.0, 3.0])
    assert m["shuffled_gain_over_lsuv"] == pytest.approx([-15.0, -5.0])
    assert m["dissimilar_gain_over_lsuv"] == pytest.approx([4.0, -20.0])
    assert all(math.isnan(v) for v in m["transfer_gain_over_kaiming"])  # not measured here
    glue = transfer.gain_glue(transfer.gain_table(per_seed))
    assert glue["gain-min-similar"] == pytest.approx(6.5) and glue["gain-worst-similar"] == "Xavier"
    assert glue["gains-similar-by-labels"] == "5: +6.5"


def test_every_init_is_a_check_and_the_control_must_fail_them():
    (c,) = transfer.CLAIMS
    assert [k.metric for k in c.criterion.checks] == [f"transfer_gain_over_{s}" for s in transfer.INIT_SLUGS.values()]
    assert all(k.control == k.metric.replace("transfer_", "shuffled_", 1) and k.threshold == 1.0
               for k in c.criterion.checks)
    assert c.fresh_from == 3000
    strong = [5.0, 6.0, 5.5, 6.5]
    m = {f"{p}_gain_over_{s}": v for s in transfer.INIT_SLUGS.values()
         for p, v in (("transfer", strong), ("shuffled", [-20, -25, -22, -21]), ("dissimilar", [-9, -8, -10, -9]))}
    m["transfer_gain_over_lsuv"] = [0.0, -1.0, 0.5, -0.5]  # transfer does not beat LSUV
    v = transfer.source_verdicts(m).set_index(["source", "init"])["check"]
    assert v[("similar", "kaiming-normal")] == "holds" and v[("similar", "lsuv")] == "fails"
    assert (v.xs("shuffled") == "fails").all() and (v.xs("dissimilar") == "fails").all()
    assert transfer.verdict_glue(transfer.source_verdicts(m)) == {
        "checks-held-dissimilar": "0 of 5", "checks-held-shuffled": "0 of 5", "checks-held-similar": "4 of 5"}


def test_a_diverged_pretraining_saves_no_checkpoint(digits8, tmp_path):
    spec = transfer.PretrainSpec("digits", steps=5, lr=1e30, batch_size=32, seed=0, image_size=8)
    with pytest.raises(transfer.PretrainingDiverged, match="diverged at step"):
        transfer.pretrain(spec, digits8, tmp_path)
    assert not list(tmp_path.iterdir())


def test_the_verdict_needs_every_init_beaten_and_a_control_that_fails():
    """judge() on the claim itself: transfer beating all five with the shuffled source failing
    every check reproduces it; the shuffled source passing one check makes that check decide
    nothing (the book's general rule: the others still decide); one init not beaten is not a
    reproduction."""
    from initstudy.study.claims import discrimination, judge

    (c,) = transfer.CLAIMS
    strong, weak = [5.0, 6.0, 5.5, 6.5, 5.2], [-20.0, -25.0, -22.0, -21.0, -23.0]
    m = {f"{p}_gain_over_{s}": list(v) for s in transfer.INIT_SLUGS.values()
         for p, v in (("transfer", strong), ("shuffled", weak))}
    good = judge(c, m)
    assert good.verdict == "reproduced" and discrimination([ch.__dict__ for ch in good.checks]) == "yes"
    passing = {**m, "shuffled_gain_over_old_uniform": strong}
    assert discrimination([ch.__dict__ for ch in judge(c, passing).checks]) == "no"
    statuses = {ch.metric: ch.status for ch in judge(c, passing).checks}
    assert statuses["transfer_gain_over_old_uniform"] == "does not discriminate"
    assert statuses["transfer_gain_over_xavier"] == "holds"
    not_lsuv = {**m, "transfer_gain_over_lsuv": [0.0, -1.0, 0.5, -0.5, 0.2]}
    assert judge(c, not_lsuv).verdict != "reproduced"


def test_imagenet_weights_need_a_network():
    from pathlib import Path

    if any(Path(torch.hub.get_dir(), "checkpoints").glob("resnet18-*.pth")):
        pytest.skip("the ImageNet weights are cached on this machine")
    with pytest.raises(RuntimeError, match="need a network once"):
        transfer.imagenet_resnet18(10)


def test_figures_return_what_they_plot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = _chosen([(k, s, m, a) for k in (5, 20) for s in (0, 1)
                      for m, a in ((transfer.SIMILAR, 0.8 + s / 100), (transfer.SHUFFLED, 0.6),
                                   ("xavier-uniform", 0.7), ("lsuv", 0.75 - k / 1000))]).assign(lr=0.1)
    fig, plotted = transfer.accuracy_figure(chosen, [5, 20])
    assert len(plotted) == 16 and fig.axes[0].get_xlabel() == "labelled examples per class"
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == [
        "transfer (similar source)", "transfer (shuffled-label source)", "Xavier", "LSUV"]
    plt.close(fig)
    per_seed = transfer.gains_per_seed(chosen)
    fig, plotted = transfer.gain_figure(per_seed, transfer.gain_table(per_seed), [5, 20])
    assert plotted.equals(transfer.gain_table(per_seed))
    assert [ax.get_title() for ax in fig.axes] == ["similar source (the claim)", "shuffled labels (control)"]
    assert [ax.get_xlabel() for ax in fig.axes] == ["labels per class"] * 2
    assert [ax.get_xticks().tolist() for ax in fig.axes] == [[5, 20], [5, 20]]
    plt.close(fig)
