"""The whole training state of an Avalanche strategy, saved and restored as plain data.

A checkpoint between experiences holds the model (saved apart) and this: the optimizer, the
state of every plugin — Avalanche's clock (whose experience counter EWC and SI read), the
regularisers' importances and anchors, LwF's previous model, clearn's packing and stopping
plugins — the evaluator's metric history, and which of the model's parameters are frozen
(`requires_grad`: not in a state dict, yet Avalanche's PackNet freezes biases by it), so
that a resumed run computes exactly what the uninterrupted one would, and reports Avalanche's
forgetting and BWT over the whole run.

Everything is saved as plain data — None, bools, numbers, strings, lists, tuples, dicts and
tensors — so that `torch.load(..., weights_only=True)` reads it and a checkpoint cannot run
code. The few objects that are state (Avalanche's `ParamData`, its metrics' accumulators) are
written as tagged dicts and rebuilt only from the allow-list `PLAIN_CLASSES`. Each plugin is
saved by its own adapter: `state_dict` / `load_state_dict` where it has them, LwF's previous
model as a state dict, and any other plugin's attributes when they are plain data; a plugin
holding anything else is refused when the checkpoint is written, never pickled.
"""

from __future__ import annotations

import copy
import functools
import types
from collections import defaultdict
from typing import Any

import numpy as np
import torch
from avalanche.evaluation.metrics.accuracy import Accuracy, TaskAwareAccuracy
from avalanche.evaluation.metrics.forgetting_bwt import Forgetting
from avalanche.evaluation.metrics.mean import Mean
from avalanche.training.plugins import EvaluationPlugin, LwFPlugin
from avalanche.training.utils import ParamData

from clearn.capacity import Capacity

__all__ = [
    "PLAIN_CLASSES",
    "TrainingStateError",
    "from_plain",
    "load_strategy_state",
    "strategy_state",
    "to_plain",
]

PLAIN_CLASSES: dict[str, type] = {
    f"{cls.__module__}.{cls.__qualname__}": cls
    for cls in (Mean, Accuracy, TaskAwareAccuracy, Forgetting, Capacity)
}
"""The classes a saved state may rebuild (from their attributes, themselves plain data)."""
_FACTORIES: dict[str, type] = {
    **{cls.__name__: cls for cls in (dict, list, set, int, float)},
    **PLAIN_CLASSES,
}
"""`defaultdict` factories a saved state may name."""
KIND = "__kind__"
"""The key marking a dict that encodes something other than a dict."""
_CONFIGURATION = (
    types.FunctionType,
    types.MethodType,
    types.BuiltinFunctionType,
    functools.partial,
)
"""Attribute types that are a plugin's configuration (code), never its state."""


class TrainingStateError(ValueError):
    """A strategy's state is not plain data, or a saved state does not fit the strategy."""


def _name(value: object) -> str:
    kind = type(value)
    return f"{kind.__module__}.{kind.__qualname__}"


