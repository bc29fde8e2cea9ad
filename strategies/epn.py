"""Avalanche plugin: EfficientPackNet (and classic PackNet) over a TaskNetwork."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from avalanche.core import SupervisedPlugin
from torch.utils.data import DataLoader

from clearn.epn import DEFAULT_GAMMA, check_gamma
from clearn.evaluation import task_accuracy
from clearn.network import TaskNetwork
from clearn.packing import Phase, TaskPacker
from clearn.pruning import Scope
from scenarios.streams import split_of
from scenarios.tasks import TensorBatchLoader

__all__ = ["DEFAULT_GAMMA", "PackingPlugin", "TaskReport"]


@dataclass(frozen=True)
class TaskReport:
    """What packing one task gave."""

    task: int
    unpruned_val_acc: float | None
    pruned_val_acc: float | None
    kept_of_trained: float
    """Share of the weights the task trained that it keeps."""
    owned_fraction: float
    """Share of the whole backbone the task owns."""
    free_fraction: float
    search_evaluations: int


class PackingPlugin(SupervisedPlugin):
    """Trains each experience on free weights, then prunes and freezes its share.

    `mode="epn"` searches the kept fraction on the experience's validation data (the
    experience of `valid_stream` with the same task label) so that validation accuracy stays
    ≥ gamma × unpruned; `mode="packnet"` keeps `1 - prune_fraction` and retrains the
    survivors for the last `retrain_epochs` of the strategy's epochs. `init_scale` multiplies
    every weight drawn (1 keeps the layer's own PyTorch init; `clearn run` uses
    `clearn.epn.DEFAULT_INIT_SCALE` = 0.5, which under Powerprop leaves less to prune but
    learns more slowly: with strong weight decay small weights can die out).
    """

    def __init__(
        self,
        network: TaskNetwork,
        *,
        valid_stream=None,
        mode: Literal["epn", "packnet"] = "epn",
        gamma: float = DEFAULT_GAMMA,
        prune_fraction: float = 0.5,
        retrain_epochs: int = 1,
        scope: Scope = "layer",
        allow_frozen_features: bool = False,
        seed: int = 0,
        init_scale: float = 1.0,
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
        self.mode = mode
        self.prune_fraction = prune_fraction
        self.retrain_epochs = retrain_epochs
        self.allow_frozen_features = allow_frozen_features
        self.verbose = verbose
        self.reports: list[TaskReport] = []
        self._valid_experiences: dict[int, object] = {}

    def _valid_batches(self, task: int, batch_size: int):
        if task not in self._valid_experiences:
            # One pass over the stream, not one per search step: Avalanche builds each
            # experience object anew, so a scan per call grows with the number of tasks.
            self._valid_experiences = {e.task_label: e for e in self.valid_stream}
        experience = self._valid_experiences[task]
        split = split_of(experience.dataset)
        if split is not None:
            return TensorBatchLoader(split, batch_size=batch_size, shuffle=False)
        return DataLoader(experience.dataset.eval(), batch_size=batch_size)

    def before_training_exp(self, strategy, **kwargs) -> None:
        self.packer.begin_task(
            strategy.experience.task_label, allow_frozen_features=self.allow_frozen_features
        )

    def after_update(self, strategy, **kwargs) -> None:
        self.packer.restore_frozen()

    def after_training_epoch(self, strategy, **kwargs) -> None:
        epochs_done = strategy.clock.train_exp_epochs + 1
        if self.mode == "packnet" and epochs_done == strategy.train_epochs - self.retrain_epochs:
            self.packer.prune(1.0 - self.prune_fraction)

    def after_training_exp(self, strategy, **kwargs) -> None:
        task = self.packer.task
        unpruned = pruned = None
        evaluations = 0
        kept = 1.0 - self.prune_fraction
        if self.packer.frozen_features:
            kept = 0.0
        elif self.mode == "epn":

            def evaluate() -> float:
                batches = self._valid_batches(task, strategy.eval_mb_size)
                return task_accuracy(self.network, batches, task, strategy.device)

            search = self.packer.search(evaluate, gamma=self.gamma)
            kept, unpruned, pruned = search.kept, search.reference, search.score
            evaluations = len(search.evaluations) + 1
        if self.packer.phase is Phase.TRAINING:  # packnet prunes earlier, after its epochs
            self.packer.prune(kept)
        self.packer.end_task()
        report = TaskReport(
            task=task,
            unpruned_val_acc=unpruned,
            pruned_val_acc=pruned,
            kept_of_trained=kept,
            owned_fraction=self.packer.capacity()[task],
            free_fraction=self.packer.free_fraction(),
            search_evaluations=evaluations,
        )
        self.reports.append(report)
        if self.verbose:
            print(report)
