"""What an Avalanche user writes around EfficientPackNet, in the shape of a user's script:
validation streams built by Avalanche, early stopping on them, Avalanche's own plugins,
its templates' keyword arguments, and streams without task labels."""

import pytest
import torch
from avalanche.benchmarks import nc_benchmark
from avalanche.benchmarks.scenarios.validation_scenario import benchmark_with_validation_stream
from avalanche.evaluation.metrics import loss_metrics
from avalanche.training.plugins import (
    EarlyStoppingPlugin,
    EvaluationPlugin,
    LwFPlugin,
    ReplayPlugin,
)
from torch import nn
from torch.utils.data import TensorDataset

from scenarios.datasets import load_dataset
from strategies import EfficientPackNet, TaskNetwork
from strategies.avalanche_compat import minibatch_task_labels


class LabelledTensors(TensorDataset):
    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        super().__init__(images, labels)
        self.targets = labels


@pytest.fixture(scope="module")
def digits():
    data = load_dataset("digits")
    train = LabelledTensors(data.train_images.float() / 16, data.train_labels)
    test = LabelledTensors(data.test_images.float() / 16, data.test_labels)
    return train, test


def user_strategy(**options) -> EfficientPackNet:
    torch.manual_seed(0)
    model = TaskNetwork(backbone=nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU()))
    return EfficientPackNet(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.3),
        train_epochs=options.pop("train_epochs", 3),
        evaluator=options.pop("evaluator", EvaluationPlugin(loggers=[])),
        **options,
    )


def test_a_validation_stream_built_by_avalanche_validates_each_task(digits):
    # benchmark_with_validation_stream's experiences lack `task_labels`, so Avalanche calls
    # the model without them: the task was inferred before any was trained (UnknownTaskError).
    benchmark = benchmark_with_validation_stream(
        nc_benchmark(*digits, n_experiences=5, task_labels=True, seed=0,
                     class_ids_from_zero_in_each_exp=True),
        0.1,
    )  # fmt: skip
    strategy = user_strategy(valid_stream=benchmark.valid_stream)
    for experience in benchmark.train_stream[:2]:
        strategy.train(experience, eval_streams=[])
    sizes = [len(e.dataset) for e in benchmark.valid_stream[:2]]
    assert [r.validation_examples for r in strategy.packing.reports] == sizes
    assert all(r.unpruned_val_acc > 0.8 for r in strategy.packing.reports)


def test_early_stopping_on_the_validation_stream_stops_a_task(digits):
    benchmark = benchmark_with_validation_stream(
        nc_benchmark(*digits, n_experiences=5, task_labels=True, seed=0,
                     class_ids_from_zero_in_each_exp=True),
        0.1,
    )  # fmt: skip
    stopping = EarlyStoppingPlugin(patience=1, val_stream_name="valid_stream", mode="min",
                                   metric_name="Loss_Stream", peval_mode="epoch")
    strategy = user_strategy(
        valid_stream=benchmark.valid_stream, plugins=[stopping], train_epochs=100, eval_every=1,
        evaluator=EvaluationPlugin(loss_metrics(stream=True), loggers=[]),
    )
    with pytest.warns(UserWarning, match="pruned without its 1 retraining epoch"):
        strategy.train(benchmark.train_stream[0], eval_streams=[benchmark.valid_stream[0]])
    epochs = strategy.clock.train_exp_epochs
    assert 1 <= epochs < 100
    # The report says how long the task trained, though clearn's budget did not end it.
    assert strategy.packing.reports[0].epochs_trained == epochs


def test_a_hand_built_validation_stream_validates_each_task_and_stops_early(digits):
    # A user's own split: 10% of the training images, through the same generator and seed
    # (the same classes per task), the generator's test stream used as validation stream.
    train, test = digits
    held = torch.arange(len(train)) % 10 == 0
    kept = LabelledTensors(train.tensors[0][~held], train.tensors[1][~held])
    valid = LabelledTensors(train.tensors[0][held], train.tensors[1][held])
    options = dict(n_experiences=5, task_labels=True, seed=0,
                   class_ids_from_zero_in_each_exp=True)  # fmt: skip
    benchmark = nc_benchmark(kept, test, **options)
    valid_stream = nc_benchmark(kept, valid, **options).test_stream
    stopping = EarlyStoppingPlugin(
        patience=1, val_stream_name="test_stream", metric_name="Loss_Stream", mode="min"
    )
    strategy = user_strategy(
        valid_stream=valid_stream, plugins=[stopping], train_epochs=100, eval_every=1,
        evaluator=EvaluationPlugin(loss_metrics(stream=True), loggers=[]),
    )  # fmt: skip
    with pytest.warns(UserWarning, match="pruned without its 1 retraining epoch"):
        strategy.train(benchmark.train_stream[0], eval_streams=[valid_stream[0]])
    report = strategy.packing.reports[0]
    assert report.validation_examples == len(valid_stream[0].dataset)
    assert 1 <= report.epochs_trained == strategy.clock.train_exp_epochs < 100
    assert report.unpruned_val_acc > 0.8


def test_a_stream_without_task_labels_is_refused_naming_the_fix(digits):
    benchmark = nc_benchmark(*digits, n_experiences=5, task_labels=False, seed=0)
    strategy = user_strategy()
    strategy.train(benchmark.train_stream[0], eval_streams=[])
    with pytest.raises(ValueError, match="task-incremental.*return_task_id=True"):
        strategy.train(benchmark.train_stream[1], eval_streams=[])


