"""Avalanche plugin: EfficientPackNet (and classic PackNet) over a PackedNetwork."""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
import warnings
from dataclasses import dataclass
from typing import Literal

from avalanche.core import SupervisedPlugin
from avalanche.training.plugins import GDumbPlugin, GenerativeReplayPlugin, ReplayPlugin
from torch import nn

from clearn.budget import EpochAction, TaskBudget
from clearn.defaults import (
    DEFAULT_GAMMA,
    DEFAULT_GUARD_EXAMPLES,
    DEFAULT_INIT_SCALE,
    DEFAULT_PATIENCE,
    DEFAULT_PRUNE_FRACTION,
    DEFAULT_RETRAIN_EPOCHS,
    DEFAULT_VALIDATION_SHARE,
)
from clearn.epn import check_gamma
from clearn.evaluation import TaskScore, task_accuracy
from clearn.network import PackedNetwork
from clearn.packing import Phase, TaskPacker, zero_gradient_moves_nothing
from clearn.pruning import DEFAULT_SCOPE, Scope
from strategies.experience import check_new_task, task_label
from strategies.plateau_stop import stop_after_this_epoch
from strategies.validation import ValidationData, sample_batches

__all__ = ["PackingPlugin", "TaskReport"]

logger = logging.getLogger(__name__)

DATA_CHANGING = (ReplayPlugin, GenerativeReplayPlugin, GDumbPlugin)
"""Avalanche plugins that replace or extend a task's training data, refused by packing."""


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
    validation_examples: int = 0
    """Examples the task was validated on (its valid_stream experience or held-out share)."""
    validation_seconds: float = 0.0
    """Time spent validating the task after its training epochs (the plateau stop's signal)."""
    search_seconds: float = 0.0
    """Time spent pruning the task: the kept-fraction search, its guard, the pruning, and
    the check that retraining kept the pruned accuracy."""


