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


def test_gains_against_the_best_scratch_init():
    rows = [("similar", 5, s, m, a) for s, accs in ((0, (0.80, 0.70, 0.75, 0.60)), (1, (0.82, 0.79, 0.70, 0.65)))
            for m, a in zip(("transfer", "xavier-uniform", "lsuv", transfer.SHUFFLED), accs)]
    finals = pd.DataFrame(rows, columns=["pair", "per_class", "seed", "method", "accuracy"]).assign(
        diverged_at=float("nan"))
    g = transfer.gains(finals).set_index("seed")
    assert g.loc[0, "best_scratch"] == 0.75 and g.loc[0, "gain"] == pytest.approx(5.0)  # not vs the shuffled source
    assert g.loc[1, "gain"] == pytest.approx(3.0)
    t = transfer.gain_table(finals).set_index("method")
    assert t.loc["transfer", "mean_gain"] == pytest.approx(4.0) and t.loc["transfer", "n"] == 2
    assert t.loc["transfer", "low"] < 4.0 < t.loc["transfer", "high"] and t.loc["transfer", "diverged_runs"] == 0
    assert t.loc[transfer.SHUFFLED, "mean_gain"] == pytest.approx(-14.5)
    lines = transfer.accuracy_lines(finals)
    assert set(lines["series"]) == {"transfer", transfer.SHUFFLED, "best from-scratch init (per seed)",
                                    "mean of the from-scratch inits"}
    best = lines[lines["series"] == "best from-scratch init (per seed)"].set_index("seed")["accuracy"]
    assert best.to_dict() == {0: 0.75, 1: 0.79}


def test_imagenet_weights_need_a_network():
    from pathlib import Path

    if any(Path(torch.hub.get_dir(), "checkpoints").glob("resnet18-*.pth")):
        pytest.skip("the ImageNet weights are cached on this machine")
    with pytest.raises(RuntimeError, match="need a network once"):
        transfer.imagenet_resnet18(10)
