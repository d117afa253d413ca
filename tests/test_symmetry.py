import pandas as pd
import pytest
import torch
from torch import nn

from initstudy.chapters import zero_init as symmetry


def test_distances_literal():
    rows = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 4.0]])
    assert symmetry.max_pairwise_distance(rows) == 5.0
    assert symmetry.relative_max_pairwise_distance(rows) == 1.0
    assert symmetry.relative_max_pairwise_distance(torch.zeros(4, 3)) == 0.0
    assert symmetry.max_pairwise_distance(torch.ones(1, 3)) == 0.0


def test_distance_sees_float32_rounding_that_cdist_hides():
    w = torch.full((64, 784), 0.3)
    w[5, 7] = torch.nextafter(torch.tensor(0.3), torch.tensor(1.0))  # one ulp apart
    assert symmetry.max_pairwise_distance(w) > 0.0
    assert symmetry.max_pairwise_distance(torch.full((64, 784), 0.3)) == 0.0


def test_ranks_literal():
    assert symmetry.numerical_rank(torch.tensor([[1.0, 2.0], [2.0, 4.0]])) == 1
    assert symmetry.numerical_rank(torch.zeros(3, 3)) == 0
    assert symmetry.numerical_rank(torch.eye(5)) == 5
    assert symmetry.stable_rank(torch.eye(3)) == 3.0
    assert symmetry.stable_rank(torch.diag(torch.tensor([2.0, 1.0]))) == pytest.approx(1.25)
    assert symmetry.stable_rank(torch.zeros(2, 2)) == 0.0


def test_layer_symmetry_of_a_constant_layer():
    layer = nn.Linear(5, 4)
    nn.init.constant_(layer.weight, 0.1)
    nn.init.zeros_(layer.bias)
    s = symmetry.layer_symmetry(layer, outputs=torch.ones(7, 4))
    assert s["weight_distance"] == 0.0 and s["numerical_rank"] == 1.0 and s["output_rel_distance"] == 0.0


def test_tiny_network_same_start_stays_identical():
    trace = symmetry.tiny_network_trace([[1.0, -2.0, 0.5]], [1.0], weight=0.0, steps=4)
    assert symmetry.units_identical(trace)
    assert len(trace) == 10 and set(trace["unit"]) == {"h1", "h2"}
    # step 0, sigmoid(0) = 1/2, output 2 * 0.5 * 0.5 = 0.5, loss (0.5 - 1)^2 = 0.25
    assert trace.loc[0, "output"] == 0.5 and trace.loc[0, "loss"] == 0.25
    assert trace.loc[0, "grad_w"] == [-0.125, 0.25, -0.0625]


def test_tiny_network_different_biases_break_equality_not_direction():
    trace = symmetry.tiny_network_trace([[1.0, -2.0, 0.5]], [1.0], weight=0.0,
                                        bias=torch.tensor([0.5, -1.0]), steps=1)
    assert not symmetry.units_identical(trace)
    w1, w2 = (torch.tensor(w) for w in trace[trace["step"] == 1]["w"])
    cos = torch.dot(w1, w2) / (w1.norm() * w2.norm())
    assert cos.item() == pytest.approx(1.0, abs=1e-6)  # parallel rows after the first step


def _fake_sweep() -> pd.DataFrame:
    rows = []
    for seed in (0, 1, 2):
        for init, acc in (("zero", 0.1), ("kaiming", 0.8), ("zero-weights-random-bias", 0.7), ("constant", 0.2)):
            for act in ("sigmoid", "relu"):
                for step in (0, 10):
                    rows.append(dict(init=init, activation=act, depth=1, seed=seed, step=step, split="test",
                                     metric="accuracy", layer=None, value=acc if step else 0.1))
                    for metric, value in (("weight_rel_distance", 0.0 if "zero" == init else 1.5),
                                          ("numerical_rank", 1.0), ("weight_norm", 0.5 if step else 0.0),
                                          ("stable_rank", 1.0), ("output_rel_distance", 1.0)):
                        rows.append(dict(init=init, activation=act, depth=1, seed=seed, step=step,
                                         split="probe", metric=metric, layer="fc1", value=value))
    return pd.DataFrame(rows)


def test_zero_init_measurements_from_a_sweep_table():
    m = symmetry.zero_init_measurements(_fake_sweep())
    assert m["zero-symmetry"]["zero_units_rel_distance"] == [0.0, 0.0, 0.0]
    assert m["zero-symmetry"]["zero_accuracy_gap"] == pytest.approx([70.0, 70.0, 70.0])
    assert m["zero-symmetry"]["control_accuracy"] == pytest.approx([0.8] * 3)
    assert m["zero-random-bias"]["zrb_log10_weight_norm"] == pytest.approx([-0.30103] * 3, abs=1e-5)
    assert m["zero-random-bias"]["zrb_units_rel_distance"] == [1.5, 1.5, 1.5]


def test_unknown_init():
    with pytest.raises(ValueError, match="allowed"):
        symmetry.init_for_symmetry(nn.Linear(2, 2), "xavier", "relu", 0)


