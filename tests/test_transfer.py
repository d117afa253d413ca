import pytest
import torch

from initstudy import data, transfer
from initstudy.train import TrainConfig


@pytest.fixture(scope="module")
def digits28():
    return data.load("digits", resize=28)


def test_few_labels_is_class_balanced_and_seeded(digits28):
    few = transfer.few_labels(digits28, 5, seed=0)
    assert len(few.y_train) == 50 and torch.bincount(few.y_train).tolist() == [5] * 10
    assert torch.equal(few.y_train, transfer.few_labels(digits28, 5, seed=0).y_train)
    assert not torch.equal(few.x_train, transfer.few_labels(digits28, 5, seed=1).x_train)
    assert len(few.y_test) == len(digits28.y_test)
    with pytest.raises(ValueError, match="fewer than 1000"):
        transfer.few_labels(digits28, 1000, 0)


def test_checkpoints_are_cached_and_loaded_safely(digits28, tmp_path):
    spec = transfer.PretrainSpec("digits", steps=5, lr=0.05, batch_size=32, seed=0)
    state, info = transfer.pretrain(spec, digits28, tmp_path)
    assert not info["cached"] and transfer.checkpoint_path(spec, tmp_path).is_file()
    again, info2 = transfer.pretrain(spec, digits28, tmp_path)
    assert info2["cached"] and info2["sha256"] == info["sha256"]
    assert all(torch.equal(state[k], again[k]) for k in state)
    # weights_only refuses a checkpoint that would run code when unpickled
    evil = tmp_path / "evil.pt"

    class Boom:
        def __reduce__(self):
            return (print, ("this ran",))

    torch.save({"x": Boom()}, evil)
    with pytest.raises(Exception):
        transfer.load_checkpoint(evil)
    other = transfer.PretrainSpec("digits", steps=6, lr=0.05, batch_size=32, seed=0)
    assert transfer.checkpoint_path(other, tmp_path) != transfer.checkpoint_path(spec, tmp_path)


def test_finetune_keeps_the_body_and_replaces_the_head(digits28, tmp_path):
    spec = transfer.PretrainSpec("digits", steps=5, lr=0.05, batch_size=32, seed=0)
    state, _ = transfer.pretrain(spec, digits28, tmp_path)
    net = transfer.build_finetune(spec, state, digits28, seed=1)
    assert torch.equal(net.conv1.weight, state["conv1.weight"]) and torch.equal(net.fc.weight, state["fc.weight"])
    assert not torch.equal(net.head.weight, state["head.weight"])
    for init in transfer.SCRATCH_INITS:
        scratch = transfer.build_scratch(spec, init, transfer.few_labels(digits28, 5, 0), seed=0)
        assert not torch.equal(scratch.conv1.weight, state["conv1.weight"])
    with pytest.raises(ValueError, match="unknown init"):
        transfer.build_scratch(spec, "zero", digits28, 0)


def test_sweep_measurements_and_pair_verdicts(digits28, tmp_path):
    spec = transfer.PretrainSpec("digits", steps=5, lr=0.05, batch_size=32, seed=0)
    state, _ = transfer.pretrain(spec, digits28, tmp_path)
    cfg = TrainConfig(steps=3, batch_size=16, lr=0.05, eval_every=3)
    finals = transfer.transfer_sweep(spec, state, digits28, pair="similar", label_counts=[5], seeds=[0, 1],
                                     inits=("xavier-uniform", "lsuv"), config=cfg, progress=False)
    assert len(finals) == 6 and set(finals["method"]) == {"transfer", "xavier-uniform", "lsuv"}
    both = __import__("pandas").concat([finals, finals.assign(pair="control")])
    m = transfer.transfer_measurements(both, [0, 1])
    assert len(m["transfer_gain_similar"]) == 2
    table = transfer.pair_verdicts({"transfer_gain_similar": [5.0, 6.0, 5.5], "transfer_gain_control": [-9, -8, -10]})
    assert table.set_index("pair")["verdict"].to_dict() == {"similar": "reproduced", "control": "not reproduced"}


def test_imagenet_weights_need_a_network():
    from pathlib import Path

    if any(Path(torch.hub.get_dir(), "checkpoints").glob("resnet18-*.pth")):
        pytest.skip("the ImageNet weights are cached on this machine")
    with pytest.raises(RuntimeError, match="need a network once"):
        transfer.imagenet_resnet18(10)
