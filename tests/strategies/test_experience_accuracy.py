import torch
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin
from torch import nn

from clearn.evaluation import task_accuracy
from strategies.experience_accuracy import ExperienceAccuracyPlugin
from strategies.task_model import TaskNetwork


def test_each_evaluated_experience_gets_its_accuracy_in_the_order_evaluated(stock_benchmark):
    torch.manual_seed(0)
    model = TaskNetwork(backbone=nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU()))
    accuracy = ExperienceAccuracyPlugin()
    evaluator = EvaluationPlugin(accuracy_metrics(experience=True), loggers=[])
    strategy = Naive(
        model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.3),
        train_mb_size=32, train_epochs=1, eval_mb_size=17, plugins=[accuracy],
        evaluator=evaluator,
    )  # fmt: skip
    train, test = stock_benchmark.train_stream, stock_benchmark.test_stream
    strategy.train(train[0], eval_streams=[])
    strategy.train(train[1], eval_streams=[])
    metrics = strategy.eval([test[1], test[0]])  # not in the order of their ids
    key = "Top1_Acc_Exp/eval_phase/test_stream/Task{0:03d}/Exp{0:03d}"
    logged = [metrics[key.format(t)] for t in (1, 0)]
    assert accuracy.accuracies == logged  # the number Avalanche logs, bit for bit
    for measured, experience in zip(accuracy.accuracies, (test[1], test[0]), strict=True):
        batches = torch.utils.data.DataLoader(experience.dataset.eval(), batch_size=64)
        label = experience.task_label
        assert abs(measured - task_accuracy(model, batches, label, "cpu")) < 1e-12
    assert logged[0] != logged[1]  # two tasks told apart, not one number twice
