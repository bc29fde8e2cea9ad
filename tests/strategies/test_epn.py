import math
import time

import pytest
import torch
from avalanche.core import SupervisedPlugin
from avalanche.evaluation.metrics import accuracy_metrics, forgetting_metrics
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin
from torch import nn

import strategies.epn as epn_module
from clearn.defaults import KEPT_CANDIDATES, MIN_PATIENCE_STEPS
from clearn.evaluation import task_accuracy
from clearn.packing import Phase
from clearn.task_inference import infer_task
from scenarios.streams import build_stream
from scenarios.tasks import TensorBatchLoader
from strategies.epn import PackingPlugin
from strategies.heads import MultiHeadNet
from strategies.plateau_stop import PlateauBudgetPlugin
from strategies.task_model import TaskNetwork
from strategies.tensor_loader import TensorLoaderPlugin
from strategies.validation_split import ValidationSplitPlugin

OPTIMIZERS = {
    "sgd": lambda p: torch.optim.SGD(p, lr=0.05),  # frozen gradients zeroed, not restored
    "sgd-momentum-decay": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-3),
    "adam": lambda p: torch.optim.Adam(p, lr=1e-3),
    "adamw": lambda p: torch.optim.AdamW(p, lr=1e-3, weight_decay=0.05),
}


@pytest.fixture(scope="module")
def stream():
    return build_stream("permuted-digits", n_tasks=3, seed=1)


def packing_run(
    stream,
    *,
    alpha=2.0,
    optimizer="sgd-momentum-decay",
    mode="epn",
    epochs=3,
    evaluator=None,
    eval_every=-1,
):
    torch.manual_seed(0)
    backbone = nn.Sequential(
        nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU()
    )
    network = TaskNetwork(backbone=backbone, alpha=alpha)  # heads grow per task label
    plugin = PackingPlugin(
        valid_stream=stream.benchmark.valid_stream,
        mode=mode,
        gamma=0.95,
        prune_fraction=0.6,
        retrain_epochs=1,
    )
    strategy = Naive(
        model=network,
        optimizer=OPTIMIZERS[optimizer](network.parameters()),
        train_mb_size=32,
        train_epochs=epochs,
        eval_mb_size=256,
        plugins=[TensorLoaderPlugin(), plugin],
        evaluator=evaluator or EvaluationPlugin(loggers=[]),
        eval_every=eval_every,
    )
    plugin.attach(strategy.model)
    return network, plugin, strategy


def test_logits_of_earlier_tasks_never_change(stream):
    test_inputs = [split.inputs(torch.arange(len(split))) for split in stream.test]
    for optimizer in OPTIMIZERS:
        network, _, strategy = packing_run(stream, optimizer=optimizer)
        seen = []
        for task, experience in enumerate(stream.benchmark.train_stream):
            strategy.train(experience, eval_streams=[])
            network.eval()
            with torch.no_grad():
                seen.append(network(test_inputs[task], task))
                for earlier in range(task):
                    assert torch.equal(network(test_inputs[earlier], earlier), seen[earlier]), (
                        f"{optimizer}: task {earlier} changed after task {task}"
                    )


def test_epn_keeps_gamma_of_validation_accuracy_and_no_smaller_candidate_would(stream):
    _, plugin, strategy = packing_run(stream)
    searches = []
    original_search = plugin.packer.search

    def recording_search(evaluate, *, gamma, **options):
        result = original_search(evaluate, gamma=gamma, **options)
        searches.append(result)
        return result

    plugin.packer.search = recording_search
    for experience in stream.benchmark.train_stream:
        strategy.train(experience, eval_streams=[])
    assert len(searches) == 3
    for search, report in zip(searches, plugin.reports, strict=True):
        assert search.threshold == pytest.approx(0.95 * search.reference)
        assert search.score >= search.threshold
        index = KEPT_CANDIDATES.index(search.kept)
        assert index == 0 or search.evaluations[KEPT_CANDIDATES[index - 1]] < search.threshold
        assert report.kept_of_trained == search.kept
        assert report.pruned_val_acc == search.score
    free = [r.free_fraction for r in plugin.reports]
    assert free == sorted(free, reverse=True) and free[-1] > 0