class PackingPlugin(SupervisedPlugin):
    """Trains each experience on free weights until it stops improving, then prunes and
    freezes its share.

    The network is the strategy's model, a `strategies.TaskNetwork` (or clearn's core
    `PackedNetwork` inside a multi-task model of the user's). Each task trains until its validation
    loss has not improved for `patience` epochs (the strategy's `train_epochs` is then a cap;
    `patience=None` trains every epoch), then is pruned: `mode="epn"` searches the kept
    fraction on the task's validation data so that validation accuracy stays ≥ gamma ×
    unpruned; `mode="packnet"` keeps `1 - prune_fraction`. Validation data is the experience
    of `valid_stream` with the task's label, or without one a seeded `validation_share` held
    out of the training experience. The survivors are then retrained for `retrain_epochs`
    epochs (taken from the cap). A task still improving when the cap ends its training is
    reported `under_trained`. `init_scale` multiplies every weight drawn (1 keeps the layer's
    own PyTorch init). Every default is `clearn run`'s. Notices go to the `logging` module
    (`strategies.*` loggers); `verbose` logs each task's report at INFO level.
    """

    def __init__(
        self,
        *,
        valid_stream=None,
        validation_share: float = DEFAULT_VALIDATION_SHARE,
        mode: Literal["epn", "packnet"] = "epn",
        gamma: float = DEFAULT_GAMMA,
        prune_fraction: float = DEFAULT_PRUNE_FRACTION,
        retrain_epochs: int = DEFAULT_RETRAIN_EPOCHS,
        patience: int | None = DEFAULT_PATIENCE,
        scope: Scope = DEFAULT_SCOPE,
        allow_frozen_features: bool = False,
        seed: int = 0,
        init_scale: float = DEFAULT_INIT_SCALE,
        redraw_free: bool = True,
        verbose: bool = False,
    ) -> None:
        super().__init__()
        if mode not in ("epn", "packnet"):
            raise ValueError(f"mode must be 'epn' or 'packnet', got {mode!r}")
        if not 0.0 <= prune_fraction < 1.0:
            raise ValueError(f"prune_fraction must be in [0, 1), got {prune_fraction}")
        self.gamma = check_gamma(gamma)
        self._packer_options = dict(
            scope=scope, seed=seed, init_scale=init_scale, redraw_free=redraw_free
        )
        self.network: PackedNetwork | None = None
        """The strategy's model, found at the first experience."""
        self.packer: TaskPacker | None = None
        self.validation = ValidationData(valid_stream, share=validation_share, seed=seed)
        self.mode = mode
        self.prune_fraction = prune_fraction
        self.retrain_epochs = retrain_epochs
        self.patience = patience
        self.allow_frozen_features = allow_frozen_features
        self.verbose = verbose
        self.reports: list[TaskReport] = []
        self._pending_state: dict | None = None
        self._budget: TaskBudget | None = None
        self._packed: tuple[float, float | None, float | None, int] | None = None
        """kept, unpruned and pruned validation accuracy, search evaluations of this task."""
        self._val_accuracies: list[float] = []
        self._seconds = {"validation": 0.0, "search": 0.0}
        """Time this task spent validating after epochs, and pruning."""
        self._before_retraining: dict | None = None
        """The network's state right after pruning, while its survivors are retrained."""
        self._zeroed = False
        """Whether this step's frozen gradients were zeroed (then only buffers are restored)."""

    def attach(self, model: nn.Module) -> TaskPacker:
        """Find the PackedNetwork in `model` (the strategy's) and drive it from now on."""
        networks = [m for m in model.modules() if isinstance(m, PackedNetwork)]
        if len(networks) != 1:
            raise ValueError(
                f"PackingPlugin packs the strategy's model, which must be (or hold exactly "
                f"one) PackedNetwork: use model=strategies.TaskNetwork(backbone=...); got "
                f"{type(model).__name__} holding {len(networks)}"
            )
        if self.network is not networks[0]:
            self.network = networks[0]
            self.packer = TaskPacker(self.network, **self._packer_options)
            if self._pending_state is not None:
                self.load_state_dict(self._pending_state)
        return self.packer

    def state_dict(self) -> dict:
        """The packer's state and the reports so far (the network's is in its own)."""
        return {
            "packer": self.packer.state_dict() if self.packer else None,
            "reports": [dataclasses.asdict(r) for r in self.reports],
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore `state_dict`'s; the packer's part waits for the network if not attached."""
        self.reports = [TaskReport(**r) for r in state["reports"]]
        if self.packer is None:
            self._pending_state = state
        elif state["packer"] is not None:
            self.packer.load_state_dict(state["packer"])
            self._pending_state = None

    def _validation(self, strategy) -> TaskScore:
        return self.validation.score(
            self.network, self.packer.task, batch_size=strategy.eval_mb_size,
            device=strategy.device,
        )

    def before_training(self, strategy, **kwargs) -> None:
        refused = [type(p).__name__ for p in strategy.plugins if isinstance(p, DATA_CHANGING)]
        if refused:
            raise ValueError(
                f"{refused[0]} changes what a task trains on (earlier tasks' examples or a "
                f"buffer instead of the task's data); under task packing earlier tasks' "
                f"weights are frozen and cannot forget, so it only spends time and capacity: "
                f"remove it"
            )

    def before_train_dataset_adaptation(self, strategy, **kwargs) -> None:
        trained = strategy.model.trained_tasks if isinstance(strategy.model, PackedNetwork) else 0
        check_new_task(strategy.experience, trained, strategy="clearn's task packing")

    def after_train_dataset_adaptation(self, strategy, **kwargs) -> None:
        self.validation.hold_out(strategy)

    def before_training_exp(self, strategy, **kwargs) -> None:
        self.attach(strategy.model).begin_task(
            task_label(strategy.experience), allow_frozen_features=self.allow_frozen_features
        )
        self._budget = TaskBudget(
            max_epochs=strategy.train_epochs,
            retrain_epochs=self.retrain_epochs,
            patience=self.patience,
        )
        self._packed = None
        self._val_accuracies = []
        self._seconds = {"validation": 0.0, "search": 0.0}

    def before_update(self, strategy, **kwargs) -> None:
        # Under plain SGD a zero gradient moves nothing: one pass over each gradient instead
        # of restoring each frozen weight after the step (two passes).
        self._zeroed = zero_gradient_moves_nothing(strategy.optimizer)
        if self._zeroed:
            self.packer.zero_frozen_gradients()

    def after_update(self, strategy, **kwargs) -> None:
        self.packer.restore_frozen(parameters=not self._zeroed)

    def after_training_epoch(self, strategy, **kwargs) -> None:
        training = self.packer.phase is Phase.TRAINING
        score = None
        if training and not self.packer.frozen_features:
            began = time.perf_counter()
            validation = self._validation(strategy)
            self._seconds["validation"] += time.perf_counter() - began
            score = -validation.loss
            self._val_accuracies.append(validation.accuracy)
        action = self._budget.after_epoch(score, steps=strategy.clock.train_epoch_iterations)
        if training and action is not EpochAction.CONTINUE:
            began = time.perf_counter()
            self._pack(strategy)
            self._seconds["search"] += time.perf_counter() - began
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
            training_data = sample_batches(
                strategy.experience.dataset, strategy.eval_mb_size,
                examples=DEFAULT_GUARD_EXAMPLES, seed=self.validation.seed + self.packer.task,
            )
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
        if self._budget.retrain_epochs:
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
        began = time.perf_counter()
        budget = self._budget
        epochs_trained = budget.packed_after or 0
        if self.packer.phase is Phase.TRAINING:
            # The loop ended before the budget packed the task: no epoch ended, or another
            # plugin (early stopping) stopped it. Packed now, with no retraining.
            epochs_trained = strategy.clock.train_exp_epochs
            self._pack(strategy)
            if epochs_trained and budget.retrain_epochs:
                warnings.warn(
                    f"task {self.packer.task}: training was ended after {epochs_trained} "
                    f"epoch(s) by another plugin, before the task was packed; it is pruned "
                    f"without its {budget.retrain_epochs} retraining epoch(s)",
                    stacklevel=2,
                )
        retraining_kept = self._keep_retraining_if_it_helped(strategy)
        self._seconds["search"] += time.perf_counter() - began
        task = self.packer.task
        # Its training inputs' statistics, for task-agnostic inference by inputs: one pass
        # over the task's training batches, no forward pass.
        self.network.record_inputs(task, (batch[0] for batch in strategy.dataloader))
        self.packer.end_task()
        capacity = self.network.capacity()
        kept, unpruned, pruned, evaluations = self._packed
        report = TaskReport(
            task=task,
            unpruned_val_acc=unpruned,
            pruned_val_acc=pruned,
            kept_of_trained=kept,
            owned_fraction=capacity.owned[task],
            free_fraction=capacity.free,
            validation_examples=self.validation.size(task),
            search_evaluations=evaluations,
            epochs_trained=epochs_trained,
            under_trained=budget.under_trained,
            val_acc_per_epoch=tuple(self._val_accuracies),
            retraining_kept=retraining_kept,
            validation_seconds=self._seconds["validation"],
            search_seconds=self._seconds["search"],
        )
        self.reports.append(report)
        if report.under_trained:
            logger.warning(
                "task %d was still improving (validation loss) when the cap of %d epochs "
                "ended its training: raise train_epochs", task, strategy.train_epochs
            )
        if self.verbose:
            logger.info("%s", report)
