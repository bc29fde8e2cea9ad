"""Capacity as Avalanche metrics, so Avalanche's loggers record it (text, TensorBoard, W&B;
the CSV logger writes only accuracy and loss): the share used and free after each
experience, and the share the task owns and kept. Also read off Avalanche's own PackNet."""

from __future__ import annotations

from avalanche.evaluation import PluginMetric
from avalanche.evaluation.metric_results import MetricValue
from avalanche.models.packnet import WeightAndBiasPackNetModule
from torch import nn

from clearn.capacity import Capacity, ownership_capacity
from clearn.hat_masks import hat_capacity
from clearn.hat_network import HatNetwork
from clearn.mask_capacity import network_mask_capacity, ownership_mask_capacity
from clearn.network import PackedNetwork
from strategies.epn import PackingPlugin
from strategies.experience import task_label
from strategies.metric_keys import (
    CAPACITY_CAP,
    CAPACITY_FREE,
    CAPACITY_USED,
    task_kept_key,
    task_owned_key,
)

__all__ = ["CapacityMetric", "capacity_metrics", "model_cap", "model_capacity"]


def model_capacity(model: nn.Module, *, tasks: int) -> Capacity | None:
    """Capacity of `model` after `tasks` tasks: a clearn PackedNetwork, Avalanche's PackNet
    (owner code: the task; codes of tasks not trained yet and PRUNED_CODE are free), or None
    for a model that does not pack tasks."""
    networks = [m for m in model.modules() if isinstance(m, PackedNetwork)]
    if networks:
        return networks[0].capacity()
    packnet = [m for m in model.modules() if isinstance(m, WeightAndBiasPackNetModule)]
    if not packnet:
        return None
    return ownership_capacity(
        [m.task_index for m in packnet],
        tasks=tasks,
        first_task_code=0,
    )


def model_cap(model: nn.Module, *, tasks: int) -> float | None:
    """The WSN paper's CAP of `model` after `tasks` tasks, one definition for every mask
    method (`clearn.mask_capacity`): weights used by any task plus the masks' storage, as
    shares of the dense float32 network; None for a model that does not mask tasks."""
    for module in model.modules():
        if isinstance(module, PackedNetwork):
            return network_mask_capacity(module)
        if isinstance(module, HatNetwork):
            return hat_capacity(module)
    packnet = [m for m in model.modules() if isinstance(m, WeightAndBiasPackNetModule)]
    if not packnet:
        return None
    return ownership_mask_capacity([m.task_index for m in packnet], tasks=tasks, first_task_code=0)


class CapacityMetric(PluginMetric[float]):
    """After each training experience: `Capacity/CAP` (the WSN paper's, every mask method),
    `Capacity/used`, `Capacity/free`, and for the task
    just trained `Capacity/owned/TaskNNN` (share of the network it owns) and, under a
    PackingPlugin, `Capacity/kept/TaskNNN` (share of the weights it trained that it kept)."""

    def __init__(self) -> None:
        super().__init__()
        self._capacity: Capacity | None = None

    def reset(self) -> None:
        self._capacity = None

    def result(self) -> float | None:
        return None if self._capacity is None else self._capacity.used

    def after_training_exp(self, strategy) -> list[MetricValue]:
        task = task_label(strategy.experience)  # tasks come in order: 0..task are trained
        self._capacity = model_capacity(strategy.model, tasks=task + 1)
        cap = model_cap(strategy.model, tasks=task + 1)
        step = strategy.clock.train_iterations
        values = [] if cap is None else [MetricValue(self, CAPACITY_CAP, cap, step)]
        if self._capacity is None:
            return values
        values += [
            MetricValue(self, CAPACITY_USED, self._capacity.used, step),
            MetricValue(self, CAPACITY_FREE, self._capacity.free, step),
        ]
        if task < len(self._capacity.owned):
            owned = self._capacity.owned[task]
            values.append(MetricValue(self, task_owned_key(task), owned, step))
        packing = [p for p in strategy.plugins if isinstance(p, PackingPlugin)]
        if packing and packing[0].reports:
            kept = packing[0].reports[-1].kept_of_trained
            values.append(MetricValue(self, task_kept_key(task), kept, step))
        return values

    def __str__(self) -> str:
        return "Capacity"


def capacity_metrics() -> list[PluginMetric]:
    """The capacity metrics, for `EvaluationPlugin(*capacity_metrics(), ...)`."""
    return [CapacityMetric()]
