"""The Fixup model, constant by constant against the official recipe (hongyi-zhang/Fixup,
cifar/models/fixup_resnet_cifar.py and cifar/cifar_train.py), with literal expected values."""

import math

import pandas as pd

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from initstudy.chapters import fixup as FX
from initstudy.core import resnets as R


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
            b.conv1.weight.normal_(0.0, R.he_std(b.conv1.weight, "fan_out") * wrong_scale)
    with pytest.raises(AssertionError):
        fixup_recipe_check(net, 9, 0.0393)
    with pytest.raises(AssertionError):
        fixup_recipe_check(R.resnet(20, "fixup-no-zero-init", seed=0), 9, 0.0393)
    with pytest.raises(AssertionError):
        fixup_recipe_check(R.resnet(20, "he-fan-out", norm="none", seed=0), 9, 0.0393)


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
    for init, norm in (("he-fan-out", "batchnorm"), ("he-fan-out", "none"), ("zero-gamma", "batchnorm"), ("fixup", None)):
        net = R.resnet(14, init, norm=norm, in_channels=1, seed=0)
        assert net(torch.randn(2, 1, 14, 14)).shape == (2, 10) and R.depth_of(net) == 14
    pre = R.resnet(20, "he-fan-out", norm="none", order="pre", seed=0)
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
    w = b.conv1.weight
    fan_out = w.shape[0] * w.shape[2] * w.shape[3]
    assert w.std().item() == pytest.approx(math.sqrt(2 / fan_out) * 3 ** -0.25, rel=0.1)  # He (fan-out) x L^(-1/(2m-2))
    assert net(torch.randn(2, 3, 16, 16)).shape == (2, 10)


def test_block_growth_kinds():
    pre = FX.mean_growth(FX.block_growth("pre", 100, width=32, seed=0))["geometric_mean_ratio"].item()
    assert 1.6 < pre < 2.2
    assert FX.mean_growth(FX.block_growth("fixup", 50, seed=0))["geometric_mean_ratio"].item() == 1.0
    bn = FX.block_growth("bn", 50, seed=0)
    assert not bn["rescaled"].any()
    # zero padding on 8 x 8: a pixel has a(i) a(j) valid taps, a = 2 at the border and 3 inside;
    # two conv-ReLU layers give a mean second moment sum(n^2) / (64 * 81) = (2*2^2 + 6*3^2)^2 / 5184
    assert FX.padding_theory(8) == pytest.approx(1 + (2 * 2**2 + 6 * 3**2) ** 2 / (64 * 81), rel=1e-12)
    # circular padding, 9 taps everywhere, would give exactly 2; zero padding is less
    assert FX.padding_theory(64) < 2 and FX.padding_theory(64) > FX.padding_theory(8)
    raw = FX.block_growth("post", 400, seed=0, rescale=False)
    assert (raw[raw["metric"] == "finite"]["value"] == 0).any()  # float32 overflows without rescaling
    with pytest.raises(ValueError):
        FX.block_growth("nope", 3)


def test_recipe_table_reads_detached_weights_without_warnings():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. converting a tensor that requires grad to a number
        table = FX.recipe_table((20, 110))
    rows = table.set_index("ResNet")
    assert rows.loc[20, "L (branches)"] == 9 and rows.loc[110, "L (branches)"] == 54
    assert rows.loc[20, "first-stage conv1 std (recipe)"] == pytest.approx(0.0393, abs=5e-5)
    assert rows.loc[20, "conv1 std (drawn)"] == pytest.approx(0.0393, rel=0.1)
    assert rows["every conv2 zero"].all() and rows["classifier zero"].all()
    assert FX.identity_at_init(20)["max |block(x) - x|"].max() == 0.0


def _finals(acc: dict) -> "pd.DataFrame":
    import pandas as pd

    return pd.DataFrame([{"method": m, "depth": 20, "seed": s, "accuracy": a, "diverged_at": float("nan")}
                         for m, vals in acc.items() for s, a in enumerate(vals)])


