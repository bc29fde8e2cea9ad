"""Avalanche plugin: WSN or SupSup training over a SubnetNetwork, one task per experience."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from avalanche.core import SupervisedPlugin
from torch import nn

from clearn.frozen import zero_gradient_moves_nothing
from clearn.mask_capacity import subnet_mask_capacity
from clearn.subnet_network import SubnetNetwork
from clearn.subnet_training import SubnetTrainer
from strategies.experience import task_label
from strategies.input_statistics import record_training_inputs
from strategies.model_lookup import the_one

__all__ = ["SubnetPlugin", "SubnetReport"]


@dataclass(frozen=True)
class SubnetReport:
    """What training one task gave."""

    task: int
    selected_fraction: float
    """Share of the masked weights the task's mask selects (the density, up to rounding)."""
    new_fraction: float
    """Share of the masked weights no earlier task had selected, selected by this one."""
    free_fraction: float
    """Share no task has selected yet."""
    cap: float
    """The WSN paper's CAP after this task (`clearn.mask_capacity`)."""


class SubnetPlugin(SupervisedPlugin):
    """Trains each experience's task on its live mask, then stores the mask.

    The strategy's model must be (or hold exactly one) `SubnetNetwork`; its `method` says
    WSN or SupSup. Each experience: `begin_task` before training, the frozen entries kept bit
    for bit around every optimizer step (their gradients zeroed under plain SGD, else written
    back after the step), the task's input statistics recorded (task inference "inputs") and
    its mask stored after training. `reports` says per task what it selected.
    """

    def __init__(self, *, seed: int = 0) -> None:
        super().__init__()
        self.seed = seed
        self.network: SubnetNetwork | None = None
        """The strategy's model, found at the first experience."""
        self.trainer: SubnetTrainer | None = None
        self.reports: list[SubnetReport] = []
        self._pending_state: dict | None = None
        self._zeroed = False

    def attach(self, model: nn.Module) -> SubnetTrainer:
        """Find the SubnetNetwork in `model` (the strategy's) and drive it from now on."""
        network = the_one(
            model, SubnetNetwork, needed_by="SubnetPlugin trains",
            build="strategies.SubnetTaskNetwork(backbone=..., method=...)",
        )
        if self.network is not network:
            self.network = network
            self.trainer = SubnetTrainer(self.network, seed=self.seed)
            if self._pending_state is not None:
                self.load_state_dict(self._pending_state)
        return self.trainer

    def state_dict(self) -> dict:
        """The trainer's state and the reports so far: tensors and plain data only."""
        return {
            "trainer": self.trainer.state_dict() if self.trainer else None,
            "reports": [dataclasses.asdict(r) for r in self.reports],
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore `state_dict`'s; the trainer's part waits for the network if not attached."""
        self.reports = [SubnetReport(**r) for r in state["reports"]]
        if self.trainer is None:
            self._pending_state = state
        elif state["trainer"] is not None:
            self.trainer.load_state_dict(state["trainer"])
            self._pending_state = None

    def before_training_exp(self, strategy, **kwargs) -> None:
        self.attach(strategy.model).begin_task(task_label(strategy.experience))

    def before_update(self, strategy, **kwargs) -> None:
        self._zeroed = zero_gradient_moves_nothing(strategy.optimizer)
        if self._zeroed:
            self.trainer.zero_frozen_gradients()

    def after_update(self, strategy, **kwargs) -> None:
        self.trainer.restore_frozen(parameters=not self._zeroed)

    def after_training_exp(self, strategy, **kwargs) -> None:
        task = self.trainer.task
        record_training_inputs(self.network, task, strategy.dataloader)
        masks = self.trainer.end_task()
        total = sum(mask.numel() for mask in masks.values())
        capacity = self.network.capacity()
        report = SubnetReport(
            task=task,
            selected_fraction=sum(int(mask.sum()) for mask in masks.values()) / total,
            new_fraction=capacity.owned[task],
            free_fraction=capacity.free,
            cap=subnet_mask_capacity(self.network),
        )
        self.reports.append(report)
