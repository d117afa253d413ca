"""Signal propagation: measurements against the mean-field theory on random inputs."""

import math

import numpy as np
import pytest
import torch

from initstudy import propagation as P


def rms_at(df, layer):
    v = df[(df["site"] == "post") & (df["metric"] == "second_moment")].set_index("layer")["value"]
    return math.sqrt(v[layer] / v[0])


def test_sigma_w2_literals():
    assert P.scheme_sigma_w2("old-uniform", "tanh", 512) == pytest.approx(1 / 3)
    assert P.scheme_sigma_w2("xavier-normal", "relu", 512) == 1.0
    assert P.scheme_sigma_w2("kaiming-normal", "relu", 512) == 2.0
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
    r = P.shared_matrix_spectral_radius("xavier-normal", "identity", 64, 16, 3)
    assert 0.8 < r < 1.3  # circular law: the spectrum of W fills the unit disc


def test_sigmoid_flat_region_and_relu_moments():
    assert P.sigmoid_flat_z(0.01) == pytest.approx(5.986445692252742)
    z = P.sigmoid_flat_z(0.01)
    s = 1 / (1 + math.exp(-z))
    assert s * (1 - s) == pytest.approx(0.0025)
    m = P.relu_moments(400_000, 0)
    assert m["second_moment"] == pytest.approx(0.5, abs=0.005)
    assert m["variance"] == pytest.approx(0.5 - 1 / (2 * math.pi), abs=0.005)
    assert m["mean"] == pytest.approx(1 / math.sqrt(2 * math.pi), abs=0.005)


def test_gradient_profile_and_saturation_sweep():
    x, y = torch.randn(64, 1, 8, 8), torch.randint(0, 10, (64,))
    stats, hist = P.gradient_profile(x, y, 10, "tanh", "old-uniform", 32, 4, seed=0)
    std = stats[stats["metric"] == "grad_std"].set_index("layer")["value"]
    assert list(std.index) == [1, 2, 3, 4] and std[1] < std[4]  # gradients shrink towards the input
    assert hist.groupby("layer")["density"].sum().round(6).eq(1.0).all()
    sat = P.saturation_sweep(x, y, 10, [0.01, 10.0], 32, 3, [0])
    big = sat[(sat["std"] == 10.0) & (sat["metric"] == "saturated")]["value"].mean()
    small = sat[(sat["std"] == 0.01) & (sat["metric"] == "saturated")]["value"].mean()
    assert big > 0.5 and small == 0.0
