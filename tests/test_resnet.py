"""The Fixup model, constant by constant against the official recipe (hongyi-zhang/Fixup,
cifar/models/fixup_resnet_cifar.py and cifar/cifar_train.py), with literal expected values."""

import math

import pytest
import torch
from torch import nn

from initstudy import resnet as R


def fixup_recipe_check(net: R.ResNet, L: int, first_std: float) -> None:
    """What the official code does, checked on a built network (raises AssertionError)."""
    assert net.num_branches == L and net.branch_layers == 2
    c = R.fixup_constants(net)
    assert c.L == L and c.first_stage_std == pytest.approx(first_std, abs=5e-5)
    drawn = torch.cat([b.conv1.weight.flatten() for b in net.layer1])
    assert drawn.std().item() == pytest.approx(first_std, rel=0.03)
    for b in net.blocks:
        assert b.conv2.weight.abs().max().item() == 0.0
        assert [b.bias1a.item(), b.bias1b.item(), b.bias2a.item(), b.scale.item(), b.bias2b.item()] == [0, 0, 0, 1, 0]
    assert net.fc.weight.abs().max().item() == 0.0 and net.fc.bias.abs().max().item() == 0.0
    assert net.bias1.item() == 0.0 and net.bias2.item() == 0.0
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())


@pytest.mark.parametrize("depth, L, first_std", [(20, 9, 0.0393), (110, 54, 0.0160)])
def test_fixup_constants_literal(depth, L, first_std):
    fixup_recipe_check(R.resnet(depth, "fixup", seed=0), L, first_std)


def test_second_stage_first_block_uses_fan_out():
    net = R.resnet(110, "fixup", seed=0)
    w = net.layer2[0].conv1.weight  # 16 -> 32 channels: fan-out 32 * 9, fan-in 16 * 9
    expected = math.sqrt(2 / (32 * 9)) * 54 ** -0.5
    assert w.std().item() == pytest.approx(expected, rel=0.05)
    fan_in = R.resnet(110, "fixup", fan="fan_in", seed=0).layer2[0].conv1.weight
    assert fan_in.std().item() == pytest.approx(math.sqrt(2 / (16 * 9)) * 54 ** -0.5, rel=0.05)


def test_a_wrong_variant_fails_the_recipe_check():
    """L counted in layers (18 for ResNet-20) instead of branches (9): the check must fail."""
    net = R.resnet(20, "fixup", seed=0)
    wrong_scale = 18 ** -0.5
    with torch.no_grad():
        for b in net.blocks:
            b.conv1.weight.normal_(0.0, R.he_std(b.conv1.weight) * wrong_scale)
    with pytest.raises(AssertionError):
        fixup_recipe_check(net, 9, 0.0393)
    with pytest.raises(AssertionError):
        fixup_recipe_check(R.resnet(20, "fixup-no-zero-init", seed=0), 9, 0.0393)
    with pytest.raises(AssertionError):
        fixup_recipe_check(R.resnet(20, "kaiming", norm="none", seed=0), 9, 0.0393)


def test_scalars_count_and_learning_rate_groups():
    net = R.resnet(20, "fixup", seed=0)
    names = [n for n, _ in net.named_parameters() if "bias" in n or "scale" in n]
    assert len(names) == 9 * 5 + 2 + 1  # five per block, bias1 and bias2, and the classifier's bias
    assert "fc.bias" in names
    groups = R.param_groups(net, 0.1)
    assert groups[0]["lr"] == pytest.approx(0.01) and groups[1]["lr"] == 0.1
    assert sum(p.numel() for p in groups[0]["params"]) == 9 * 5 + 2 + 10
    assert len(groups[0]["params"]) + len(groups[1]["params"]) == len(list(net.parameters()))


def test_fixup_blocks_are_the_identity_at_init():
    net = R.resnet(20, "fixup", seed=0)
    x = torch.relu(torch.randn(2, 16, 8, 8))
    with torch.no_grad():
        for block in net.layer1:
            assert torch.equal(block(x), x)
        # the whole network outputs 0 (zero classifier) and only the classifier gets a gradient
    out = net(torch.randn(3, 3, 32, 32))
    assert out.abs().max().item() == 0.0
    nn.functional.cross_entropy(out, torch.tensor([0, 1, 2])).backward()
    moved = {n for n, p in net.named_parameters() if p.grad is not None and p.grad.abs().max() > 0}
    assert moved == {"fc.weight", "fc.bias"}  # bias2 feeds the zero classifier: no gradient either


def test_family_depths_and_shapes():
    assert [R.blocks_for_depth(d) for d in (8, 14, 20, 32, 56, 110, 1202)] == [1, 2, 3, 5, 9, 18, 200]
    with pytest.raises(ValueError, match="6n \\+ 2"):
        R.blocks_for_depth(21)
    for init, norm in (("kaiming", "batchnorm"), ("kaiming", "none"), ("zero-gamma", "batchnorm"), ("fixup", None)):
        net = R.resnet(14, init, norm=norm, in_channels=1, seed=0)
        assert net(torch.randn(2, 1, 14, 14)).shape == (2, 10) and R.depth_of(net) == 14
    pre = R.resnet(20, "kaiming", norm="none", order="pre", seed=0)
    assert pre(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ValueError, match="zero-gamma"):
        R.resnet(20, "zero-gamma", norm="none")


def test_zero_gamma_zeroes_the_last_bn_of_every_block():
    net = R.resnet(20, "zero-gamma", seed=0)
    assert all(b.bn2.weight.abs().max().item() == 0 for b in net.blocks)
    assert all(b.bn1.weight.min().item() == 1 for b in net.blocks)


def test_bottleneck_uses_m_3():
    assert R.fixup_scale(16, 3) == pytest.approx(0.5)
    net = R.resnet(11, "fixup", block="bottleneck", seed=0)  # 9n + 2 with n = 1
    assert net.branch_layers == 3 and net.num_branches == 3
    b = net.layer1[0]
    assert b.conv3.weight.abs().max().item() == 0.0
    assert b.conv1.weight.std().item() == pytest.approx(R.he_std(b.conv1.weight) * 3 ** -0.25, rel=0.1)
    assert net(torch.randn(2, 3, 16, 16)).shape == (2, 10)


def test_block_growth_kinds():
    pre = R.mean_growth(R.block_growth("pre", 100, width=32, seed=0))["geometric_mean_ratio"].item()
    assert 1.6 < pre < 2.2
    assert R.mean_growth(R.block_growth("fixup", 50, seed=0))["geometric_mean_ratio"].item() == 1.0
    bn = R.block_growth("bn", 50, seed=0)
    assert not bn["rescaled"].any()
    assert R.padding_theory(8) == pytest.approx(1.7415123456790125)
    raw = R.block_growth("post", 400, seed=0, rescale=False)
    assert (raw[raw["metric"] == "finite"]["value"] == 0).any()  # float32 overflows without rescaling
    with pytest.raises(ValueError):
        R.block_growth("nope", 3)
