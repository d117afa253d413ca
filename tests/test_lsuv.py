"""LSUV: the stopping rule, held-out variance, execution order, bad cases, determinism."""

import math

import numpy as np

import pandas as pd
import pytest
import torch
from torch import nn

from initstudy.chapters import lsuv as chapter
from initstudy.core import data, lsuv, models


@pytest.fixture(scope="module")
def digits():
    return data.load("digits")


def mlp(digits, act="relu", depth=4, width=32, seed=0):
    torch.manual_seed(seed)
    return models.mlp(digits.in_features, [width] * depth, digits.num_classes, act=act)


def test_every_layer_within_tolerance_on_a_held_out_batch(digits):
    for act in ("relu", "tanh", "sigmoid"):
        net = mlp(digits, act, depth=6, width=64)
        rec = lsuv.lsuv_init(net, digits.x_train[:256], seed=0)
        assert rec["converged"].all()
        held = lsuv.output_variances(net, digits.x_val[:256])
        assert (held["variance"] - 1).abs().max() < 0.2  # a held-out batch, not the fitted one
        assert len(held) == 7  # six hidden layers and the output layer


def test_one_rescale_is_exact_on_a_fixed_batch_with_zero_bias(digits):
    net = chapter.build("mlp-relu", digits, 4, 32, seed=0)  # zero biases
    rec = lsuv.lsuv_init(net, digits.x_train[:128], tol_var=1e-6, t_max=10, seed=0)
    assert (rec["iterations"] <= 1).all()
    assert rec["var_after"].sub(1).abs().max() < 1e-6


def test_the_stopping_rule_and_t_max(digits):
    x = digits.x_train[:128]
    net = mlp(digits)
    rec = lsuv.lsuv_init(net, x, tol_var=0.1, t_max=10, seed=0)
    assert (rec["iterations"] <= 10).all() and (rec["forward_passes"] == rec["iterations"] + 1).all()
    assert ((rec["var_after"] - 1).abs() < 0.1).all()
    # fresh tiny batches and an impossible tolerance: reaches t_max, reported as not converged
    gen = torch.Generator().manual_seed(0)
    draw = lambda: digits.x_train[torch.randint(0, 1000, (4,), generator=gen)]  # noqa: E731
    rec = lsuv.lsuv_init(mlp(digits), draw, tol_var=1e-9, t_max=3, fresh_batches=True, seed=0)
    assert (rec["iterations"] == 3).all() and not rec["converged"].any()


def test_execution_order_not_registration_order(digits):
    class OutOfOrder(nn.Module):
        def __init__(self):
            super().__init__()
            self.second = nn.Linear(32, 32)
            self.first = nn.Linear(64, 32)

        def forward(self, x):
            return self.second(self.first(x.flatten(1)))

    net = OutOfOrder()
    x = 5 * digits.x_train[:128]  # unstandardised input: the first layer needs a rescale
    assert [n for n, _ in lsuv.execution_order(net, x)] == ["first", "second"]
    assert [n for n, _ in lsuv.eligible_layers(net)] == ["second", "first"]
    rec = lsuv.lsuv_init(net, x, seed=0)
    assert rec["layer"].tolist() == ["first", "second"]
    held = lsuv.output_variances(net, 5 * digits.x_val[:128]).set_index("layer")["variance"]
    assert abs(held["second"] - 1) < 0.2
    wrong = OutOfOrder()
    lsuv.lsuv_init(wrong, x, order="registration", seed=0)
    assert abs(lsuv.output_variances(wrong, x).set_index("layer")["variance"]["second"] - 1) > 0.2


def test_bad_cases_are_clear_errors(digits):
    x = digits.x_train[:64]
    with pytest.raises(lsuv.LSUVError, match="no Linear or Conv"):
        lsuv.lsuv_init(nn.Sequential(nn.ReLU()), x)
    with pytest.raises(lsuv.LSUVError, match="batch of 1 example"):
        lsuv.lsuv_init(mlp(digits), x[:1])
    dead = mlp(digits)
    with torch.no_grad():
        dead.fc2.weight.zero_()
        dead.fc2.bias.zero_()
    with pytest.raises(lsuv.LSUVError, match="layer fc2: output variance is 0.0"):
        lsuv.lsuv_init(dead, x, orthonormal=False)
    nan = mlp(digits)
    with torch.no_grad():
        nan.fc1.weight[0, 0] = float("nan")
    with pytest.raises(lsuv.LSUVError, match="layer fc1: output variance is nan"):
        lsuv.lsuv_init(nan, x, orthonormal=False)


