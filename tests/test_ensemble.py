"""The ensemble training core against a plain torch.nn loop, member by member."""

import copy

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from initstudy.core import ensemble, models
from initstudy.core.data import Dataset
from initstudy.core.resnets import resnet
from initstudy.core.train import TrainConfig, make_optimizer, param_groups, train, train_many

STEPS = 50


def toy(dtype=torch.float64, n=256, shape=(1, 8, 8), seed=0, test=None):
    g = torch.Generator().manual_seed(seed)
    x_test = torch.randn(100, *shape, generator=g, dtype=dtype) if test is None else test[0]
    y_test = torch.randint(0, 10, (100,), generator=g) if test is None else test[1]
    x_val = torch.randn(60, *shape, generator=g, dtype=dtype) if test is None else test[0][:30]
    y_val = torch.randint(0, 10, (60,), generator=g) if test is None else test[1][:30]
    return Dataset(name="toy", source="test", x_train=torch.randn(n, *shape, generator=g, dtype=dtype),
                   y_train=torch.randint(0, 10, (n,), generator=g), x_val=x_val, y_val=y_val, x_test=x_test,
                   y_test=y_test, num_classes=10)


def tiny(n_val=5, n_test=7):
    """An MLP-sized data set with its three splits of different sizes."""
    g = torch.Generator().manual_seed(0)
    return Dataset(name="t", source="test", x_train=torch.randn(8, 4, generator=g), y_train=torch.randint(0, 2, (8,)),
                   x_val=torch.randn(n_val, 4, generator=g), y_val=torch.randint(0, 2, (n_val,)),
                   x_test=torch.randn(n_test, 4, generator=g), y_test=torch.randint(0, 2, (n_test,)), num_classes=2)


def plain_loop(model, data, cfg):
    """The reference: torch.nn modules, torch.optim, one model, the member's own draws."""
    model = copy.deepcopy(model)
    opt = make_optimizer(param_groups(model, cfg), cfg)
    losses, evals = [], {}

    def evaluate(step, split="val"):
        x, y = (data.x_val, data.y_val) if split == "val" else (data.x_test, data.y_test)
        model.eval()
        with torch.no_grad():
            out = model(x)
            evals[(split, step)] = (F.cross_entropy(out, y).item(), (out.argmax(1) == y).double().mean().item())
        model.train()

    evaluate(0)
    step = 0
    for block in ensemble.member_stream(cfg.seed, len(data.y_train), cfg.batch_size, cfg.steps, augment=cfg.augment,
                                        mixup_alpha=cfg.mixup_alpha):
        for t in range(len(block["idx"])):
            step += 1
            idx = block["idx"][t]
            xb, yb = data.x_train[idx], data.y_train[idx]
            if "crop_i" in block:
                xb = ensemble.crop_flip_at(xb, block["crop_i"][t], block["crop_j"][t], block["flip"][t])
            for group in opt.param_groups:
                group["lr"] = group["initial_lr"] * cfg.lr_factor(step)
            opt.zero_grad()
            if "lam" in block:
                lam, perm = float(block["lam"][t]), block["perm"][t]
                out = model(lam * xb + (1 - lam) * xb[perm])
                loss = lam * F.cross_entropy(out, yb) + (1 - lam) * F.cross_entropy(out, yb[perm])
            else:
                loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            if step % cfg.eval_every == 0:
                evaluate(step)
    evaluate(step, "test")  # the end: the test set, once
    return np.array(losses), evals


FAMILIES = {
    "mlp": (lambda s: models.mlp(64, [32, 32], 10), {}),
    "cnn": (lambda s: models.plain_cnn(1, 10, 3, 4), {"augment": "crop-flip"}),
    "resnet-bn": (lambda s: resnet(8, "he-fan-out", norm="batchnorm", in_channels=1, num_classes=10, width=4, seed=s),
                  {"weight_decay": 1e-4, "mixup_alpha": 1.0}),
    "fixup": (lambda s: resnet(8, "fixup", in_channels=1, num_classes=10, width=4, seed=s),
              {"scalar_lr_factor": 0.1, "weight_decay": 1e-4, "warmup_steps": 5, "milestones": (0.5,)}),
}


def members(family, dtype, k=3):
    build, extra = FAMILIES[family]
    nets = []
    for s in range(k):
        torch.manual_seed(s)
        nets.append(build(s).to(dtype))
    configs = [TrainConfig(steps=STEPS, batch_size=32, lr=0.02 * (1 + s), momentum=0.9 if s != 1 else 0.0, seed=s,
                           eval_every=25, **extra) for s in range(k)]
    return nets, configs


