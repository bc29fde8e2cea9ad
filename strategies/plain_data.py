"""Plain data: what a safe checkpoint may hold, and the codec from and to it.

Plain data is None, bools, numbers, strings, lists, tuples, dicts and tensors, so that
`torch.load(..., weights_only=True)` reads it and a checkpoint cannot run code. The few
objects that are state (Avalanche's `ParamData`, its metrics' accumulators) are written as
tagged dicts and rebuilt only from the allow-list `PLAIN_CLASSES`.
"""

from __future__ import annotations

import functools
import types
from collections import defaultdict
from typing import Any

import numpy as np
import torch
from avalanche.evaluation.metrics.accuracy import Accuracy, TaskAwareAccuracy
from avalanche.evaluation.metrics.forgetting_bwt import Forgetting
from avalanche.evaluation.metrics.mean import Mean
from avalanche.training.utils import ParamData

from clearn.capacity import Capacity

__all__ = [
    "PLAIN_CLASSES",
    "TrainingStateError",
    "attributes",
    "from_plain",
    "set_attributes",
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


def attributes(owner: object, where: str) -> dict[str, Any]:
    """Every attribute of `owner` that is not configuration (code), as plain data."""
    return {
        key: to_plain(value, f"{where}.{key}")
        for key, value in vars(owner).items()
        if not isinstance(value, _CONFIGURATION)
    }


def set_attributes(owner: object, saved: Any, where: str) -> None:
    """Restore `attributes`: only attributes `owner` has, each of the same type as now."""
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
