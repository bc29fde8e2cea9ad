"""Avalanche side of clearn: EfficientPackNet and the peer mask methods (WSN, SupSup, HAT) as
strategies, their models, plugins and metrics."""

from clearn.defaults import DEFAULT_VALIDATION_SHARE
from strategies.capacity_metrics import CapacityMetric, capacity_metrics, model_capacity
from strategies.efficient_packnet import EfficientPackNet
from strategies.epn import PackingPlugin, TaskReport
from strategies.experience_accuracy import ExperienceAccuracyPlugin
from strategies.hat import HAT, HatLrPlugin, HatPlugin
from strategies.hat_model import HatNetwork
from strategies.input_statistics import InputStatisticsPlugin
from strategies.plateau_stop import PlateauBudgetPlugin
from strategies.subnet_model import SubnetTaskNetwork
from strategies.subnet_plugin import SubnetPlugin
from strategies.supsup import SupSup
from strategies.task_model import TaskNetwork
from strategies.tensor_loader import TensorLoaderPlugin
from strategies.validation_split import ValidationSplitPlugin
from strategies.wsn import WSN

__all__ = [
    "DEFAULT_VALIDATION_SHARE",
    "CapacityMetric",
    "HAT",
    "WSN",
    "EfficientPackNet",
    "ExperienceAccuracyPlugin",
    "HatLrPlugin",
    "HatNetwork",
    "HatPlugin",
    "PackingPlugin",
    "InputStatisticsPlugin",
    "PlateauBudgetPlugin",
    "SubnetPlugin",
    "SubnetTaskNetwork",
    "SupSup",
    "TaskNetwork",
    "TaskReport",
    "TensorLoaderPlugin",
    "ValidationSplitPlugin",
    "capacity_metrics",
    "model_capacity",
]
