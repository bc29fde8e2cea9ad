import time

import pytest
import torch
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.logging import TextLogger
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin
from torch import nn

from clearn.defaults import DEFAULT_VALIDATION_SHARE
from clearn.evaluation import task_accuracy
from strategies.capacity_metrics import capacity_metrics
from strategies.efficient_packnet import EfficientPackNet
from strategies.epn import PackingPlugin
from strategies.plateau_stop import PlateauBudgetPlugin
from strategies.task_model import TaskNetwork
from strategies.validation_split import ValidationSplitPlugin


def backbone() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 48), nn.ReLU())


def efficient_packnet(**options) -> EfficientPackNet:
    torch.manual_seed(0)
    model = TaskNetwork(backbone=backbone())
    options.setdefault("evaluator", EvaluationPlugin(loggers=[]))
    return EfficientPackNet(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.3),
        train_epochs=4,
        **options,
    )


def test_a_stock_benchmark_needs_one_model_and_one_strategy(stock_benchmark, caplog):
    strategy = efficient_packnet()
    model = strategy.model
    test_stream = stock_benchmark.test_stream
    seen = []
    for task, experience in enumerate(stock_benchmark.train_stream):
        strategy.train(experience, eval_streams=[])
        model.eval()
        with torch.no_grad():
            seen.append([model(first_inputs(test_stream[j]), j) for j in range(task + 1)])
        for earlier in range(task):
            assert torch.equal(seen[-1][earlier], seen[earlier][earlier])
    # One head per task label, as wide as the task's classes, grown by Avalanche's adaptation.
    assert [head.out_features for head in model.heads] == [2] * 5
    assert model.trained_tasks == 5
    reports = strategy.packing.reports
    for experience, report in zip(stock_benchmark.train_stream, reports, strict=True):
        share = DEFAULT_VALIDATION_SHARE
        assert report.validation_examples == round(share * len(experience.dataset))
        assert report.pruned_val_acc >= 0.99 * report.unpruned_val_acc
    assert "no valid_stream given" in caplog.text
    for task, experience in enumerate(test_stream):
        batches = torch.utils.data.DataLoader(experience.dataset.eval(), batch_size=64)
        assert task_accuracy(model, batches, task, "cpu") > 0.9


def first_inputs(experience, count: int = 8) -> torch.Tensor:
    return torch.stack([experience.dataset[i][0] for i in range(count)])


def test_the_held_out_share_is_seeded_disjoint_and_not_trained_on(stock_benchmark):
    experience = stock_benchmark.train_stream[0]
    trained = []

    class CountTrained(PackingPlugin.__mro__[1]):  # a plain SupervisedPlugin
        def before_training_epoch(self, strategy, **kwargs):
            trained.append(len(strategy.adapted_dataset))

    held_out = []
    for seed in (0, 0, 1):
        strategy = efficient_packnet(seed=seed, plugins=[CountTrained()])
        strategy.train(experience, eval_streams=[])
        held_out.append(strategy.packing.validation._held_out[0].eval())
    size = round(DEFAULT_VALIDATION_SHARE * len(experience.dataset))
    assert trained[0] == len(experience.dataset) - size

    def rows(dataset):
        return {tuple(dataset[i][0].flatten().tolist()) for i in range(len(dataset))}

    assert rows(held_out[0]) == rows(held_out[1]) != rows(held_out[2])
    assert len(rows(held_out[0])) == size


def test_capacity_reaches_every_avalanche_logger(stock_benchmark, tmp_path):
    log = open(tmp_path / "log.txt", "w")  # noqa: SIM115 - closed below
    logger = TextLogger(log)
    strategy = efficient_packnet(
        evaluator=EvaluationPlugin(
            accuracy_metrics(experience=True), *capacity_metrics(), loggers=[logger]
        )
    )
    for experience in stock_benchmark.train_stream[:2]:
        strategy.train(experience, eval_streams=[])
    metrics = strategy.evaluator.get_last_metrics()
    strategy.eval(stock_benchmark.test_stream[:2])  # the text logger prints at evaluation's end
    log.close()
    capacity = strategy.model.capacity()
    assert metrics["Capacity/free"] == capacity.free
    assert metrics["Capacity/used"] == pytest.approx(sum(capacity.owned))
    assert metrics["Capacity/owned/Task001"] == capacity.owned[1]
    assert metrics["Capacity/kept/Task001"] == strategy.packing.reports[1].kept_of_trained
    assert f"Capacity/free = {capacity.free:.4f}" in (tmp_path / "log.txt").read_text()


def test_the_plugin_packs_the_strategys_model_and_says_when_it_cannot(stock_benchmark):
    model = nn.Sequential(backbone(), nn.Linear(48, 10))
    strategy = Naive(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        plugins=[PackingPlugin()],
        evaluator=EvaluationPlugin(loggers=[]),
    )
    with pytest.raises(ValueError, match="must be \\(or hold exactly one\\) PackedNetwork"):
        strategy.train(stock_benchmark.train_stream[0])
    with pytest.raises(ValueError, match="trains a strategies.TaskNetwork"):
        EfficientPackNet(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1))


