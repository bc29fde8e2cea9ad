"""Continual-learning metrics from the accuracy matrix R (`R[i][j]`: task j after training i)."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["AccuracyMatrix", "average_accuracy", "backward_transfer", "forgetting"]

AccuracyMatrix = Sequence[Sequence[float | None]]
"""Rows after each task; None where task j was not evaluated after task i."""


def _final_row(matrix: AccuracyMatrix) -> Sequence[float | None]:
    if not matrix:
        raise ValueError("the accuracy matrix is empty: no task was trained")
    return matrix[-1]


def average_accuracy(matrix: AccuracyMatrix) -> float:
    """`ACC = mean_j R[T−1][j]` over the tasks trained so far."""
    row = [value for value in _final_row(matrix)[: len(matrix)] if value is not None]
    if not row:
        raise ValueError("the last row of the accuracy matrix has no evaluated task")
    return sum(row) / len(row)


def backward_transfer(matrix: AccuracyMatrix) -> float | None:
    """`BWT = mean_{j<T−1} (R[T−1][j] − R[j][j])`; None with a single task."""
    last = len(matrix) - 1
    pairs = [(matrix[last][j], matrix[j][j]) for j in range(last)]
    pairs = [(now, then) for now, then in pairs if now is not None and then is not None]
    return sum(now - then for now, then in pairs) / len(pairs) if pairs else None


def forgetting(matrix: AccuracyMatrix) -> float | None:
    """Chaudhry et al. 2018: `mean_{j<T−1} max_{l<T−1} (R[l][j] − R[T−1][j])`; None for one task."""
    last = len(matrix) - 1
    drops = []
    for j in range(last):
        now = matrix[last][j]
        history = [matrix[i][j] for i in range(j, last) if matrix[i][j] is not None]
        if now is not None and history:
            drops.append(max(history) - now)
    return sum(drops) / len(drops) if drops else None