def test_conv_nets_and_batchnorm_run(digits):
    big = data.load("digits", subset=200, resize=14)
    for arch in ("cnn", "resnet", "resnet-bn"):
        net = chapter.build(arch, big, 4, 32, seed=0)
        rec = lsuv.lsuv_init(net, big.x_train[:64], seed=0)
        assert rec["converged"].all() and len(rec) == len(lsuv.eligible_layers(net))
    conv1d = nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU(), nn.Conv1d(4, 4, 3))
    rec = lsuv.lsuv_init(conv1d, torch.randn(16, 1, 20), seed=0)
    assert rec["converged"].all()


def test_same_seed_same_result(digits):
    x = digits.x_train[:128]
    a, b = mlp(digits), mlp(digits)
    ra, rb = lsuv.lsuv_init(a, x, seed=3), lsuv.lsuv_init(b, x, seed=3)
    pd.testing.assert_frame_equal(ra.drop(columns="seconds"), rb.drop(columns="seconds"))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_package_side_by_side(digits):
    x, held = digits.x_train[:128], digits.x_val[:128]
    build = lambda: models.mlp(64, [32, 32], 10)  # noqa: E731
    for seed in (0, 1, 2):
        out = chapter.compare_with_package(build, x, held, seed=seed)
        assert out["layer"].tolist() == ["fc1", "fc2", "out"]
        # both land every layer near unit variance on the held-out batch (the package stops when
        # the std is within 0.1 of 1 on its own batch: variance in [0.81, 1.21])
        for column in ("variance_initstudy", "variance_lsuv_package"):
            assert ((out[column] - 1).abs() < 0.25).all(), (seed, out)
        assert ((out["variance_initstudy"] - out["variance_lsuv_package"]).abs() < 0.25).all(), (seed, out)
    # the negative control, measured the same way: the default init is far from unit variance
    torch.manual_seed(0)
    default = lsuv.output_variances(build(), held)["variance"]
    assert ((default - 1).abs() > 0.25).all()


def test_final_accuracy_summary_counts_every_seed_and_states_its_rule():
    finals = pd.DataFrame([
        {"init": "a", "seed": 0, "accuracy": 0.80, "diverged_at": float("nan")},
        {"init": "a", "seed": 1, "accuracy": 0.70, "diverged_at": float("nan")},
        {"init": "a", "seed": 2, "accuracy": float("nan"), "diverged_at": 332.0},  # diverged: counted at chance
        {"init": "b", "seed": 0, "accuracy": 0.105, "diverged_at": float("nan")},  # stuck at chance
        {"init": "b", "seed": 1, "accuracy": 0.60, "diverged_at": float("nan")},
    ])
    s = chapter.final_accuracy_summary(finals, ["init"], num_classes=10).set_index("init")
    assert s.loc["a", "seeds"] == 3 and s.loc["a", "diverged"] == 1 and s.loc["a", "stuck_at_chance"] == 0
    assert s.loc["a", "mean_accuracy"] == pytest.approx((0.8 + 0.7 + 0.1) / 3)
    assert s.loc["a", "min_accuracy"] == pytest.approx(0.1) and s.loc["a", "learned"] == 2
    assert s.loc["b", "stuck_at_chance"] == 1 and s.loc["b", "mean_learned_accuracy"] == pytest.approx(0.6)
    assert "diverged run counted at chance (10 %)" in s.loc["a", "rule"]
    text = chapter.describe_accuracies(s.reset_index())
    assert text == "a 53.3 % (1 of 3 diverged); b 35.2 % (1 of 2 stuck at chance)"


