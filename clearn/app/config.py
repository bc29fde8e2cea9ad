"""Settings of one `clearn run`, read from the command line or a TOML file and saved back."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w
import tomllib

from clearn.budget import DEFAULT_MAX_EPOCHS, DEFAULT_PATIENCE
from clearn.epn import (
    DEFAULT_ALPHA,
    DEFAULT_GAMMA,
    DEFAULT_INIT_SCALE,
    DEFAULT_NORMALISE_STEP,
    DEFAULT_RETRAIN_EPOCHS,
    check_gamma,
)
from clearn.powerprop import check_alpha
from scenarios.streams import STREAM_NAMES

__all__ = [
    "FREE_WEIGHTS",
    "MODELS",
    "OPTIMIZERS",
    "STRATEGIES",
    "RunConfig",
    "read_config",
    "write_config",
]

STRATEGIES = ("epn", "packnet", "avalanche-packnet", "naive", "ewc", "si", "lwf", "joint")
MODELS = ("mlp", "cnn")
OPTIMIZERS = ("sgd", "adam", "adamw")
FREE_WEIGHTS = ("redraw", "keep")


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """Everything that defines a run; `validate` raises ValueError with a sentence to act on.

    The `epn` defaults are one setting for every stream (README, "Defaults that hold across
    data"); they live in `clearn.epn` and `clearn.budget`, shared with the library.
    """

    scenario: str = "permuted-digits"
    strategy: str = "epn"
    alpha: float = DEFAULT_ALPHA
    """Powerprop exponent for `epn` / `packnet` (1 = plain weights)."""
    tasks: int | None = None
    """Number of tasks; None takes the scenario's default."""
    epochs: int = DEFAULT_MAX_EPOCHS
    """Epoch cap per task; a task stops earlier once its validation loss has not improved
    for `patience` epochs."""
    patience: int = DEFAULT_PATIENCE
    """Epochs without a better validation loss (spanning at least 300 steps) that end a
    task's training, for `epn`, `packnet`, `naive`, `ewc`, `si` and `lwf`; 0 trains every
    one of `epochs`."""
    model: str = "mlp"
    hidden: list[int] = field(default_factory=lambda: [300, 100])
    optimizer: str = "sgd"
    lr: float = 0.3
    momentum: float = 0.0
    weight_decay: float = 0.0
    batch_size: int = 60
    gamma: float = DEFAULT_GAMMA
    """EfficientPackNet: share of the unpruned validation accuracy each task keeps."""
    prune_fraction: float = 0.5
    """Classic PackNet: share of each task's trained weights pruned away."""
    retrain_epochs: int = DEFAULT_RETRAIN_EPOCHS
    """`epn` / `packnet` / `avalanche-packnet`: epochs of retraining the survivors after
    pruning (counted within `epochs`, of which at least one trains before pruning; 0 is the
    paper's EPN, which does not retrain)."""
    normalise_step: bool = DEFAULT_NORMALISE_STEP
    """`epn` / `packnet` with α > 1: Powerprop's κ set per layer so that a typical initial
    weight moves at α = 1's pace (`clearn.powerprop.step_normalising_scale`)."""
    scope: str = "layer"
    init_scale: float = DEFAULT_INIT_SCALE
    """`epn` / `packnet`: factor on PyTorch's default init of the backbone's weights."""
    free_weights: str = "redraw"
    """`epn` / `packnet`: "redraw" the free weights before each task, or "keep" the trained
    values that earlier tasks pruned away."""
    regularisation: float | None = None
    """λ of ewc / si, α of lwf; None takes the baseline's default."""
    eval_every_tasks: int = 1
    """Evaluate earlier tasks after every N-th task (the current and last task always)."""
    allow_frozen_features: bool = False
    seed: int = 0
    train_per_class: int | None = None
    """Keep this many training images of each class (seeded), to study small data; None
    keeps them all."""
    data_root: str | None = None
    download: bool = False
    device: str = "auto"
    tensorboard: bool = False

    def validate(self) -> RunConfig:
        """Check every option; return self."""
        if self.scenario not in STREAM_NAMES:
            raise ValueError(
                f"unknown scenario {self.scenario!r}; choose one of {', '.join(STREAM_NAMES)}"
            )
        if self.strategy not in STRATEGIES:
            raise ValueError(
                f"unknown strategy {self.strategy!r}; choose one of {', '.join(STRATEGIES)}"
            )
        check_alpha(self.alpha)
        check_gamma(self.gamma)
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; choose one of {', '.join(MODELS)}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}"
            )
        if self.tasks is not None and self.tasks < 1:
            raise ValueError(f"tasks must be at least 1, got {self.tasks}")
        if self.train_per_class is not None and self.train_per_class < 1:
            raise ValueError(
                f"train_per_class must be at least 1 (or unset for all), got {self.train_per_class}"
            )
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.patience < 0:
            raise ValueError(f"patience must be 0 (off) or a number of epochs, got {self.patience}")
        if self.retrain_epochs < 0:
            raise ValueError(f"retrain_epochs must not be negative, got {self.retrain_epochs}")
        if not 0.0 <= self.prune_fraction < 1.0:
            raise ValueError(f"prune_fraction must be in [0, 1), got {self.prune_fraction}")
        if self.lr <= 0 or self.batch_size < 1 or self.eval_every_tasks < 1:
            raise ValueError("lr must be positive; batch_size and eval_every_tasks at least 1")
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise ValueError(f"hidden needs positive layer widths, got {self.hidden}")
        if self.scope not in ("layer", "global"):
            raise ValueError(f"scope must be 'layer' or 'global', got {self.scope!r}")
        if not self.init_scale > 0:
            raise ValueError(f"init_scale must be positive, got {self.init_scale}")
        if self.free_weights not in FREE_WEIGHTS:
            raise ValueError(
                f"free_weights must be one of {', '.join(FREE_WEIGHTS)}, got {self.free_weights!r}"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every option (None values kept)."""
        return dataclasses.asdict(self)


def read_config(path: str | Path) -> dict[str, Any]:
    """Options from a TOML file (a flat table of RunConfig fields, `batch_size` or
    `batch-size`); unknown keys are errors."""
    path = Path(path)
    try:
        options = tomllib.loads(path.read_text())
    except OSError as error:
        raise ValueError(f"cannot read config file {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"config file {path} is not valid TOML: {error}") from None
    options = {key.replace("-", "_"): value for key, value in options.items()}
    known = {f.name for f in dataclasses.fields(RunConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(
            f"config file {path} has unknown options {unknown}; known: {sorted(known)}"
        )
    return options


def write_config(config: RunConfig, path: str | Path) -> Path:
    """Save `config` as TOML (options that are None are left out)."""
    path = Path(path)
    content = {key: value for key, value in config.to_dict().items() if value is not None}
    path.write_text(tomli_w.dumps(content))
    return path
