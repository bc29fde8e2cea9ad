"""Avalanche side of clearn: the EfficientPackNet strategy, its model, plugins and metrics."""

from strategies.capacity_metrics import CapacityMetric, capacity_metrics, model_capacity
from strategies.efficient_packnet import EfficientPackNet
from strategies.epn import PackingPlugin, TaskReport
from strategies.plateau_stop import PlateauStopPlugin
from strategies.task_model import TaskNetwork
from strategies.tensor_loader import TensorLoaderPlugin
from strategies.validation import DEFAULT_VALIDATION_SHARE

__all__ = [
    "DEFAULT_VALIDATION_SHARE",
    "CapacityMetric",
    "EfficientPackNet",
    "PackingPlugin",
    "PlateauStopPlugin",
    "TaskNetwork",
    "TaskReport",
    "TensorLoaderPlugin",
    "capacity_metrics",
    "model_capacity",
]