def test_paired_gaps_and_summaries_use_the_judges_intervals():
    from initstudy.study import claims

    finals = _finals({"fixup": [0.50, 0.60, 0.55], "bn": [0.70, 0.72, 0.71]})
    gaps = FX.paired_gaps(finals, "fixup", "bn", ["depth"]).iloc[0]
    n, mean, low, high = claims.interval([-20.0, -12.0, -16.0], "linear")
    assert (gaps["seeds"], gaps["mean_points"], gaps["low"], gaps["high"]) == pytest.approx((n, mean, low, high))
    assert gaps["settled_sign"] == "below 0"
    summary = FX.accuracy_summary(finals, ["method"]).set_index("method")
    assert summary.loc["bn", "per_seed"] == "70.0 / 72.0 / 71.0"
    assert summary.loc["bn", "low"] == pytest.approx(claims.interval([0.70, 0.72, 0.71], "proportion")[2])


def test_ablation_table_ranks_and_compares_with_the_full_recipe():
    finals = _finals({"fixup": [0.55, 0.58, 0.57], "fixup-no-zero-init": [0.68, 0.70, 0.66],
                      "fixup-no-scaling": [0.45, 0.72, 0.60]})
    table = FX.ablation_table(finals).set_index("method")
    assert list(table.index) == ["fixup-no-zero-init", "fixup-no-scaling", "fixup"]
    assert table.loc["fixup", "rank"] == 3
    assert table.loc["fixup-no-zero-init", "settled_sign"] == "above 0"
    assert table.loc["fixup-no-scaling", "settled_sign"] == "contains 0"


def test_check_table_names_an_unmet_precondition():
    m = {"nonorm_deep_accuracy": [0.1, 0.1, 0.1], "deepest_depth": [56.0],
         "fixup_minus_bn_deep": [-25.0, -20.0, -30.0], "nonorm_minus_bn_deep": [-60.0, -55.0, -50.0],
         "bn_deep_accuracy": [0.745, 0.664, 0.597]}
    table = FX.check_table({"fixup-trains-without-bn": m}).set_index("metric")
    gap = table.loc["fixup_minus_bn_deep"]
    assert gap["status"] == "unsettled" and gap["requires"] == "bn_deep_accuracy"
    assert gap["requires_status"] != "holds" and gap["requires_low"] < 0.5 < gap["requires_mean"]
    assert table.loc["nonorm_deep_accuracy", "requires_status"] == "holds"


@pytest.mark.parametrize("kind, names", [
    ("all", {"bias", "bias1", "bias1a", "bias1b", "bias2", "bias2a", "bias2b", "scale"}),
    ("biases", {"bias", "bias1", "bias1a", "bias1b", "bias2", "bias2a", "bias2b"}),
    ("multiplier", {"bias", "scale"}),
    ("none", {"bias"}),  # the classifier's own bias only
])
def test_scalar_sets_carry_their_scalars_only(kind, names):
    net = R.resnet(8, "fixup", in_channels=1, width=4, scalars=kind, seed=0)
    found = {n.split(".")[-1] for n, _ in net.named_parameters() if "bias" in n or "scale" in n}
    assert found == names and net.scalars == kind


def test_scalars_are_the_identity_at_init_and_act_once_trained():
    """Biases 0 and multiplier 1 change nothing at init, so every scalar set computes the same
    function from the same seed; a moved multiplier or bias changes it."""
    x = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    nets = {k: R.resnet(8, "fixup-no-zero-init", in_channels=1, width=4, scalars=k, seed=0) for k in R.SCALAR_SETS}
    out = {k: n(x) for k, n in nets.items()}
    for k in R.SCALAR_SETS:
        assert torch.equal(out[k], out["none"]), k
    with torch.no_grad():
        nets["multiplier"].layer1[0].scale.fill_(2.0)
        nets["biases"].layer1[0].bias1b.fill_(0.5)
    assert not torch.allclose(nets["multiplier"](x), out["none"])
    assert not torch.allclose(nets["biases"](x), out["none"])
    with pytest.raises(ValueError, match="scalars must be one of"):
        R.resnet(8, "fixup", scalars="bias")