def same_final(a: dict, b: dict) -> bool:
    """Two results' ``final`` records are equal (NaN equal to NaN: a run that did not diverge has
    no frozen accuracy)."""
    return a.keys() == b.keys() and all(x == y or (x != x and y != y) for x, y in zip(a.values(), (b[k] for k in a)))


def train_losses(result):
    h = result.history
    return h[h["split"] == "train"].sort_values("step")["value"].to_numpy()


def eval_rows(result):
    h = result.history[result.history["split"].isin(["val", "test"])]
    return {(split, int(s)): (g[g.metric == "loss"]["value"].item(), g[g.metric == "accuracy"]["value"].item())
            for (split, s), g in h.groupby(["split", "step"])}


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-9), (torch.float32, 1e-4)])
def test_each_member_matches_a_plain_loop(family, dtype, tol):
    data = toy(dtype)
    nets, configs = members(family, dtype)
    results = ensemble.train_ensemble([copy.deepcopy(n) for n in nets], data, configs)
    for net, cfg, result in zip(nets, configs, results):
        ref_losses, ref_evals = plain_loop(net, data, cfg)
        got = train_losses(result)
        assert len(got) == STEPS
        np.testing.assert_allclose(got, ref_losses, rtol=tol, atol=0)
        evals = eval_rows(result)
        # validation at 0, every eval_every steps and at the end; the test set once, at the end
        assert sorted(evals) == sorted(ref_evals) == [("test", 50), ("val", 0), ("val", 25), ("val", 50)]
        for key, (loss, acc) in ref_evals.items():  # BatchNorm's running statistics are per member
            assert evals[key][0] == pytest.approx(loss, rel=tol)
            assert evals[key][1] == pytest.approx(acc, abs=1e-12)
        assert result.final["test_accuracy"] == evals[("test", 50)][1]
        assert result.final["val_accuracy"] == evals[("val", 50)][1]


def test_a_member_does_not_depend_on_k_or_chunks():
    data = toy()
    nets, configs = members("resnet-bn", torch.float64, k=4)
    alone = ensemble.train_ensemble([copy.deepcopy(nets[2])], data, [configs[2]])[0]
    together = ensemble.train_ensemble([copy.deepcopy(n) for n in nets], data, configs)[2]
    chunked = ensemble.train_ensemble([copy.deepcopy(n) for n in nets], data, configs, chunk=3)[2]
    for other in (together, chunked):
        np.testing.assert_allclose(train_losses(other), train_losses(alone), rtol=1e-12, atol=0)
        assert other.final["test_accuracy"] == alone.final["test_accuracy"]


def test_a_diverging_member_is_frozen_and_leaves_the_others_alone():
    data = toy()
    nets, configs = members("mlp", torch.float64, k=3)
    configs[1] = TrainConfig(steps=STEPS, batch_size=32, lr=1e200, seed=1, eval_every=25)  # overflows
    results = ensemble.train_ensemble([copy.deepcopy(n) for n in nets], data, configs)
    bad = results[1]
    assert bad.diverged_at is not None and 1 < bad.diverged_at <= STEPS
    losses = train_losses(bad)
    assert len(losses) == bad.diverged_at and np.isnan(losses[-1]) and np.isfinite(losses[:-1]).all()
    assert bad.steps_done == bad.diverged_at - 1 and np.isnan(bad.final["test_loss"])
    for i in (0, 2):
        solo = ensemble.train_ensemble([copy.deepcopy(nets[i])], data, [configs[i]])[0]
        np.testing.assert_array_equal(train_losses(results[i]), train_losses(solo))
        assert results[i].diverged_at is None
    # One divergence rule: it counts at chance on both splits; the frozen weights' accuracy, that of
    # its weights before the step that diverged, is recorded beside it, labelled.
    assert bad.final["test_accuracy"] == bad.final["val_accuracy"] == 0.1
    frozen = copy.deepcopy(nets[1])
    ref = ensemble.train_ensemble([frozen], data, [TrainConfig(steps=bad.diverged_at - 1, batch_size=32, lr=1e200,
                                                               seed=1, eval_every=25)])[0]
    assert bad.final["frozen_test_accuracy"] == ref.final["test_accuracy"]
    h = bad.history
    rows = h[h["step"] == bad.diverged_at].set_index(["split", "metric"])["value"]
    assert rows[("test", "accuracy")] == 0.1 and rows[("test", "frozen_accuracy")] == ref.final["test_accuracy"]
    assert rows[("val", "frozen_accuracy")] == ref.final["val_accuracy"]


