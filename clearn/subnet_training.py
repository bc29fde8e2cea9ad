"""The task lifecycle of a SubnetNetwork (WSN, SupSup): train scores (and free weights), store
the task's mask, move on.

`SubnetTrainer` is a small state machine, IDLE → TRAINING → IDLE, one round per task. While
task t trains, what must not change is frozen bit for bit whatever the optimizer (momentum,
weight decay, Adam/AdamW state) by `frozen.TaskFreeze`: under WSN the weights selected by
M_{t−1} = m_0 ∨ … ∨ m_{t−1}, under SupSup every weight; the other tasks' heads; shared
BatchNorm parameters and statistics after the first task (own ones with `per_task_norm`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import torch
from torch import nn

from clearn.frozen import TaskFreeze
from clearn.packing import Phase, PhaseError
from clearn.subnet_network import SubnetMethod, SubnetNetwork

__all__ = [
    "DEFAULT_SUPSUP_BATCH_SIZE",
    "DEFAULT_SUPSUP_EPOCHS",
    "DEFAULT_SUPSUP_LR",
    "DEFAULT_WSN_BATCH_SIZE",
    "DEFAULT_WSN_EPOCHS",
    "DEFAULT_WSN_LR",
    "SUPSUP_PMNIST_LR",
    "SubnetTrainer",
    "paper_optimizer",
]

DEFAULT_WSN_LR = 1e-3  # WSN scripts/wsn/*.sh: --optim adam --lr 1e-3, re-created per task
DEFAULT_SUPSUP_LR = 1e-3  # SupSup GG split CIFAR-100 (rn18-supsup.yaml): adam, lr 0.001
SUPSUP_PMNIST_LR = 1e-4  # SupSup long PMNIST (LeNet-250-tasks): rmsprop, lr 1e-4
DEFAULT_WSN_BATCH_SIZE = 10  # WSN scripts/wsn/wsn_pmnist.sh: --batch_size_train 10
DEFAULT_WSN_EPOCHS = 5  # WSN main_wsn_pmnist.py: --n_epochs 5
DEFAULT_SUPSUP_BATCH_SIZE = 128  # SupSup rn18-supsup.yaml (GG split CIFAR-100): batch_size 128
DEFAULT_SUPSUP_EPOCHS = 100  # SupSup rn18-supsup.yaml: epochs 100


def paper_optimizer(
    parameters: Iterable[nn.Parameter],
    method: SubnetMethod,
    *,
    protocol: Literal["cifar", "pmnist"] = "cifar",
) -> torch.optim.Optimizer:
    """The paper's optimizer: WSN Adam lr 1e-3 (both protocols); SupSup Adam lr 1e-3 (split
    CIFAR-100, "cifar") or RMSprop lr 1e-4 (its long permuted-MNIST run, "pmnist")."""
    if protocol not in ("cifar", "pmnist"):
        raise ValueError(f"protocol must be 'cifar' or 'pmnist', got {protocol!r}")
    parameters = [p for p in parameters if p.requires_grad]
    if method == "supsup" and protocol == "pmnist":
        return torch.optim.RMSprop(parameters, lr=SUPSUP_PMNIST_LR)
    if method not in ("wsn", "supsup"):
        raise ValueError(f"method must be 'wsn' or 'supsup', got {method!r}")
    return torch.optim.Adam(parameters, lr=DEFAULT_WSN_LR if method == "wsn" else DEFAULT_SUPSUP_LR)


class SubnetTrainer:
    """Drives a SubnetNetwork through its tasks: `begin_task`, after every optimizer step
    `restore_frozen` (or `zero_frozen_gradients` before it under plain SGD), `end_task`.

    Scores: WSN keeps them across tasks (its paper: re-initialising per task is worse);
    SupSup draws fresh ones for every task, each task having its own scores in its code.
    """

    def __init__(self, network: SubnetNetwork, *, seed: int = 0) -> None:
        if not isinstance(network, SubnetNetwork):
            raise ValueError(
                f"SubnetTrainer trains a SubnetNetwork, got {type(network).__name__}: build "
                f"the model as SubnetNetwork(backbone=..., method=...)"
            )
        self.network = network
        self.phase = Phase.IDLE
        self.task: int | None = None
        """Task being trained (0-based), None when idle."""
        self._generator = torch.Generator().manual_seed(seed)
        self._frozen = TaskFreeze()

    def _require(self, phase: Phase) -> None:
        if self.phase is not phase:
            raise PhaseError(
                f"this step needs phase {phase.value}; the trainer is {self.phase.value}"
            )

    def begin_task(self, task: int) -> None:
        """IDLE → TRAINING: task `task` (the next in order) trains on its live mask."""
        self._require(Phase.IDLE)
        network = self.network
        if task != network.trained_tasks:
            raise ValueError(
                f"tasks are trained in order: expected task {network.trained_tasks}, got {task}"
            )
        if task >= network.n_tasks:
            raise ValueError(f"the network has {network.n_tasks} heads; task {task} has none")
        if network.method == "supsup" and task > 0:
            for mask in network.masks.values():
                mask.reset_scores(self._generator)
        for norm in network.norms.values():
            norm.start(task)
        if network.method == "wsn":  # its earlier tasks' weights; SupSup freezes them all
            frozen = network.used_masks(task)
        else:
            weights = network.masked_weights()
            frozen = {name: torch.ones_like(w, dtype=torch.bool) for name, w in weights.items()}
        self._frozen = TaskFreeze.for_task(network, task, frozen)
        self.task, self.phase = task, Phase.TRAINING
        network.training_task = task
        network.show_free_weights(True)

    @torch.no_grad()
    def restore_frozen(self, *, parameters: bool = True) -> None:
        """Write the frozen values back (after every optimizer step). Phase TRAINING.
        `parameters=False` writes back only buffers, after `zero_frozen_gradients`."""
        self._require(Phase.TRAINING)
        self._frozen.restore(parameters=parameters)

    @torch.no_grad()
    def zero_frozen_gradients(self) -> None:
        """Frozen entries' gradients to +0.0 (between backward and step). Phase TRAINING."""
        self._require(Phase.TRAINING)
        self._frozen.zero_gradients()

    def end_task(self) -> dict[str, torch.Tensor]:
        """TRAINING → IDLE: store the task's mask m_t (top share of |s| per layer); under WSN
        M_t = M_{t−1} ∨ m_t. The task answers queries from now on. Returns m_t by layer."""
        self._require(Phase.TRAINING)
        masks = {name: mask.store(self.task) for name, mask in self.network.masks.items()}
        self.network.trained_tasks = self.task + 1
        self.network.training_task = None
        self.network.show_free_weights(False)
        self._frozen.release()
        self._frozen = TaskFreeze()
        self.task, self.phase = None, Phase.IDLE
        return masks

    def state_dict(self) -> dict:
        """The trainer's own state (the score generator), tensors only. Phase IDLE."""
        if self.phase is not Phase.IDLE:
            raise PhaseError("save between tasks: the trainer is in the middle of a task")
        return {"generator": self._generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        """Restore what `state_dict` saved. Phase IDLE."""
        self._require(Phase.IDLE)
        self._generator.set_state(state["generator"])
