"""The whole training state of an Avalanche strategy, saved and restored as plain data.

A checkpoint between experiences holds the model (saved apart) and this: the optimizer, the
state of every plugin — Avalanche's clock (whose experience counter EWC and SI read), the
regularisers' importances and anchors, LwF's previous model, clearn's packing and stopping
plugins — the evaluator's metric history, and which of the model's parameters are frozen
(`requires_grad`: not in a state dict, yet Avalanche's PackNet freezes biases by it), so
that a resumed run computes exactly what the uninterrupted one would, and reports Avalanche's
forgetting and BWT over the whole run.

Everything is plain data (`strategies.plain_data`), read with `torch.load(...,
weights_only=True)`. Each plugin is saved by its class's adapter (`strategies.plugin_state`);
a plugin without one is refused when the checkpoint is written, never pickled.
"""

from __future__ import annotations

from typing import Any

from strategies.avalanche_compat import mark_optimizer_set_up
from strategies.plain_data import PLAIN_CLASSES, TrainingStateError, from_plain, to_plain
from strategies.plugin_state import load_plugin_state, plugin_state

__all__ = [
    "PLAIN_CLASSES",
    "TrainingStateError",
    "from_plain",
    "load_strategy_state",
    "strategy_state",
    "to_plain",
]


def _optimizer_state(strategy) -> dict[str, Any]:
    names = {id(p): n for n, p in strategy.model.named_parameters()}
    groups = strategy.optimizer.param_groups
    if any(id(p) not in names for group in groups for p in group["params"]):
        raise TrainingStateError("the optimizer holds a parameter the model does not")
    return {
        "state": to_plain(strategy.optimizer.state_dict(), "optimizer"),
        "parameters": [[names[id(p)] for p in group["params"]] for group in groups],
    }


def _load_optimizer_state(strategy, saved: dict[str, Any]) -> None:
    """Restore the optimizer, its parameters in their saved order, and tell Avalanche that it
    is set up: a strategy's first `make_optimizer` otherwise resets the state (momentum,
    Adam's moments) it finds, as at the very start of a run."""
    named = dict(strategy.model.named_parameters())
    groups = strategy.optimizer.param_groups
    order = saved["parameters"]
    if len(order) != len(groups) or any(n not in named for names in order for n in names):
        raise TrainingStateError(
            "the checkpoint's optimizer was set up over other parameters than this model's"
        )
    for group, names in zip(groups, order, strict=True):
        group["params"] = [named[n] for n in names]
    strategy.optimizer.load_state_dict(from_plain(saved["state"], "optimizer"))
    mark_optimizer_set_up(strategy, named)


def strategy_state(strategy) -> dict[str, Any]:
    """The optimizer's and every plugin's state as plain data (the model's is saved apart)."""
    return {
        "optimizer": _optimizer_state(strategy),
        "plugins": [plugin_state(plugin, i) for i, plugin in enumerate(strategy.plugins)],
        "frozen": [n for n, p in strategy.model.named_parameters() if not p.requires_grad],
    }


def load_strategy_state(strategy, state: dict[str, Any]) -> None:
    """Restore what `strategy_state` saved into a strategy assembled the same way; raise
    TrainingStateError when the saved state does not fit it."""
    kinds = [type(plugin).__name__ for plugin in strategy.plugins]
    try:
        saved_kinds = [saved["type"] for saved in state["plugins"]]
        if kinds != saved_kinds:
            raise TrainingStateError(
                f"the checkpoint was saved by a strategy with plugins {saved_kinds}, this one "
                f"has {kinds}: resume with the same clearn version and options"
            )
        _load_optimizer_state(strategy, state["optimizer"])
        frozen = set(state["frozen"])
        for name, parameter in strategy.model.named_parameters():
            parameter.requires_grad_(name not in frozen)
        plugins = zip(strategy.plugins, state["plugins"], strict=True)
        for index, (plugin, saved) in enumerate(plugins):
            load_plugin_state(strategy, plugin, saved, index)
    except TrainingStateError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as error:
        raise TrainingStateError(
            f"the checkpoint's strategy state does not fit this strategy "
            f"({type(error).__name__}: {_short(error)}): resume with the same clearn version "
            f"and options"
        ) from None


def _short(error: BaseException, limit: int = 200) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[:limit] + "…"