def to_plain(value: Any, where: str) -> Any:
    """`value` as plain data (see the module's docstring); raise TrainingStateError naming
    `where` for anything else."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, torch.Size):
        return {KIND: "size", "dims": list(value)}
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return {KIND: "ndarray", "data": torch.from_numpy(np.array(value))}
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return value.item()
    if type(value) is list:
        return [to_plain(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if type(value) is tuple:
        return tuple(to_plain(item, f"{where}[{i}]") for i, item in enumerate(value))
    if isinstance(value, set | frozenset):
        return {KIND: "set", "items": [to_plain(item, f"{where}{{}}") for item in value]}
    if isinstance(value, ParamData):
        return {
            KIND: "param",
            "name": value.name,
            "device": str(value.device),
            "value": value.data.detach(),
        }
    if isinstance(value, defaultdict):
        factory = value.default_factory
        if factory not in _FACTORIES.values():
            raise TrainingStateError(f"{where} is a defaultdict of {factory!r}, not plain data")
        return {
            KIND: "defaultdict",
            "factory": next(n for n, f in _FACTORIES.items() if f is factory),
            "items": _items_to_plain(value, where),
        }
    if type(value) is dict:
        if all(isinstance(k, str | int) for k in value) and KIND not in value:
            return {k: to_plain(v, f"{where}[{k!r}]") for k, v in value.items()}
        return {
            KIND: "dict",
            "items": _items_to_plain(value, where),
        }
    if _name(value) in PLAIN_CLASSES:
        return {KIND: "object", "class": _name(value), "fields": to_plain(vars(value), where)}
    raise TrainingStateError(
        f"{where} holds a {_name(value)}, which a checkpoint cannot keep as plain data; give "
        f"its plugin state_dict() and load_state_dict()"
    )


def _items_to_plain(mapping: dict, where: str) -> list[tuple[Any, Any]]:
    return [(to_plain(k, where), to_plain(v, f"{where}[{k!r}]")) for k, v in mapping.items()]


def from_plain(value: Any, where: str) -> Any:
    """Rebuild what `to_plain` wrote; raise TrainingStateError for anything it cannot write."""
    if value is None or isinstance(value, bool | int | float | str | torch.Tensor):
        return value
    if type(value) is list:
        return [from_plain(item, where) for item in value]
    if type(value) is tuple:
        return tuple(from_plain(item, where) for item in value)
    if type(value) is not dict:
        raise TrainingStateError(f"{where} holds a {_name(value)}, which clearn never saves")
    if KIND not in value:
        return {k: from_plain(v, f"{where}[{k!r}]") for k, v in value.items()}
    try:
        return _decode_tagged(value, where)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        if isinstance(error, TrainingStateError):
            raise
        raise TrainingStateError(f"{where} is damaged ({type(error).__name__}: {error})") from None


def _decode_tagged(value: dict[str, Any], where: str) -> Any:
    kind = value[KIND]
    if kind == "size":
        return torch.Size([int(d) for d in value["dims"]])
    if kind == "ndarray":
        return value["data"].numpy().copy()
    if kind == "set":
        return set(from_plain(value["items"], where))
    if kind == "param":
        tensor = value["value"]
        if not isinstance(tensor, torch.Tensor) or not isinstance(value["name"], str):
            raise TrainingStateError(f"{where} is damaged (a parameter record without a tensor)")
        return ParamData(value["name"], init_tensor=tensor, device=str(value["device"]))
    if kind == "defaultdict":
        factory = _FACTORIES.get(value["factory"])
        if factory is None:
            raise TrainingStateError(f"{where} names an unknown factory {value['factory']!r}")
        return defaultdict(factory, _pairs(value["items"], where))
    if kind == "dict":
        return _pairs(value["items"], where)
    if kind == "object":
        cls = PLAIN_CLASSES.get(value["class"])
        fields = from_plain(value["fields"], where)
        if cls is None or type(fields) is not dict:
            raise TrainingStateError(f"{where} names a class clearn does not restore")
        restored = cls.__new__(cls)
        restored.__dict__.update(fields)
        return restored
    raise TrainingStateError(f"{where} is of an unknown kind {kind!r}")


def _pairs(items: Any, where: str) -> dict[Any, Any]:
    return {from_plain(k, where): from_plain(v, f"{where}[{k!r}]") for k, v in items}


def _attributes(owner: object, where: str) -> dict[str, Any]:
    """Every attribute of `owner` that is not configuration (code), as plain data."""
    return {
        key: to_plain(value, f"{where}.{key}")
        for key, value in vars(owner).items()
        if not isinstance(value, _CONFIGURATION)
    }


def _set_attributes(owner: object, saved: Any, where: str) -> None:
    """Restore `_attributes`: only attributes `owner` has, each of the same type as now."""
    fields = from_plain(saved, where)
    if type(fields) is not dict:
        raise TrainingStateError(f"{where}: expected a dict of attributes")
    current = vars(owner)
    for key, value in fields.items():
        if (
            key not in current
            or not isinstance(value, type(current[key]))
            and not (current[key] is None or value is None)
        ):
            raise TrainingStateError(
                f"{where}.{key}: the checkpoint holds a {type(value).__name__} where this "
                f"clearn version has {type(current.get(key)).__name__}"
            )
    current.update(fields)


def _plugin_state(plugin: object, index: int) -> dict[str, Any]:
    where = f"plugin {index} ({type(plugin).__name__})"
    kind = type(plugin).__name__
    if isinstance(plugin, EvaluationPlugin):
        return {
            "type": kind,
            "metrics": [
                _attributes(m, f"{where}.metrics[{i}]") for i, m in enumerate(plugin.metrics)
            ],
            "last": to_plain(dict(plugin.last_metric_results), where),
            "all": {
                name: (to_plain(list(x), where), to_plain(list(y), where))
                for name, (x, y) in plugin.all_metric_results.items()
            },
        }
    if isinstance(plugin, LwFPlugin):
        lwf = plugin.lwf
        previous = lwf.prev_model
        others = {k: v for k, v in vars(lwf).items() if k != "prev_model"}
        return {
            "type": kind,
            "previous_model": None if previous is None else previous.state_dict(),
            "previous_training": None if previous is None else previous.training,
            "attributes": {k: to_plain(v, f"{where}.lwf.{k}") for k, v in others.items()},
        }
    if callable(getattr(plugin, "state_dict", None)):
        return {"type": kind, "state": to_plain(plugin.state_dict(), where)}
    return {"type": kind, "attributes": _attributes(plugin, where)}


def _load_plugin_state(strategy, plugin: object, saved: dict[str, Any], index: int) -> None:
    where = f"plugin {index} ({type(plugin).__name__})"
    if isinstance(plugin, EvaluationPlugin):
        metrics = zip(plugin.metrics, saved["metrics"], strict=True)
        for i, (metric, attributes) in enumerate(metrics):
            _set_attributes(metric, attributes, f"{where}.metrics[{i}]")
        plugin.last_metric_results = dict(from_plain(saved["last"], where))
        plugin.all_metric_results.clear()
        plugin.all_metric_results.update(from_plain(saved["all"], where))
    elif isinstance(plugin, LwFPlugin):
        lwf = plugin.lwf
        attributes = from_plain(saved["attributes"], where)
        previous = None
        if saved["previous_model"] is not None:
            previous = copy.deepcopy(strategy.model)
            previous.load_state_dict(saved["previous_model"])
            previous.train(bool(saved["previous_training"]))
        vars(lwf).update({**attributes, "prev_model": previous})
    elif "state" in saved:
        plugin.load_state_dict(from_plain(saved["state"], where))
    else:
        _set_attributes(plugin, saved["attributes"], where)


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
    if hasattr(strategy, "optimized_param_id"):
        strategy.optimized_param_id = named


def strategy_state(strategy) -> dict[str, Any]:
    """The optimizer's and every plugin's state as plain data (the model's is saved apart)."""
    return {
        "optimizer": _optimizer_state(strategy),
        "plugins": [_plugin_state(plugin, i) for i, plugin in enumerate(strategy.plugins)],
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
            _load_plugin_state(strategy, plugin, saved, index)
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
