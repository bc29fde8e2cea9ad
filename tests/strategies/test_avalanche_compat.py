"""Guards for strategies/avalanche_compat.py: each test checks the Avalanche 0.6 behaviour
one patch or relied-on internal exists for, and fails when an Avalanche upgrade changes it
(then revisit the patch named in the test)."""

import inspect
from types import SimpleNamespace

import pytest
import torch
from avalanche.benchmarks import nc_benchmark
from avalanche.benchmarks.scenarios.validation_scenario import benchmark_with_validation_stream
from avalanche.core import BaseSGDPlugin
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.logging import CSVLogger
from avalanche.logging import WandBLogger as AvalancheWandBLogger
from avalanche.models.packnet import PackNetPlugin as AvalanchePackNetPlugin
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin
from avalanche.training.plugins import SynapticIntelligencePlugin as AvalancheSIPlugin
from avalanche.training.templates import SupervisedTemplate
from torch import nn
from torch.utils.data import TensorDataset

from strategies.avalanche_compat import (
    EVAL_ITERATION_EVENTS,
    TRAINING_ITERATION_EVENTS,
    PackNetPlugin,
    SynapticIntelligencePlugin,
    mark_optimizer_set_up,
    metric_mode,
    stores_plain_examples,
    template_hook,
)

CALLBACKS = [name for name in dir(BaseSGDPlugin) if name.startswith(("before_", "after_"))]


