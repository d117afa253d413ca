"""Each init against its formula (literal expected values, large samples) and against
torch.nn.init; negative controls must fail the same checks."""

import math

import pytest
import torch
from torch import nn

from initstudy.core import inits

SHAPE = (500, 2000)  # fan_in 2000, fan_out 500: a million draws


def draw(fn, shape=SHAPE, seed=0, **kw):
    w = torch.empty(shape)
    fn(w, generator=torch.Generator().manual_seed(seed), **kw)
    return w


def assert_moments(w, var, rel=0.01, mean_se=6.0):
    """Mean 0 within mean_se standard errors, variance within rel of ``var``."""
    n = w.numel()
    m = w.double().mean().item()
    v = w.double().var().item()
    assert abs(m) <= mean_se * math.sqrt(var / n), f"mean {m} too far from 0"
    assert abs(v / var - 1) <= rel, f"variance {v} is not {var} (+-{rel:.0%})"


def test_fans_literal():
    assert inits.fans(torch.empty(16, 3, 5, 5)) == (75, 400)
    assert inits.fans(torch.empty(10, 784)) == (784, 10)
    with pytest.raises(ValueError):
        inits.fans(torch.empty(5))


def test_gains_literal():
    assert inits.gain_for("relu") == pytest.approx(1.4142135623730951)
    assert inits.gain_for("tanh") == pytest.approx(5 / 3)
    assert inits.gain_for("sigmoid") == 1.0
    for name in ("relu", "tanh", "sigmoid", "linear"):
        assert inits.gain_for(name) == pytest.approx(nn.init.calculate_gain(name))
    with pytest.raises(ValueError, match="allowed"):
        inits.gain_for("gelu")


@pytest.mark.parametrize(
    "fn, kw, var, bound",
    [
        (inits.old_uniform_, {}, 1 / 6000, 0.022360679774997897),  # 1/(3 n_in), 1/sqrt(2000)
        (inits.xavier_uniform_, {}, 0.0008, 0.04898979485566356),  # 2/(2000+500), sqrt(6/2500)
        (inits.xavier_normal_, {}, 0.0008, None),
        (inits.xavier_fanin_normal_, {}, 0.0005, None),  # 1/2000
        (inits.kaiming_normal_, {}, 0.001, None),  # 2/2000
        (inits.kaiming_normal_, {"mode": "fan_out"}, 0.004, None),  # 2/500
        (inits.kaiming_uniform_, {}, 0.001, 0.05477225575051661),  # sqrt(2) * sqrt(3/2000)
        (inits.normal_, {"std": 0.01}, 1e-4, None),
    ],
)
def test_init_matches_its_formula(fn, kw, var, bound):
    w = draw(fn, **kw)
    assert_moments(w, var)
    if bound is not None:
        assert w.abs().max().item() <= bound
        assert w.abs().max().item() >= 0.999 * bound  # really uniform up to the bound


@pytest.mark.parametrize(
    "fn, kw, right_var",
    [
        (inits.kaiming_normal_, {"gain": 1.0}, 0.001),  # forgot the ReLU gain: variance halves
        (inits.xavier_normal_, {"gain": math.sqrt(2)}, 0.0008),
        (inits.old_uniform_, {}, 0.0008),  # the old rule is not Xavier
        (inits.kaiming_normal_, {"mode": "fan_out"}, 0.001),  # wrong fan
    ],
)
def test_negative_controls_fail_the_check(fn, kw, right_var):
    w = draw(fn, **kw)
    with pytest.raises(AssertionError):
        assert_moments(w, right_var)


@pytest.mark.parametrize(
    "ours, theirs, kw",
    [
        (inits.xavier_uniform_, nn.init.xavier_uniform_, {}),
        (inits.xavier_normal_, nn.init.xavier_normal_, {}),
        (inits.kaiming_normal_, nn.init.kaiming_normal_, {"nonlinearity": "relu"}),
        (inits.kaiming_uniform_, nn.init.kaiming_uniform_, {"nonlinearity": "relu"}),
        (inits.orthogonal_, nn.init.orthogonal_, {}),
    ],
)
def test_same_draws_as_torch_nn_init(ours, theirs, kw):
    for shape in [(64, 128), (16, 3, 3, 3)]:
        a = draw(ours, shape, seed=3)
        b = torch.empty(shape)
        theirs(b, generator=torch.Generator().manual_seed(3), **kw)
        assert torch.allclose(a, b, rtol=1e-6, atol=0)


def test_pytorch_default_linear_is_the_old_uniform_rule():
    torch.manual_seed(11)
    layer = nn.Linear(300, 200)
    torch.manual_seed(11)
    w = torch.empty(200, 300)
    inits.old_uniform_(w)
    assert torch.allclose(layer.weight, w, rtol=1e-6, atol=0)
    # and statistically: bound 1/sqrt(300), variance 1/(3*300)
    big = nn.Linear(2000, 500).weight.detach()
    assert big.abs().max().item() <= 1 / math.sqrt(2000)
    assert_moments(big, 1 / 6000)


