"""clearn: Powerpropagation and task masks for continual learning (the mechanism, no Avalanche).

The names below load on first use (PEP 562): importing a submodule, such as the command line,
which must set its Ctrl-C handler before torch loads, does not load torch first.
"""

from importlib import import_module

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without loading typing
if TYPE_CHECKING:  # what a type checker sees; at run time the names load on first use
    from clearn.epn import KeptSearch, search_kept_fraction
    from clearn.evaluation import task_accuracy
    from clearn.export import export_task
    from clearn.models import mlp
    from clearn.network import PackedNetwork, UnknownTaskError
    from clearn.packing import CapacityExhaustedError, Phase, PhaseError, TaskPacker
    from clearn.powerprop import (
        PowerPropagation,
        apply_powerprop,
        effective_weights,
        remove_powerprop,
    )
    from clearn.pruning import magnitude_masks
    from clearn.task_inference import TaskGuess, infer_task, predict_task_agnostic
    from clearn.task_mask import TaskMask

__all__ = [
    "CapacityExhaustedError",
    "KeptSearch",
    "Phase",
    "PhaseError",
    "PowerPropagation",
    "PackedNetwork",
    "TaskGuess",
    "TaskMask",
    "TaskPacker",
    "UnknownTaskError",
    "apply_powerprop",
    "effective_weights",
    "export_task",
    "infer_task",
    "magnitude_masks",
    "mlp",
    "predict_task_agnostic",
    "remove_powerprop",
    "search_kept_fraction",
    "task_accuracy",
]

_HOMES = (
    "clearn.epn",
    "clearn.evaluation",
    "clearn.export",
    "clearn.models",
    "clearn.network",
    "clearn.packing",
    "clearn.powerprop",
    "clearn.pruning",
    "clearn.task_inference",
    "clearn.task_mask",
)
"""The modules that define the names of `__all__`."""


def __getattr__(name: str) -> object:
    """A name of `__all__`, loaded from its module on first use."""
    if name in __all__:
        for module in map(import_module, _HOMES):
            if hasattr(module, name):
                globals()[name] = getattr(module, name)
                return globals()[name]
    raise AttributeError(f"module 'clearn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