def test_same_seed_same_table_and_train_is_a_one_member_ensemble():
    data = toy(torch.float32)
    nets, configs = members("cnn", torch.float32, k=2)
    a = train_many([copy.deepcopy(n) for n in nets], data, configs)
    b = train_many([copy.deepcopy(n) for n in nets], data, configs)
    for x, y in zip(a, b):
        pd.testing.assert_frame_equal(x.history, y.history)
    single = train(copy.deepcopy(nets[0]), data, configs[0])
    np.testing.assert_allclose(train_losses(single), train_losses(a[0]), rtol=1e-5)


def test_adam_matches_torch():
    data = toy()
    net = models.mlp(64, [16], 10).double()
    cfg = TrainConfig(steps=30, batch_size=32, lr=1e-3, optimizer="adam", weight_decay=1e-3, seed=3, eval_every=30)
    result = ensemble.train_ensemble([copy.deepcopy(net)], data, [cfg])[0]
    np.testing.assert_allclose(train_losses(result), plain_loop(net, data, cfg)[0], rtol=1e-9)


def test_members_with_their_own_data():
    shared_test = (torch.randn(50, 1, 8, 8, dtype=torch.float64), torch.randint(0, 10, (50,)))
    datas = [toy(seed=s, n=64, test=shared_test) for s in range(3)]
    nets, configs = members("mlp", torch.float64, k=3)
    results = train_many([copy.deepcopy(n) for n in nets], datas, configs)
    for net, d, cfg, r in zip(nets, datas, configs, results):
        np.testing.assert_allclose(train_losses(r), plain_loop(net, d, cfg)[0], rtol=1e-9)


def test_members_must_share_architecture_and_schedule():
    data = toy()
    a, b = models.mlp(64, [8], 10).double(), models.mlp(64, [9], 10).double()
    cfg = TrainConfig(steps=2, batch_size=8)
    with pytest.raises(ValueError, match="architecture"):
        ensemble.train_ensemble([a, b], data, [cfg, cfg])
    with pytest.raises(ValueError, match="share steps"):
        ensemble.train_ensemble([a, copy.deepcopy(a)], data, [cfg, TrainConfig(steps=3, batch_size=8)])
    # train_many groups what cannot be stacked instead of failing
    results = train_many([a, b], data, [cfg, TrainConfig(steps=3, batch_size=8)])
    assert [r.steps_done for r in results] == [2, 3]


def test_chunk_size_follows_the_budget():
    net = models.mlp(64, [32], 10)
    x = torch.zeros(1, 64)
    small, large = ensemble.chunk_size(net, x, 32, budget=10**6), ensemble.chunk_size(net, x, 32, budget=10**8)
    assert 1 <= small < large
    assert ensemble.chunk_size(net, x, 32, budget=1) == 1


def test_member_stream_is_a_permutation_per_epoch():
    blocks = list(ensemble.member_stream(5, 10, 3, 7))
    idx = torch.cat([b["idx"] for b in blocks])
    assert idx.shape == (7, 3)
    for epoch in (idx[:3], idx[3:6]):  # 3 batches of 3 per epoch of 10 examples, no repeats within
        assert len(set(epoch.flatten().tolist())) == 9
    again = torch.cat([b["idx"] for b in ensemble.member_stream(5, 10, 3, 7)])
    assert torch.equal(idx, again)


def test_every_member_diverging_ends_the_run_cleanly():
    data = toy()
    nets, _ = members("mlp", torch.float64, k=2)
    configs = [TrainConfig(steps=STEPS, batch_size=32, lr=1e200, seed=s, eval_every=25) for s in range(2)]
    results = ensemble.train_ensemble(nets, data, configs)
    for r in results:
        assert r.diverged_at is not None and r.steps_done == r.diverged_at - 1
        assert len(train_losses(r)) == r.diverged_at
        assert 0.0 <= r.final["test_accuracy"] <= 1.0


