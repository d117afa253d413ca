import dataclasses
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


def test_sweep_measurements_and_pair_verdicts(digits28, tmp_path):
    spec = transfer.PretrainSpec("digits", steps=5, lr=0.05, batch_size=32, seed=0)
    state, _ = transfer.pretrain(spec, digits28, tmp_path)
    shuffled = dataclasses.replace(spec, shuffled_labels=True)
    state_shuffled, info = transfer.pretrain(shuffled, digits28, tmp_path)
    assert not info["cached"] and transfer.checkpoint_path(shuffled, tmp_path) != transfer.checkpoint_path(spec, tmp_path)
    assert not torch.equal(state_shuffled["conv1.weight"], state["conv1.weight"])
    cfg = TrainConfig(steps=3, batch_size=16, lr=0.05, eval_every=3)
    finals = transfer.transfer_sweep(spec, state, digits28, pair="similar", label_counts=[5], seeds=[0, 1],
                                     inits=("xavier-uniform", "lsuv"), config=cfg, progress=False,
                                     controls={transfer.SHUFFLED: (shuffled, state_shuffled)})
    assert len(finals) == 8 and set(finals["method"]) == {"transfer", transfer.SHUFFLED, "xavier-uniform", "lsuv"}
    both = pd.concat([finals, finals[finals["method"] != transfer.SHUFFLED].assign(pair="dissimilar")])
    m = transfer.transfer_measurements(both, [0, 1])
    assert set(m) == {"transfer_gain_similar", "transfer_gain_dissimilar", "shuffled_source_gain_similar"}
    # each gain, derived here from the run table: the method's accuracy minus the best from-scratch
    # init's of the same seed, in points (the control pair from the shuffled-label source)
    for metric, pair, method in (("transfer_gain_similar", "similar", "transfer"),
                                 ("transfer_gain_dissimilar", "dissimilar", "transfer"),
                                 ("shuffled_source_gain_similar", "similar", transfer.SHUFFLED)):
        expected = []
        for seed in (0, 1):
            rows = both[(both["pair"] == pair) & (both["seed"] == seed)]
            acc = {r.method: r.accuracy for r in rows.itertuples()}
            expected.append(100 * (acc[method] - max(acc["xavier-uniform"], acc["lsuv"])))
        assert m[metric] == pytest.approx(expected, abs=1e-9), metric
    assert m["shuffled_source_gain_similar"] != m["transfer_gain_similar"]  # the control is its own run
    table = transfer.pair_verdicts({"transfer_gain_similar": [5.0, 6.0, 5.5],
                                    "transfer_gain_dissimilar": [-9, -8, -10],
                                    "shuffled_source_gain_similar": [-20, -25, -22]})
    assert table["verdict"].tolist() == ["reproduced", "not reproduced", "not reproduced"]
    assert table["pair"].str.split().str[0].tolist() == ["similar", "dissimilar", "shuffled-label"]


