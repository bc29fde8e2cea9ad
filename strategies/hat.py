"""Avalanche side of HAT (Serrà et al., ICML 2018): its plugins and the `HAT` strategy."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from avalanche.core import BasePlugin, SupervisedPlugin
from avalanche.training.plugins.evaluation import default_evaluator
from avalanche.training.templates import SupervisedTemplate
from torch import nn

from clearn.defaults import DEFAULT_EVAL_BATCH_SIZE, DEFAULT_VALIDATION_SHARE
from clearn.frozen import zero_gradient_moves_nothing
from clearn.hat import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_C,
    DEFAULT_LR,
    DEFAULT_LR_FACTOR,
    DEFAULT_LR_MIN,
    DEFAULT_LR_PATIENCE,
    DEFAULT_MAX_EPOCHS,
    THRES_EMB,
    HatTrainer,
    LrPlateau,
    check_options,
)
from clearn.hat_masks import hat_capacity
from clearn.hat_network import HatNetwork as _CoreHatNetwork
from strategies.avalanche_compat import TaskAwareForward
from strategies.callback_dispatch import ListenedCallbacks
from strategies.experience import task_label
from strategies.hat_model import HatNetwork
from strategies.model_lookup import the_one
from strategies.plateau_stop import stop_after_this_epoch
from strategies.validation import ValidationData

__all__ = ["HAT", "HatLrPlugin", "HatPlugin"]


def _find_network(model: nn.Module) -> _CoreHatNetwork:
    return the_one(
        model, _CoreHatNetwork, needed_by="HAT trains",
        build="strategies.HatNetwork(backbone=...)",
    )


class HatPlugin(SupervisedPlugin):
    """HAT's mechanism for any SGD template: s annealed per batch, the attention regulariser
    added to the loss, gradients masked and embedding gradients compensated after the
    backward pass, embeddings clamped (and exactly frozen weights written back, under an
    optimizer other than plain SGD) after the update, cumulative gates after each
    experience. Each callback calls one `clearn.hat.HatTrainer` method."""

    def __init__(self, *, c: float = DEFAULT_C, thres_emb: float = THRES_EMB) -> None:
        super().__init__()
        self._options = {"c": c, "thres_emb": thres_emb}
        check_options(c=c, thres_emb=thres_emb)
        self.trainer: HatTrainer | None = None
        self.capacity: list[float] = []
        """The network's CAP (`hat_capacity`) after each task."""
        self._steps = 1
        self._restore = False

    def state_dict(self) -> dict:
        return {"capacity": list(self.capacity)}

    def load_state_dict(self, state: dict) -> None:
        self.capacity = [float(value) for value in state["capacity"]]

    def before_training_exp(self, strategy, **kwargs) -> None:
        network = _find_network(strategy.model)
        if self.trainer is None or self.trainer.network is not network:
            self.trainer = HatTrainer(network, **self._options)
        self.trainer.begin_task(task_label(strategy.experience))

    def before_training_epoch(self, strategy, **kwargs) -> None:
        self._steps = max(len(strategy.dataloader), 1)

    def before_training_iteration(self, strategy, **kwargs) -> None:
        step = min(strategy.clock.train_epoch_iterations, self._steps - 1)
        self.trainer.set_step(step, self._steps)

    def before_backward(self, strategy, **kwargs) -> None:
        strategy.loss = strategy.loss + self.trainer.regulariser()

    def after_backward(self, strategy, **kwargs) -> None:
        self.trainer.mask_gradients()

    def before_update(self, strategy, **kwargs) -> None:
        self._restore = not zero_gradient_moves_nothing(strategy.optimizer)

    def after_update(self, strategy, **kwargs) -> None:
        self.trainer.after_step(restore=self._restore)

    def after_training_exp(self, strategy, **kwargs) -> None:
        self.trainer.end_task()
        self.capacity.append(hat_capacity(self.trainer.network))


