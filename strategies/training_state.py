"""The whole training state of an Avalanche strategy, saved and restored through one mechanism.

A checkpoint between experiences holds the model (saved apart) and this: the optimizer, the
state of every plugin — Avalanche's clock (whose experience counter EWC and SI read), the
regularisers' importances and anchors, LwF's previous model, clearn's packing and stopping
plugins — the evaluator's metric history, and which of the model's parameters are frozen
(`requires_grad`: not in a state dict, yet Avalanche's PackNet freezes biases by it), so
that a resumed run computes exactly what the uninterrupted one would, and reports Avalanche's
forgetting and BWT over the whole run.

Plugins with `state_dict` / `load_state_dict` save through them; for any other plugin every
attribute that pickles is saved (progress bars, open files and callables are not state).
"""

from __future__ import annotations

import pickle
from typing import Any

from avalanche.training.plugins import EvaluationPlugin

__all__ = ["load_strategy_state", "strategy_state"]


def _picklable(value: object) -> bool:
    try:
        pickle.dumps(value)
    except Exception:  # noqa: BLE001 - any failure means "not state we can keep"
        return False
    return True


def _attributes(owner: object) -> dict[str, Any]:
    attributes = getattr(owner, "__dict__", {})  # an object with __slots__ only: none
    return {key: value for key, value in attributes.items() if _picklable(value)}


def _plugin_state(plugin: object) -> dict[str, Any]:
    if isinstance(plugin, EvaluationPlugin):
        return {
            "type": type(plugin).__name__,
            "metrics": [_attributes(metric) for metric in plugin.metrics],
            "last": dict(plugin.last_metric_results),
            "all": {name: (list(x), list(y)) for name, (x, y) in plugin.all_metric_results.items()},
        }
    if callable(getattr(plugin, "state_dict", None)):
        return {"type": type(plugin).__name__, "state": plugin.state_dict()}
    return {"type": type(plugin).__name__, "attributes": _attributes(plugin)}


def _load_plugin_state(plugin: object, saved: dict[str, Any]) -> None:
    if isinstance(plugin, EvaluationPlugin):
        for metric, attributes in zip(plugin.metrics, saved["metrics"], strict=True):
            vars(metric).update(attributes)
        plugin.last_metric_results = dict(saved["last"])
        plugin.all_metric_results.clear()
        plugin.all_metric_results.update(saved["all"])
    elif "state" in saved:
        plugin.load_state_dict(saved["state"])
    else:
        for key, value in saved["attributes"].items():
            setattr(plugin, key, value)


def strategy_state(strategy) -> dict[str, Any]:
    """The optimizer's and every plugin's state (the model's is saved apart)."""
    return {
        "optimizer": strategy.optimizer.state_dict(),
        "plugins": [_plugin_state(plugin) for plugin in strategy.plugins],
        "frozen": [n for n, p in strategy.model.named_parameters() if not p.requires_grad],
    }


def load_strategy_state(strategy, state: dict[str, Any]) -> None:
    """Restore what `strategy_state` saved into a strategy assembled the same way."""
    kinds = [type(plugin).__name__ for plugin in strategy.plugins]
    saved_kinds = [saved["type"] for saved in state["plugins"]]
    if kinds != saved_kinds:
        raise ValueError(
            f"the checkpoint was saved by a strategy with plugins {saved_kinds}, this one has "
            f"{kinds}: resume with the same clearn version and options"
        )
    strategy.optimizer.load_state_dict(state["optimizer"])
    frozen = set(state["frozen"])
    for name, parameter in strategy.model.named_parameters():
        parameter.requires_grad_(name not in frozen)
    for plugin, saved in zip(strategy.plugins, state["plugins"], strict=True):
        _load_plugin_state(plugin, saved)
