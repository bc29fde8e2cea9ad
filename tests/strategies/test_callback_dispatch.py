import pytest
import torch
from avalanche.core import SupervisedPlugin
from avalanche.evaluation.metrics import accuracy_metrics, loss_metrics
from avalanche.logging import InteractiveLogger, TextLogger
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin
from avalanche.training.utils import trigger_plugins
from torch import nn

from strategies.callback_dispatch import TRAINING_ITERATION_EVENTS, ListenedCallbacks, listens
from strategies.efficient_packnet import EfficientPackNet
from strategies.task_model import TaskNetwork


class AfterUpdateCounter(SupervisedPlugin):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def after_update(self, strategy, **kwargs) -> None:
        self.calls += 1


class EveryPlugin(EfficientPackNet):
    """The same strategy with Avalanche's own dispatch: every plugin on every callback."""

    def _dispatch(self, event: str, **kwargs) -> None:
        trigger_plugins(self, event, **kwargs)


def strategy(kind, metrics, *, plugins=(), eval_every=-1):
    torch.manual_seed(0)
    model = TaskNetwork(backbone=nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU()))
    return kind(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.3),
        train_epochs=2,
        evaluator=EvaluationPlugin(*metrics, loggers=[]),
        plugins=list(plugins),
        eval_every=eval_every,
    )


def test_a_plugin_listens_to_what_its_class_implements():
    counter = AfterUpdateCounter()
    assert [e for e in TRAINING_ITERATION_EVENTS if listens(counter, e)] == ["after_update"]
    assert [e for e in TRAINING_ITERATION_EVENTS if listens(InteractiveLogger(), e)] == [
        "after_training_iteration"
    ]


def test_the_evaluator_listens_to_training_steps_only_for_a_training_step_metric():
    evaluation_only = EvaluationPlugin(accuracy_metrics(experience=True), loggers=[])
    per_step = EvaluationPlugin(accuracy_metrics(minibatch=True), loggers=[])
    assert not any(listens(evaluation_only, e) for e in TRAINING_ITERATION_EVENTS)
    assert listens(evaluation_only, "after_eval_iteration")
    assert listens(per_step, "after_training_iteration")
    per_step.active = False
    assert not listens(per_step, "after_training_iteration")
    text, bar = TextLogger(), InteractiveLogger()
    assert not any(listens(EvaluationPlugin(loggers=[text]), e) for e in TRAINING_ITERATION_EVENTS)
    assert listens(EvaluationPlugin(loggers=[bar]), "after_training_iteration")


METRICS = {
    "evaluation metrics": lambda: [accuracy_metrics(experience=True, stream=True)],
    "training-step metrics": lambda: [
        accuracy_metrics(minibatch=True, epoch=True),
        loss_metrics(minibatch=True, epoch=True),
    ],
}


@pytest.mark.parametrize("metrics", METRICS)
def test_listened_dispatch_gives_what_dispatch_to_every_plugin_gives(stock_benchmark, metrics):
    runs = []
    for kind in (EfficientPackNet, EveryPlugin):
        counter = AfterUpdateCounter()
        built = strategy(kind, METRICS[metrics](), plugins=[counter])
        for experience in stock_benchmark.train_stream[:2]:
            built.train(experience, eval_streams=[])
        built.eval(stock_benchmark.test_stream[:2])
        runs.append((counter.calls, built.evaluator.get_all_metrics(), built.model.state_dict()))
    (calls, listened, state), (every_calls, every, every_state) = runs
    assert calls == every_calls > 0
    assert listened.keys() == every.keys()
    for name, values in listened.items():
        assert values == every[name], name
    tensors = [k for k, v in state.items() if isinstance(v, torch.Tensor)]
    assert tensors and all(torch.equal(state[k], every_state[k]) for k in tensors)


def test_an_evaluation_inside_training_keeps_the_training_listeners(stock_benchmark):
    counter = AfterUpdateCounter()
    built = strategy(
        EfficientPackNet, [accuracy_metrics(experience=True)], plugins=[counter], eval_every=1
    )
    built.train(stock_benchmark.train_stream[0], eval_streams=[stock_benchmark.test_stream[0]])
    assert any(name.startswith("Top1_Acc_Exp/eval") for name in built.evaluator.get_all_metrics())
    assert counter.calls == built.clock.train_iterations > 0


class DuckTypedPlugin:
    """A plugin of no Avalanche class: Avalanche calls whatever callbacks it has."""

    def __init__(self) -> None:
        self.calls = 0

    def after_update(self, strategy, **kwargs) -> None:
        self.calls += 1


class InstanceCallbackPlugin(SupervisedPlugin):
    """A callback set on the instance, which the plugin's class does not show."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.after_backward = self._count

    def _count(self, strategy, **kwargs) -> None:
        self.calls += 1


def test_a_plugin_the_fast_dispatch_cannot_read_hears_every_callback(stock_benchmark):
    duck, instance = DuckTypedPlugin(), InstanceCallbackPlugin()
    assert listens(duck, "after_update") and not listens(duck, "before_update")
    assert listens(instance, "after_backward")
    metrics = [accuracy_metrics(experience=True)]
    built = strategy(EfficientPackNet, metrics, plugins=[duck, instance])
    built.train(stock_benchmark.train_stream[0], eval_streams=[])
    assert duck.calls == instance.calls == built.clock.train_iterations > 0


def test_a_callback_fired_before_its_listeners_are_found_reaches_every_plugin():
    # A template subclass firing a per-iteration callback outside an epoch (or an Avalanche
    # whose epoch hook the mixin no longer hears) falls back to Avalanche's own dispatch.
    class FastNaive(ListenedCallbacks, Naive):
        pass

    counter = AfterUpdateCounter()
    model = nn.Linear(4, 2)
    built = FastNaive(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        plugins=[counter],
        evaluator=EvaluationPlugin(loggers=[]),
    )
    built._after_update()
    assert counter.calls == 1
