"""HAT's task lifecycle on a HatNetwork (Serrà et al., ICML 2018): anneal s, regularise the
attention, mask the gradients of weights earlier tasks attend to, compensate and clamp the
embeddings, and fold each trained task into the cumulative gates.

`HatTrainer` is a small state machine, IDLE → TRAINING → IDLE, one round per task.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from clearn.hat_masks import weight_factors
from clearn.hat_network import DEFAULT_S_MAX, HatNetwork
from clearn.packing import PhaseError
from clearn.unit_gates import annealed_scale

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_C",
    "DEFAULT_LR",
    "DEFAULT_LR_FACTOR",
    "DEFAULT_LR_MIN",
    "DEFAULT_LR_PATIENCE",
    "DEFAULT_MAX_EPOCHS",
    "DEFAULT_S_MAX",
    "THRES_COSH",
    "THRES_EMB",
    "HatTrainer",
    "LrPlateau",
    "check_options",
    "compensation_factor",
]

# HAT's defaults: joansj/hat src/approaches/hat.py (Appr) and src/run.py (nepochs, lr).
DEFAULT_C = 0.75
DEFAULT_LR = 0.05
DEFAULT_LR_FACTOR = 3.0
DEFAULT_LR_PATIENCE = 5
DEFAULT_LR_MIN = 1e-4
DEFAULT_MAX_EPOCHS = 200
DEFAULT_BATCH_SIZE = 64
THRES_COSH = 50.0
THRES_EMB = 6.0


def compensation_factor(embedding: Tensor, scale: float, s_max: float) -> Tensor:
    """HAT's embedding-gradient compensation, s_max·[cosh(clamp(s·e, ±50)) + 1] / (s·[cosh(e)
    + 1]) (the paper's eq. 8 and the official code: the denominator's cosh is of e, not s·e),
    which makes ∂L/∂e as if the gate were σ(e) scaled by s_max, whatever s is."""
    numerator = torch.cosh(torch.clamp(scale * embedding, -THRES_COSH, THRES_COSH)) + 1
    return s_max / scale * numerator / (torch.cosh(embedding) + 1)


def check_options(*, c: float, thres_emb: float) -> None:
    """ValueError unless the regulariser's c is ≥ 0 and the embedding clamp positive."""
    if not c >= 0:
        raise ValueError(f"the attention regulariser's c must be ≥ 0 (HAT's is 0.75), got {c}")
    if not thres_emb > 0:
        raise ValueError(f"thres_emb must be positive (HAT's is 6), got {thres_emb}")


@dataclass
class LrPlateau:
    """HAT's step-size schedule: divided by `factor` after `patience` epochs without a lower
    validation loss; training stops once it falls below `lr_min`."""

    lr: float = DEFAULT_LR
    factor: float = DEFAULT_LR_FACTOR
    patience: int = DEFAULT_LR_PATIENCE
    lr_min: float = DEFAULT_LR_MIN
    best: float = math.inf
    _wait: int = 0

    def after_epoch(self, loss: float) -> tuple[bool, bool]:
        """Record an epoch's validation loss; return (improved, stop)."""
        if loss < self.best:
            self.best, self._wait = loss, 0
            return True, False
        self._wait += 1
        if self._wait < self.patience:
            return False, False
        self.lr /= self.factor
        self._wait = 0
        return False, self.lr < self.lr_min


