"""Each plugin class is checkpointed by its own adapter; a plugin without one is refused
loudly when the checkpoint is written, and one registered round-trips."""

import pytest
import torch
from avalanche.core import SupervisedPlugin
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin
from torch import nn

from strategies.plugin_state import PluginState, register_plugin_state
from strategies.training_state import TrainingStateError, load_strategy_state, strategy_state


class CountingPlugin(SupervisedPlugin):
    """A user's plugin with plain state and no state_dict."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0


class RegisteredPlugin(CountingPlugin):
    pass


def naive(plugins: list) -> Naive:
    model = nn.Linear(4, 2)
    return Naive(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        plugins=plugins,
        evaluator=EvaluationPlugin(loggers=[]),
        eval_every=1,
    )


def test_every_plugin_avalanches_template_adds_by_itself_has_an_adapter():
    # Guard: an Avalanche that adds a plugin of a new class to every strategy fails here.
    state = strategy_state(naive([]))
    kinds = [saved["type"] for saved in state["plugins"]]
    assert kinds == ["EvaluationPlugin", "PeriodicEval", "Clock"]


def test_a_plugin_without_an_adapter_is_refused_naming_the_fix():
    with pytest.raises(TrainingStateError, match="CountingPlugin.*state_dict.*register"):
        strategy_state(naive([CountingPlugin()]))


def test_a_registered_adapter_saves_and_restores_the_plugin():
    register_plugin_state(
        RegisteredPlugin,
        PluginState(
            save=lambda plugin, where: {"count": plugin.count},
            load=lambda strategy, plugin, saved, where: setattr(plugin, "count", saved["count"]),
        ),
    )
    saving = RegisteredPlugin()
    saving.count = 7
    state = strategy_state(naive([saving]))
    restored = RegisteredPlugin()
    load_strategy_state(naive([restored]), state)
    assert restored.count == 7
