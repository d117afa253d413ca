import pytest
import torch

from initstudy.core import data
from initstudy.core.models import plain_cnn
from initstudy.core.probes import capture
from initstudy.core.train import compare_inits, final_accuracy, steps_to_reach


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", subset=600)


def test_compare_inits_mlp_and_cnn(digits):
    hist = compare_inits(digits, inits=["xavier-normal", "kaiming-normal"], depths=[2], seeds=[0, 1], width=16,
                         steps=30, lrs=[0.05, 1e6], momentum=0.9, eval_every=10, progress=False)
    finals = final_accuracy(hist, ["init", "depth", "lr", "seed"])
    assert len(finals) == 8
    assert finals[finals["lr"] == 1e6]["diverged_at"].notna().all()  # recorded, not raised
    assert finals[finals["lr"] == 0.05]["diverged_at"].isna().all()
    speed = steps_to_reach(hist, ["depth", "init"])
    assert set(speed["best_lr"]) == {0.05}
    big = data.load("digits", subset=200, resize=16)
    cnn = compare_inits(big, inits=["kaiming-normal"], depths=[3], seeds=[0], width=4, steps=5, arch="cnn",
                        eval_every=5, progress=False)
    assert cnn["diverged_at"].isna().all() and (cnn["step"].max() == 5)


def test_plain_cnn_shapes_and_errors():
    net = plain_cnn(1, 10, depth=9, width=4)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 9 and [c.stride[0] for c in convs].count(2) == 2
    assert convs[-1].out_channels == 16
    assert net(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    with pytest.raises(ValueError):
        plain_cnn(1, 10, depth=2)


def test_capture_outputs_and_gradients():
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
    x, y = torch.randn(5, 4), torch.tensor([0, 1, 0, 1, 1])
    found, grads = capture(net, x, y, modules=["0", "1"])
    assert found["0"]["output"].shape == (5, 3) and found["1"]["grad"].shape == (5, 3)
    assert set(grads) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    assert all(p.grad is None for p in net.parameters())
    only, none = capture(net, x, modules=["1"])
    assert "grad" not in only["1"] and none == {}
