import math

import pytest
import torch
from torch import nn

from initstudy.core import data, inits
from initstudy.core.models import hidden_activations, hidden_linears, mlp
from initstudy.core.train import TrainConfig, evaluate, train


def test_mlp_structure():
    net = mlp(64, [32, 16], 10, act="tanh")
    assert [n for n, _ in net.named_children()] == ["flatten", "fc1", "act1", "fc2", "act2", "out"]
    assert [m.out_features for _, m in hidden_linears(net)] == [32, 16]
    assert isinstance(net.act1, nn.Tanh)
    x = torch.randn(5, 1, 8, 8)
    assert net(x).shape == (5, 10)
    acts = hidden_activations(net, x)
    assert set(acts) == {"act1", "act2"} and acts["act2"].shape == (5, 16)
    with pytest.raises(ValueError, match="allowed"):
        mlp(4, [2], 2, act="gelu")
    with pytest.raises(ValueError):
        mlp(4, [], 2)


def test_evaluate_literal():
    net = nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]]))
    x = torch.tensor([[1.0, 0.0]] * 4)
    y = torch.tensor([0, 0, 0, 1])
    scores = evaluate(net, x, y)
    assert scores["accuracy"] == 0.75
    # logits (1, 0, 0): loss for class 0 is log(e + 2) - 1, for class 1 log(e + 2)
    expected = (3 * (math.log(math.e + 2) - 1) + math.log(math.e + 2)) / 4
    assert scores["loss"] == pytest.approx(expected, rel=1e-6)


@pytest.fixture(scope="module")
def digits():
    return data.load("digits")


def test_training_is_deterministic_and_learns(digits):
    def one():
        net = mlp(digits.in_features, [32], 10, act="relu")
        inits.apply_init(net, "kaiming-normal", seed=0)
        return train(net, digits, TrainConfig(steps=300, lr=0.1, eval_every=100, seed=5))

    a, b = one(), one()
    assert a.history.equals(b.history)
    assert a.diverged_at is None and a.steps_done == 300
    assert a.final["test_accuracy"] > 0.85
    cols = {"step", "split", "metric", "value"}
    assert cols <= set(a.history.columns)


def test_divergence_is_recorded_not_raised(digits):
    net = mlp(digits.in_features, [16], 10, act="relu")
    with torch.no_grad():
        net.fc1.weight[0, 0] = float("nan")
    result = train(net, digits, TrainConfig(steps=50, lr=0.1, eval_every=10))
    assert result.diverged_at == 1 and result.steps_done == 0 and result.diverged
    row = result.history[(result.history["split"] == "train")].iloc[-1]
    assert row["step"] == 1 and math.isnan(row["value"])


def test_divergence_at_a_huge_learning_rate(digits):
    net = mlp(digits.in_features, [64, 64], 10, act="relu")
    inits.apply_init(net, "kaiming-normal", seed=0)
    result = train(net, digits, TrainConfig(steps=200, lr=1e6, momentum=0.9, eval_every=50))
    assert result.diverged_at is not None and 1 <= result.diverged_at <= 200
    assert result.steps_done == result.diverged_at - 1


def test_recorder_is_called_at_requested_steps(digits):
    seen = []

    def record(model, step):
        seen.append(step)
        return [{"metric": "x", "value": float(step)}]

    net = mlp(digits.in_features, [8], 10)
    train(net, digits, TrainConfig(steps=20, eval_every=10), record=record, record_every=10, record_at=[1, 3])
    assert seen == [0, 1, 3, 10, 20]


def test_bad_config():
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(steps=1, optimizer="rmsprop")
    with pytest.raises(ValueError):
        TrainConfig(steps=-1)
