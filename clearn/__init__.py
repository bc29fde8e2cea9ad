"""clearn: Powerpropagation and task masks for continual learning (the mechanism, no Avalanche)."""

from clearn.epn import KeptSearch, search_kept_fraction
from clearn.evaluation import task_accuracy
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
from clearn.task_mask import TaskMask

__all__ = [
    "CapacityExhaustedError",
    "KeptSearch",
    "Phase",
    "PhaseError",
    "PowerPropagation",
    "TaskMask",
    "PackedNetwork",
    "TaskPacker",
    "UnknownTaskError",
    "apply_powerprop",
    "effective_weights",
    "magnitude_masks",
    "mlp",
    "remove_powerprop",
    "search_kept_fraction",
    "task_accuracy",
]
