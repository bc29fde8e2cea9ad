"""Avalanche plugin: EfficientPackNet (and classic PackNet) over a PackedNetwork."""

from __future__ import annotations

import dataclasses
import logging
import time
import warnings

from avalanche.core import SupervisedPlugin
from avalanche.training.plugins import GDumbPlugin, GenerativeReplayPlugin, ReplayPlugin
from torch import nn

from clearn.budget import EpochAction
from clearn.defaults import (
    DEFAULT_GAMMA,
    DEFAULT_GUARD_EXAMPLES,
    DEFAULT_INIT_SCALE,
    DEFAULT_PATIENCE,
    DEFAULT_PRUNE_FRACTION,
    DEFAULT_RETRAIN_EPOCHS,
    DEFAULT_VALIDATION_SHARE,
)
from clearn.evaluation import task_accuracy
from clearn.frozen import OptimizerScope, zero_gradient_moves_nothing
from clearn.network import PackedNetwork
from clearn.packing import Phase, TaskPacker, TrainLayers
from clearn.pruning import DEFAULT_SCOPE, Scope
from clearn.task_pruning import (
    PackMode,
    PrunedTask,
    PruningRule,
    RetrainingCheck,
    TaskReport,
    report_task,
)
from strategies.experience import check_new_task, task_label
from strategies.input_statistics import InputStatisticsPlugin, packed_network
from strategies.plateau_stop import PlateauBudgetPlugin
from strategies.validation import sample_batches
from strategies.validation_split import ValidationSplitPlugin

__all__ = ["PackingPlugin", "TaskReport"]

logger = logging.getLogger(__name__)

DATA_CHANGING = (ReplayPlugin, GenerativeReplayPlugin, GDumbPlugin)
"""Avalanche plugins that replace or extend a task's training data, refused by packing."""


def refuse_data_changing(plugins: list) -> None:
    """Raise ValueError naming the first of `plugins` that changes a task's training data."""
    refused = [type(p).__name__ for p in plugins if isinstance(p, DATA_CHANGING)]
    if refused:
        raise ValueError(
            f"{refused[0]} changes what a task trains on (earlier tasks' examples or a "
            f"buffer instead of the task's data); under task packing earlier tasks' "
            f"weights are frozen and cannot forget, so it only spends time and capacity: "
            f"remove it"
        )


def _warn_not_retrained(task: int, epochs: int, retrain_epochs: int) -> None:
    warnings.warn(
        f"task {task}: training was ended after {epochs} epoch(s) by another plugin, before "
        f"the task was packed; it is pruned without its {retrain_epochs} retraining epoch(s)",
        stacklevel=3,
    )