def test_batch_size_summaries_match_the_check():
    scales = pd.DataFrame([{"seed": s, "batch_size": b, "layer": layer, "scale": sc * (1.1 if layer == "fc2" else 1)}
                           for s in (0, 1) for b, sc in ((8, 1.2), (64, 1.05), (1024, 1.0)) for layer in ("fc1", "fc2")])
    spread = chapter.scale_spread(scales).set_index(["seed", "batch_size"])["max_abs_log_scale_ratio"]
    assert spread[(0, 8)] == pytest.approx(math.log(1.2))
    assert spread[(1, 1024)] == 0.0
    finals = pd.DataFrame([{"seed": 0, "batch_size": 8, "variant": "lsuv", "accuracy": 0.50, "diverged_at": None},
                           {"seed": 0, "batch_size": 64, "variant": "lsuv", "accuracy": 0.53, "diverged_at": None},
                           {"seed": 0, "batch_size": 1024, "variant": "lsuv", "accuracy": 0.52, "diverged_at": None},
                           {"seed": 0, "batch_size": 1024, "variant": "lr x0.5", "accuracy": 0.45,
                            "diverged_at": None},
                           {"seed": 0, "batch_size": 1024, "variant": "replicate", "accuracy": 0.515,
                            "diverged_at": None}])
    d = chapter.accuracy_diffs(finals).set_index(["batch_size", "variant"])["diff_points"]
    assert d[(8, "lsuv")] == pytest.approx(-2.0) and d[(1024, "lr x0.5")] == pytest.approx(-7.0)
    assert d[(1024, "replicate")] == pytest.approx(-0.5)
    # the trend: least squares of (3, 50), (6, 53), (10, 52) over log2 batch, times the 7 doublings
    x, y = np.log2([8, 64, 1024]), np.array([50.0, 53.0, 52.0])
    slope = ((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum()
    trend = chapter.batch_trend(finals).set_index("seed")
    assert trend.loc[0, "trend_points"] == pytest.approx(slope * 7) and trend.loc[0, "doublings"] == 7
    cost = pd.DataFrame({"seed": [0], "fraction_of_bn_epoch": [0.01], "fraction_of_bn_step": [5.0]})
    m = chapter.lsuv_measurements(
        pd.DataFrame({"tol_var": 0.1, "t_max": 10, "seed": 0, "arch": ["mlp-relu", "mlp-relu", "cnn"],
                      "batches": "fixed", "bias": "zero", "iterations": [1, 2, 7]}),
        pd.DataFrame({"tol_var": [0.1], "t_max": [10], "seed": [0], "variance": [1.0]}),
        scales[scales["seed"] == 0].assign(variant="lsuv"), finals, cost, [0], [0])
    # a range claim is judged on the runs outside it: per seed, the fraction of its runs (here the
    # cnn at 7 of the two runs of seed 0)
    assert m["lsuv-1-5-iterations"]["lsuv_runs_over_5_iterations"] == [0.5]
    b = m["lsuv-batch-size"]
    assert b["lsuv_small_batch_scale_diff"] == [pytest.approx(spread[(0, 8)])]
    assert b["lsuv_halved_lr_accuracy_diff"] == [pytest.approx(-7.0)]
    assert b["lsuv_replicate_accuracy_diff"] == [pytest.approx(-0.5)]
    assert b["lsuv_batch_trend"] == [pytest.approx(slope * 7)]
    assert b["lsuv_unscaled_scale_diff"] == [pytest.approx(math.log(1.1))]  # the largest batch moved fc2 by 1.1
    assert m["lsuv-cheap"] == {"lsuv_cost_fraction_of_bn": [0.01], "lsuv_cost_fraction_of_bn_step": [5.0]}
    ci = chapter.mean_intervals(pd.DataFrame({"g": [1, 1, 1], "v": [1.0, 2.0, 3.0]}), ["g"], "v")
    assert ci.loc[0, "mean"] == 2.0 and ci.loc[0, "low"] < 2.0 < ci.loc[0, "high"] and ci.loc[0, "n"] == 3


def test_iteration_summary_and_the_tight_control(digits):
    kw = dict(archs=["mlp-relu"], seeds=[0], depth=3, width=16, batch_size=32, progress=False)
    records, held = chapter.iteration_sweep(digits, tolerances=[lsuv.PAPER], batch_modes=["fixed"],
                                         bias_modes=["zero"], **kw)
    tight, _ = chapter.iteration_sweep(digits, tolerances=[lsuv.TIGHT], batch_modes=["fresh"], bias_modes=["zero"], **kw)
    s = chapter.iteration_summary(pd.concat([records, tight]), heldout=held).set_index("tolerance")
    assert s.loc["paper", "max_iterations"] <= 1 and s.loc["paper", "not_converged"] == 0
    assert s.loc["paper", "layers"] == 4 and abs(s.loc["paper", "heldout_variance_mean"] - 1) < 0.3
    assert s.loc["tight (control)", "max_iterations"] == lsuv.TIGHT[1]  # fresh batches of 32: noise >> 0.001
    pre = chapter.preinit_variances(digits, archs=["mlp-relu"], seeds=[0], depth=3, width=16, batch_size=32)
    assert len(pre) == 4 and set(pre.columns) >= {"arch", "seed", "variance"}
    demo = pd.concat([records.assign(variant="paper"), tight.assign(variant="tight")])
    v = chapter.variant_summary(demo).set_index("variant")
    assert v.loc["paper", "not_converged"] == 0 and v.loc["paper", "max_abs_var_error"] < 0.1


def test_the_chapters_glue_reads_its_tables():
    diffs = pd.DataFrame({"variant": ["lsuv"] * 6 + ["halved lr"] * 2, "seed": [0, 1] * 4,
                          "batch_size": [8, 8, 32, 32, 128, 128, 128, 128],
                          "accuracy": [0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.1, 0.1],
                          "diff_points": [-40.0, -35.0, -20.0, -15.0, 0.0, 0.0, -80.0, -85.0]})
    glue = chapter.batch_size_glue(diffs, batch_depth=8, n_seeds=2)
    # Spearman's rho is Pearson's r of the ranks: batch ranks tie in pairs (1.5, 1.5, 3.5, 3.5, 5.5,
    # 5.5; deviations -2, -2, 0, 0, 2, 2), accuracy ranks are 1..6 (deviations -2.5 ... 2.5):
    # r = 16 / sqrt(16 * 17.5)
    assert glue["batch-rho"] == pytest.approx(16 / math.sqrt(16 * 17.5), rel=1e-12) and glue["batch-p"] < 0.01
    assert (glue["batch-diff-min"], glue["batch-diff-max"]) == (-40.0, -35.0)
    cost = pd.DataFrame({"seed": [0, 1, 2], "lsuv_seconds": [1.0, 3.0, 2.0], "bn_extra_seconds_per_step": [0.001, 0.002, 0.003],
                         "bn_step_seconds": [0.01, 0.03, 0.02], "lsuv_passes": [40, 40, 40], "lsuv_gflop": [2.0] * 3,
                         "epoch_gflop": [100.0] * 3, "epoch_steps": [100] * 3, "epoch_images": [6400] * 3,
                         "step_gflop": [1.0] * 3, "batch_size": [64] * 3, "bn_overhead_fraction": [0.2, 0.25, 0.3],
                         "timed_fraction_of_bn_epoch": [0.1, 0.2, 0.3]})
    race = pd.DataFrame({"model": ["a", "a", "b"], "seconds": [1.0, 2.0, 5.0], "accuracy": [0.5, 0.8, 0.9]})
    g = chapter.cost_glue(cost, race, target=0.7)
    assert (g["lsuv-s"], g["bn-overhead-ms"], g["bn-step-ms"], g["target"]) == pytest.approx((2.0, 2.0, 20.0, 70.0))
    # break-even: LSUV's 2 GFLOP over BN's share of a step per image, 1 GFLOP x 0.25 / 64
    assert g["break-even-images"] == pytest.approx(2.0 / (0.25 / 64)) and g["bn-overhead-pct"] == pytest.approx(25.0)
    assert g["race"] == "a: 2.0 s; b: 5.0 s"
    assert chapter.cost_glue(cost, race, target=0.95)["race"] == "neither reached it"


def test_the_cost_is_counted_work_first(digits):
    """LSUV's counted work is its whole forward passes (one for the execution order, then each
    layer's) times one pass's FLOPs; an epoch is the training split over the training batch (the
    last incomplete batch dropped), each step's FLOPs counted on the meta device; the check's
    quantity divides the two through BN's measured overhead fraction."""
    from initstudy.core.ensemble import pass_flops

    cost = chapter.cost_comparison(digits, seeds=[0, 1], lsuv_batch=32, batch_size=16, epoch_images=1000, steps=4,
                                   warmup=1)
    assert cost["seed"].tolist() == [0, 1] and (cost["epoch_steps"] == 1000 // 16).all()
    net = chapter.build("resnet", digits, 20, 16, seed=0)
    rec = lsuv.lsuv_init(chapter.build("resnet", digits, 20, 16, seed=0), digits.x_train[:32], seed=0, stop_early=False)
    row = cost.iloc[0]
    assert row["lsuv_passes"] == 1 + rec["forward_passes"].sum()
    assert row["pass_gflop"] == pytest.approx(pass_flops(net, digits.x_train[:32], 32, train=False) / 1e9)
    assert row["step_gflop"] == pytest.approx(pass_flops(net, digits.x_train[:16], 16, train=True) / 1e9)
    assert row["lsuv_gflop"] == pytest.approx(row["lsuv_passes"] * row["pass_gflop"])
    assert row["epoch_gflop"] == pytest.approx(62 * row["step_gflop"]) and row["step_pairs"] == 4
    if row["bn_overhead_fraction"] > 0:
        assert row["fraction_of_bn_epoch"] == pytest.approx(row["lsuv_gflop"] / (row["epoch_gflop"] * row["bn_overhead_fraction"]))
        assert row["fraction_of_bn_step"] == pytest.approx(row["fraction_of_bn_epoch"] * 62)


def test_timed_lsuv_initialises_and_times(digits):
    net = models.mlp(64, [32, 32], 10)
    seconds = chapter.timed_lsuv(net, digits.x_train[:128], seed=0)
    assert seconds > 0
    variances = lsuv.output_variances(net, digits.x_train[:128])["variance"]
    assert ((variances - 1).abs() < 0.1).all()  # the paper's tolerance on the batch it fitted


def test_a_layers_output_stops_the_forward_pass_there(digits):
    """LSUV reads one layer's output per pass: the pass stops at that layer (the layers after it
    never run), and the output and the whole initialisation are those of full forward passes."""
    net = mlp(digits, depth=3)
    x = digits.x_train[:64]
    later = []
    net.out.register_forward_hook(lambda *a: later.append(1))
    out = lsuv._output_of(net, net.fc2, x)
    assert later == []  # the output layer did not run
    with torch.no_grad():
        expected = net.fc2(net.act1(net.fc1(net.flatten(x))))
    assert torch.equal(out, expected)
    lsuv._output_of(net, net.fc2, x, stop=False)  # negative control: a full pass reaches the output layer
    assert later == [1]

    small = data.load("digits", subset=200, resize=14)
    builds = {"mlp": lambda: mlp(digits, seed=4)}
    builds.update({arch: (lambda arch=arch: chapter.build(arch, small, 4, 16, seed=0))
                   for arch in ("cnn", "resnet", "resnet-bn")})
    for name, build in builds.items():
        xb = (x if name == "mlp" else small.x_train[:64])
        a, b = build(), build()
        ra = lsuv.lsuv_init(a, xb, seed=1)
        rb = lsuv.lsuv_init(b, xb, seed=1, stop_early=False)  # every pass through the whole network
        pd.testing.assert_frame_equal(ra.drop(columns="seconds"), rb.drop(columns="seconds"), obj=name)
        assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters())), name


def test_a_whole_pass_keeps_the_output_an_in_place_layer_after_it_would_change(digits):
    """With whole passes, a later in-place ReLU would rewrite the captured tensor: the output is
    copied as the layer gave it, so both kinds of pass read the same (signed) values."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 16), nn.ReLU(inplace=True), nn.Linear(16, 10))
    x = digits.x_train[:32].flatten(1)
    stopped = lsuv._output_of(net, net[0], x)
    whole = lsuv._output_of(net, net[0], x, stop=False)
    assert torch.equal(stopped, whole) and (whole < 0).any()  # the negative values survived the ReLU