def test_gains_against_the_scratch_init_chosen_on_validation():
    rows = [("similar", 5, s, m, a, v) for s, accs, vals in ((0, (0.80, 0.70, 0.75, 0.60), (0.8, 0.6, 0.7, 0.9)),
                                                            (1, (0.82, 0.79, 0.70, 0.65), (0.8, 0.7, 0.6, 0.9)))
            for m, a, v in zip(("transfer", "xavier-uniform", "lsuv", transfer.SHUFFLED), accs, vals)]
    finals = pd.DataFrame(rows, columns=["pair", "per_class", "seed", "method", "accuracy", "val_accuracy"]).assign(
        diverged_at=float("nan"))
    g = transfer.gains(finals).set_index("seed")
    # seed 0: lsuv has the better validation accuracy (0.7): its test accuracy is the baseline
    assert g.loc[0, "best_init"] == "lsuv" and g.loc[0, "best_scratch"] == 0.75 and g.loc[0, "gain"] == pytest.approx(5.0)
    assert g.loc[1, "best_init"] == "xavier-uniform" and g.loc[1, "gain"] == pytest.approx(3.0)
    # the same runs with the test accuracies of the inits swapped: the choice stays, its outcome moves
    swapped = finals.assign(accuracy=finals["accuracy"].where(finals["method"] == "transfer",
                                                              1 - finals["accuracy"]))
    assert transfer.gains(swapped).set_index("seed")["best_init"].to_dict() == g["best_init"].to_dict()
    t = transfer.gain_table(finals).set_index("method")
    assert t.loc["transfer", "mean_gain"] == pytest.approx(4.0) and t.loc["transfer", "n"] == 2
    assert t.loc["transfer", "low"] < 4.0 < t.loc["transfer", "high"] and t.loc["transfer", "diverged_runs"] == 0
    assert t.loc[transfer.SHUFFLED, "mean_gain"] == pytest.approx(-14.5)
    lines = transfer.accuracy_lines(finals)
    assert set(lines["series"]) == {"transfer", transfer.SHUFFLED, "from-scratch init chosen on validation (per seed)",
                                    "mean of the from-scratch inits"}
    best = lines[lines["series"] == "from-scratch init chosen on validation (per seed)"].set_index("seed")["accuracy"]
    assert best.to_dict() == {0: 0.75, 1: 0.79}


def test_imagenet_weights_need_a_network():
    from pathlib import Path

    if any(Path(torch.hub.get_dir(), "checkpoints").glob("resnet18-*.pth")):
        pytest.skip("the ImageNet weights are cached on this machine")
    with pytest.raises(RuntimeError, match="need a network once"):
        transfer.imagenet_resnet18(10)


def test_data_table_one_row_per_role(digits28):
    small = dataclasses.replace(digits28, name="small", x_train=digits28.x_train[:7], y_train=digits28.y_train[:7])
    t = transfer.data_table(small, digits28, small)
    assert t["role"].tolist() == ["similar: source", "similar: target", "dissimilar: source", "dissimilar: target",
                                  "control: source, labels shuffled"]
    assert t["data set"].tolist() == ["small", "digits", "small", "small", "small"]
    assert t["train"].tolist() == [7, 1149, 7, 7, 7]  # the UCI digits: 1797 images, 360 test and 288 validation
    assert t["test"].tolist() == [360] * 5 and set(t["input"]) == {"1x28x28"}


def test_pretrain_sources_adds_the_shuffled_control(digits28, tmp_path):
    specs, states, table = transfer.pretrain_sources({"similar": digits28, "dissimilar": digits28}, tmp_path,
                                                     steps=3, lr=0.05, seed=4, batch_size=16)
    assert list(specs) == list(states) == ["similar", "dissimilar", transfer.CONTROL]
    assert specs[transfer.CONTROL] == dataclasses.replace(specs["similar"], shuffled_labels=True)
    assert specs["similar"] == transfer.PretrainSpec("digits", steps=3, lr=0.05, batch_size=16, seed=4)
    assert table["source of"].tolist() == ["similar", "dissimilar", transfer.CONTROL]
    # the same spec twice: the second is read from the cache, with the same file and hash
    assert table["loaded from the cache"].tolist() == [False, True, False]
    assert table["checkpoint"][0] == table["checkpoint"][1] != table["checkpoint"][2]
    assert table["sha256"].str.len().tolist() == [16] * 3
    assert not torch.equal(states["similar"]["conv1.weight"], states[transfer.CONTROL]["conv1.weight"])


def _table(rows):
    return pd.DataFrame(rows, columns=["pair", "method", "per_class", "mean_gain"])