def test_heads_grow_in_task_order_only(stock_benchmark):
    model = TaskNetwork(backbone=backbone())
    with pytest.raises(ValueError, match="arrive in order"):
        model.adaptation(stock_benchmark.train_stream[1])
    model.adaptation(stock_benchmark.train_stream[0])
    assert model.feature_size == 48 and model.n_tasks == 1


def test_baselines_stop_on_a_held_out_share_too(stock_benchmark):
    torch.manual_seed(0)
    model = TaskNetwork(backbone=backbone(), alpha=1.0)
    split = ValidationSplitPlugin()
    stop = PlateauBudgetPlugin(split.data, patience=1)
    strategy = Naive(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.0),
        train_epochs=200,
        plugins=[split, stop],
        evaluator=EvaluationPlugin(loggers=[]),
    )
    strategy.train(stock_benchmark.train_stream[0])
    assert stop.epochs_trained[0] < 200 and stop.validation.size(0) > 0


def _packed_by(strategy, stock_benchmark):
    for experience in stock_benchmark.train_stream[:2]:
        strategy.train(experience, eval_streams=[])
    reports = [
        {k: v for k, v in vars(r).items() if not k.endswith("_seconds")}
        for r in strategy.packing.reports
    ]
    return reports, strategy.model.state_dict(), strategy.model.input_density


def test_the_template_and_a_plugin_in_naive_pack_alike(stock_benchmark):
    composed = efficient_packnet()
    torch.manual_seed(0)
    model = TaskNetwork(backbone=backbone())
    naive = Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.3),
                  train_mb_size=60, train_epochs=4, eval_mb_size=1000, plugins=[PackingPlugin()],
                  evaluator=EvaluationPlugin(loggers=[]))  # fmt: skip
    naive.packing = naive.plugins[0]
    # EfficientPackNet lists the hold-out, budget and statistics plugins; in Naive the
    # packing plugin calls them itself: the same weights, reports and statistics.
    names = [type(p).__name__ for p in composed.plugins[:4]]
    assert names == [
        "ValidationSplitPlugin", "PlateauBudgetPlugin", "PackingPlugin", "InputStatisticsPlugin"
    ]
    torch.manual_seed(1)
    reports, weights, statistics = _packed_by(composed, stock_benchmark)
    torch.manual_seed(1)
    naive_reports, naive_weights, naive_statistics = _packed_by(naive, stock_benchmark)
    assert reports == naive_reports and len(reports) == 2
    assert weights.keys() == naive_weights.keys()
    tensors = [k for k in weights if isinstance(weights[k], torch.Tensor)]
    assert all(torch.equal(weights[k], naive_weights[k]) for k in tensors)
    assert statistics.tasks == naive_statistics.tasks == 2
    assert all(
        torch.equal(a, b)
        for a, b in zip(statistics.buffers(), naive_statistics.buffers(), strict=True)
    )


def test_the_template_s_input_statistics_time_their_fit_into_the_task_s_report(stock_benchmark):
    # EfficientPackNet lists the input statistics after the packing plugin, so the fit
    # comes after the report is made: it is timed into that report all the same.
    strategy = efficient_packnet()
    record = strategy.model.record_inputs

    def slow_record(task, batches):
        time.sleep(0.2)
        record(task, batches)

    strategy.model.record_inputs = slow_record
    for experience in stock_benchmark.train_stream[:2]:
        began = time.perf_counter()
        strategy.train(experience, eval_streams=[])
        seconds = time.perf_counter() - began
        report = strategy.packing.reports[-1]
        assert report.input_model_seconds >= 0.2
        assert report.search_seconds + report.input_model_seconds < seconds


def test_a_task_s_optimizer_steps_its_own_parameters_only_and_is_given_back_whole(
    stock_benchmark,
):
    strategy_parameters = []

    class CountStepped(PackingPlugin.__mro__[1]):  # a plain SupervisedPlugin
        def before_update(self, strategy, **kwargs):
            groups = strategy.optimizer.param_groups
            strategy_parameters.append({id(p) for g in groups for p in g["params"]})

    strategy = efficient_packnet(plugins=[CountStepped()])
    model = strategy.model
    stepped_per_task, given_back = [], []
    for experience in stock_benchmark.train_stream[:3]:
        strategy_parameters.clear()
        strategy.train(experience, eval_streams=[])
        stepped_per_task.append(strategy_parameters[0])
        groups = strategy.optimizer.param_groups
        given_back.append([id(p) for g in groups for p in g["params"]])
        assert all(p.requires_grad for p in model.parameters())
    heads = [{id(p) for p in head.parameters()} for head in model.heads]
    for task, stepped in enumerate(stepped_per_task):
        assert heads[task] <= stepped
        assert not any(heads[other] & stepped for other in range(3) if other != task)
    # From the second task on the biases are frozen too: what a step visits stays the same
    # however many heads the network has grown.
    assert len(stepped_per_task[1]) == len(stepped_per_task[2])
    assert given_back[-1] == [id(p) for p in model.parameters()]