class HatTrainer:
    """Drives a HatNetwork through one task after another (tasks in order 0, 1, 2, …).

    While task t trains (phase TRAINING): `set_step` before each batch, `regulariser()` added
    to the loss, `mask_gradients` between the backward pass and the step, `after_step` after
    it. The weights whose gradient factor is exactly 0 (both units' cumulative gates exactly
    1.0 in float32) are frozen bit for bit: under plain SGD the masked gradient moves nothing;
    under any other optimizer `after_step(restore=True)` writes them back (momentum and weight
    decay would move them). Weights with a factor in (0, 1) move by that share of SGD's step
    (Adam-type optimizers normalise that share away: HAT is an SGD method).
    """

    def __init__(
        self,
        network: HatNetwork,
        *,
        c: float = DEFAULT_C,
        thres_emb: float = THRES_EMB,
    ) -> None:
        check_options(c=c, thres_emb=thres_emb)
        self.network = network
        self.c = float(c)
        self.thres_emb = float(thres_emb)
        self.task: int | None = None
        """Task being trained; None when idle."""
        self._factors: dict[str, tuple[Tensor, Tensor | None]] | None = None
        self._frozen: list[tuple[Tensor, Tensor, Tensor]] | None = None
        """(parameter, flat indices, values) of the entries whose factor is exactly 0."""

    def _require_training(self) -> int:
        if self.task is None:
            raise PhaseError("this step needs a task in training: call begin_task first")
        return self.task

    def begin_task(self, task: int) -> None:
        """IDLE → TRAINING for task `task` (the next untrained one)."""
        if self.task is not None:
            raise PhaseError(f"task {self.task} is still training: call end_task first")
        network = self.network
        if task != network.trained_tasks or task >= network.n_tasks:
            raise ValueError(
                f"tasks train in order and need a head: expected task {network.trained_tasks} "
                f"of {network.n_tasks}, got {task}"
            )
        for norm in network.norms.values():
            norm.start(task)
        self.task = network.training_task = task
        self._factors = self._frozen = None

    def set_step(self, step: int, steps: int) -> float:
        """Anneal s for batch `step` (0-based) of `steps` in the epoch; return it."""
        self._require_training()
        self.network.scale = annealed_scale(step, steps, self.network.s_max)
        return self.network.scale

    def regulariser(self) -> Tensor:
        """c·Σ a_t·(1 − a_<t) / Σ (1 − a_<t) over every gated unit, at the current s."""
        task = self._require_training()
        used = total = 0
        for gate in self.network.gates.values():
            free = 1.0 - gate.cumulative
            used = used + (gate.gate(task, self.network.scale) * free).sum()
            total = total + free.sum()
        return self.c * used / total.clamp_min(1e-12)

    @torch.no_grad()
    def _prepare(self) -> None:
        """The gradient factors and the frozen entries, once per task (first step)."""
        network = self.network
        if network.sources is None:
            raise PhaseError("mask_gradients needs a forward pass of the task first")
        self._factors, self._frozen = weight_factors(network), []
        for name, (weight_factor, bias_factor) in self._factors.items():
            layer = network.layers[name]
            pairs = [(layer.weight, weight_factor), (layer.bias, bias_factor)]
            for parameter, factor in pairs:
                if parameter is None:
                    continue
                index = (factor == 0).flatten().nonzero().squeeze(1)
                if len(index):
                    values = parameter.detach().flatten()[index].clone()
                    self._frozen.append((parameter, index, values))

    @torch.no_grad()
    def mask_gradients(self) -> None:
        """Multiply each gated layer's weight (bias) gradient by 1 − min(a_<t,i, a_<t,j)
        (1 − a_<t,i) — from the second task on — and compensate the embedding gradient."""
        task = self._require_training()
        network = self.network
        if task > 0:
            if self._factors is None:
                self._prepare()
            for name, (weight_factor, bias_factor) in self._factors.items():
                layer = network.layers[name]
                if layer.weight.grad is not None:
                    layer.weight.grad.mul_(weight_factor)
                if bias_factor is not None and layer.bias.grad is not None:
                    layer.bias.grad.mul_(bias_factor)
        for gate in network.gates.values():
            embedding = gate.embeddings[task]
            if embedding.grad is not None:
                embedding.grad.mul_(compensation_factor(embedding, network.scale, network.s_max))

    @torch.no_grad()
    def after_step(self, *, restore: bool) -> None:
        """Clamp the task's embeddings to ±thres_emb; with `restore`, write the weights
        whose gradient factor is 0 back (an optimizer other than plain SGD may move them)."""
        task = self._require_training()
        for gate in self.network.gates.values():
            gate.embeddings[task].clamp_(-self.thres_emb, self.thres_emb)
        if restore and self._frozen:
            for parameter, index, values in self._frozen:
                parameter.view(-1).index_copy_(0, index, values)

    @torch.no_grad()
    def end_task(self) -> None:
        """TRAINING → IDLE: a_≤t = max(a_<t, σ(s_max·e_t)); the task answers queries."""
        task = self._require_training()
        network = self.network
        for gate in network.gates.values():
            torch.maximum(gate.cumulative, gate.gate(task, network.s_max), out=gate.cumulative)
        network.trained_tasks = task + 1
        network.training_task = None
        network.scale = network.s_max
        self.task = self._factors = self._frozen = None
