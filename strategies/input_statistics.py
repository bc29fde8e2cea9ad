"""Avalanche plugin: each task's model of its training inputs, for task inference by inputs."""

from __future__ import annotations

import time
from collections.abc import Callable

from avalanche.core import SupervisedPlugin
from torch import nn

from clearn.network import PackedNetwork
from strategies.experience import task_label
from strategies.model_lookup import the_one

__all__ = ["InputStatisticsPlugin", "packed_network", "record_training_inputs"]


def packed_network(model: nn.Module) -> PackedNetwork:
    """The one PackedNetwork `model` is or holds; ValueError saying how to build one."""
    return the_one(
        model, PackedNetwork, needed_by="task packing packs",
        build="strategies.TaskNetwork(backbone=...)",
    )


def record_training_inputs(network: PackedNetwork, task: int, dataloader) -> None:
    """Fit task `task`'s input model from one pass over its training batches (inputs and
    labels, for a per-class model)."""
    network.record_inputs(task, (batch[:2] for batch in dataloader))


class InputStatisticsPlugin(SupervisedPlugin):
    """After each experience, fits the model of its training inputs in the strategy's
    PackedNetwork (`record_inputs`): one pass over the task's training batches (inputs and
    labels), no forward pass. `on_fitted(task, seconds)`, when given, hears how long each
    fit took (the packing plugin puts it in the task's report)."""

    def __init__(self, on_fitted: Callable[[int, float], None] | None = None) -> None:
        super().__init__()
        self.on_fitted = on_fitted

    def state_dict(self) -> dict:
        """Nothing to checkpoint: the input model is the network's."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Nothing to restore (see `state_dict`)."""

    def after_training_exp(self, strategy, **kwargs) -> None:
        network = packed_network(strategy.model)
        task = task_label(strategy.experience)
        began = time.perf_counter()
        record_training_inputs(network, task, strategy.dataloader)
        if self.on_fitted is not None:
            self.on_fitted(task, time.perf_counter() - began)