class Recorder(BaseSGDPlugin):
    """Records every callback Avalanche fires, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.fired: list[str] = []


for _name in CALLBACKS:
    setattr(Recorder, _name, lambda self, strategy, _n=_name, **kw: self.fired.append(_n))


class LabelledTensors(TensorDataset):
    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        super().__init__(images, labels)
        self.targets = labels


def naive(plugins: list, *, momentum: float = 0.0) -> Naive:
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    return Naive(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1, momentum=momentum),
        train_mb_size=4,
        eval_mb_size=4,
        train_epochs=1,
        plugins=plugins,
        evaluator=EvaluationPlugin(loggers=[]),
    )


def tiny_benchmark():
    data = LabelledTensors(torch.rand(12, 4), torch.arange(12) % 2)
    return nc_benchmark(data, data, n_experiences=1, task_labels=True, seed=0)


def test_the_per_iteration_callbacks_are_the_ones_the_fast_dispatch_lists():
    # Patch: strategies.callback_dispatch dispatches exactly these events itself.
    recorder = Recorder()
    strategy = naive([recorder])
    benchmark = tiny_benchmark()  # 12 examples, minibatches of 4: 3 iterations
    strategy.train(benchmark.train_stream[0], eval_streams=[])
    training = {e for e in set(recorder.fired) if recorder.fired.count(e) == 3}
    recorder.fired.clear()
    strategy.eval(benchmark.test_stream)
    evaluation = {e for e in set(recorder.fired) if recorder.fired.count(e) == 3}
    assert training == set(TRAINING_ITERATION_EVENTS)
    assert evaluation == set(EVAL_ITERATION_EVENTS)


def test_each_iteration_callback_is_fired_by_its_template_hook():
    # Patch: ListenedCallbacks overrides these protected hooks of the template.
    recorder = Recorder()
    strategy = naive([recorder])
    for event in TRAINING_ITERATION_EVENTS + EVAL_ITERATION_EVENTS:
        recorder.fired.clear()
        assert callable(getattr(SupervisedTemplate, template_hook(event)))
        getattr(strategy, template_hook(event))()
        assert recorder.fired == [event]


def test_a_generic_metric_acts_only_in_its_mode():
    # Relied on: metric_mode reads GenericPluginMetric._mode; in the other phase its
    # iteration callbacks return at once (here without touching the missing strategy).
    per_step = accuracy_metrics(minibatch=True)[0]
    per_experience = accuracy_metrics(experience=True)[0]
    assert (metric_mode(per_step), metric_mode(per_experience)) == ("train", "eval")
    assert per_step.after_eval_iteration(None) is None
    assert per_experience.after_training_iteration(None) is None


def test_the_first_optimizer_set_up_resets_the_state_unless_marked_set_up():
    # Patch: training_state marks a restored optimizer set up, keeping its momentum.
    experience = tiny_benchmark().train_stream[0]
    for marked in (False, True):
        strategy = naive([], momentum=0.9)
        model, optimizer = strategy.model, strategy.optimizer
        model(torch.rand(3, 4)).sum().backward()
        optimizer.step()
        if marked:
            mark_optimizer_set_up(strategy, dict(model.named_parameters()))
        strategy.experience = experience
        strategy.check_model_and_optimizer()  # what train() calls before each experience
        assert bool(strategy.optimizer.state) is marked


def test_avalanches_csv_logger_truncates_its_files(tmp_path):
    # Patch: AppendingCSVLogger keeps a resumed run's earlier rows.
    (tmp_path / "training_results.csv").write_text("header\nearlier row\n")
    logger = CSVLogger(str(tmp_path))
    logger.close()
    assert "earlier row" not in (tmp_path / "training_results.csv").read_text()


def test_avalanches_wandb_logger_calls_what_wandb_no_longer_has():
    # Patch: strategies.avalanche_compat.WandBLogger starts runs and logs numbers itself.
    wandb = pytest.importorskip("wandb")
    util = pytest.importorskip("wandb.util")
    source = inspect.getsource(AvalancheWandBLogger)
    assert "wandb.util.generate_id" in source and "wandb.viz" in source
    assert not hasattr(util, "generate_id") and not hasattr(wandb, "viz")


def test_a_validation_streams_experiences_lack_task_labels():
    # Patch: TaskAwareForward passes the minibatch's task labels (its last entry) itself.
    benchmark = benchmark_with_validation_stream(tiny_benchmark(), 0.5)
    experience = next(iter(benchmark.valid_stream))
    assert not hasattr(experience, "task_labels")
    assert len(experience.dataset[0]) == 3


def test_a_datasets_input_transforms_are_read_from_its_private_tree():
    # Relied on: stores_plain_examples walks _flat_data/_datasets/_transform_groups; an
    # Avalanche that moves them makes every benchmark read as transformed (slow, not wrong),
    # which this test catches.
    data = LabelledTensors(torch.rand(12, 4), torch.arange(12) % 2)
    plain = nc_benchmark(data, data, n_experiences=1, task_labels=True, seed=0)
    transformed = nc_benchmark(
        data, data, n_experiences=1, task_labels=True, seed=0, train_transform=torch.neg
    )
    assert stores_plain_examples(plain.train_stream[0].dataset)
    assert stores_plain_examples(plain.test_stream[0].dataset)
    assert not stores_plain_examples(transformed.train_stream[0].dataset)


@pytest.mark.parametrize("kind", [torch.optim.AdamW, torch.optim.Adam, torch.optim.SGD])
def test_packnets_optimizer_reset_fails_on_adamw_and_the_patch_resets_every_optimizer(kind):
    model = nn.Linear(3, 2)
    momentum = {"momentum": 0.9} if kind is torch.optim.SGD else {}
    settings = {"lr": 0.01, "weight_decay": 0.01, **momentum}
    for plugin in (AvalanchePackNetPlugin(post_prune_epochs=1), PackNetPlugin(post_prune_epochs=1)):
        strategy = SimpleNamespace(model=model, optimizer=kind(model.parameters(), **settings))
        if kind is torch.optim.AdamW and type(plugin) is AvalanchePackNetPlugin:
            with pytest.raises(TypeError, match="decoupled_weight_decay"):
                plugin.before_training_exp(strategy)
            continue
        before = strategy.optimizer
        plugin.before_training_exp(strategy)
        assert type(strategy.optimizer) is kind and strategy.optimizer is not before
        assert strategy.optimizer.defaults == before.defaults


def test_avalanches_si_learns_no_importance_on_cpu_and_the_patch_does():
    """Two experiences: after the first, SI's importances are zero under Avalanche's plugin
    (its snapshots are views of the weights) and positive under the patched one, whose
    penalty then changes what the second experience learns."""
    data = LabelledTensors(torch.rand(48, 4), torch.arange(48) % 2)
    benchmark = nc_benchmark(data, data, n_experiences=2, task_labels=False, seed=0)
    weights, importances = {}, {}
    for kind in (AvalancheSIPlugin, SynapticIntelligencePlugin):
        plugin = kind(si_lambda=10.0)
        strategy = naive([plugin])
        for experience in benchmark.train_stream:
            strategy.train(experience)
            if experience.current_experience == 0:
                omega = plugin.ewc_data[1].values()
                importances[kind] = sum(float(d.data.abs().sum()) for d in omega)
        weights[kind] = strategy.model.weight.detach().clone()
    assert importances[AvalancheSIPlugin] == 0.0
    assert importances[SynapticIntelligencePlugin] > 0.0
    assert not torch.equal(weights[AvalancheSIPlugin], weights[SynapticIntelligencePlugin])