def test_the_gpu_path_gives_the_cpu_paths_numbers(monkeypatch):
    """Without host checks every step (a GPU's path), a member that diverges is masked until
    the next evaluation and dropped there: the same numbers as dropping it at once."""
    data = toy()
    nets, configs = members("mlp", torch.float64, k=3)
    configs[1] = TrainConfig(steps=STEPS, batch_size=32, lr=1e200, seed=1, eval_every=25)
    at_once = ensemble.train_ensemble([copy.deepcopy(n) for n in nets], data, configs)
    monkeypatch.setattr(ensemble, "_HOST_CHECKS", False)
    masked = ensemble.train_ensemble([copy.deepcopy(n) for n in nets], data, configs)
    for a, b in zip(at_once, masked):
        np.testing.assert_array_equal(train_losses(a), train_losses(b))
        assert same_final(a.final, b.final) or (a.diverged_at == b.diverged_at
                                                and a.final["test_accuracy"] == b.final["test_accuracy"])


@pytest.mark.parametrize("family", ["mlp", "resnet-bn"])  # vmap and per-member passes on the CPU
def test_k_independence_in_both_modes(family):
    data = toy()
    nets, configs = members(family, torch.float64, k=4)
    alone = ensemble.train_ensemble([copy.deepcopy(nets[3])], data, [configs[3]])[0]
    together = ensemble.train_ensemble([copy.deepcopy(n) for n in nets], data, configs)[3]
    np.testing.assert_allclose(train_losses(together), train_losses(alone), rtol=1e-12, atol=0)


def test_crop_flip_against_a_hand_built_crop():
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float64).view(2, 1, 4, 4)
    out = ensemble.crop_flip_at(x, torch.tensor([0, 2]), torch.tensor([1, 2]), torch.tensor([False, True]), pad=1)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))
    assert torch.equal(out[0], padded[0, :, 0:4, 1:5])  # rows from 0, columns from 1, no flip
    assert torch.equal(out[1], padded[1, :, 2:6, 2:6].flip(-1))  # rows and columns from 2, flipped


def test_signature_sees_settings_that_repr_hides():
    pre = resnet(8, "he-fan-out", norm="none", order="pre", in_channels=1, width=4, seed=0)
    post = resnet(8, "he-fan-out", norm="none", order="post", in_channels=1, width=4, seed=0)
    assert ensemble.signature(pre) != ensemble.signature(post)
    assert ensemble.signature(post) == ensemble.signature(resnet(8, "he-fan-out", norm="none", in_channels=1,
                                                                 width=4, seed=1))


def test_record_at_generator_serves_every_member():
    data = toy()
    nets, configs = members("mlp", torch.float64, k=2)
    seen = []
    ensemble.train_ensemble(nets, data, configs, record=lambda m, s: seen.append(s) or [], record_every=1000,
                            record_at=(s for s in (3, 8)), chunk=1)
    assert sorted(seen) == [0, 0, 3, 3, 8, 8, STEPS, STEPS]


def test_conv_members_train_channels_last_on_the_cpu_and_come_back_contiguous():
    """On the CPU a conv net's members run one module call each, with their convolution weights
    in channels-last order (canonical strides, also for a 1-channel input layer, which is what
    makes oneDNN pick NHWC and keeps max-pooling off its slow path); the trained modules come
    back in the usual contiguous layout. ``channels_last=False`` (the negative control, seen
    by the same hooks) keeps NCHW."""
    data = toy(torch.float32, shape=(1, 8, 8))

    def layouts(**option):
        nets = [models.small_cnn(1, 10, 8, channels=(4,), hidden=8) for _ in range(2)]
        seen = []
        for net in nets:
            net.pool1.register_forward_hook(lambda m, i, o: seen.append(
                i[0].is_contiguous(memory_format=torch.channels_last) and i[0].stride(1) == 1))
            net.conv1.register_forward_hook(lambda m, i, o: seen.append(m.weight.stride() == (9, 1, 3, 1)))
        configs = [TrainConfig(steps=3, batch_size=16, lr=0.1, seed=s, eval_every=10) for s in range(2)]
        ensemble.train_ensemble(nets, data, configs, **option)
        for net in nets:
            assert all(p.is_contiguous() for p in net.parameters())
            assert net.conv1.weight.stride() == (9, 9, 3, 1)
        assert seen[:2] == [False, False]  # the memory estimate's pass on the module as built
        return seen[2:]

    default, nchw = layouts(), layouts(channels_last=False)
    assert default and all(default)
    assert nchw and not any(nchw)


