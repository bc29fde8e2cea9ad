"""EfficientPackNet's search: the smallest kept fraction that keeps γ of the validation score."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_EVAL_BATCH_SIZE",
    "DEFAULT_GAMMA",
    "DEFAULT_GUARD_EXAMPLES",
    "DEFAULT_INIT_SCALE",
    "DEFAULT_LR",
    "DEFAULT_NORMALISE_STEP",
    "DEFAULT_PRUNE_FRACTION",
    "DEFAULT_RETRAIN_EPOCHS",
    "KEPT_CANDIDATES",
    "KeptSearch",
    "check_gamma",
    "search_kept_fraction",
]

# The defaults below are one setting for every stream and data size, chosen on permuted and
# split digits and Fashion-MNIST subsets (README, "Defaults that hold across data"), where
# each one was measured against its alternatives; library, plugin and CLI share them.
DEFAULT_ALPHA = 1.5
"""Powerprop exponent. With the step normalised, α = 2 and 4 lost 1–30 points of accuracy on
some streams (large weights outpace α = 1 by (|w|/typical)^(2−2/α)); α = 1.5 kept α = 1's
accuracy at a tenth to a half of its capacity."""
DEFAULT_NORMALISE_STEP = True
"""Powerprop's κ set so that a typical initial weight trains at α = 1's pace: without it,
α > 1 takes tens of times more steps, and under-trains wherever data is small."""
DEFAULT_GAMMA = 0.99
"""Share of the unpruned validation accuracy each task keeps."""
DEFAULT_GUARD_EXAMPLES = 10_000
"""Training examples on which the search's guard scores a candidate: a fixed random sample
of each task's training data where it has more. The guard compares each candidate with the
unpruned network on the same examples, so 10,000 tell apart a 1% drop (γ 0.99) with room to
spare, and on full Fashion-MNIST (54,000 a task) the guard took 80% of the search's time."""
DEFAULT_INIT_SCALE = 0.5
"""Factor on PyTorch's default init for packed networks: under Powerprop the weights a task
does not need stay near where they were drawn, so a smaller draw leaves less to prune."""
DEFAULT_RETRAIN_EPOCHS = 1
"""Epochs of retraining the survivors after pruning (PackNet's step, also for EPN: the
search may then keep fewer weights, and the task regains what pruning cost it)."""
DEFAULT_PRUNE_FRACTION = 0.5
"""Classic PackNet: share of each task's trained weights pruned away."""
DEFAULT_LR = 0.3
"""SGD step size of the default setting (with the step normalised, α > 1 trains at it)."""
DEFAULT_BATCH_SIZE = 60
"""Minibatch size of the default setting (the Powerprop paper's)."""
DEFAULT_EVAL_BATCH_SIZE = 1000
"""Minibatch size of evaluation and of the pruning search (forward passes only)."""

KEPT_CANDIDATES: tuple[float, ...] = tuple(float(k) for k in np.geomspace(0.001, 1.0, 160))
"""Kept fractions tried, ascending: 0.1% to 100%, each about 4.4% above the previous."""


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


def search_kept_fraction(
    score_at: Callable[[float], float],
    *,
    reference: float,
    gamma: float,
    candidates: tuple[float, ...] = KEPT_CANDIDATES,
) -> KeptSearch:
    """Bisect the ascending `candidates` for the smallest with score_at(k) ≥ gamma·reference.

    Accuracy is close to monotone in the kept fraction, so bisection needs about
    log2(len(candidates)) evaluations; the returned fraction always passes, and the
    candidate just below it (when evaluated) fails. Keeping everything counts as passing.
    """
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
    return KeptSearch(kept, score, reference, threshold, evaluations)
