"""Per-task density models of the inputs, for task inference without a pass per task.

Each task's inputs are modelled by probabilistic PCA (Tipping & Bishop 1999): a mean, the
`rank` leading principal directions with their variances, and one variance for everything
outside them; optionally one such Gaussian per class of the task, mixed by class frequency
(`per_class`). Scoring a batch against every task is one matrix product of the inputs with
all tasks' directions, so the cost grows linearly in tasks and needs no forward pass.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor, nn

__all__ = ["DEFAULT_RANK", "VARIANCE_FLOOR", "TaskDensity"]

DEFAULT_RANK = 8
"""Principal directions kept per component. Measured (benchmarks/task_inference.py): rank 8
finds every example's task on permuted digits and Fashion-MNIST (5 to 1,000 tasks) and every
batch of 16's on split streams, as 32 does, at a quarter of 32's memory and scoring cost; per
example on split streams `per_class` gains more (3 to 6 points of task-id) than rank does."""

VARIANCE_FLOOR = 0.01
"""Added to every variance, as a share of the component's mean variance: a direction that
never varied in a task's data (a border pixel) would otherwise rule out that task for any
input that differs there by a hair."""

_BUFFERS = ("means", "bases", "variances", "residual", "log_weights")


class TaskDensity(nn.Module):
    """Log-likelihood of inputs under each task's probabilistic-PCA model of its inputs.

    Tasks are numbered from 0 and fitted in order (`fit`); `score` gives
    (batch, fitted tasks) log-likelihoods. Everything lives in buffers stacked over tasks,
    so the state dict checkpoints it and a fresh module loads any number of tasks.
    """

    means: Tensor
    """(tasks, components, features): each component's mean."""
    bases: Tensor
    """(tasks, components, features, rank): each component's leading principal directions."""
    variances: Tensor
    """(tasks, components, rank): the variance along each of those directions."""
    residual: Tensor
    """(tasks, components): the variance of every other direction."""
    log_weights: Tensor
    """(tasks, components): log share of the task's examples in each component (−inf: none)."""

    def __init__(self, *, rank: int = DEFAULT_RANK, per_class: bool = False) -> None:
        super().__init__()
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise ValueError(f"rank must be a positive whole number, got {rank!r}")
        self.rank = rank
        self.per_class = per_class
        for name in _BUFFERS:
            self.register_buffer(name, torch.empty(0))

    @property
    def tasks(self) -> int:
        """Number of fitted tasks."""
        return len(self.means)

    @torch.no_grad()
    def fit(self, task: int, inputs: Tensor, labels: Tensor | None = None) -> None:
        """Fit task `task`'s model on its training `inputs` (and labels, with `per_class`).

        `task` is the next task (appended) or a fitted one (replaced)."""
        self.fit_batches(task, [(inputs, labels)])

    @torch.no_grad()
    def fit_batches(self, task: int, batches: Iterable[Tensor | Sequence[Tensor]]) -> None:
        """`fit` from batches of inputs, or of (inputs, labels), read once: the model needs
        only each component's count, sum and sum of outer products."""
        if not 0 <= task <= self.tasks:
            raise ValueError(f"fit task {self.tasks} next (fitted: {self.tasks}), got {task}")
        moments: dict[int, _Moments] = {}
        shift: Tensor | None = None
        for batch in batches:
            inputs, labels = (batch, None) if isinstance(batch, Tensor) else batch
            flat = inputs.flatten(1)
            flat = flat if flat.dtype == torch.float64 else flat.float()
            if self.per_class and (labels is None or len(labels) != len(flat)):
                raise ValueError("a per-class density needs one label per input to fit")
            if shift is None:
                shift = flat.mean(0)
            if not self.per_class:
                _moments_of(moments, 0, shift).add(flat)
                continue
            for key in labels.unique().tolist():
                _moments_of(moments, key, shift).add(flat[labels == key])
        if not moments:
            raise ValueError(f"task {task} needs at least two inputs to fit, got 0")
        pooled = _Moments.pooled(moments.values())
        if pooled.count < 2:
            raise ValueError(f"task {task} needs at least two inputs to fit, got {pooled.count}")
        if self.tasks and pooled.total.shape[0] != self.means.shape[2]:
            raise ValueError(
                f"task {task}'s inputs have {pooled.total.shape[0]} features, earlier tasks' "
                f"{self.means.shape[2]}"
            )
        parts = [moments[key] for key in sorted(moments)]
        counts = [float(part.count) for part in parts]
        # Padded to the earlier tasks' width so that tasks stack; padding weighs nothing.
        padding = (self.means.shape[1] if self.tasks else 0) - len(parts)
        parts = [part if part.count > 1 else pooled for part in parts] + [pooled] * padding
        rank = min(self.rank, pooled.total.shape[0])
        fitted = [_fit_component(part, rank) for part in parts]
        weights = torch.tensor(counts + [0.0] * padding, dtype=torch.float64)
        entry = {name: torch.stack([f[i] for f in fitted]) for i, name in enumerate(_BUFFERS[:4])}
        self._store(task, entry | {"log_weights": (weights / weights.sum()).log()})

    def missing(self, tasks: int) -> list[int]:
        """Which of tasks 0..tasks-1 are not fitted yet."""
        return list(range(self.tasks, tasks))

    def task_entry(self, task: int) -> dict[str, Tensor]:
        """Fitted task `task`'s part of every buffer, by buffer name (what `set_task_entry`
        takes back, e.g. after a broadcast between processes)."""
        if not 0 <= task < self.tasks:
            raise ValueError(f"task {task} is not fitted (fitted: {self.tasks})")
        return {name: getattr(self, name)[task] for name in _BUFFERS}

    @torch.no_grad()
    def set_task_entry(self, task: int, entry: dict[str, Tensor]) -> None:
        """Set task `task`'s part of every buffer (`task_entry`'s layout); `task` is the next
        task (appended) or a fitted one (replaced)."""
        if not 0 <= task <= self.tasks:
            raise ValueError(f"set task {self.tasks} next (fitted: {self.tasks}), got {task}")
        if set(entry) != set(_BUFFERS):
            raise ValueError(f"a task's entry holds {', '.join(_BUFFERS)}, got {sorted(entry)}")
        self._store(task, entry)

    def get_extra_state(self) -> dict:
        return {"rank": self.rank, "per_class": self.per_class}

    def set_extra_state(self, state: dict) -> None:
        saved = (state.get("rank"), state.get("per_class"))
        if saved != (self.rank, self.per_class):
            raise ValueError(
                f"the saved input model has rank {saved[0]}, per class {saved[1]}; this one "
                f"rank {self.rank}, per class {self.per_class}: build it with the same settings"
            )

    def _store(self, task: int, entry: dict[str, Tensor]) -> None:
        components = entry["means"].shape[0]
        if self.tasks and components != self.means.shape[1]:
            raise ValueError(
                f"task {task} has {components} classes, earlier tasks {self.means.shape[1]}: "
                f"a per-class density needs the same number of classes in every task"
            )
        append = task == self.tasks
        for name, value in entry.items():
            old = getattr(self, name)  # its device and dtype follow the module's .to()
            value = value.to(device=old.device, dtype=old.dtype).unsqueeze(0)
            if append:
                new = value if old.numel() == 0 else torch.cat([old, value])
            else:
                new = old.clone()
                new[task] = value[0]
            setattr(self, name, new)

    @torch.no_grad()
    def score(self, inputs: Tensor) -> Tensor:
        """(batch, tasks): each input's log-likelihood under each fitted task's model."""
        if self.tasks == 0:
            raise ValueError("no task is fitted yet: call fit(task, inputs) first")
        flat = inputs.flatten(1).to(self.means)
        features = self.means.shape[2]
        if flat.shape[1] != features:
            raise ValueError(f"inputs have {flat.shape[1]} features, the tasks {features}")
        tasks, components, _, rank = self.bases.shape
        # ‖x − μ‖² and (x − μ)ᵀU from products with x: no (batch, tasks, features) tensor.
        squares = (flat**2).sum(1)[:, None, None]
        distance = squares - 2 * torch.einsum("bd,tcd->btc", flat, self.means)
        distance = distance + (self.means**2).sum(2)
        projected = (flat @ self.bases.permute(2, 0, 1, 3).reshape(features, -1)).view(
            len(flat), tasks, components, rank
        ) - torch.einsum("tcd,tcdk->tck", self.means, self.bases)
        inside = (projected**2).sum(3)
        outside = (distance - inside).clamp_min(0)
        log_det = self.variances.log().sum(2) + (features - rank) * self.residual.log()
        log_p = -0.5 * (
            ((projected**2) / self.variances).sum(3)
            + outside / self.residual
            + log_det
            + features * math.log(2 * math.pi)
        )
        return torch.logsumexp(log_p + self.log_weights, dim=2)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # Buffers take the saved shapes (any number of tasks) before loading.
        for name in _BUFFERS:
            saved = state_dict.get(prefix + name)
            if saved is not None:
                setattr(self, name, torch.empty_like(saved, device=self.means.device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


_CHUNK_ROWS = 4096
"""Rows gathered before one outer-product update: a training minibatch (say 64 rows) makes
a small, slow matrix product; on 54,000 Fashion-MNIST inputs, 64-row updates take 1.3 s
and 4,096-row ones 0.8 s (the same sums, in another order)."""


class _Moments:
    """Count, sum and sum of outer products of some inputs less a `shift`, added to batch by
    batch (gathered into chunks of `_CHUNK_ROWS` rows; `flush` adds what is pending).

    Each chunk's product is taken in the inputs' precision (float32 for images: half the
    time of float64 on a CPU) and summed in float64. Less the shift (near the mean: the
    first batch's), the sums hold the spread of the inputs rather than their offset, so
    the covariance drawn from them keeps float32's relative precision, where
    E[xxᵀ] − μμᵀ from raw sums would cancel it away for inputs far from 0. Measured on
    54,000 inputs of 784 features in 60-row batches (2 cores): 2.3 s in float64, 1.3 s so
    (per class, 10 classes: 4.2 and 3.4 s)."""

    def __init__(self, shift: Tensor) -> None:
        self.shift = shift
        self.count = 0
        self.total = torch.zeros(len(shift), dtype=torch.float64)
        self.outer = torch.zeros(len(shift), len(shift), dtype=torch.float64)
        self._pending: list[Tensor] = []
        self._pending_rows = 0

    def add(self, flat: Tensor) -> None:
        self._pending.append(flat)
        self._pending_rows += len(flat)
        if self._pending_rows >= _CHUNK_ROWS:
            self.flush()

    def flush(self) -> None:
        """Add the pending rows to the sums."""
        if not self._pending:
            return
        chunk = torch.cat(self._pending).sub_(self.shift)
        self._pending, self._pending_rows = [], 0
        self.count += len(chunk)
        self.total += chunk.sum(0, dtype=torch.float64)
        self.outer += (chunk.T @ chunk).double()

    @staticmethod
    def pooled(parts: Iterable[_Moments]) -> _Moments:
        """The moments of all `parts` together (each flushed first; one shift for all)."""
        parts = list(parts)
        together = _Moments(parts[0].shift)
        for part in parts:
            part.flush()
            together.count += part.count
            together.total += part.total
            together.outer += part.outer
        return together


def _moments_of(moments: dict[int, _Moments], key: int, shift: Tensor) -> _Moments:
    """`moments[key]`, made (with `shift`) when it is not there yet."""
    if key not in moments:
        moments[key] = _Moments(shift)
    return moments[key]


def _fit_component(moments: _Moments, rank: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Probabilistic PCA from `moments`: mean, directions, their variances, residual."""
    offset = moments.total / moments.count  # the mean less the shift
    mean = moments.shift.double() + offset
    covariance = moments.outer / moments.count - torch.outer(offset, offset)
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)  # ascending
    eigenvalues = eigenvalues.clamp_min(0).flip(0)
    eigenvectors = eigenvectors.flip(1)
    floor = VARIANCE_FLOOR * eigenvalues.mean().clamp_min(1e-12)
    rest = eigenvalues[rank:]
    residual = (rest.mean() if len(rest) else eigenvalues.new_zeros(())) + floor
    return mean, eigenvectors[:, :rank], eigenvalues[:rank] + floor, residual
