"""Avalanche plugins: packing tasks into one network, and tensor-batch loading."""

from strategies.epn import DEFAULT_GAMMA, PackingPlugin, TaskReport
from strategies.task_model import AvalancheTaskNetwork
from strategies.tensor_loader import TensorLoaderPlugin

__all__ = [
    "DEFAULT_GAMMA",
    "AvalancheTaskNetwork",
    "PackingPlugin",
    "TaskReport",
    "TensorLoaderPlugin",
]
