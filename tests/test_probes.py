import numpy as np
import pytest
import torch
from torch import nn

from initstudy.core import inits
from initstudy.core.probes import Probe, backward_stats, forward_stats, tensor_stats


def test_tensor_stats_literal():
    s = tensor_stats(torch.tensor([0.0, 1.0, 0.0, 1.0]))
    assert s == {"nonfinite": 0.0, "mean": 0.5, "std": 0.5, "second_moment": 0.5}
    # sigmoid outputs at z = 10, -10, 0, 0: half in the flat region
    assert tensor_stats(torch.sigmoid(torch.tensor([10.0, -10.0, 0.0, 0.0])), "Sigmoid")["saturated"] == 0.5
    # the flat region of the sigmoid starts near |z| = 6
    assert tensor_stats(torch.sigmoid(torch.tensor([5.9])), "Sigmoid")["saturated"] == 0.0
    assert tensor_stats(torch.sigmoid(torch.tensor([6.1])), "Sigmoid")["saturated"] == 1.0
    assert tensor_stats(torch.tanh(torch.tensor([5.0, 0.0])), "Tanh")["saturated"] == 0.5
    assert tensor_stats(torch.relu(torch.tensor([-1.0, 2.0, -3.0, 0.5])), "ReLU")["zero_fraction"] == 0.5
    s = tensor_stats(torch.tensor([1.0, float("inf")]))
    assert s["nonfinite"] == 0.5 and s["mean"] == 1.0


def test_probe_changes_nothing():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(10, 20), nn.Tanh(), nn.Linear(20, 3))
    x = torch.randn(8, 10)
    before = net(x)
    with Probe(net, backward=True, bins=np.linspace(-3, 3, 13)) as probe:
        out = net(x)
        out.sum().backward()
    assert torch.equal(before, out)
    for m in net.modules():
        assert not m._forward_hooks and not m._backward_hooks
    frame = probe.frame()
    assert set(frame["direction"]) == {"forward", "backward"}
    hist = probe.histograms()
    fwd0 = hist[(hist["module"] == "0") & (hist["direction"] == "forward")]
    inside = ((net[0](x) >= -3) & (net[0](x) <= 3)).sum().item()
    assert fwd0["count"].sum() == inside


def test_orthogonal_identity_stack_keeps_the_second_moment_exactly():
    torch.manual_seed(0)
    layers = [nn.Linear(64, 64, bias=False) for _ in range(20)]
    net = nn.Sequential(*layers)
    inits.apply_init(net, "orthogonal", seed=0)
    x = torch.randn(128, 64)
    frame = forward_stats(net, x)
    sm = frame[frame["metric"] == "second_moment"]["value"].to_numpy()
    x2 = (x.double() ** 2).mean().item()
    assert np.allclose(sm, x2, rtol=1e-5)
    # a non-orthogonal stack (old uniform rule, n Var = 1/3) shrinks it by about 3 per layer
    inits.apply_init(net, "old-uniform", seed=0)
    frame = forward_stats(net, x)
    last = frame[(frame["metric"] == "second_moment") & (frame["module"] == "19")]["value"].item()
    assert last / x2 == pytest.approx(3.0**-20, rel=0.5)


def test_backward_stats_adds_weight_gradients_and_restores_grads():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 3))
    x, y = torch.randn(16, 10), torch.randint(0, 3, (16,))
    net[0].weight.grad = torch.full_like(net[0].weight, 7.0)
    frame = backward_stats(net, x, y)
    wg = frame[frame["direction"] == "weight-grad"]
    assert list(wg["module"]) == ["0", "2"] and (wg["value"] > 0).all()
    assert torch.all(net[0].weight.grad == 7.0) and net[2].weight.grad is None
    back = frame[(frame["direction"] == "backward") & (frame["metric"] == "std")]
    assert set(back["module"]) == {"0", "1", "2"}


def test_unknown_module():
    with pytest.raises(ValueError, match="no module named nope"):
        Probe(nn.Linear(2, 2), modules=["nope"])