def test_keyword_arguments_of_avalanches_templates_pass_through():
    strategy = user_strategy(peval_mode="iteration")
    assert any(p is strategy.packing for p in strategy.plugins)


def test_avalanches_lwf_plugin_distils_every_heads_output(digits):
    benchmark = nc_benchmark(*digits, n_experiences=5, task_labels=True, seed=0,
                             class_ids_from_zero_in_each_exp=True)  # fmt: skip
    strategy = user_strategy(plugins=[LwFPlugin(alpha=1.0, temperature=2.0)])
    for experience in benchmark.train_stream[:2]:
        strategy.train(experience, eval_streams=[])
    model = strategy.model
    outputs = model(torch.zeros(4, 64), None)
    assert sorted(outputs) == [0, 1] and all(o.shape == (4, 2) for o in outputs.values())
    assert model.predict_task_agnostic(torch.zeros(4, 64)).shape == (4, 2)


def test_the_minibatch_task_labels_are_its_last_entry():
    class Strategy:
        mbatch = (torch.zeros(2, 3), torch.tensor([0, 1]), torch.tensor([4, 4]))

    assert minibatch_task_labels(Strategy()).tolist() == [4, 4]
    Strategy.mbatch = Strategy.mbatch[:2]
    assert minibatch_task_labels(Strategy()) is None


@pytest.fixture(scope="module")
def trained_network(digits) -> TaskNetwork:
    """A user's network after two tasks of a stream built by Avalanche, in eval mode."""
    benchmark = nc_benchmark(*digits, n_experiences=5, task_labels=True, seed=0,
                             class_ids_from_zero_in_each_exp=True)  # fmt: skip
    strategy = user_strategy()
    for experience in benchmark.train_stream[:2]:
        strategy.train(experience, eval_streams=[])
    return strategy.model.eval()


def assert_same_answers(network: TaskNetwork, other: TaskNetwork) -> None:
    inputs = torch.rand(16, 64)
    for task in (0, 1):
        assert torch.equal(other(inputs, task), network(inputs, task))


def test_a_trained_network_loads_into_a_freshly_built_one(trained_network, tmp_path):
    torch.save(trained_network.state_dict(), tmp_path / "model.pt")
    fresh = TaskNetwork(backbone=nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU()))
    fresh.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True))
    assert [h.out_features for h in fresh.heads] == [2, 2] and fresh.trained_tasks == 2
    assert_same_answers(trained_network, fresh.eval())


def test_a_trained_network_round_trips_through_torch_save(trained_network, tmp_path):
    # The user's choice of a whole-object pickle (weights_only=False); clearn itself only
    # loads state dicts with weights_only=True.
    torch.save(trained_network, tmp_path / "model.pt")
    generator = torch.get_rng_state()
    loaded = torch.load(tmp_path / "model.pt", weights_only=False)
    assert torch.equal(torch.get_rng_state(), generator)  # unpickling draws nothing
    assert type(loaded) is TaskNetwork and not loaded.training
    assert loaded.trained_tasks == 2 and loaded.capacity() == trained_network.capacity()
    assert loaded.trained_classes == trained_network.trained_classes == {0: {0, 1}, 1: {0, 1}}
    assert_same_answers(trained_network, loaded)


def test_a_head_answers_only_with_classes_its_task_trained_on(digits):
    # Classes not renumbered per task: task 0's head is as wide as its largest label, and
    # an under-trained head must not answer with a class the task never had (Avalanche's
    # MultiHeadClassifier masks those; accuracy 0.0 otherwise).
    benchmark = nc_benchmark(*digits, n_experiences=5, task_labels=True, seed=0)
    strategy = user_strategy(train_epochs=1)
    strategy.optimizer.param_groups[0]["lr"] = 1e-4
    experience = benchmark.train_stream[0]
    strategy.train(experience, eval_streams=[])
    task_classes = set(experience.classes_in_this_experience)
    model = strategy.model.eval()
    assert model.heads[0].out_features == max(task_classes) + 1 > len(task_classes)
    predicted = model(torch.rand(256, 64) * 3, 0).argmax(1)
    assert set(predicted.tolist()) <= task_classes
    assert model.trained_classes == {0: task_classes}


def test_a_replay_plugin_is_refused_in_one_sentence(digits):
    benchmark = nc_benchmark(*digits, n_experiences=5, task_labels=True, seed=0,
                             class_ids_from_zero_in_each_exp=True)  # fmt: skip
    strategy = user_strategy(plugins=[ReplayPlugin(mem_size=20)])
    with pytest.raises(ValueError, match="ReplayPlugin changes what a task trains on"):
        strategy.train(benchmark.train_stream[0], eval_streams=[])


def test_a_budget_too_small_to_train_is_warned_about(digits, caplog):
    benchmark = nc_benchmark(*digits, n_experiences=5, task_labels=True, seed=0,
                             class_ids_from_zero_in_each_exp=True)  # fmt: skip
    strategy = user_strategy(train_epochs=2)  # Avalanche's usual test budget
    strategy.train(benchmark.train_stream[0], eval_streams=[])
    assert strategy.packing.reports[0].under_trained
    assert "task 0 was still improving" in caplog.text and "raise train_epochs" in caplog.text