def test_gains_per_seed_stacks_each_method():
    rows = [("similar", 5, s, m, a) for s, accs in ((0, (0.80, 0.70, 0.60)), (1, (0.50, 0.55, 0.90)))
            for m, a in zip(("transfer", "xavier-uniform", transfer.SHUFFLED), accs)]
    finals = pd.DataFrame(rows, columns=["pair", "per_class", "seed", "method", "accuracy"]).assign(val_accuracy=0.5)
    g = transfer.gains_per_seed(finals)
    assert g["method"].tolist() == ["transfer", "transfer", transfer.SHUFFLED, transfer.SHUFFLED]
    # accuracy minus xavier's of the same seed, in points
    assert g["gain"].tolist() == pytest.approx([10.0, -5.0, -10.0, 35.0])
    assert g.index.tolist() == [0, 1, 2, 3]
    only = transfer.gains_per_seed(finals[finals["method"] != transfer.SHUFFLED])
    assert only["gain"].tolist() == pytest.approx([10.0, -5.0])


def test_gain_glue_formats_transfer_by_labels():
    table = _table([("dissimilar", "transfer", 20, -0.5), ("dissimilar", "transfer", 5, -12.345),
                    ("similar", "transfer", 5, 1.234), ("similar", transfer.SHUFFLED, 5, 99.0),
                    ("similar", "transfer", 20, 0.0)])
    assert transfer.gain_glue(table) == {"gains-dissimilar": "5: -12.35, 20: -0.50",
                                         "gains-similar": "5: +1.23, 20: +0.00"}
    assert transfer.gain_glue(table, transfer.SHUFFLED) == {"gains-similar": "5: +99.00"}


def test_pair_glue_keys_by_the_first_word_of_the_pair():
    pairs = pd.DataFrame({"pair": ["similar (the claim)", "dissimilar (scope)",
                                   "shuffled-label source (negative control)"],
                          "verdict": ["reproduced", "not reproduced", "inconclusive"],
                          "gain (points)": [5.5, -9.0, 1.0], "95% CI low": [4.0, -10.0, float("nan")],
                          "95% CI high": [7.0, -8.0, float("nan")], "seeds": [3, 3, 1], "rule": ["r"] * 3})
    glue = transfer.pair_glue(pairs)
    assert list(glue)[:3] == ["pair-similar", "pair-dissimilar", "pair-shuffled-label"]
    assert len(glue) == 12
    assert glue["pair-similar"] == "reproduced" and glue["pair-shuffled-label"] == "inconclusive"
    assert (glue["pair-similar-gain"], glue["pair-similar-low"], glue["pair-similar-high"]) == (5.5, 4.0, 7.0)
    assert (glue["pair-dissimilar-gain"], glue["pair-dissimilar-low"], glue["pair-dissimilar-high"]) == (-9.0, -10.0, -8.0)
    assert glue["pair-shuffled-label-gain"] == 1.0 and pd.isna(glue["pair-shuffled-label-high"])


def test_figures_return_what_they_plot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(p, k, s, m, a) for p in ("similar", "dissimilar") for k in (5, 20) for s in (0, 1)
            for m, a in (("transfer", 0.8 + s / 100), ("xavier-uniform", 0.7), ("lsuv", 0.75 - k / 1000))]
    finals = pd.DataFrame(rows, columns=["pair", "per_class", "seed", "method", "accuracy"]).assign(
        diverged_at=float("nan"))
    finals["val_accuracy"] = finals["accuracy"]
    fig, lines = transfer.accuracy_figure(finals, [5, 20])
    assert [ax.get_title() for ax in fig.axes[:2]] == ["similar pair", "dissimilar pair"]
    best = lines[lines["series"] == "from-scratch init chosen on validation (per seed)"]
    assert len(lines) == 24 and set(best["accuracy"]) == {0.745, 0.73}
    plt.close(fig)
    per_seed = transfer.gains_per_seed(finals)
    fig, plotted = transfer.gain_figure(per_seed, transfer.gain_table(finals), [5, 20])
    assert plotted is per_seed and [ax.get_xticks().tolist() for ax in fig.axes] == [[5, 20], [5, 20]]
    plt.close(fig)