def test_scalars_measurements_pair_by_seed():
    finals = _finals({"fixup-no-scalars": [0.50, 0.60], "fixup-no-multiplier": [0.55, 0.60],
                      "fixup": [0.60, 0.58]})
    # the placebo: the same seeds (and weights), another data order: paired with its own seed
    placebo = pd.DataFrame({"method": "fixup-no-scalars", "depth": 20, "seed": [1, 0], "accuracy": [0.61, 0.52]})
    m = FX.scalars_measurements(finals, placebo, [0, 1])["fixup-scalars-help"]
    assert m["bias_scalars_gain"] == pytest.approx([5.0, 0.0])
    assert m["multiplier_gain"] == pytest.approx([5.0, -2.0])
    assert m["placebo_gain"] == pytest.approx([2.0, 1.0])
    assert m["no_scalars_accuracy"] == [0.50, 0.60] and m["biases_only_accuracy"] == [0.55, 0.60]
    with pytest.raises(ValueError, match="no final accuracy"):
        FX.scalars_measurements(finals[finals["method"] != "fixup"], placebo, [0, 1])
    with pytest.raises(ValueError, match="one depth"):
        FX.scalars_measurements(finals, placebo.assign(depth=32), [0, 1])
    with pytest.raises(ValueError, match=r"the placebo has runs of fixup-no-scalars for the seeds \[1\], not \[0, 1\]"):
        FX.scalars_measurements(finals, placebo.iloc[:1], [0, 1])
    with pytest.raises(ValueError, match="not \\[0, 1\\]"):  # a second block of seeds is no longer the placebo
        FX.scalars_measurements(finals, placebo.assign(seed=[2, 3]), [0, 1])


@pytest.mark.parametrize("kind", ["all", "biases", "multiplier"])
def test_basic_block_applies_each_scalar_where_the_fixup_code_does(kind):
    """Against a hand-written copy of the official block's forward, with every scalar moved
    off its init: biases before conv1 (and the shortcut), after conv1, before conv2, after the
    multiplied conv2; the multiplier on conv2's output."""
    torch.manual_seed(0)
    block = R.BasicBlock(4, 8, stride=2, norm="none", scalars=kind)
    values = {"bias1a": 0.3, "bias1b": -0.2, "bias2a": 0.1, "bias2b": 0.4, "scale": 1.7}
    with torch.no_grad():
        for name, v in values.items():
            if hasattr(block, name):
                getattr(block, name).fill_(v)
    b = {k: (v if k != "scale" and kind in ("all", "biases") else 0.0) for k, v in values.items() if k != "scale"}
    scale = values["scale"] if kind in ("all", "multiplier") else 1.0
    x = torch.randn(2, 4, 6, 6)
    out = torch.relu(F.conv2d(x + b["bias1a"], block.conv1.weight, stride=2, padding=1) + b["bias1b"])
    out = F.conv2d(out + b["bias2a"], block.conv2.weight, padding=1) * scale + b["bias2b"]
    short = F.avg_pool2d(x + b["bias1a"], 1, 2)
    short = torch.cat([short, torch.zeros(2, 4, 3, 3)], 1)
    assert torch.allclose(block(x), torch.relu(out + short), atol=1e-6)


def test_scalar_gains_judged_against_a_placebo():
    """A placebo with the same spread as a real gain cannot make the gain 'significant'; a
    clear gain with a placebo near 0 is reproduced."""
    from initstudy.study import claims

    learned = [0.6, 0.62, 0.61, 0.6]
    clear = {"bias_scalars_gain": [5.0, 6.0, 5.5, 6.5], "multiplier_gain": [3.0, 3.5, 2.5, 3.2],
             "placebo_gain": [0.2, -0.3, 0.1, -0.1], "no_scalars_accuracy": learned, "biases_only_accuracy": learned}
    assert claims.judge("fixup-scalars-help", clear).verdict == claims.REPRODUCED
    noisy = dict(clear, placebo_gain=[6.0, 5.0, 7.0, 5.5])
    j = claims.judge("fixup-scalars-help", noisy)
    assert j.verdict != claims.REPRODUCED and claims.NOT_DISCRIMINATING in [c.status for c in j.checks]
    stuck = dict(clear, no_scalars_accuracy=[0.1, 0.1, 0.12, 0.1])
    assert claims.judge("fixup-scalars-help", stuck).checks[0].status == claims.UNSETTLED


