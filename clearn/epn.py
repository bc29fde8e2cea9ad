"""EfficientPackNet's search: the smallest kept fraction that keeps γ of the validation score."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from clearn.defaults import KEPT_CANDIDATES

__all__ = [
    "KeptSearch",
    "check_gamma",
    "search_kept_fraction",
]


def check_gamma(gamma: float) -> float:
    """Return `gamma`, or raise ValueError unless it lies in (0, 1]."""
    if not 0.0 < float(gamma) <= 1.0:
        raise ValueError(
            f"gamma must be in (0, 1] (the share of unpruned validation accuracy to keep), "
            f"got {gamma!r}"
        )
    return float(gamma)


@dataclass(frozen=True)
class KeptSearch:
    """Outcome of a search: the chosen fraction and every evaluation made on the way."""

    kept: float
    score: float
    reference: float
    threshold: float
    evaluations: dict[float, float] = field(default_factory=dict)
    budget_bound: bool = False
    """True when the cap (`at_most`) was kept although it scores below the threshold."""


def search_kept_fraction(
    score_at: Callable[[float], float],
    *,
    reference: float,
    gamma: float,
    candidates: tuple[float, ...] = KEPT_CANDIDATES,
    at_most: float = 1.0,
) -> KeptSearch:
    """Bisect the ascending `candidates` for the smallest with score_at(k) ≥ gamma·reference.

    Accuracy is close to monotone in the kept fraction, so bisection needs about
    log2(len(candidates)) evaluations; the returned fraction always passes, and the
    candidate just below it (when evaluated) fails. Keeping everything counts as passing.
    With a cap `at_most` < 1 (a budget), the candidates stop at the cap, which is kept
    when nothing below it passes: then the result says `budget_bound`.
    """
    if not 0.0 < at_most <= 1.0:
        raise ValueError(f"the kept fraction's cap must be in (0, 1], got {at_most}")
    candidates = (*(c for c in candidates if c < at_most), at_most)
    threshold = check_gamma(gamma) * reference
    evaluations: dict[float, float] = {}

    def passes(index: int) -> bool:
        kept = candidates[index]
        if kept not in evaluations:
            evaluations[kept] = score_at(kept)
        return evaluations[kept] >= threshold

    low, high = 0, len(candidates) - 1  # invariant: high passes (or is the last candidate)
    if passes(low):
        high = low
    while high - low > 1:
        middle = (low + high) // 2
        if passes(middle):
            high = middle
        else:
            low = middle
    kept = candidates[high]
    score = evaluations.get(kept)
    if score is None:
        score = evaluations[kept] = score_at(kept)
    bound = at_most < 1.0 and kept == at_most and score < threshold
    return KeptSearch(kept, score, reference, threshold, evaluations, bound)
