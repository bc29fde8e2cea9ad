"""How each plugin's state is checkpointed: one adapter per plugin class, none guessed.

A plugin with `state_dict()` / `load_state_dict()` is saved through them (clearn's own
plugins). Avalanche's plugins are saved by the adapters registered here: the evaluator's
metric history, LwF's previous model as a state dict, and for the plugins whose attributes
are all their state, those attributes (`PLAIN_ATTRIBUTE_PLUGINS`); plugins that hold no
state between experiences save nothing (`STATELESS_PLUGINS`). A plugin of any other class is
refused when the checkpoint is written, naming the fix, rather than pickled or guessed at:
give it the two methods, or `register_plugin_state(its class, save, load)`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, NamedTuple

from avalanche.models.packnet import PackNetPlugin
from avalanche.training.plugins import (
    EarlyStoppingPlugin,
    EvaluationPlugin,
    EWCPlugin,
    LwFPlugin,
    MASPlugin,
    SynapticIntelligencePlugin,
)
from avalanche.training.plugins.clock import Clock
from avalanche.training.templates.base_sgd import PeriodicEval

from strategies.guards import FiniteLossPlugin, ProgressPlugin
from strategies.plain_data import (
    TrainingStateError,
    attributes,
    from_plain,
    set_attributes,
    to_plain,
)
from strategies.tensor_loader import TensorLoaderPlugin

__all__ = [
    "PLAIN_ATTRIBUTE_PLUGINS",
    "STATELESS_PLUGINS",
    "PluginState",
    "load_plugin_state",
    "plugin_state",
    "register_plugin_state",
]


class PluginState(NamedTuple):
    """A plugin class's checkpoint adapter."""

    save: Callable[[Any, str], Any]
    """(plugin, where) → its state as plain data; `where` names it in errors."""
    load: Callable[[Any, Any, Any, str], None]
    """(strategy, plugin, saved state, where): restore what `save` returned."""


def _save_evaluator(plugin: EvaluationPlugin, where: str) -> dict[str, Any]:
    return {
        "metrics": [attributes(m, f"{where}.metrics[{i}]") for i, m in enumerate(plugin.metrics)],
        "last": to_plain(dict(plugin.last_metric_results), where),
        "all": {
            name: (to_plain(list(x), where), to_plain(list(y), where))
            for name, (x, y) in plugin.all_metric_results.items()
        },
    }


def _load_evaluator(strategy, plugin: EvaluationPlugin, saved: Any, where: str) -> None:
    metrics = zip(plugin.metrics, saved["metrics"], strict=True)
    for i, (metric, fields) in enumerate(metrics):
        set_attributes(metric, fields, f"{where}.metrics[{i}]")
    plugin.last_metric_results = dict(from_plain(saved["last"], where))
    plugin.all_metric_results.clear()
    plugin.all_metric_results.update(from_plain(saved["all"], where))


def _save_lwf(plugin: LwFPlugin, where: str) -> dict[str, Any]:
    previous = plugin.lwf.prev_model
    others = {k: v for k, v in vars(plugin.lwf).items() if k != "prev_model"}
    return {
        "previous_model": None if previous is None else previous.state_dict(),
        "previous_training": None if previous is None else previous.training,
        "attributes": {k: to_plain(v, f"{where}.lwf.{k}") for k, v in others.items()},
    }


def _load_lwf(strategy, plugin: LwFPlugin, saved: Any, where: str) -> None:
    fields = from_plain(saved["attributes"], where)
    previous = None
    if saved["previous_model"] is not None:
        previous = copy.deepcopy(strategy.model)
        previous.load_state_dict(saved["previous_model"])
        previous.train(bool(saved["previous_training"]))
    vars(plugin.lwf).update({**fields, "prev_model": previous})


def _save_own(plugin, where: str) -> Any:
    return to_plain(plugin.state_dict(), where)


def _load_own(strategy, plugin, saved: Any, where: str) -> None:
    plugin.load_state_dict(from_plain(saved, where))


def _load_attributes(strategy, plugin, saved: Any, where: str) -> None:
    set_attributes(plugin, saved, where)


_OWN = PluginState(_save_own, _load_own)
_ATTRIBUTES = PluginState(attributes, _load_attributes)
_NOTHING = PluginState(lambda _plugin, _where: None, lambda *_: None)

PLAIN_ATTRIBUTE_PLUGINS: tuple[type, ...] = (
    Clock,
    PeriodicEval,
    EWCPlugin,
    SynapticIntelligencePlugin,
    MASPlugin,
    PackNetPlugin,
    EarlyStoppingPlugin,
)
"""Avalanche plugins whose attributes (plain data: counters, importances, anchors, masks)
are their whole state; the first two every SGD template adds by itself."""
STATELESS_PLUGINS: tuple[type, ...] = (TensorLoaderPlugin, FiniteLossPlugin, ProgressPlugin)
"""clearn's plugins that hold nothing between experiences."""

_ADAPTERS: dict[type, PluginState] = {
    EvaluationPlugin: PluginState(_save_evaluator, _load_evaluator),
    LwFPlugin: PluginState(_save_lwf, _load_lwf),
    **dict.fromkeys(PLAIN_ATTRIBUTE_PLUGINS, _ATTRIBUTES),
    **dict.fromkeys(STATELESS_PLUGINS, _NOTHING),
}


def register_plugin_state(cls: type, adapter: PluginState) -> None:
    """Checkpoint plugins of `cls` (and its subclasses) through `adapter`."""
    _ADAPTERS[cls] = adapter


def _adapter(plugin: object, where: str) -> PluginState:
    for cls in type(plugin).__mro__:
        if cls in _ADAPTERS:
            return _ADAPTERS[cls]
    if callable(getattr(plugin, "state_dict", None)) and callable(
        getattr(plugin, "load_state_dict", None)
    ):
        return _OWN
    raise TrainingStateError(
        f"{where} has no checkpoint adapter: give {type(plugin).__name__} state_dict() and "
        f"load_state_dict() (plain data), or register one with "
        f"strategies.plugin_state.register_plugin_state"
    )


def plugin_state(plugin: object, index: int) -> dict[str, Any]:
    """`plugin`'s state (the strategy's `index`-th) as plain data, tagged with its class."""
    where = f"plugin {index} ({type(plugin).__name__})"
    return {"type": type(plugin).__name__, "state": _adapter(plugin, where).save(plugin, where)}


def load_plugin_state(strategy, plugin: object, saved: dict[str, Any], index: int) -> None:
    """Restore what `plugin_state` saved into `plugin`, of the same class."""
    where = f"plugin {index} ({type(plugin).__name__})"
    _adapter(plugin, where).load(strategy, plugin, saved["state"], where)
