"""Avalanche plugin: EfficientPackNet (and classic PackNet) over a TaskNetwork."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

from avalanche.core import SupervisedPlugin

from clearn.budget import DEFAULT_PATIENCE, EpochAction, TaskBudget
from clearn.epn import DEFAULT_GAMMA, DEFAULT_INIT_SCALE, DEFAULT_RETRAIN_EPOCHS, check_gamma
from clearn.evaluation import TaskScore, task_accuracy
from clearn.network import TaskNetwork
from clearn.packing import Phase, TaskPacker
from clearn.pruning import Scope
from strategies.plateau_stop import stop_after_this_epoch
from strategies.validation import ValidationData, dataset_batches

__all__ = ["DEFAULT_GAMMA", "PackingPlugin", "TaskReport"]


@dataclass(frozen=True)
class TaskReport:
    """What training and packing one task gave."""

    task: int
    unpruned_val_acc: float | None
    pruned_val_acc: float | None
    kept_of_trained: float
    """Share of the weights the task trained that it keeps."""
    owned_fraction: float
    """Share of the whole backbone the task owns."""
    free_fraction: float
    search_evaluations: int
    epochs_trained: int = 0
    """Epochs trained before pruning (the retraining epochs after it not counted)."""
    under_trained: bool = False
    """True when the epoch cap stopped the task while its validation loss still fell."""
    val_acc_per_epoch: tuple[float, ...] = ()
    """Validation accuracy of the unpruned task after each of its training epochs."""
    retraining_kept: bool = False
    """Whether the task kept its retrained survivors (False: no retraining, or retraining
    lowered validation accuracy and was undone)."""


class PackingPlugin(SupervisedPlugin):
    """Trains each experience on free weights until it stops improving, then prunes and
    freezes its share.

    Each task trains until its validation loss has not improved for `patience` epochs
    (the strategy's `train_epochs` is then a cap; `patience=None` trains every epoch), then
    is pruned: `mode="epn"` searches the kept fraction on the experience's validation data
    (the experience of `valid_stream` with the same task label) so that validation accuracy
    stays ≥ gamma × unpruned; `mode="packnet"` keeps `1 - prune_fraction`. The survivors are
    then retrained for `retrain_epochs` epochs (taken from the cap). A task still improving
    when the cap ends its training is reported `under_trained`. `init_scale` multiplies every
    weight drawn (1 keeps the layer's own PyTorch init). Every default is `clearn run`'s.
    """

    def __init__(
        self,
        network: TaskNetwork,
        *,
        valid_stream=None,
        mode: Literal["epn", "packnet"] = "epn",
        gamma: float = DEFAULT_GAMMA,
        prune_fraction: float = 0.5,
        retrain_epochs: int = DEFAULT_RETRAIN_EPOCHS,
        patience: int | None = DEFAULT_PATIENCE,
        scope: Scope = "layer",
        allow_frozen_features: bool = False,
        seed: int = 0,
        init_scale: float = DEFAULT_INIT_SCALE,
        redraw_free: bool = True,
        verbose: bool = False,
    ) -> None:
        super().__init__()
        if mode not in ("epn", "packnet"):
            raise ValueError(f"mode must be 'epn' or 'packnet', got {mode!r}")
        if mode == "epn" and valid_stream is None:
            raise ValueError("mode='epn' needs valid_stream: validation data for each task")
        if not 0.0 <= prune_fraction < 1.0:
            raise ValueError(f"prune_fraction must be in [0, 1), got {prune_fraction}")
        self.gamma = check_gamma(gamma)
        self.network = network
        self.packer = TaskPacker(
            network, scope=scope, seed=seed, init_scale=init_scale, redraw_free=redraw_free
        )
        self.valid_stream = valid_stream
        self.validation = ValidationData(valid_stream) if valid_stream is not None else None
        self.mode = mode
        self.prune_fraction = prune_fraction
        self.retrain_epochs = retrain_epochs
        self.patience = patience
        self.allow_frozen_features = allow_frozen_features
        self.verbose = verbose
        self.reports: list[TaskReport] = []
        self._budget: TaskBudget | None = None
        self._packed: tuple[float, float | None, float | None, int] | None = None
        """kept, unpruned and pruned validation accuracy, search evaluations of this task."""
        self._val_accuracies: list[float] = []
        self._before_retraining: dict | None = None
        """The network's state right after pruning, while its survivors are retrained."""

    def _validation(self, strategy) -> TaskScore:
        return self.validation.score(
            self.network, self.packer.task, batch_size=strategy.eval_mb_size,
            device=strategy.device,
        )

    def before_training_exp(self, strategy, **kwargs) -> None:
        self.packer.begin_task(
            strategy.experience.task_label, allow_frozen_features=self.allow_frozen_features
        )
        self._budget = TaskBudget(
            max_epochs=strategy.train_epochs,
            retrain_epochs=self.retrain_epochs,
            patience=self.patience if self.validation is not None else None,
        )
        self._packed = None
        self._val_accuracies = []

    def after_update(self, strategy, **kwargs) -> None:
        self.packer.restore_frozen()

    def after_training_epoch(self, strategy, **kwargs) -> None:
        training = self.packer.phase is Phase.TRAINING
        score = None
        if training and self.validation is not None and not self.packer.frozen_features:
            validation = self._validation(strategy)
            score = -validation.loss
            self._val_accuracies.append(validation.accuracy)
        action = self._budget.after_epoch(score, steps=strategy.clock.train_epoch_iterations)
        if training and action is not EpochAction.CONTINUE:
            self._pack(strategy)
        if action is EpochAction.STOP:
            stop_after_this_epoch(strategy)

    def _pack(self, strategy) -> None:
        """Prune the current task: its kept fraction searched (epn) or fixed (packnet)."""
        unpruned = pruned = None
        evaluations = 0
        kept = 1.0 - self.prune_fraction
        if self.packer.frozen_features:
            kept = 0.0
        elif self.mode == "epn":
            training_data = dataset_batches(strategy.experience.dataset, strategy.eval_mb_size)
            search = self.packer.search(
                lambda: self._validation(strategy).accuracy,
                gamma=self.gamma,
                guard=lambda: task_accuracy(
                    self.network, training_data, self.packer.task, strategy.device
                ),
            )
            kept, unpruned, pruned = search.kept, search.reference, search.score
            evaluations = len(search.evaluations) + 1
        self.packer.prune(kept)
        if self.validation is not None and self._budget.retrain_epochs:
            if pruned is None:  # packnet: the pruned accuracy that retraining must keep
                pruned = self._validation(strategy).accuracy
            self._before_retraining = copy.deepcopy(self.network.state_dict())
        self._packed = (kept, unpruned, pruned, evaluations)

    def _keep_retraining_if_it_helped(self, strategy) -> bool:
        """Undo the retraining when it lowered validation accuracy; say whether it stayed.

        Retraining moves only the survivors, and under Powerprop the largest weights move
        fastest: with very few survivors one epoch at the training step size can undo what
        the search kept (seen: validation 0.99 after pruning, 0.62 after retraining).
        """
        if self._before_retraining is None:
            return False
        pruned = self._packed[2]
        if self._validation(strategy).accuracy >= pruned:
            kept = True
        else:
            self.network.load_state_dict(self._before_retraining)
            kept = False
        self._before_retraining = None
        return kept

    def after_training_exp(self, strategy, **kwargs) -> None:
        if self.packer.phase is Phase.TRAINING:  # a loop that ended before any epoch did
            self._pack(strategy)
        retraining_kept = self._keep_retraining_if_it_helped(strategy)
        task = self.packer.task
        self.packer.end_task()
        kept, unpruned, pruned, evaluations = self._packed
        budget = self._budget
        report = TaskReport(
            task=task,
            unpruned_val_acc=unpruned,
            pruned_val_acc=pruned,
            kept_of_trained=kept,
            owned_fraction=self.packer.capacity()[task],
            free_fraction=self.packer.free_fraction(),
            search_evaluations=evaluations,
            epochs_trained=budget.packed_after or 0,
            under_trained=budget.under_trained,
            val_acc_per_epoch=tuple(self._val_accuracies),
            retraining_kept=retraining_kept,
        )
        self.reports.append(report)
        if self.verbose:
            print(report)