def _fake_accuracy_sweep() -> pd.DataFrame:
    """Final accuracies that differ by seed, one diverged run (a NaN training loss)."""
    rows = []
    acc = {("kaiming", 0): 0.80, ("kaiming", 1): 0.70, ("kaiming", 2): 0.75, ("zero", 0): 0.10, ("zero", 1): 0.12,
           ("zero", 2): 0.11}
    for (init, seed), a in acc.items():
        for step in (0, 10):
            rows.append(dict(init=init, activation="sigmoid", depth=1, seed=seed, step=step, split="test",
                             metric="accuracy", layer=None, value=a if step else 0.1))
            loss = float("nan") if (init, seed, step) == ("kaiming", 1, 10) else 1.0
            rows.append(dict(init=init, activation="sigmoid", depth=1, seed=seed, step=step, split="train",
                             metric="loss", layer=None, value=loss))
    return pd.DataFrame(rows)


def test_final_accuracies_count_diverged_runs_and_keep_every_seed():
    finals = symmetry.final_accuracies(_fake_accuracy_sweep())
    assert len(finals) == 6 and finals["accuracy"].max() == pytest.approx(80.0)
    assert finals.set_index(["init", "seed"])["diverged"].to_dict()[("kaiming", 1)]
    assert finals["diverged"].sum() == 1
    by = symmetry.accuracy_by_setting(finals).set_index("init")
    assert by.loc["kaiming", "min"] == pytest.approx(70.0) and by.loc["kaiming", "mean"] == pytest.approx(75.0)
    assert by.loc["kaiming", "diverged_runs"] == 1 and by.loc["zero", "seeds"] == 3


def test_findings_quote_the_lowest_seed_not_a_mean():
    """The text says "every seed reached at least X %": X must be a minimum over seeds."""
    df = pd.concat([_fake_accuracy_sweep(), _fake_sweep().assign(depth=2, activation="relu")], ignore_index=True)
    df = df[df["init"].isin(["kaiming", "zero"]) | (df["depth"] == 2)]
    f = symmetry.zero_init_findings(df)
    assert f["kaiming-accuracy-seed-min"] == pytest.approx(70.0)
    assert f["kaiming-accuracy-mean-min"] == pytest.approx(75.0)
    assert f["zero-accuracy-seed-max"] == pytest.approx(12.0)
    assert f["diverged-runs"] == 1.0


def test_zrb_final_symmetry_and_parallel_settings():
    zrb = symmetry.zrb_final_symmetry(_fake_sweep())
    assert set(zrb["activation"]) == {"sigmoid", "relu"} and (zrb["weight_rel_distance"] == 1.5).all()
    assert (zrb["numerical_rank"] == 1.0).all()
    assert symmetry.zrb_parallel_settings(zrb) == "relu with 1 hidden layer, sigmoid with 1 hidden layer"
    assert symmetry.zrb_parallel_settings(zrb.assign(numerical_rank=3.0)) == ""


def test_chapter_figures_read_at_page_width():
    import matplotlib

    matplotlib.use("Agg")
    from initstudy.study.figures import readability_problems, set_style

    set_style()
    df = _fake_sweep()
    distance = symmetry.max_over_layers(df, "weight_rel_distance")
    assert len(distance) == len(df[df["metric"] == "weight_rel_distance"])
    for fig in (symmetry.plot_by_setting(distance, "value", "relative distance", symlog_y=1e-6, hline=(1e-4, "t")),
                symmetry.plot_zrb_ranks(df[df["metric"].isin(["numerical_rank", "stable_rank"])])):
        assert readability_problems(fig) == []


def test_zero_init_stays_exactly_symmetric_in_the_chapters_ensemble():
    """The chapter trains its members through single-model products (a batched product
    rounds units differently and, on this machine, breaks the symmetry); the negative
    control: a symmetry broken by 1e-7 in one weight is seen."""
    import copy

    from initstudy.core import ensemble
    from initstudy.core.data import Dataset
    from initstudy.core.models import mlp
    from initstudy.core.train import TrainConfig

    g = torch.Generator().manual_seed(0)
    ds = Dataset(name="toy", source="test", x_train=torch.rand(512, 1, 8, 8, generator=g),
                 y_train=torch.randint(0, 10, (512,), generator=g), x_val=torch.rand(32, 1, 8, 8, generator=g),
                 y_val=torch.randint(0, 10, (32,), generator=g), x_test=torch.rand(64, 1, 8, 8, generator=g),
                 y_test=torch.randint(0, 10, (64,), generator=g), num_classes=10)
    nets = [symmetry.init_for_symmetry(mlp(64, [32], 10, act="sigmoid"), "zero", "sigmoid", s) for s in range(2)]
    broken = copy.deepcopy(nets[0])
    with torch.no_grad():
        broken.fc1.weight[0, 0] = 1e-7
    configs = [TrainConfig(steps=200, batch_size=64, lr=0.5, eval_every=200, seed=s) for s in range(3)]
    members = nets + [broken]
    ensemble.train_ensemble(members, ds, configs, vectorize="loop")
    assert all(n.fc1.weight.norm() > 0 for n in members[:2])  # they trained
    assert [symmetry.relative_max_pairwise_distance(n.fc1.weight) for n in members[:2]] == [0.0, 0.0]
    assert symmetry.relative_max_pairwise_distance(broken.fc1.weight) > 1e-7