def test_the_search_guard_scores_a_fixed_sample_of_the_training_data(stream, monkeypatch):
    monkeypatch.setattr(epn_module, "DEFAULT_GUARD_EXAMPLES", 100)
    seen: list[torch.Tensor] = []

    def recording_accuracy(network, batches, task, device):
        batches = list(batches)
        seen.append(torch.cat([b[0] for b in batches]))
        return task_accuracy(network, batches, task, device)

    monkeypatch.setattr(epn_module, "task_accuracy", recording_accuracy)
    _, _, strategy = packing_run(stream, epochs=2)
    strategy.train(stream.benchmark.train_stream[0], eval_streams=[])
    assert len(stream.train[0]) > 100 and len(seen) >= 2
    for examples in seen:  # the unpruned network and every candidate: the same 100 examples
        assert torch.equal(examples, seen[0])
    assert len(seen[0]) == 100


def test_classic_packnet_mode_keeps_its_fixed_share(stream):
    network, plugin, strategy = packing_run(stream, mode="packnet", alpha=1.0)
    for experience in stream.benchmark.train_stream[:2]:
        strategy.train(experience, eval_streams=[])
    assert [r.kept_of_trained for r in plugin.reports] == pytest.approx([0.4, 0.4])
    one_weight = 1 / sum(m.owner.numel() for m in network.masks.values())
    assert plugin.reports[1].owned_fraction == pytest.approx(0.4 * 0.6, abs=2 * one_weight)


def test_full_avalanche_pipeline_with_accuracy_and_forgetting_metrics(stream):
    evaluator = EvaluationPlugin(
        accuracy_metrics(experience=True, stream=True),
        forgetting_metrics(experience=True, stream=True),
        loggers=[],
    )
    # eval_every=1 evaluates inside training: the plugin must survive being re-entered.
    # Six epochs: the default budget retrains one epoch after pruning, within the epochs.
    _, _, strategy = packing_run(stream, evaluator=evaluator, epochs=6, eval_every=1)
    for task, experience in enumerate(stream.benchmark.train_stream):
        strategy.train(experience, eval_streams=[stream.benchmark.test_stream[: task + 1]])
        metrics = strategy.eval(stream.benchmark.test_stream[: task + 1])
    assert metrics["StreamForgetting/eval_phase/test_stream"] == 0.0
    for task in range(3):
        assert metrics[f"Top1_Acc_Exp/eval_phase/test_stream/Task00{task}/Exp00{task}"] > 0.3


def test_each_task_trains_until_its_validation_loss_stops_improving(stream):
    cap = 30
    _, plugin, strategy = packing_run(stream, epochs=cap)
    epochs_run = []
    strategy.plugins.append(EpochCounter(epochs_run))
    for experience in stream.benchmark.train_stream:
        strategy.train(experience, eval_streams=[])
    for report, ran in zip(plugin.reports, epochs_run, strict=True):
        # Trained, pruned, then retrained one epoch: the stop never leaks into the next task.
        assert 1 <= report.epochs_trained == len(report.val_acc_per_epoch)
        assert ran == report.epochs_trained + 1
    assert min(epochs_run) < cap  # stopped on a plateau, not by the cap
    assert not any(r.under_trained for r in plugin.reports if r.epochs_trained < cap - 1)


def test_a_task_still_improving_at_the_cap_is_reported_under_trained(stream):
    _, plugin, strategy = packing_run(stream, epochs=3)
    for experience in stream.benchmark.train_stream:
        strategy.train(experience, eval_streams=[])
    assert all(r.epochs_trained == 2 for r in plugin.reports)
    assert any(r.under_trained for r in plugin.reports)


def test_baselines_stop_once_their_validation_loss_stops_improving(stream):
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU())
    model = MultiHeadNet(backbone=backbone, feature_size=64, classes_per_task=[10] * 3)
    split = ValidationSplitPlugin(stream.benchmark.valid_stream)
    stop = PlateauBudgetPlugin(split.data, patience=2)
    strategy = Naive(
        model=model,
        # lr 0: the validation loss never improves after the first epoch.
        optimizer=torch.optim.SGD(model.parameters(), lr=0.0),
        train_mb_size=32,
        train_epochs=40,
        eval_mb_size=256,
        plugins=[TensorLoaderPlugin(), split, stop],
        evaluator=EvaluationPlugin(loggers=[]),
    )
    for experience in stream.benchmark.train_stream:
        strategy.train(experience, eval_streams=[])
    steps = math.ceil(len(stream.train[0]) / 32)
    stale = max(2, math.ceil(MIN_PATIENCE_STEPS / steps))
    assert stop.epochs_trained == {task: 1 + stale for task in range(3)}
    assert stop.under_trained == []


