"""Signal propagation: measurements against the mean-field theory on random inputs."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from initstudy.chapters import signal_depth as SD
from initstudy.chapters import xavier_kaiming as XK
from initstudy.core import propagation as P


def rms_at(df, layer):
    v = df[(df["site"] == "post") & (df["metric"] == "second_moment")].set_index("layer")["value"]
    return math.sqrt(v[layer] / v[0])


def test_sigma_w2_literals():
    assert P.scheme_sigma_w2("old-uniform", "tanh", 512) == pytest.approx(1 / 3)
    assert P.scheme_sigma_w2("xavier-normal", "relu", 512) == pytest.approx(1.0, rel=1e-15)
    assert P.scheme_sigma_w2("kaiming-normal", "relu", 512) == pytest.approx(2.0, rel=1e-15)
    assert P.scheme_sigma_w2("normal-1", "identity", 512) == 512.0
    assert P.scheme_sigma_w2("normal-0.01", "identity", 100) == pytest.approx(0.01)
    assert P.scheme_sigma_w2("gain-1.1", "identity", 64) == pytest.approx(1.21)
    assert P.scheme_sigma_w2("gain-1.1", "relu", 64) == pytest.approx(2.42)


def test_draws_have_the_scheme_variance():
    g = torch.Generator().manual_seed(0)
    for scheme, var in (("old-uniform", 1 / 3), ("kaiming-normal", 2.0), ("xavier-uniform", 1.0)):
        w = torch.cat([P.draw_weight(scheme, "relu", 256, g).flatten() for _ in range(8)])
        assert w.var().item() * 256 == pytest.approx(var, rel=0.02)
    assert P.draw_weight("old-uniform", "tanh", 300, g).abs().max().item() <= 1 / math.sqrt(300)


@pytest.mark.parametrize("activation, scheme, expected", [
    ("identity", "gain-1.05", 1.05 ** 50),
    ("identity", "gain-0.95", 0.95 ** 50),
    ("relu", "kaiming-normal", 1.0),
    ("relu", "xavier-normal", 2 ** -25),
])
def test_linear_and_relu_stacks_follow_gain_to_the_L(activation, scheme, expected):
    ratios = [rms_at(P.depth_profile(activation, scheme, 512, 50, 128, seed), 50) for seed in range(3)]
    # finite width: log RMS wanders by about sqrt(L/n); the mean over seeds is well within 25 %
    assert np.exp(np.mean(np.log(ratios))) == pytest.approx(expected, rel=0.25)


def test_tanh_stack_follows_the_mean_field_map():
    df = P.depth_profile("tanh", "xavier-normal", 512, 100, 128, 0)
    post = df[(df["site"] == "post") & (df["metric"] == "second_moment")].set_index("layer")["value"]
    _, theory = P.theory_second_moment("tanh", 1.0, 100)
    for layer in (1, 10, 100):
        assert post[layer] == pytest.approx(theory[layer - 1], rel=0.1)
    # and the negative control: the linear-stack formula (no decay) is far off for tanh
    assert post[100] < 0.1 * post[0]


def test_theory_closed_forms():
    q, a = P.theory_second_moment("identity", 1.21, 3)
    assert q.tolist() == pytest.approx([1.21, 1.21**2, 1.21**3]) and a.tolist() == pytest.approx(q.tolist())
    q, a = P.theory_second_moment("relu", 1.0, 2)
    assert a.tolist() == pytest.approx([0.5, 0.25])
    _, s = P.theory_second_moment("sigmoid", 1e-9, 1)
    assert s[0] == pytest.approx(0.25, rel=1e-6)  # sigma(0)^2


def test_overflow_is_detected_where_the_theory_says():
    df = P.depth_profile("identity", "normal-1", 256, 60, 32, 0)
    layer = P.overflow_layers(df)["overflow_layer"].item()
    assert abs(layer - P.theory_overflow_layer("normal-1", "identity", 256)) <= 3
    assert P.theory_overflow_layer("gain-0.9", "identity", 256) == math.inf
    clean = P.depth_profile("identity", "xavier-normal", 64, 20, 16, 0)
    assert math.isnan(P.overflow_layers(clean)["overflow_layer"].item())


def test_shared_matrix_is_one_matrix():
    a = P.depth_profile("identity", "xavier-normal", 64, 5, 16, 3, shared=True)
    b = P.depth_profile("identity", "xavier-normal", 64, 5, 16, 3, shared=False)
    assert not a.equals(b)
    r = SD.shared_matrix_spectral_radius("xavier-normal", "identity", 64, 16, 3)
    assert 0.8 < r < 1.3  # circular law: the spectrum of W fills the unit disc


def test_sigmoid_flat_region_and_relu_moments():
    assert SD.sigmoid_flat_z(0.01) == pytest.approx(5.986445692252742)
    z = SD.sigmoid_flat_z(0.01)
    s = 1 / (1 + math.exp(-z))
    assert s * (1 - s) == pytest.approx(0.0025)
    m = XK.relu_moments(400_000, 0)
    assert m["second_moment"] == pytest.approx(0.5, abs=0.005)
    assert m["variance"] == pytest.approx(0.5 - 1 / (2 * math.pi), abs=0.005)
    assert m["mean"] == pytest.approx(1 / math.sqrt(2 * math.pi), abs=0.005)


def test_gradient_profile_and_saturation_sweep():
    x, y = torch.randn(64, 1, 8, 8), torch.randint(0, 10, (64,))
    stats, hist = SD.gradient_profile(x, y, 10, "tanh", "old-uniform", 32, 4, seed=0)
    std = stats[stats["metric"] == "grad_std"].set_index("layer")["value"]
    assert list(std.index) == [1, 2, 3, 4] and std[1] < std[4]  # gradients shrink towards the input
    assert hist.groupby("layer")["density"].sum().round(6).eq(1.0).all()
    sat = SD.saturation_sweep(x, y, 10, [0.01, 10.0], 32, 3, [0])
    big = sat[(sat["std"] == 10.0) & (sat["metric"] == "saturated")]["value"].mean()
    small = sat[(sat["std"] == 0.01) & (sat["metric"] == "saturated")]["value"].mean()
    assert big > 0.5 and small == 0.0


def _he_history(curves, tests):
    """Validation curves per seed at lr 0.01 (lr 0.1 at chance throughout), and each run's one test
    accuracy at the end (``tests[seed]`` for lr 0.01; 0.9 for lr 0.1, a test number that must not
    be chosen: its validation curve is at chance)."""
    rows = []
    for seed, accs in curves.items():
        for lr in (0.01, 0.1):
            for step, a in zip((0, 20, 40, 60), accs if lr == 0.01 else [0.1] * 4):
                rows.append({"activation": "relu", "init": "xavier-normal", "depth": 30, "lr": lr, "seed": seed,
                             "step": step, "split": "val", "metric": "accuracy", "value": a,
                             "diverged_at": float("nan")})
            rows.append({"activation": "relu", "init": "xavier-normal", "depth": 30, "lr": lr, "seed": seed,
                         "step": 60, "split": "test", "metric": "accuracy", "value": tests[seed] if lr == 0.01 else 0.9,
                         "diverged_at": float("nan")})
    return pd.DataFrame(rows)


def test_he_fig3_per_seed_chooses_on_validation_and_reads_the_test_at_that_rate():
    curves = {0: [0.10, 0.10, 0.10, 0.11], 1: [0.10, 0.10, 0.12, 0.30], 2: [0.10, 0.40, 0.20, 0.12]}
    history = _he_history(curves, {0: 0.10, 1: 0.31, 2: 0.12})
    table = XK.he_fig3_per_seed(history, [0, 1, 2]).set_index("seed")
    assert table["best_lr"].tolist() == [0.01, 0.01, 0.01]  # the higher test accuracy at lr 0.1 is never chosen
    assert table["stalled"].tolist() == [1.0, 0.0, 1.0]  # the late learner is not stalled; the one that fell back is
    assert table.loc[1, "first_step_above"] == 60 and table.loc[1, "budget"] == 60
    assert table.loc[2, "peak_val_accuracy"] == pytest.approx(0.40)
    assert math.isnan(table.loc[0, "first_step_above"])
    # shuffling what the test split says changes the outcome, never the choice
    other = XK.he_fig3_per_seed(_he_history(curves, {0: 0.5, 1: 0.05, 2: 0.7}), [0, 1, 2]).set_index("seed")
    assert other["best_lr"].tolist() == table["best_lr"].tolist()
    assert other["stalled"].tolist() != table["stalled"].tolist()


def test_range_exits_see_overflow_and_underflow_where_the_theory_says():
    deep = pd.concat([P.depth_profile("identity", s, 64, 80, 16, 0) for s in ("normal-1", "normal-0.01", "gain-1")])
    exits = SD.range_exits(deep, 64).set_index("scheme")
    assert exits.loc["normal-1", "overflowed_runs"] == 1 and exits.loc["normal-1", "underflowed_runs"] == 0
    assert abs(exits.loc["normal-1", "first_overflow_layer"] - exits.loc["normal-1", "theory_overflow_layer"]) <= 3
    assert exits.loc["normal-0.01", "underflowed_runs"] == 1 and exits.loc["normal-0.01", "overflowed_runs"] == 0
    # all activations round to 0 once the RMS is well below the smallest float32
    under_at = exits.loc["normal-0.01", "first_underflow_layer"]
    assert 0 <= under_at - exits.loc["normal-0.01", "theory_underflow_layer"] <= 6
    assert exits.loc["gain-1", ["overflowed_runs", "underflowed_runs"]].sum() == 0
    assert P.theory_underflow_layer("gain-1.1", "identity", 64) == math.inf
    ratios = SD.rms_ratio_by_layer(deep, ["identity"], ["normal-1", "normal-0.01"])
    over = ratios[ratios["scheme"] == "normal-1"].set_index("layer")["rms_ratio"]
    assert np.isinf(over[exits.loc["normal-1", "first_overflow_layer"]])
    under = ratios[ratios["scheme"] == "normal-0.01"].set_index("layer")["rms_ratio"]
    assert under.iloc[-1] == 0.0 and under[0] == 1.0


def test_geometric_summary_never_reaches_zero_and_flags_exits():
    frame = pd.DataFrame({"x": [1, 1, 1, 2, 2, 2], "v": [1e-3, 1e-1, 1e1, 1.0, 0.0, 2.0]})
    s = P.geometric_summary(frame, ["x"], "v").set_index("x")
    assert s.loc[1, "gmean"] == pytest.approx(0.1) and 0 < s.loc[1, "low"] < 0.1 < s.loc[1, "high"]
    assert s.loc[2, "zero"] == 1 and math.isnan(s.loc[2, "gmean"])


def test_the_signal_preserving_std_has_a_unit_slope_by_simulation():
    """chi = 1 at the returned scale (an independent check: a wide random sigmoid stack at its
    fixed point keeps two nearby inputs' distance), Xavier's for tanh and the identity, He's for
    ReLU; the sigmoid's is far above Xavier's because its slope is at most 1/4."""
    width = 256
    assert P.signal_preserving_std("identity", width) == pytest.approx(1 / 16)
    assert P.signal_preserving_std("tanh", width) == pytest.approx(1 / 16, rel=0.01)
    assert P.signal_preserving_std("relu", width) == pytest.approx(math.sqrt(2 / width))
    s = P.signal_preserving_std("sigmoid", width)
    assert s > 8 / 16
    # Monte Carlo of chi: sigma_w^2 E[sigmoid'(z)^2] with z ~ N(0, q*), q* iterated by sampling
    g = torch.Generator().manual_seed(0)
    sw2, q = (s * math.sqrt(width)) ** 2, 1.0
    z = torch.randn(400_000, generator=g, dtype=torch.float64)
    for _ in range(200):
        q = sw2 * float(torch.sigmoid(math.sqrt(q) * z).pow(2).mean())
    d = torch.sigmoid(math.sqrt(q) * z)
    assert sw2 * float((d * (1 - d)).pow(2).mean()) == pytest.approx(1.0, abs=0.01)  # by simulation
    assert P.chi("sigmoid", (0.5 * s * math.sqrt(width)) ** 2) < 1 < P.chi("sigmoid", (2 * s * math.sqrt(width)) ** 2)


def test_accuracy_gap_by_depth_and_its_glue():
    rows = []
    for depth, (old, new) in {1: (0.80, 0.81), 5: (0.79, 0.80), 20: (0.10, 0.80)}.items():
        for seed in range(3):
            for init, acc in (("old-uniform", old), ("xavier-uniform", new + 0.01 * seed)):
                for step, value in ((0, 0.1), (100, acc)):
                    rows.append({"activation": "tanh", "init": init, "depth": depth, "seed": seed, "step": step,
                                 "split": "val", "metric": "accuracy", "value": value, "diverged_at": math.nan})
                rows.append({"activation": "tanh", "init": init, "depth": depth, "seed": seed, "step": 100,
                             "split": "test", "metric": "accuracy", "value": acc, "diverged_at": math.nan})
    history = pd.DataFrame(rows)
    from initstudy.core.train import final_accuracy

    finals = final_accuracy(history, ["activation", "init", "depth", "seed"])
    gaps = SD.accuracy_gap_by_depth(history, finals).set_index("depth")
    assert gaps.loc[20, "gap_mean"] == pytest.approx(71.0) and gaps.loc[20, "old_stalled"]
    assert gaps.loc[5, "gap_mean"] == pytest.approx(2.0) and not gaps.loc[5, "old_stalled"]
    assert gaps.loc[20, "deepest"] and gaps.loc[1, "reference"]
    glue = SD.accuracy_gap_glue(gaps.reset_index())
    assert glue["gap-tanh-5"] == pytest.approx(2.0) and glue["gap-deepest-depth"] == 20.0
    assert glue["gap-lines-tanh"].count("\n") == 2 and "71.00 points" in glue["gap-lines-tanh"]


def test_signal_depth_figures_read_at_page_width():
    import matplotlib

    matplotlib.use("Agg")
    from initstudy.study.figures import readability_problems, set_style

    set_style()
    profiles = P.stack_sweep(["identity", "tanh", "sigmoid"], ["gain-0.9", "gain-1.1", "normal-0.01"], [0, 1], 32, 40,
                             16, progress=False)
    theory = P.theory_frame(["identity", "tanh", "sigmoid"], ["gain-0.9", "gain-1.1", "normal-0.01"], 32, 40)
    ratios = SD.rms_ratio_by_layer(profiles, ["identity", "tanh", "sigmoid"], ["gain-0.9", "gain-1.1", "normal-0.01"])
    fig = SD.plot_rms_ratio(ratios, theory, ["identity", "tanh", "sigmoid"], ["gain-0.9", "gain-1.1", "normal-0.01"],
                           hlines=((10.0, "x10"), (0.1, "")))
    assert readability_problems(fig) == []
    x, y = torch.randn(64, 1, 8, 8), torch.randint(0, 10, (64,))
    sat = SD.saturation_sweep(x, y, 10, [0.001, 0.1, 10.0], 16, 4, [0, 1])
    fig, data = SD.plot_saturation(sat, 0.3)
    assert readability_problems(fig) == [] and set(data["seed"]) == {0, 1}
    stats, hists = zip(*[SD.gradient_profile(x, y, 10, "tanh", init, 16, 3, seed)
                         for init in ("old-uniform", "xavier-uniform") for seed in (0, 1)])
    fig, data = SD.plot_gradient_profiles(pd.concat(stats), pd.concat(hists), 0)
    assert readability_problems(fig) == [] and "seed" in data


def test_shared_matrix_demo_reads_the_std_ratio_at_the_depth():
    rows = []
    for shared, stds in ((True, {0: [2.0, 4.0], 3: [8.0, 1.0]}), (False, {0: [1.0, 2.0], 3: [3.0, 3.0]})):
        for layer, values in stds.items():
            for seed, value in enumerate(values):
                tag = {"activation": "identity", "scheme": "xavier-normal", "shared": shared, "seed": seed,
                       "layer": layer}
                rows += [{**tag, "site": "post", "metric": "std", "value": value},
                         {**tag, "site": "pre", "metric": "std", "value": 100.0},  # distractors
                         {**tag, "site": "post", "metric": "mean", "value": 100.0}]
    rows.append({"activation": "identity", "scheme": "xavier-normal", "shared": True, "seed": 0, "layer": 1,
                 "site": "post", "metric": "std", "value": 100.0})
    rows.append({"activation": "tanh", "scheme": "xavier-normal", "shared": True, "seed": 0, "layer": 3,
                 "site": "post", "metric": "std", "value": 100.0})
    demo = SD.shared_matrix_demo(pd.DataFrame(rows), 3, 4, 2).set_index(["shared", "seed"])
    assert demo["std_ratio"].to_dict() == {(False, 0): 3.0, (False, 1): 1.5, (True, 0): 4.0, (True, 1): 0.25}
    assert demo.loc[(True, 0), "layers"] == "one shared\nmatrix"
    assert demo.loc[(False, 1), "layers"] == "independent\nmatrices"
    assert demo.loc[False, "spectral_radius_power"].isna().all()
    assert (demo.loc[True, "spectral_radius_power"] > 0).all()


def test_one_shared_matrix_grows_like_its_spectral_radius_to_the_depth():
    import matplotlib

    matplotlib.use("Agg")
    from initstudy.study.figures import readability_problems, set_style

    depth, seeds = 100, [0, 1, 2]
    profiles = pd.concat([P.stack_sweep(["identity"], ["xavier-normal"], seeds, 8, depth, 16, shared=shared,
                                        progress=False) for shared in (True, False)])
    demo = SD.shared_matrix_demo(profiles, depth, 8, 16)
    one = demo[demo["shared"]]
    assert len(one) == 3 and len(demo) == 6
    # ||W^L x|| ~ c rho^L: per layer, the log growth is the log spectral radius, up to c^(1/L)
    per_layer = (np.log(one["std_ratio"]) - np.log(one["spectral_radius_power"])) / depth
    assert per_layer.abs().max() < 0.05
    set_style()
    fig, data = SD.plot_shared_matrix(demo, depth)
    assert readability_problems(fig) == [] and data is demo


def test_shared_matrix_summary():
    demo = pd.DataFrame({"shared": [True] * 3 + [False] * 3, "seed": [0, 1, 2] * 2,
                         "std_ratio": [2.0, 8.0, 4.0, 0.9, 1.1, 1.0],
                         "spectral_radius_power": [4.0, 64.0, 16.0, math.nan, math.nan, math.nan]})
    s = SD.shared_matrix_summary(demo)
    assert list(s) == ["seeds", "shared_min", "shared_max", "indep_min", "indep_max", "corr"]
    assert (s["seeds"], s["shared_min"], s["shared_max"], s["indep_min"], s["indep_max"]) == (3, 2.0, 8.0, 0.9, 1.1)
    assert s["corr"] == pytest.approx(1.0)  # log power = 2 log ratio
    demo["spectral_radius_power"] = [1 / 4, 1 / 64, 1 / 16, math.nan, math.nan, math.nan]
    assert SD.shared_matrix_summary(demo)["corr"] == pytest.approx(-1.0)


def test_verdict_glue():
    from scipy import integrate

    at = 30
    measurements = {
        "depth-explode-vanish": {"std_ratio_gain_1.05": [2.0, 8.0], "std_ratio_gain_0.95": [0.5, 0.125]},
        "xavier-unit-variance": {"xavier_linear_std_100": [0.5, 2.0], "xavier_tanh_std_100": [0.1, 0.4]},
    }
    rows = [{"activation": "sigmoid", "scheme": "xavier-normal", "site": "post", "metric": "mean", "layer": at,
             "value": v} for v in (0.5, 0.7)]
    for change in ({"activation": "tanh"}, {"scheme": "kaiming-normal"}, {"site": "pre"}, {"metric": "std"},
                   {"layer": at - 1}):
        rows.append({**rows[0], **change, "value": 100.0})
    exits = pd.DataFrame([{"activation": "identity", "scheme": "normal-1", "runs": 3, "overflowed_runs": 3,
                           "first_overflow_layer": 17.0, "underflowed_runs": 0, "first_underflow_layer": math.nan,
                           "theory_overflow_layer": 16.0, "theory_underflow_layer": math.inf}])
    glue = SD.verdict_glue(measurements, pd.DataFrame(rows), exits, at)
    assert glue["claim-layer"] == 30
    assert glue["ratio-1.05"] == pytest.approx(4.0) and glue["ratio-0.95"] == pytest.approx(0.25)
    assert glue["xavier-linear-ratio"] == pytest.approx(1.0) and glue["xavier-tanh-ratio"] == pytest.approx(0.2)
    assert glue["theory-1.05"] == pytest.approx(4.321942375150668)  # 1.05^30
    assert glue["theory-0.95"] == pytest.approx(0.2146387639429939)  # 0.95^30
    assert glue["xavier-sigmoid-mean"] == pytest.approx(0.6)
    # the mean-field map of a tanh stack at sigma_w^2 = 1, by adaptive quadrature
    m = 1.0
    for _ in range(at):
        m = integrate.quad(lambda z, q=m: math.tanh(math.sqrt(q) * z) ** 2 * math.exp(-z * z / 2)
                           / math.sqrt(2 * math.pi), -np.inf, np.inf)[0]
    assert glue["xavier-tanh-theory"] == pytest.approx(math.sqrt(m), rel=1e-6)
    assert glue["overflow-summary"] == "normal-1 in 3 of 3 runs, median first layer 17 (theory 16)"
    assert glue["underflow-summary"] == "none" and glue["overflow-normal-1"] == 17.0


def test_he_training_glue_and_lr_summary():
    params = {"arch": "mlp", "he_depths": [6, 10], "momentum": 0.9, "train_steps": 100, "lrs": [0.0003, 0.03]}
    assert XK.he_training_glue(params) == {"he-arch": "MLPs", "he-depths": "6 and 10", "he-momentum": 0.9,
                                           "he-steps": 100, "he-lrs": "0.0003, 0.03"}
    assert XK.he_training_glue({**params, "arch": "cnn"})["he-arch"] == "plain CNNs (3x3 convolutions, no BatchNorm)"
    finals = pd.DataFrame({"init": ["xavier-normal"] * 3 + ["kaiming-normal"] * 2, "depth": 30, "lr": 0.1,
                           "seed": [0, 1, 2, 0, 1], "accuracy": [0.2, 0.4, 0.6, 0.9, 0.9],
                           "val_accuracy": [0.3, 0.5, 0.7, 0.8, 0.8],
                           "diverged_at": [math.nan, 40.0, math.nan, math.nan, math.nan]})
    summary = XK.he_lr_summary(finals)
    assert list(summary.columns) == ["mean_val_accuracy", "mean_accuracy", "std", "runs", "diverged"]
    assert summary.loc[(30, "xavier-normal", 0.1), "mean_val_accuracy"] == pytest.approx(0.5)
    x = summary.loc[(30, "xavier-normal", 0.1)]
    assert (x["mean_accuracy"], x["std"], x["runs"], x["diverged"]) == pytest.approx((0.4, 0.2, 3, 1))
    k = summary.loc[(30, "kaiming-normal", 0.1)]
    assert (k["mean_accuracy"], k["std"], k["runs"], k["diverged"]) == pytest.approx((0.9, 0.0, 2, 0))


def test_stall_glue_counts_and_describes_the_seeds():
    def row(init, seed, stalled, peak, first, best=0.3, lr=0.01):
        return {"init": init, "depth": 30, "seed": seed, "best_lr": lr, "best_final_accuracy": best,
                "stalled": stalled, "diverged_runs": 0, "peak_val_accuracy": peak, "first_step_above": first,
                "budget": 60}

    stall = pd.DataFrame([row("xavier-fanin", 0, 1.0, 0.40, 20.0, best=0.12),  # rose, fell back: stalled
                          row("xavier-fanin", 1, 0.0, 0.30, 60.0),  # late learner: not stalled
                          row("xavier-fanin", 2, 0.0, 0.80, 20.0, best=0.8, lr=0.1),  # early learner
                          row("xavier-fanin", 3, 1.0, 0.10, math.nan, best=0.1),  # never left chance
                          row("kaiming-normal", 0, 0.0, 0.9, 20.0, best=0.9),
                          row("kaiming-normal", 1, 1.0, 0.1, math.nan, best=0.1)])
    glue = XK.stall_glue(stall, 30, 4)
    assert glue["he-depth"] == 30 and glue["stall-n"] == 4 and glue["stall-line"] == pytest.approx(15.0)
    assert glue["xavier-stalled-k"] == 2 and glue["kaiming-stalled-k"] == 1
    assert glue["xavier-late-seeds"] == "seed 1 (above the line from step 60 of 60, final 30.0 % at lr 0.01)"
    assert glue["xavier-fell-back-seeds"] == "seed 0 (validation peak 40.0 %)"
    # paired on seeds 0 and 1: only Xavier stalled at seed 0, only Kaiming at seed 1
    assert (glue["only-xavier"], glue["only-kaiming"]) == (1, 1)
    quiet = XK.stall_glue(stall[stall["seed"].isin([2, 3])], 30, 2)
    assert quiet["xavier-late-seeds"] == "none" and quiet["xavier-fell-back-seeds"] == "none"


def test_stall_power_is_the_clopper_pearson_bound_of_all_stalled():
    # n of n stalled: the exact two-sided 95 % interval's lower end is 0.025^(1/n), at least 1/2
    # from n = ln(0.025) / ln(0.5) = 5.3, so 6 seeds
    three = XK.stall_power(3)
    assert three.to_dict("records") == [{"seeds": 3, "all_stalled_low": pytest.approx(0.025 ** (1 / 3)),
                                         "seeds_needed": 6}]
    assert XK.stall_power(6)["all_stalled_low"].iloc[0] == pytest.approx(0.025 ** (1 / 6))
    assert XK.stall_power(6)["all_stalled_low"].iloc[0] >= 0.5 > XK.stall_power(5)["all_stalled_low"].iloc[0]


def test_scale_shortfall_chooses_on_validation_and_counts_a_diverged_run_at_chance():
    nan = math.nan
    finals = pd.DataFrame([
        # relu, seed 0: validation best at s = 0.1 (test 0.8); s = 1 diverged after scoring 0.5 -> at 0.1;
        # s = 0.01 has the best test accuracy, 0.9, but not the best validation one: it is not chosen
        {"activation": "relu", "block": "main", "seed": 0, "std": 0.01, "accuracy": 0.9, "val_accuracy": 0.6,
         "diverged_at": nan},
        {"activation": "relu", "block": "main", "seed": 0, "std": 0.1, "accuracy": 0.8, "val_accuracy": 0.7,
         "diverged_at": nan},
        {"activation": "relu", "block": "main", "seed": 0, "std": 1.0, "accuracy": 0.5, "val_accuracy": 0.95,
         "diverged_at": 3.0},
        {"activation": "sigmoid", "block": "main", "seed": 0, "std": 0.01, "accuracy": 0.7, "val_accuracy": 0.7,
         "diverged_at": nan},
        {"activation": "sigmoid", "block": "main", "seed": 0, "std": 0.1, "accuracy": 0.7, "val_accuracy": 0.7,
         "diverged_at": nan},
        {"activation": "sigmoid", "block": "main", "seed": 0, "std": 1.0, "accuracy": 0.7, "val_accuracy": 0.7,
         "diverged_at": nan},
    ])
    sf = SD.scale_shortfall(finals, 10).set_index("activation")
    assert sf.loc["relu", "best_std"] == 0.1 and sf.loc["relu", "best_accuracy"] == 0.8  # diverged: not chosen
    assert sf.loc["relu", "shortfall"] == pytest.approx(100 * ((0.8 - 0.9) + 0.0 + (0.8 - 0.1)) / 3)
    assert sf.loc["relu", "diverged"] == 1
    assert sf.loc["sigmoid", "shortfall"] == 0.0


def test_relu_scale_measurements_and_the_he_control():
    sf = pd.DataFrame([
        {"activation": a, "block": b, "seed": s, "shortfall": v, "best_accuracy": best}
        for a, b, s, v, best in (("relu", "main", 0, 10.0, 0.8), ("relu", "main", 1, 12.0, 0.82),
                                 ("sigmoid", "main", 0, 30.0, 0.7), ("sigmoid", "main", 1, 28.0, 0.6),
                                 ("sigmoid", "placebo", 0, 31.0, 0.7), ("sigmoid", "placebo", 1, 27.0, 0.7))])
    deep = pd.DataFrame([{"std": std, "seed": seed, "layer": layer, "metric": "example_std",
                          "value": (std * 10.0) ** (layer - 1)}
                         for std in (0.01, 0.1, 1.0) for seed in (0, 1) for layer in (1, 2, 3)])
    m = SD.relu_scale_measurements(sf, deep, [0, 1], probe_width=200)["relu-scale-matters-less"]
    assert m["relu_minus_sigmoid_shortfall"] == [-20.0, -16.0]
    assert m["placebo_shortfall_difference"] == [1.0, -1.0]
    assert m["worse_best_accuracy"] == [0.7, 0.6]
    assert m["deep_relu_small_signal_ratio"] == pytest.approx([0.01, 0.01])  # (0.1) ** 2
    assert m["deep_relu_large_signal_ratio"] == pytest.approx([100.0, 100.0])
    assert m["deep_relu_he_signal_ratio"] == pytest.approx([1.0, 1.0])  # sqrt(2 / 200) = 0.1


def test_relu_saturation_sweep_records_the_signal_only():
    x, y = torch.randn(16, 20, generator=torch.Generator().manual_seed(0)), torch.arange(16) % 3
    sweep = SD.saturation_sweep(x, y, 3, [0.01, 1.0], 128, 5, [0], activation="relu")
    assert set(sweep["metric"]) == {"example_std", "weight_grad_norm"}
    r = SD.signal_ratios(sweep).set_index("std")["ratio"]
    # each ReLU layer multiplies the signal by about s * sqrt(width / 2): 0.08 and 8 here, over 4 layers
    assert r[0.01] < 1e-2 and r[1.0] > 1e2


def test_mcnemar_is_scipys_exact_paired_test_and_the_grid_check():
    from scipy import stats

    x, k = [1, 1, 1, 0, 1, 1, 1, 0], [0, 0, 0, 0, 1, 0, 0, 1]  # only Xavier: 5 seeds, only Kaiming: 1
    assert XK.mcnemar_p(x, k) == pytest.approx(stats.binomtest(5, 6, 0.5).pvalue)
    assert XK.mcnemar_p([1] * 6, [0] * 6) == pytest.approx(2 * 0.5 ** 6)  # the fewest pairs that reject
    assert 2 * 0.5 ** 6 <= 0.05 < 2 * 0.5 ** 5
    assert XK.mcnemar_p([1] * 5, [0] * 5) > 0.05 and XK.MCNEMAR_MIN_PAIRS == 6
    assert XK.mcnemar_p([0] * 6, [0] * 6) == 1.0  # no pair differs: nothing to tell apart (the placebo's case)
    # a rejection the other way (only Kaiming stalled, 6 seeds) never supports "Xavier stalls more"
    assert XK.mcnemar_p([0] * 6, [1] * 6) == 1.0 and XK.mcnemar_p(k, x) == 1.0
    assert math.isnan(XK.mcnemar_p([math.nan] * 6, [0] * 6))  # a control never run is not a control that passed
    grid = [0.001, 0.01, 0.1]
    f = pd.DataFrame({"init": ["k"] * 3 + ["x"] * 3, "depth": 30, "lr": grid * 2, "seed": 0,
                      "val_accuracy": [0.5, 0.8, 0.1, 0.1, 0.1, 0.1]})
    assert XK.grid_brackets(f, 30, grid) == 1.0  # x never trained: no best rate to bracket
    assert XK.grid_brackets(f.assign(val_accuracy=[0.9, 0.8, 0.1, 0.1, 0.1, 0.1]), 30, grid) == 0.0


def test_scale_ranges_are_contiguous_around_the_validation_choice_and_say_when_the_sweep_holds_them():
    nan = math.nan
    stds = [0.001, 0.01, 0.1, 1.0, 10.0]
    rows = []
    for act, accs, vals in (("relu", [0.7, 0.8, 0.81, 0.78, 0.1], [0.7, 0.8, 0.82, 0.77, 0.1]),
                            ("sigmoid", [0.1, 0.79, 0.8, 0.5, 0.79], [0.1, 0.79, 0.81, 0.5, 0.1])):
        rows += [{"activation": act, "block": "main", "seed": 0, "std": s, "accuracy": a, "val_accuracy": v,
                  "diverged_at": nan} for s, a, v in zip(stds, accs, vals)]
    r = SD.scale_ranges(pd.DataFrame(rows), 10).set_index("activation")
    # relu: chosen 0.1 (81 %); within 5 points: 0.01 (80) and 1 (78), not 0.001 (70): 2 decades, held inside
    assert (r.loc["relu", "range_low"], r.loc["relu", "range_high"]) == (0.01, 1.0)
    assert r.loc["relu", "width_decades"] == pytest.approx(2.0) and r.loc["relu", "inside"] == 1.0
    # sigmoid: 10.0 qualifies too but is not contiguous (1.0 breaks the run): only 0.01 to 0.1
    assert r.loc["sigmoid", "width_decades"] == pytest.approx(1.0)
    edge = SD.scale_ranges(pd.DataFrame(rows).assign(accuracy=0.8, val_accuracy=0.8), 10)
    assert (edge["inside"] == 0.0).all()  # a flat curve reaches both ends of the sweep: width unknown
