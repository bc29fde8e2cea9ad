"""EfficientPackNet as an Avalanche strategy: one model, one strategy, like Avalanche's PackNet."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from avalanche.core import BasePlugin
from avalanche.training.plugins.evaluation import default_evaluator
from avalanche.training.templates import SupervisedTemplate
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from clearn.defaults import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_EVAL_BATCH_SIZE,
    DEFAULT_GAMMA,
    DEFAULT_INIT_SCALE,
    DEFAULT_MAX_EPOCHS,
    DEFAULT_PATIENCE,
    DEFAULT_PRUNE_FRACTION,
    DEFAULT_RETRAIN_EPOCHS,
    DEFAULT_VALIDATION_SHARE,
)
from clearn.packing import TrainLayers
from clearn.pruning import DEFAULT_SCOPE, Scope
from clearn.task_pruning import PackMode
from strategies.avalanche_compat import TaskAwareForward
from strategies.callback_dispatch import ListenedCallbacks
from strategies.distributed import (
    broadcast_from_rank_0,
    check_same_on_every_rank,
    is_distributed,
)
from strategies.epn import PackingPlugin
from strategies.task_model import TaskNetwork

__all__ = ["EfficientPackNet"]


class EfficientPackNet(ListenedCallbacks, TaskAwareForward, SupervisedTemplate):
    """Trains each experience on the free weights of `model`, prunes it to the fewest weights
    that keep `gamma` of its validation accuracy, and freezes them as the task's own.

    `model` is a `strategies.TaskNetwork`; it grows a head per task label. Validation data:
    `valid_stream` when given, else a seeded `validation_share` of each training experience
    (stated in the log). `train_epochs` is a cap: each task stops once its validation loss
    has not improved for `patience` epochs. `mode="packnet"` prunes a fixed `prune_fraction`
    instead (classic PackNet on the same mechanism). `task_budget`, the number of tasks the
    network must hold, caps what each task keeps so that free weights remain for every one
    (`clearn.task_pruning.PruningRule`); each report says what the budget allowed and
    whether it bound. `train_layers="first"` has each task after the first train only the
    first masked layer, reusing the deeper weights earlier tasks own. It is Avalanche's
    `SupervisedTemplate`
    with four plugins ahead of the user's: the validation hold-out (`ValidationSplitPlugin`),
    the epoch budget (`PlateauBudgetPlugin`, both shared with the baselines), the packing
    (`self.packing`, whose `reports` say per task what it kept, owns and how long it
    trained) and the input statistics (`InputStatisticsPlugin`). Per-iteration
    callbacks reach only the plugins that act on them (`ListenedCallbacks`). Other arguments
    are Avalanche's `SupervisedTemplate`'s (any other keyword it takes, such as
    `peval_mode`, passes through); every default is `clearn run`'s. The model always gets
    each minibatch's task labels, on every Avalanche benchmark (`TaskAwareForward`).

    In a torch.distributed process group of several processes (`torchrun`), each experience
    trains data-parallel: the model wrapped in `DistributedDataParallel`, each process on
    its part of every batch (`TensorLoaderPlugin`), validation and the pruning search run
    alike on every process; after each task the masks and weights are checked equal on
    every process (`RanksDivergedError` otherwise).
    """

    def __init__(
        self,
        *,
        model: TaskNetwork,
        optimizer: torch.optim.Optimizer,
        criterion: nn.Module | None = None,
        train_mb_size: int = DEFAULT_BATCH_SIZE,
        train_epochs: int = DEFAULT_MAX_EPOCHS,
        eval_mb_size: int = DEFAULT_EVAL_BATCH_SIZE,
        device: str | torch.device = "cpu",
        plugins: Sequence[BasePlugin] | None = None,
        evaluator=default_evaluator,
        eval_every: int = -1,
        # PackingPlugin's options, named one by one: Avalanche's templates reject keyword
        # arguments that their signatures do not list, so they cannot pass as **options.
        valid_stream=None,
        validation_share: float = DEFAULT_VALIDATION_SHARE,
        mode: PackMode = "epn",
        gamma: float = DEFAULT_GAMMA,
        prune_fraction: float = DEFAULT_PRUNE_FRACTION,
        task_budget: int | None = None,
        retrain_epochs: int = DEFAULT_RETRAIN_EPOCHS,
        patience: int | None = DEFAULT_PATIENCE,
        scope: Scope = DEFAULT_SCOPE,
        init_scale: float = DEFAULT_INIT_SCALE,
        redraw_free: bool = True,
        train_layers: TrainLayers = "all",
        allow_frozen_features: bool = False,
        seed: int = 0,
        verbose: bool = False,
        **base_kwargs,
    ) -> None:
        if not isinstance(model, TaskNetwork):
            raise ValueError(
                f"EfficientPackNet trains a strategies.TaskNetwork, got "
                f"{type(model).__name__}: wrap the backbone as TaskNetwork(backbone=...)"
            )
        self.packing = PackingPlugin(
            valid_stream=valid_stream, validation_share=validation_share, mode=mode,
            gamma=gamma, prune_fraction=prune_fraction, task_budget=task_budget,
            retrain_epochs=retrain_epochs,
            patience=patience, scope=scope, allow_frozen_features=allow_frozen_features,
            seed=seed, init_scale=init_scale, redraw_free=redraw_free,
            train_layers=train_layers, verbose=verbose,
        )  # fmt: skip
        super().__init__(
            model=model,
            optimizer=optimizer,
            criterion=criterion if criterion is not None else nn.CrossEntropyLoss(),
            train_mb_size=train_mb_size,
            train_epochs=train_epochs,
            eval_mb_size=eval_mb_size,
            device=device,
            plugins=[
                self.packing.validation_split,
                self.packing.budget,
                self.packing,
                self.packing.input_statistics,
                *(plugins or []),
            ],
            evaluator=evaluator,
            eval_every=eval_every,
            **base_kwargs,
        )
        self._replica: DistributedDataParallel | None = None
        """The model wrapped for data-parallel training, during an experience."""

    def _before_training_exp(self, **kwargs) -> None:
        super()._before_training_exp(**kwargs)
        if is_distributed():
            # Built per experience, once Avalanche's adaptation has added the task's head.
            # Other tasks' heads take no gradient: find_unused_parameters.
            devices = [self.device] if self.device.type == "cuda" else None
            self._replica = DistributedDataParallel(
                self.model, device_ids=devices, find_unused_parameters=True
            )

    def forward(self):
        if self.is_training and self._replica is not None:
            return self._replica(self.mb_x, self.mb_task_id)
        return super().forward()

    def _after_training_exp(self, **kwargs) -> None:
        super()._after_training_exp(**kwargs)
        if self._replica is not None:
            self._replica = None
            task = self.packing.reports[-1].task
            # Each process fitted the input model on its own part of the data: rank 0's is
            # kept on every process, so that every process infers tasks alike.
            density = self.model.input_density
            entry = density.task_entry(task)
            sent = broadcast_from_rank_0(list(entry.values()), device=self.device)
            density.set_task_entry(task, dict(zip(entry, sent, strict=True)))
            check_same_on_every_rank(
                {
                    **{f"{n}.owner": m.owner for n, m in self.model.masks.items()},
                    **dict(self.model.named_parameters()),
                },
                what=f"the task masks and weights after task {task}",
            )
