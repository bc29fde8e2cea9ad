"""One CAP (the WSN paper's definition) reaches Avalanche's metrics for every mask method."""

import torch
from avalanche.training.plugins import EvaluationPlugin
from torch import nn

from clearn.hat_masks import hat_capacity
from strategies import EfficientPackNet, TaskNetwork, capacity_metrics
from strategies.hat import HAT
from strategies.hat_model import HatNetwork


def backbone() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU())


def test_epn_cap_is_its_used_share_plus_one_byte_of_owner_code_per_weight(stock_benchmark):
    torch.manual_seed(0)
    model = TaskNetwork(backbone=backbone())
    strategy = EfficientPackNet(
        model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.3), train_epochs=2,
        evaluator=EvaluationPlugin(*capacity_metrics(), loggers=[]),
    )  # fmt: skip
    for experience in stock_benchmark.train_stream[:2]:
        metrics = strategy.train(experience, eval_streams=[])
    assert metrics["Capacity/CAP"] == metrics["Capacity/used"] + 8 / 32


def test_hat_reports_its_cap_though_it_owns_no_weights(stock_benchmark):
    torch.manual_seed(0)
    model = HatNetwork(backbone=backbone())
    strategy = HAT(
        model=model, train_epochs=2, evaluator=EvaluationPlugin(*capacity_metrics(), loggers=[])
    )
    metrics = strategy.train(stock_benchmark.train_stream[0], eval_streams=[])
    assert metrics["Capacity/CAP"] == hat_capacity(model) > 0
    assert "Capacity/used" not in metrics