class EpochCounter(SupervisedPlugin):
    """Counts the epochs each experience really ran."""

    def __init__(self, counts: list[int]) -> None:
        super().__init__()
        self.counts = counts

    def before_training_exp(self, strategy, **kwargs) -> None:
        self.counts.append(0)

    def after_training_epoch(self, strategy, **kwargs) -> None:
        self.counts[-1] += 1


class SabotagedRetraining(SupervisedPlugin):
    """Raises the learning rate a thousandfold once the task is pruned."""

    def __init__(self, packing: PackingPlugin) -> None:
        super().__init__()
        self.packing = packing

    def before_training_exp(self, strategy, **kwargs) -> None:
        for group in strategy.optimizer.param_groups:
            group["lr"] = 0.05

    def after_training_epoch(self, strategy, **kwargs) -> None:
        if self.packing.packer.phase is Phase.PRUNED:
            for group in strategy.optimizer.param_groups:
                group["lr"] = 50.0


def test_retraining_that_lowers_validation_accuracy_is_undone(stream):
    network, plugin, strategy = packing_run(stream, epochs=4)
    strategy.plugins.append(SabotagedRetraining(plugin))
    for experience in stream.benchmark.train_stream[:2]:
        strategy.train(experience, eval_streams=[])
    for task, report in enumerate(plugin.reports):
        assert not report.retraining_kept
        assert validation_accuracy(stream, network, task) == report.pruned_val_acc


@pytest.mark.parametrize("mode", ["epn", "packnet"])
def test_retraining_never_lowers_validation_accuracy(stream, mode):
    network, plugin, strategy = packing_run(stream, epochs=4, mode=mode, alpha=1.5)
    for experience in stream.benchmark.train_stream[:2]:
        strategy.train(experience, eval_streams=[])
    for task, report in enumerate(plugin.reports):
        assert validation_accuracy(stream, network, task) >= report.pruned_val_acc


def validation_accuracy(stream, network, task: int) -> float:
    batches = TensorBatchLoader(stream.valid[task], batch_size=256, shuffle=False)
    return task_accuracy(network, batches, task, "cpu")


def test_reports_time_the_validation_the_search_and_the_input_model_apart(stream):
    network, plugin, strategy = packing_run(stream)
    original_search, original_record = plugin.packer.search, network.record_inputs

    def slow_search(evaluate, *, gamma, **options):
        time.sleep(0.2)
        return original_search(evaluate, gamma=gamma, **options)

    def slow_record(task, batches):
        time.sleep(0.4)
        original_record(task, batches)

    plugin.packer.search, network.record_inputs = slow_search, slow_record
    for experience in stream.benchmark.train_stream:
        began = time.perf_counter()
        strategy.train(experience, eval_streams=[])
        seconds = time.perf_counter() - began
        report = plugin.reports[-1]
        assert report.search_seconds >= 0.2
        assert report.input_model_seconds >= 0.4
        assert report.validation_seconds > 0
        parts = report.search_seconds + report.validation_seconds + report.input_model_seconds
        assert parts < seconds


def test_each_task_records_its_training_inputs_and_unlabelled_tests_find_their_task(stream):
    network, _, strategy = packing_run(stream, epochs=1)
    for task, experience in enumerate(stream.benchmark.train_stream):
        strategy.train(experience, eval_streams=[])
        assert network.input_density.tasks == task + 1
        mean = network.input_density.means[task, 0]
        train = stream.train[task]
        inputs = train.inputs(torch.arange(len(train))).flatten(1)
        # The training part only (the validation share is held out): close to all of it.
        assert torch.allclose(mean, inputs.mean(0), atol=0.05 * float(inputs.abs().max()))
        assert network.input_density.bases.shape[2:] == (64, 8)
    network.eval()
    for task, split in enumerate(stream.test):
        guess = infer_task(network, split.inputs(torch.arange(len(split))))  # by inputs
        assert float((guess.tasks == task).float().mean()) > 0.9  # permutations: distinct