def test_pytorch_default_conv_is_the_old_uniform_rule():
    conv = nn.Conv2d(64, 256, 3).weight.detach()  # fan_in 576
    assert conv.abs().max().item() <= 1 / math.sqrt(576)
    assert_moments(conv, 1 / (3 * 576), rel=0.02)


def test_orthogonal_rows_are_orthonormal():
    w = draw(inits.orthogonal_, (500, 2000))
    assert torch.allclose(w @ w.T, torch.eye(500), atol=1e-4)
    w2 = draw(inits.orthogonal_, (256, 256), gain=2.0)
    assert torch.allclose(w2 @ w2.T, 4 * torch.eye(256), atol=1e-3)


def test_zero_and_constant():
    assert inits.zero_(torch.ones(3, 3)).abs().sum().item() == 0.0
    assert torch.all(inits.constant_(torch.empty(2, 4), 0.05) == 0.05)


def test_apply_init_to_a_model():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 26 * 26, 10))
    inits.apply_init(net, "kaiming-normal", seed=0)
    assert net[0].bias.abs().sum().item() == 0.0 and net[3].bias.abs().sum().item() == 0.0
    again = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 26 * 26, 10))
    inits.apply_init(again, "kaiming-normal", seed=0)
    assert torch.equal(net[3].weight, again[3].weight)  # reproducible from the seed alone
    inits.apply_init(net, "zero", bias="normal", bias_std=1.0, seed=1)
    assert net[3].weight.abs().sum().item() == 0.0 and net[3].bias.std().item() > 0.3
    inits.apply_init(net, "xavier-uniform", bias="old-uniform", seed=2)
    assert net[3].bias.abs().max().item() <= 1 / math.sqrt(4 * 26 * 26)
    inits.apply_init(net, "constant", value=0.25)
    assert torch.all(net[0].weight == 0.25)


def test_apply_init_bad_input():
    net = nn.Linear(3, 2)
    with pytest.raises(ValueError, match="unknown init scheme 'xavier'"):
        inits.apply_init(net, "xavier")
    with pytest.raises(ValueError, match="unknown bias scheme"):
        inits.apply_init(net, "zero", bias="random")
    with pytest.raises(ValueError, match="no Linear or Conv"):
        inits.apply_init(nn.ReLU(), "zero")


# ----------------------------------------------------------------- the one registry

def test_every_chapter_condition_is_a_registered_init():
    from initstudy.chapters import fixup as fixup_chapter
    from initstudy.chapters import transfer, zero_init as symmetry
    from initstudy.core import resnets as resnet
    from initstudy.core.inits import MODEL_INITS

    for name in transfer.SCRATCH_INITS + resnet.INITS + tuple(m["init"] for m in fixup_chapter.METHODS.values()):
        assert name in MODEL_INITS, name
    # the zero-init chapter's labels map onto registry names (its "kaiming" is fan-in He with
    # the activation's gain, the registry's "kaiming-normal" with gain=gain_for(activation))
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
    for label in symmetry.SYMMETRY_INITS:
        symmetry.init_for_symmetry(net, label, "tanh", seed=0)
    with pytest.raises(ValueError, match="unknown init 'he'"):
        symmetry.init_for_symmetry(net, "he", "tanh", seed=0)


def test_one_he_std():
    from initstudy.core import resnets as resnet
    from initstudy.core.inits import he_std

    assert resnet.he_std is he_std
    w = torch.empty(32, 16, 3, 3)
    assert he_std(w, "fan_out") == pytest.approx(math.sqrt(2 / (32 * 9)), rel=1e-15)
    assert he_std(w, "fan_in") == pytest.approx(math.sqrt(2 / (16 * 9)), rel=1e-15)
    assert he_std(w, "fan_in", gain=1.0) == pytest.approx(1 / 12, rel=1e-15)


def test_initialise_and_draw():
    from initstudy.core.inits import draw, initialise

    build = lambda: torch.nn.Sequential(torch.nn.Linear(50, 40), torch.nn.ReLU(), torch.nn.Linear(40, 10))
    members = draw(build, "kaiming-normal", [3, 4])
    torch.manual_seed(4)
    alone = initialise(build(), "kaiming-normal", seed=4)
    assert torch.equal(members[1][0].weight, alone[0].weight)
    assert not torch.equal(members[0][0].weight, members[1][0].weight)
    assert members[0][0].weight.var().item() * 50 == pytest.approx(2.0, rel=0.2)
    with pytest.raises(ValueError, match="unknown init 'kaiming'; allowed: zero, constant"):
        initialise(build(), "kaiming")


def test_weight_std_matches_the_drawn_weights():
    from initstudy.core.inits import SCHEMES, weight_std

    g = torch.Generator().manual_seed(0)
    for scheme in ("old-uniform", "xavier-uniform", "xavier-normal", "xavier-fanin", "kaiming-normal",
                   "kaiming-uniform"):
        w = SCHEMES[scheme](torch.empty(300, 500), generator=g)
        assert w.std().item() == pytest.approx(weight_std(scheme, 500, 300), rel=0.02), scheme
    with pytest.raises(ValueError, match="no fan-based std"):
        weight_std("orthogonal", 3, 3)
