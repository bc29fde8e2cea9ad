"""The one default setting of clearn's packing strategies, shared by library, plugins and CLI.

One setting for every stream and data size; each constant says in one line why it is what it
is. The measurements behind them are in CHANGELOG.md ("History of the defaults").
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_EVAL_BATCH_SIZE",
    "DEFAULT_GAMMA",
    "DEFAULT_GUARD_EXAMPLES",
    "DEFAULT_INIT_SCALE",
    "DEFAULT_LR",
    "DEFAULT_MAX_EPOCHS",
    "DEFAULT_NORMALISE_STEP",
    "DEFAULT_PATIENCE",
    "DEFAULT_PRUNE_FRACTION",
    "DEFAULT_RETRAIN_EPOCHS",
    "DEFAULT_VALIDATION_SHARE",
    "KEPT_CANDIDATES",
    "MIN_PATIENCE_STEPS",
]

DEFAULT_ALPHA = 1.5
"""Powerprop exponent: sparse enough to pack, stable at the default step size."""
DEFAULT_NORMALISE_STEP = True
"""Powerprop's κ set so that a typical initial weight trains at α = 1's pace."""
DEFAULT_GAMMA = 0.99
"""Share of the unpruned validation accuracy each task keeps."""
DEFAULT_GUARD_EXAMPLES = 10_000
"""Training examples the search's guard scores a candidate on: enough to tell a 1% drop."""
DEFAULT_INIT_SCALE = 0.5
"""Factor on PyTorch's default init: weights a task does not need stay small, easy to prune."""
DEFAULT_RETRAIN_EPOCHS = 1
"""Epochs retraining the survivors after pruning: the task regains what pruning cost it."""
DEFAULT_PRUNE_FRACTION = 0.5
"""Classic PackNet: share of each task's trained weights pruned away."""
DEFAULT_LR = 0.3
"""SGD step size; with the step normalised, α > 1 trains at it too."""
DEFAULT_BATCH_SIZE = 60
"""Training minibatch size: the Powerprop paper's."""
DEFAULT_EVAL_BATCH_SIZE = 1000
"""Minibatch size of evaluation and of the pruning search (forward passes only)."""
DEFAULT_PATIENCE = 3
"""Epochs without a better validation loss after which a task stops training."""
DEFAULT_MAX_EPOCHS = 50
"""Epoch cap per task when training stops on a plateau."""
MIN_PATIENCE_STEPS = 300
"""Fewest optimizer steps a plateau spans: on small data a few epochs are no evidence."""
DEFAULT_VALIDATION_SHARE = 0.1
"""Share of each training experience held out for validation when there is no valid_stream."""
KEPT_CANDIDATES: tuple[float, ...] = tuple(float(k) for k in np.geomspace(0.001, 1.0, 160))
"""Kept fractions the search tries, ascending: 0.1% to 100%, each about 4.4% above the last."""