class HatLrPlugin(SupervisedPlugin):
    """HAT's training schedule: each task starts at `lr`, divided by `lr_factor` after
    `lr_patience` epochs without a lower validation loss, stopped once below `lr_min` (the
    strategy's `train_epochs` is the cap); the task ends with its best-validation weights
    (`restore_best`, as HAT's code). Put it before `HatPlugin`, which then folds the
    restored gates into the cumulative ones. Validation data: the `valid_stream`
    experience with the task's label, else a seeded `validation_share` held out."""

    def __init__(
        self,
        *,
        valid_stream=None,
        validation_share: float = DEFAULT_VALIDATION_SHARE,
        lr: float = DEFAULT_LR,
        lr_factor: float = DEFAULT_LR_FACTOR,
        lr_patience: int = DEFAULT_LR_PATIENCE,
        lr_min: float = DEFAULT_LR_MIN,
        restore_best: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not (lr > 0 and lr_factor > 1 and lr_patience >= 1 and lr_min >= 0):
            raise ValueError(
                f"HAT's schedule needs lr > 0, lr_factor > 1, lr_patience ≥ 1 and lr_min ≥ 0 "
                f"(its defaults: 0.05, 3, 5, 1e-4); got {lr}, {lr_factor}, {lr_patience}, "
                f"{lr_min}"
            )
        self.validation = ValidationData(valid_stream, share=validation_share, seed=seed)
        self._schedule = {"lr": lr, "factor": lr_factor, "patience": lr_patience,
                          "lr_min": lr_min}  # fmt: skip
        self.restore_best = restore_best
        self.epochs_trained: dict[int, int] = {}
        self._plateau: LrPlateau | None = None
        self._best: dict | None = None

    def state_dict(self) -> dict:
        return {"epochs_trained": {int(k): int(v) for k, v in self.epochs_trained.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.epochs_trained = {int(k): int(v) for k, v in state["epochs_trained"].items()}

    def _set_lr(self, strategy) -> None:
        for group in strategy.optimizer.param_groups:
            group["lr"] = self._plateau.lr

    def after_train_dataset_adaptation(self, strategy, **kwargs) -> None:
        self.validation.hold_out(strategy)

    def before_training_exp(self, strategy, **kwargs) -> None:
        self._plateau = LrPlateau(**self._schedule)
        self._best = None
        self._set_lr(strategy)

    def after_training_epoch(self, strategy, **kwargs) -> None:
        task = task_label(strategy.experience)
        score = self.validation.score(
            strategy.model, task, batch_size=strategy.eval_mb_size, device=strategy.device
        )
        improved, stop = self._plateau.after_epoch(score.loss)
        if improved and self.restore_best:
            self._best = copy.deepcopy(strategy.model.state_dict())
        self._set_lr(strategy)
        self.epochs_trained[task] = strategy.clock.train_exp_epochs + 1
        if stop:
            stop_after_this_epoch(strategy)

    def after_training_exp(self, strategy, **kwargs) -> None:
        if self._best is not None:
            strategy.model.load_state_dict(self._best)
            self._best = None


class HAT(ListenedCallbacks, TaskAwareForward, SupervisedTemplate):
    """HAT as an Avalanche strategy: one model (`strategies.HatNetwork`), one strategy.

    Every default is HAT's (joansj/hat: SGD lr 0.05 ÷ 3 after 5 epochs without a lower
    validation loss, down to 1e-4, at most 200 epochs, batch 64, c = 0.75; s_max = 400 on
    the network). `optimizer` None: plain SGD at `lr` over the model's parameters. The
    plugins are `self.schedule` (HatLrPlugin) and `self.hat` (HatPlugin, whose `capacity`
    lists the CAP after each task). Other arguments are Avalanche's `SupervisedTemplate`'s.
    """

    def __init__(
        self,
        *,
        model: HatNetwork,
        optimizer: torch.optim.Optimizer | None = None,
        criterion: nn.Module | None = None,
        train_mb_size: int = DEFAULT_BATCH_SIZE,
        train_epochs: int = DEFAULT_MAX_EPOCHS,
        eval_mb_size: int = DEFAULT_EVAL_BATCH_SIZE,
        device: str | torch.device = "cpu",
        plugins: Sequence[BasePlugin] | None = None,
        evaluator=default_evaluator,
        eval_every: int = -1,
        valid_stream=None,
        validation_share: float = DEFAULT_VALIDATION_SHARE,
        c: float = DEFAULT_C,
        lr: float = DEFAULT_LR,
        lr_factor: float = DEFAULT_LR_FACTOR,
        lr_patience: int = DEFAULT_LR_PATIENCE,
        lr_min: float = DEFAULT_LR_MIN,
        restore_best: bool = True,
        thres_emb: float = THRES_EMB,
        seed: int = 0,
        **base_kwargs,
    ) -> None:
        if not isinstance(model, HatNetwork):
            raise ValueError(
                f"HAT trains a strategies.HatNetwork, got {type(model).__name__}: wrap the "
                f"backbone as HatNetwork(backbone=...)"
            )
        self.schedule = HatLrPlugin(
            valid_stream=valid_stream, validation_share=validation_share, lr=lr,
            lr_factor=lr_factor, lr_patience=lr_patience, lr_min=lr_min,
            restore_best=restore_best, seed=seed,
        )  # fmt: skip
        self.hat = HatPlugin(c=c, thres_emb=thres_emb)
        super().__init__(
            model=model,
            optimizer=optimizer or torch.optim.SGD(model.parameters(), lr=lr),
            criterion=criterion if criterion is not None else nn.CrossEntropyLoss(),
            train_mb_size=train_mb_size,
            train_epochs=train_epochs,
            eval_mb_size=eval_mb_size,
            device=device,
            plugins=[self.schedule, self.hat, *(plugins or [])],
            evaluator=evaluator,
            eval_every=eval_every,
            **base_kwargs,
        )