def test_a_diverging_conv_member_leaves_the_others_alone_in_channels_last():
    """Loop mode: a conv member that diverges is dropped; the others keep their channels-last
    weights and give exactly the numbers they give alone."""
    data = toy(torch.float32, shape=(1, 8, 8))
    nets = [models.small_cnn(1, 10, 8, channels=(4,), hidden=8) for _ in range(3)]
    configs = [TrainConfig(steps=12, batch_size=16, lr=0.05, seed=s, eval_every=6) for s in range(3)]
    configs[1] = TrainConfig(steps=12, batch_size=16, lr=1e30, seed=1, eval_every=6)  # overflows
    seen = []
    for i in (0, 2):
        nets[i].conv1.register_forward_hook(lambda m, i, o: seen.append(m.weight.stride() == (9, 1, 3, 1)))
    results = ensemble.train_ensemble([copy.deepcopy(n) for n in nets], data, configs)
    k = results[1].diverged_at
    assert k is not None and k < 12
    assert seen[0] is False and len(seen) > 1 and all(seen[1:])  # after the memory estimate's pass, all NHWC
    for i in (0, 2):
        solo = ensemble.train_ensemble([copy.deepcopy(nets[i])], data, [configs[i]])[0]
        np.testing.assert_array_equal(train_losses(results[i]), train_losses(solo))
        assert same_final(results[i].final, solo.final)


def test_the_work_counter_counts_member_steps_and_flops():
    """Member-steps and FLOPs against literals: an MLP 4-3-2 on batches of 2 costs per step
    forward 2*2*(4*3 + 3*2) = 72, backward 2*2*(4*3) + 2*2*(3*2) * 2 = 96 (no gradient for
    the input); an evaluation 2*(4*3 + 3*2) = 36 per example: on the 5 validation examples at
    step 0 and at the end, on the 7 test examples once, at the end."""
    data = tiny(5, 7)
    nets = [models.mlp(4, [3], 2) for _ in range(3)]
    configs = [TrainConfig(steps=4, batch_size=2, lr=0.1, seed=s, eval_every=100) for s in range(3)]
    ensemble.reset_work()
    ensemble.train_ensemble(nets, data, configs)
    work = ensemble.WORK
    assert work.member_steps == 3 * 4
    assert work.train_flop == 3 * 4 * (72 + 96)
    assert work.eval_flop == 2 * 3 * 5 * 36 + 3 * 7 * 36  # validation twice and test once, 3 members
    assert work.uncounted_steps == 0 and work.record_seconds == 0
    record = work.as_dict()
    assert record["member_steps"] == 12 and record["seconds"] > 0
    assert record["gflop_per_s"] == round((work.train_flop + work.eval_flop) / work.seconds / 1e9, 2)
    ensemble.reset_work()
    assert ensemble.WORK.member_steps == 0 and ensemble.WORK.train_flop == 0


def test_the_plan_counts_what_a_run_does_and_plan_mode_trains_one_step(monkeypatch):
    """The planned work (every member to its last step, validation at step 0, every
    ``eval_every`` steps and the end, test once) is what a run without divergence does; in plan
    mode the same plan is counted while one step is trained and 32 examples evaluated."""
    data = tiny(40, 50)
    nets = [models.mlp(4, [3], 2) for _ in range(3)]
    configs = [TrainConfig(steps=7, batch_size=2, lr=0.1, seed=s, eval_every=3) for s in range(3)]
    ensemble.reset_work()
    ensemble.train_ensemble([copy.deepcopy(n) for n in nets], data, configs)
    ran = ensemble.WORK.as_dict()
    assert ensemble.WORK.planned_member_steps == ensemble.WORK.member_steps == 21
    assert ensemble.WORK.planned_train_flop == ensemble.WORK.train_flop == 21 * (72 + 96)
    # validation at steps 0, 3, 6 and 7: four times 40 examples; test once, 50; 36 FLOPs each, 3 members
    assert ensemble.WORK.planned_eval_flop == ensemble.WORK.eval_flop == 3 * 36 * (4 * 40 + 50)
    assert ran["plan_mode"] is False
    monkeypatch.setenv(ensemble.PLAN_ENV, "1")
    ensemble.reset_work()
    results = ensemble.train_ensemble([copy.deepcopy(n) for n in nets], data, configs)
    plan = ensemble.WORK.as_dict()
    assert plan["plan_mode"] is True and plan["member_steps"] == 3 and all(r.steps_done == 1 for r in results)
    assert {k: plan[k] for k in ("planned_member_steps", "planned_train_gflop", "planned_eval_gflop")} == {
        k: ran[k] for k in ("planned_member_steps", "planned_train_gflop", "planned_eval_gflop")}
    assert ensemble.WORK.eval_flop == 3 * 36 * (2 * 32 + 32)  # step 0 and step 1 on 32 validation, 32 test


