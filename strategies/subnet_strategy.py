"""The template WSN and SupSup share: SupervisedTemplate with the SubnetPlugin in front."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from avalanche.core import BasePlugin
from avalanche.training.plugins.evaluation import default_evaluator
from avalanche.training.templates import SupervisedTemplate
from torch import nn

from clearn.defaults import DEFAULT_EVAL_BATCH_SIZE, DEFAULT_PATIENCE, DEFAULT_VALIDATION_SHARE
from clearn.subnet_network import SubnetMethod, SubnetNetwork
from clearn.subnet_training import paper_optimizer
from strategies.avalanche_compat import TaskAwareForward
from strategies.callback_dispatch import ListenedCallbacks
from strategies.plateau_stop import PlateauBudgetPlugin
from strategies.subnet_plugin import SubnetPlugin
from strategies.validation_split import ValidationSplitPlugin

__all__ = ["SubnetStrategy"]


class SubnetStrategy(ListenedCallbacks, TaskAwareForward, SupervisedTemplate):
    """Trains each experience's task on its own binary mask of `model`'s weights.

    `model` is a `strategies.SubnetTaskNetwork` built with this strategy's `method`;
    `optimizer` None takes the paper's (`clearn.subnet_training.paper_optimizer`). The
    optimizer's state is reset before every experience (a fresh optimizer per task, as both
    papers' code). `patience` None trains every one of `train_epochs`; a number stops a task
    once its validation loss has not improved for that many epochs (`PlateauBudgetPlugin`
    over a `ValidationSplitPlugin`: `valid_stream`, else a seeded `validation_share` held
    out of each experience). The mask plugin is `self.subnet`; its `reports` say per task
    what it selected and the CAP. Other arguments are Avalanche's `SupervisedTemplate`'s.
    """

    method: SubnetMethod
    default_batch_size: int
    """`train_mb_size` when none is given: the method's paper's."""
    default_epochs: int
    """`train_epochs` when none is given: the method's paper's."""

    def __init__(
        self,
        *,
        model: SubnetNetwork,
        optimizer: torch.optim.Optimizer | None = None,
        criterion: nn.Module | None = None,
        train_mb_size: int | None = None,
        train_epochs: int | None = None,
        eval_mb_size: int = DEFAULT_EVAL_BATCH_SIZE,
        device: str | torch.device = "cpu",
        plugins: Sequence[BasePlugin] | None = None,
        evaluator=default_evaluator,
        eval_every: int = -1,
        valid_stream=None,
        validation_share: float = DEFAULT_VALIDATION_SHARE,
        patience: int | None = None,
        seed: int = 0,
        **base_kwargs,
    ) -> None:
        name = type(self).__name__
        if not isinstance(model, SubnetNetwork) or model.method != self.method:
            raise ValueError(
                f"{name} trains a strategies.SubnetTaskNetwork(backbone=..., "
                f"method={self.method!r}), got {type(model).__name__}"
                + (f" of method {model.method!r}" if isinstance(model, SubnetNetwork) else "")
            )
        if patience is not None and (isinstance(patience, bool) or patience < 1):
            raise ValueError(
                f"patience must be a positive number of epochs (e.g. {DEFAULT_PATIENCE}) or "
                f"None to train every epoch, got {patience!r}"
            )
        self.subnet = SubnetPlugin(seed=seed)
        extra: list[BasePlugin] = [self.subnet]
        if patience is not None:
            split = ValidationSplitPlugin(valid_stream, share=validation_share, seed=seed)
            extra += [split, PlateauBudgetPlugin(split.data, patience=patience)]
        super().__init__(
            model=model,
            optimizer=optimizer or paper_optimizer(model.parameters(), self.method),
            criterion=criterion if criterion is not None else nn.CrossEntropyLoss(),
            train_mb_size=self.default_batch_size if train_mb_size is None else train_mb_size,
            train_epochs=self.default_epochs if train_epochs is None else train_epochs,
            eval_mb_size=eval_mb_size,
            device=device,
            plugins=[*extra, *(plugins or [])],
            evaluator=evaluator,
            eval_every=eval_every,
            **base_kwargs,
        )

    def make_optimizer(self, reset_optimizer_state: bool = False, **kwargs) -> None:
        """Every experience starts with a fresh optimizer state (moments, steps)."""
        super().make_optimizer(reset_optimizer_state=True, **kwargs)