class PackingPlugin(SupervisedPlugin):
    """Trains each experience on free weights until it stops improving, then prunes and
    freezes its share.

    The network is the strategy's model, a `strategies.TaskNetwork` (or a model holding one
    `clearn.PackedNetwork`). Each task trains until its validation loss has not improved for
    `patience` epochs (`train_epochs` is the cap; None trains every epoch), is pruned by the
    rule (`clearn.task_pruning.PruningRule`: `mode`, `gamma`, `prune_fraction`,
    `task_budget`) and its
    survivors retrained for `retrain_epochs` of the cap. Validation data is `valid_stream`'s
    experience of the task's label, else a seeded `validation_share` held out of training.
    `init_scale` multiplies every weight drawn; `train_layers="first"` has each task after
    the first train only the first masked layer (`clearn.packing.TRAIN_LAYERS`). Every
    default is `clearn run`'s; `verbose` logs each task's report at INFO level
    (`strategies.*` loggers).

    Hold-out, budget and input statistics are plugins of their own (`validation_split`,
    `budget`, `input_statistics`): called by Avalanche where the template lists them (before
    and after this one, as `EfficientPackNet`), by this plugin where it does not.
    """

    def __init__(
        self,
        *,
        valid_stream=None,
        validation_share: float = DEFAULT_VALIDATION_SHARE,
        mode: PackMode = "epn",
        gamma: float = DEFAULT_GAMMA,
        prune_fraction: float = DEFAULT_PRUNE_FRACTION,
        task_budget: int | None = None,
        retrain_epochs: int = DEFAULT_RETRAIN_EPOCHS,
        patience: int | None = DEFAULT_PATIENCE,
        scope: Scope = DEFAULT_SCOPE,
        allow_frozen_features: bool = False,
        seed: int = 0,
        init_scale: float = DEFAULT_INIT_SCALE,
        redraw_free: bool = True,
        train_layers: TrainLayers = "all",
        verbose: bool = False,
    ) -> None:
        super().__init__()
        self.rule = PruningRule(mode, gamma, prune_fraction, task_budget)
        self._packer_options = dict(
            scope=scope, seed=seed, init_scale=init_scale, redraw_free=redraw_free,
            train_layers=train_layers,
        )
        self.network: PackedNetwork | None = None
        """The strategy's model, found at the first experience."""
        self.packer: TaskPacker | None = None
        self.validation_split = ValidationSplitPlugin(
            valid_stream, share=validation_share, seed=seed
        )
        self.validation = self.validation_split.data
        self.budget = PlateauBudgetPlugin(
            self.validation, patience=patience, retrain_epochs=retrain_epochs
        )
        self.input_statistics = InputStatisticsPlugin(on_fitted=self._input_model_fitted)
        self.allow_frozen_features = allow_frozen_features
        self.verbose = verbose
        self.reports: list[TaskReport] = []
        self._driven: list[SupervisedPlugin] = []
        """The companion plugins the strategy does not list, called by this plugin."""
        self._pending_state: dict | None = None
        self._pruned: PrunedTask | None = None
        self._search_seconds = 0.0
        self._retraining: RetrainingCheck | None = None
        """The network's state right after pruning, while its survivors are retrained."""
        self._zeroed = False
        """Whether this step's frozen gradients were zeroed (then only buffers are restored)."""
        self._optimizer_scope = OptimizerScope()
        """The strategy's optimizer without the parameters frozen whole, while a task trains."""

    def attach(self, model: nn.Module) -> TaskPacker:
        """Find the PackedNetwork in `model` (the strategy's) and drive it from now on."""
        network = packed_network(model)
        if self.network is not network:
            self.network = network
            self.packer = TaskPacker(self.network, **self._packer_options)
            if self._pending_state is not None:
                self.load_state_dict(self._pending_state)
        return self.packer

    def state_dict(self) -> dict:
        """The packer's state and the reports so far (the network's is in its own)."""
        return {
            "packer": self.packer.state_dict() if self.packer else None,
            "reports": [dataclasses.asdict(r) for r in self.reports],
            "budget": self.budget.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore `state_dict`'s; the packer's part waits for the network if not attached."""
        self.reports = [TaskReport(**r) for r in state["reports"]]
        self.budget.load_state_dict(state["budget"])
        if self.packer is None:
            self._pending_state = state
        elif state["packer"] is not None:
            self.packer.load_state_dict(state["packer"])
            self._pending_state = None

    def _drive(self, event: str, strategy, *plugins: SupervisedPlugin) -> None:
        for plugin in plugins:
            if plugin in self._driven:
                getattr(plugin, event)(strategy)

    def _validation_accuracy(self, strategy) -> float:
        return self.validation.score(
            self.network, self.packer.task, batch_size=strategy.eval_mb_size,
            device=strategy.device,
        ).accuracy

    def before_training(self, strategy, **kwargs) -> None:
        refuse_data_changing(strategy.plugins)
        companions = (self.validation_split, self.budget, self.input_statistics)
        listed = {id(p) for p in strategy.plugins}
        self._driven = [p for p in companions if id(p) not in listed]

    def before_train_dataset_adaptation(self, strategy, **kwargs) -> None:
        trained = strategy.model.trained_tasks if isinstance(strategy.model, PackedNetwork) else 0
        check_new_task(strategy.experience, trained, strategy="clearn's task packing")

    def after_train_dataset_adaptation(self, strategy, **kwargs) -> None:
        self._drive("after_train_dataset_adaptation", strategy, self.validation_split)

    def before_training_exp(self, strategy, **kwargs) -> None:
        self.attach(strategy.model).begin_task(
            task_label(strategy.experience), allow_frozen_features=self.allow_frozen_features
        )
        self._optimizer_scope.narrow(strategy.optimizer, self.packer.held_parameters)
        self._drive("before_training_exp", strategy, self.budget)
        self.budget.model = self.network
        self.budget.validates = not self.packer.frozen_features
        self._pruned = None
        self._search_seconds = 0.0

    def before_update(self, strategy, **kwargs) -> None:
        # Under plain SGD a zero gradient moves nothing: one pass over each gradient instead
        # of restoring each frozen weight after the step (two passes).
        self._zeroed = zero_gradient_moves_nothing(strategy.optimizer)
        if self._zeroed:
            self.packer.zero_frozen_gradients()

    def after_update(self, strategy, **kwargs) -> None:
        self.packer.restore_frozen(parameters=not self._zeroed)

    def after_training_epoch(self, strategy, **kwargs) -> None:
        self._drive("after_training_epoch", strategy, self.budget)
        if self.packer.phase is Phase.TRAINING and self.budget.action is not EpochAction.CONTINUE:
            began = time.perf_counter()
            self._pack(strategy)
            self._search_seconds += time.perf_counter() - began

    def _pack(self, strategy) -> None:
        """Prune the current task and, when retraining follows, keep its pruned state."""
        training_data = None
        if self.rule.mode == "epn":  # what the search's guard scores
            training_data = sample_batches(
                strategy.experience.dataset, strategy.eval_mb_size,
                examples=DEFAULT_GUARD_EXAMPLES, seed=self.validation.seed + self.packer.task,
            )
        pruned = self.rule.prune(
            self.packer,
            validate=lambda: self._validation_accuracy(strategy),
            guard=lambda: task_accuracy(
                self.network, training_data, self.packer.task, strategy.device
            ),
        )
        if self.budget.budget.retrain_epochs:
            if pruned.pruned is None:  # packnet: the pruned accuracy that retraining must keep
                pruned = dataclasses.replace(pruned, pruned=self._validation_accuracy(strategy))
            self._retraining = RetrainingCheck(self.network, pruned.pruned)
        self._pruned = pruned

    def after_training_exp(self, strategy, **kwargs) -> None:
        began = time.perf_counter()
        self._optimizer_scope.widen()
        budget = self.budget.budget
        epochs_trained = budget.packed_after or 0
        if self.packer.phase is Phase.TRAINING:
            # The loop ended before the budget packed the task: no epoch ended, or another
            # plugin (early stopping) stopped it. Packed now, with no retraining.
            epochs_trained = strategy.clock.train_exp_epochs
            self._pack(strategy)
            if epochs_trained and budget.retrain_epochs:
                _warn_not_retrained(self.packer.task, epochs_trained, budget.retrain_epochs)
        retraining_kept = self._retraining is not None and self._retraining.keep_if_it_helped(
            self._validation_accuracy(strategy)
        )
        self._retraining = None
        self._search_seconds += time.perf_counter() - began
        task = self.packer.task
        self.packer.end_task()
        self._report(task, epochs_trained, retraining_kept, strategy.train_epochs)
        self._drive("after_training_exp", strategy, self.budget, self.input_statistics)

    def _input_model_fitted(self, task: int, seconds: float) -> None:
        """Task `task`'s input model took `seconds` to fit: into its report, which the fit
        follows (whether this plugin or the template calls the input statistics)."""
        if self.reports and self.reports[-1].task == task:
            self.reports[-1] = dataclasses.replace(self.reports[-1], input_model_seconds=seconds)

    def _report(self, task: int, epochs_trained: int, retraining_kept: bool, cap: int) -> None:
        report = report_task(
            self.network, task, self._pruned,
            validation_examples=self.validation.size(task),
            epochs_trained=epochs_trained,
            under_trained=self.budget.budget.under_trained,
            val_acc_per_epoch=tuple(self.budget.val_accuracies),
            retraining_kept=retraining_kept,
            validation_seconds=self.budget.validation_seconds,
            search_seconds=self._search_seconds,
        )
        self.reports.append(report)
        if report.under_trained:
            logger.warning(
                "task %d was still improving (validation loss) when the cap of %d epochs "
                "ended its training: raise train_epochs", task, cap
            )
        if self.verbose:
            logger.info("%s", report)