def test_diverged_members_stop_counting():
    """A member that diverges at step k has trained k steps (the step whose loss was not
    finite counted, none after it)."""
    data = toy()
    nets, configs = members("mlp", torch.float64, k=3)
    configs[1] = TrainConfig(steps=STEPS, batch_size=32, lr=1e200, seed=1, eval_every=25)  # overflows
    ensemble.reset_work()
    results = ensemble.train_ensemble([copy.deepcopy(n) for n in nets], data, configs)
    k = results[1].diverged_at
    assert k is not None and 1 < k < STEPS
    assert ensemble.WORK.member_steps == 2 * STEPS + k


def test_a_model_the_meta_device_cannot_run_still_trains_uncounted():
    """Counting FLOPs runs the model on the meta device; a model whose forward reads values
    (here: ``.item()``) cannot run there. It still trains, its member-steps are counted, and
    its FLOPs are recorded as unknown, not as 0."""

    class ReadsValues(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(x) * (1.0 if float(x.abs().sum().item()) >= 0 else 0.0)

    data = tiny()
    ensemble.reset_work()
    result = ensemble.train_ensemble([ReadsValues()], data, [TrainConfig(steps=3, batch_size=2, lr=0.1, seed=0)],
                                     vectorize="loop")[0]
    assert result.steps_done == 3
    record = ensemble.WORK.as_dict()
    assert record["member_steps"] == 3 and record["uncounted_steps"] == 3
    assert record["train_gflop"] == 0 and record["gflop_per_s"] is None
    # a counted model trained afterwards adds its FLOPs; the rate stays unknown (3 steps were not counted)
    ensemble.train_ensemble([models.mlp(4, [3], 2)], data, [TrainConfig(steps=2, batch_size=2, lr=0.1, seed=0)])
    record = ensemble.WORK.as_dict()
    assert record["member_steps"] == 5 and record["uncounted_steps"] == 3
    assert ensemble.WORK.train_flop == 2 * (72 + 96) and record["gflop_per_s"] is None


def test_the_test_split_is_read_once_per_member_at_its_end():
    """The core never shows a test number during training: test rows only at a member's last
    step (or the step it diverged), validation rows at every evaluation; so nothing chosen from
    a history can read the test set. Negative control: the validation rows are there."""
    data = toy()
    nets, configs = members("mlp", torch.float64, k=3)
    configs[1] = TrainConfig(steps=STEPS, batch_size=32, lr=1e200, seed=1, eval_every=25)  # diverges
    results = ensemble.train_ensemble([copy.deepcopy(n) for n in nets], data, configs)
    for r in results:
        h = r.history
        end = r.diverged_at or STEPS
        test = h[h["split"] == "test"]
        assert set(test["step"]) == {end} and len(test) == (2 if r.diverged_at else 2)
        assert len(h[h["split"] == "val"]["step"].unique()) >= 2


def test_a_placebo_data_order_changes_the_batches_only():
    """``order_seed`` draws the data order from its own seed and nothing else: the same weights at
    step 0, other batches from step 1 (the placebo's one changed random stream)."""
    from initstudy.core.ensemble import stream_seed

    data = toy()
    nets, _ = members("mlp", torch.float64, k=1)
    base = TrainConfig(steps=5, batch_size=32, lr=0.05, seed=7, eval_every=5)
    placebo = TrainConfig(steps=5, batch_size=32, lr=0.05, seed=7, eval_every=5, order_seed=stream_seed(7, "order"))
    a, b = (ensemble.train_ensemble([copy.deepcopy(nets[0])], data, [c])[0] for c in (base, placebo))
    assert eval_rows(a)[("val", 0)] == eval_rows(b)[("val", 0)]  # the same init
    assert not np.array_equal(train_losses(a), train_losses(b))  # other batches
    first = next(ensemble.member_stream(7, 256, 32, 5))["idx"]
    assert torch.equal(next(ensemble.member_stream(7, 256, 32, 5, order_seed=7))["idx"], first)
    assert not torch.equal(next(ensemble.member_stream(7, 256, 32, 5, order_seed=stream_seed(7, "order")))["idx"], first)
