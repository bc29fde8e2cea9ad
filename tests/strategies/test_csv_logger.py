import csv

import torch
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.training.plugins import EvaluationPlugin
from torch import nn

from strategies import EfficientPackNet, TaskNetwork, capacity_metrics
from strategies.csv_logger import CAPACITY_FILE, AppendingCSVLogger


def train_logging(stock_benchmark, folder, experiences) -> TaskNetwork:
    torch.manual_seed(0)
    model = TaskNetwork(backbone=nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU()))
    logger = AppendingCSVLogger(str(folder))
    strategy = EfficientPackNet(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.3),
        train_epochs=2,
        evaluator=EvaluationPlugin(
            accuracy_metrics(experience=True), *capacity_metrics(), loggers=[logger]
        ),
    )
    for experience in experiences(stock_benchmark):
        strategy.train(experience, eval_streams=[])
    logger.close()
    return model


def test_capacity_reaches_the_csv_files_and_a_resumed_logger_appends(stock_benchmark, tmp_path):
    model = train_logging(stock_benchmark, tmp_path, lambda b: b.train_stream[:2])
    with open(tmp_path / CAPACITY_FILE) as handle:
        rows = list(csv.DictReader(handle))
    used = [float(r["value"]) for r in rows if r["metric"] == "Capacity/used"]
    assert len(used) == 2 and used[-1] == model.capacity().used
    assert {r["metric"] for r in rows} >= {"Capacity/free", "Capacity/owned/Task001"}
    train_logging(stock_benchmark, tmp_path, lambda b: b.train_stream[:1])
    lines = (tmp_path / CAPACITY_FILE).read_text().splitlines()
    assert lines.count(lines[0]) == 1 and len(lines) > len(rows) + 1