def test_gap_by_step_and_its_trend():
    rows = []
    for step, full, other in ((0, (0.1, 0.1), (0.1, 0.1)), (10, (0.3, 0.4), (0.5, 0.62)), (20, (0.6, 0.62), (0.65, 0.66))):
        for seed in (0, 1):
            rows += [{"method": "fixup", "seed": seed, "step": step, "split": "val", "metric": "accuracy",
                      "value": full[seed]},
                     {"method": "fixup-no-zero-init", "seed": seed, "step": step, "split": "val",
                      "metric": "accuracy", "value": other[seed]}]
    # the test split, read once at the end, is not a curve: it must not enter the gaps by step
    rows += [{"method": m, "seed": seed, "step": 20, "split": "test", "metric": "accuracy", "value": 0.99}
             for m in ("fixup", "fixup-no-zero-init") for seed in (0, 1)]
    gaps = FX.gap_by_step(pd.DataFrame(rows), "fixup", ["fixup-no-zero-init"])
    assert gaps.set_index("step")["mean_points"].to_dict() == pytest.approx({0: 0.0, 10: 21.0, 20: 4.5})
    trend = FX.gap_trend(gaps).iloc[0]
    assert (trend["first_step"], trend["last_step"]) == (10, 20)
    assert bool(trend["ahead_early"]) and bool(trend["lead_shrank"])  # +21 [> 0] then +4.5
    overtaken = gaps.assign(mean_points=lambda d: d["mean_points"].where(d["step"] != 20, -3.0))
    assert not FX.gap_trend(overtaken).iloc[0]["lead_shrank"]  # a lead that turned negative did not "shrink"
    assert FX.gap_trend_glue(FX.gap_trend(gaps))["gap-fixup-no-zero-init-last"].startswith("+4.5 [")


def test_work_plan_counts_the_first_epoch_as_the_paper_runs_it():
    """The cpu profile's first epoch: the whole Fashion-MNIST training split (55,000 images) at
    batch 128 is ceil(55000 / 128) = 430 steps, 3 methods x 3 seeds at ResNet-20; the longer
    runs and the ablations are left to the gpu profile, which runs them. STUDY.md's independent
    estimate, 6 x MACs, is about 51 MFLOP per training image of ResNet-20 at 14x14, so 9 runs x
    430 x 128 images are about 25 TFLOP before the evaluations."""
    plan = FX.work_plan("cpu").set_index("experiment")
    first = plan.loc["first epoch"]
    assert (first["runs"], first["steps per run"], first["batch"], first["depths"]) == (9, 430, 128, "20")
    assert 0.95 * 25.3 < first["TFLOP"] < 1.12 * 25.3  # the evaluations (6,000 images a run) add about 3 %
    assert not plan.loc["longer runs", "runs it"] and not plan.loc["ablations", "runs it"]
    assert plan.loc["longer runs", "TFLOP"] == 0.0
    gpu = FX.work_plan("gpu").set_index("experiment")
    assert gpu.loc["ablations", "runs it"] and gpu.loc["first epoch", "depths"] == "20, 56, 110"
    # the gpu profile's 110 layers are read from the first-epoch runs, not run twice
    assert not gpu.loc["no normalisation, deeper", "runs it"]
    table = FX.left_to_gpu_table(FX.work_plan("cpu"), FX.work_plan("gpu")).set_index("experiment")
    assert table.loc["ablations", "this run"] == "not run"
    assert table.loc["ablations", "claim"] == "fixup-scalars-help"
    assert set(table.index) == set(FX.LEFT_TO_GPU)


def test_an_ablation_left_to_the_gpu_profile_leaves_its_claim_inconclusive():
    from initstudy.study import claims

    m = FX.scalars_measurements(None, None, [0, 1, 2])["fixup-scalars-help"]
    assert all(math.isnan(v) for vals in m.values() for v in vals)
    j = claims.judge(claims.claim("fixup-scalars-help"), m)
    assert j.verdict == claims.INCONCLUSIVE
    with pytest.raises(ValueError, match="run together"):  # half a measurement is still an error
        FX.scalars_measurements(None, pd.DataFrame({"method": ["x"], "depth": [8], "seed": [0], "accuracy": [0.1]}),
                                [0])


def test_nonorm_failures_count_divergence_per_depth():
    finals = pd.DataFrame({"method": ["none"] * 4 + ["bn"], "depth": [56, 56, 110, 110, 56], "seed": [0, 1, 0, 1, 0],
                           "accuracy": [0.1, 0.55, 0.1, 0.1, 0.8], "diverged_at": [2.0, math.nan, 3.0, 2.0, math.nan]})
    t = FX.nonorm_failures(finals).set_index("depth")
    assert t.loc[56, "diverged"] == 1 and t.loc[56, "failed"] == 1 and t.loc[56, "per_seed"] == "10.0 / 55.0"
    assert t.loc[110, "diverged at steps"] == "3 / 2"
    assert FX.nonorm_failures_text(t.reset_index()).startswith("56 layers: 1 of 2 seeds diverged (at steps 2), 1 of 2")
