"""The view of a network with per-task parts: which task its masks and BatchNorms answer as.

One value, `view`, changed only through `viewing(task)`, a context manager that puts the view
before back; `forward_task` of every network answers inside it, so no query leaves a view
behind for the next one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from torch import Tensor, nn

from clearn.routing import answer_per_task, check_task_labels
from clearn.task_norm import TaskBatchNorm

__all__ = ["TaskViews", "UnknownTaskError"]


class UnknownTaskError(ValueError):
    """A query named a task that the network has not been trained on."""


class TaskViews(nn.Module):
    """Base of the networks with a view per task: the tasks trained, the view, its switch.

    A subclass holds `heads` (one per task) and `norms` (per-task BatchNorms, maybe none),
    answers one task's batch (`forward_task`, inside `viewing(task)`), and says how its masks
    show a task (`_point_masks`) and mix tasks (`_superpose`).
    """

    def __init__(self) -> None:
        super().__init__()
        self.trained_tasks: int = 0
        """Tasks 0..trained_tasks-1 are trained and answer queries."""
        self.training_task: int | None = None
        """Task being trained now, whose queries also see free weights; None between tasks."""
        self.norms: dict[str, TaskBatchNorm] = {}
        """Each per-task BatchNorm layer, by layer name (empty: BatchNorm shared or none)."""
        self._view: int | None = None
        self._see_free = False
        self._free_layers: frozenset[str] | None = None

    @property
    def n_tasks(self) -> int:
        """Number of heads, i.e. tasks the network can answer (trained or not)."""
        return len(self.heads)

    @property
    def view(self) -> int | None:
        """Task whose view the network shows now (None: every weight); set with `viewing`."""
        return self._view

    @contextmanager
    def viewing(self, task: int | None) -> Iterator[None]:
        """Within the block the backbone answers as task `task`'s view; the view before
        comes back after. None shows every weight and the latest task's BatchNorm; the task
        being trained also sees the free weights while `show_free_weights(True)`."""
        previous = self._view
        self._show(task)
        try:
            yield
        finally:
            self._show(previous)

    def _show(self, task: int | None) -> None:
        self._view = task
        self._point_masks(task)
        for norm in self.norms.values():  # None (all weights): the latest task's statistics
            norm.view_task = task if task is not None else max(self.trained_tasks - 1, 0)

    def _point_masks(self, task: int | None) -> None:
        """Point every mask at task `task`'s view (None: every weight)."""
        raise NotImplementedError

    def show_free_weights(self, visible: bool, *, layers: Iterable[str] | None = None) -> None:
        """While task `training_task` trains, its queries see free weights (True) or not: in
        every masked layer, or with `layers` only in those (a task that trains only them)."""
        self._see_free = visible
        self._free_layers = None if layers is None else frozenset(layers)

    @contextmanager
    def superposed(self, alpha: Tensor) -> Iterator[None]:
        """Within the block every trained task's view counts with its coefficient in
        `alpha` (one per trained task, on the CPU), differentiably: SupSup's one-shot mix."""
        self._superpose(alpha)
        try:
            yield
        finally:
            self._superpose(None)

    def _superpose(self, alpha: Tensor | None) -> None:
        """Mix the trained tasks' views by `alpha`; None ends the mix."""
        raise NotImplementedError

    def check_task(self, task: int, *, allow_untrained: bool = False) -> None:
        """Raise UnknownTaskError unless task `task` is trained or being trained.

        With `allow_untrained`, any task that has a head passes: it is answered by the
        weights trained so far and its untrained head (chance level).
        """
        if task == self.training_task:
            return
        limit = self.n_tasks if allow_untrained else self.trained_tasks
        if not 0 <= task < limit:
            known = f"0..{self.trained_tasks - 1}" if self.trained_tasks else "none yet"
            raise UnknownTaskError(
                f"task {task} has not been trained on this network (trained tasks: {known})"
            )

    def forward_task(self, inputs: Tensor, task: int, *, allow_untrained: bool = False) -> Tensor:
        """Logits of head `task` for a batch that belongs entirely to that task."""
        raise NotImplementedError

    def forward(
        self, inputs: Tensor, task_labels: Tensor | int, *, allow_untrained: bool = False
    ) -> Tensor:
        """Logits for a batch whose examples may belong to different tasks.

        Examples are grouped by task and each group goes through its own task's view and
        head; rows are padded with zeros up to the widest head among the batch's tasks.
        Without task labels, infer them: `clearn.infer_task`, `clearn.predict_task_agnostic`.
        """
        check_task_labels(task_labels, len(inputs))
        if isinstance(task_labels, int):
            return self.forward_task(inputs, task_labels, allow_untrained=allow_untrained)
        first = int(task_labels[0])
        if bool((task_labels == first).all()):  # a batch of one task, as in training
            return self.forward_task(inputs, first, allow_untrained=allow_untrained)
        return answer_per_task(
            inputs,
            task_labels,
            lambda part, task: self.forward_task(part, task, allow_untrained=allow_untrained),
            check=lambda task: self.check_task(task, allow_untrained=allow_untrained),
        )
