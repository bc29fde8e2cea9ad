"""Settings of one `clearn run`, read from the command line or a TOML file and saved back."""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import typing
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any

import tomli_w
import torch

from clearn.app.io import write_text_atomic
from clearn.app.registry import STRATEGIES, STRATEGY_NAMES, StrategySpec, spec_for
from clearn.defaults import (
    DEFAULT_ALPHA,
    DEFAULT_BATCH_SIZE,
    DEFAULT_GAMMA,
    DEFAULT_INIT_SCALE,
    DEFAULT_LR,
    DEFAULT_MAX_EPOCHS,
    DEFAULT_NORMALISE_STEP,
    DEFAULT_PATIENCE,
    DEFAULT_PRUNE_FRACTION,
    DEFAULT_RETRAIN_EPOCHS,
)
from clearn.epn import check_gamma
from clearn.models import MODELS, backbone
from clearn.packing import TRAIN_LAYERS
from clearn.powerprop import check_alpha
from clearn.pruning import DEFAULT_SCOPE, SCOPES
from clearn.task_inference import METHODS
from clearn.task_pruning import check_task_budget
from scenarios.streams import STREAM_NAMES

__all__ = [
    "FREE_WEIGHTS",
    "OPTIMIZERS",
    "RunConfig",
    "brief",
    "check_device",
    "check_seed",
    "read_config",
    "write_config",
]

MAX_ALPHA = 8.0
"""Largest Powerprop exponent a run takes."""
MAX_TASKS = 32766
"""Most tasks a run takes: ownership masks widen to int16, whose codes tell 32766 apart."""
OPTIMIZERS = ("sgd", "adam", "adamw")
DEFAULT_OPTIMIZER = "sgd"
FREE_WEIGHTS = ("redraw", "keep")
MAX_SEED = 2**32 - 1
"""Largest seed a run takes (NumPy's generators take 0 to 2**32 - 1)."""
INPUT_SHAPES = {
    "digits": (1, 8, 8),
    "mnist": (1, 28, 28),
    "fmnist": (1, 28, 28),
    "cifar10": (3, 32, 32),
    "cifar100": (3, 32, 32),
}
"""Image shape of each scenario's data set, to check the model before any data is loaded."""
BYTES_PER_PARAMETER = 16
"""Memory a trained float32 parameter takes: weight, gradient, two optimizer moments."""
SHOWN_CHARACTERS = 60
"""Longest value an error message repeats (a value from a file can be megabytes long)."""


def brief(value: object) -> str:
    """`repr(value)`, shortened to SHOWN_CHARACTERS for an error message."""
    text = repr(value)
    if len(text) <= SHOWN_CHARACTERS:
        return text
    return f"{text[: SHOWN_CHARACTERS - 20]}... ({len(text):,} characters)"


def _option(default: Any = MISSING, *, help: str, choices: tuple[str, ...] | None = None,
            factory: Any = MISSING, shown: str | None = None) -> Any:
    """A RunConfig field with its command-line help (and choices, and how its default reads
    when the value alone would not say): the CLI is built from these."""
    metadata = {"help": help, "choices": choices, "shown": shown}
    if factory is not MISSING:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """Everything that defines a run; `validate` raises ValueError with a sentence to act on.

    Each field carries its help, from which `clearn run`'s options are built. The `epn`
    defaults are one setting for every stream (README, "Defaults that hold across data");
    they live in `clearn.defaults`, shared with the library.
    """

    scenario: str = _option("permuted-digits", help="task stream, e.g. permuted-digits, "
                            "split-fmnist, split-cifar10")
    strategy: str = _option("epn", help="continual-learning strategy", choices=STRATEGY_NAMES)
    alpha: float = _option(DEFAULT_ALPHA, help="Powerprop exponent for epn/packnet (1 = plain)")
    tasks: int | None = _option(None, help="number of tasks (default: the scenario's)")
    classes_per_task: int | None = _option(
        None, help="split streams: classes in each task (default: 2; CIFAR-100 10)"
    )
    epochs: int = _option(DEFAULT_MAX_EPOCHS, help="epoch cap per task (see --patience)")
    patience: int = _option(
        DEFAULT_PATIENCE,
        help="stop a task after this many epochs without a better validation loss (and at "
        "least 300 steps), for epn, packnet, naive, ewc, si and lwf; 0 trains every epoch",
    )
    model: str = _option("mlp", help="backbone", choices=MODELS)
    hidden: list[int] = _option(help="MLP widths", factory=lambda: [300, 100])
    optimizer: str | None = _option(
        None,
        help=f"optimizer (default: the strategy's: {DEFAULT_OPTIMIZER}, or its paper's for "
        f"the peer methods)",
        choices=OPTIMIZERS,
    )
    lr: float | None = _option(
        None,
        help=f"learning rate (default: the strategy's: {DEFAULT_LR:g}, or its paper's for the "
        f"peer methods)",
    )
    momentum: float = _option(0.0, help="SGD momentum")
    weight_decay: float = _option(0.0, help="weight decay")
    batch_size: int = _option(DEFAULT_BATCH_SIZE, help="training minibatch size")
    gamma: float = _option(
        DEFAULT_GAMMA, help="epn: share of the unpruned validation accuracy each task keeps"
    )
    density: float | None = _option(
        None,
        help="wsn/supsup: share of each layer's weights a task's mask keeps (default: the "
        "papers' 0.5)",
    )
    prune_fraction: float = _option(
        DEFAULT_PRUNE_FRACTION, help="packnet: share of each task's trained weights pruned"
    )
    task_budget: int | None = _option(
        None,
        help="epn/packnet: the number of tasks the network must hold; each task keeps at most "
        "an equal share of the weights still free (default: no budget, gamma alone decides)",
    )
    retrain_epochs: int = _option(
        DEFAULT_RETRAIN_EPOCHS,
        help="epn/packnet/avalanche-packnet: epochs retraining the survivors after pruning, "
        "within --epochs (0: the paper's EPN, no retraining)",
    )
    normalise_step: bool = _option(
        DEFAULT_NORMALISE_STEP,
        help="Powerprop: scale each layer so a typical weight trains at alpha=1's pace",
    )
    per_task_norm: bool = _option(
        False,
        help="epn/packnet: each task its own BatchNorm statistics and affine parameters "
        "(otherwise BatchNorm trains with the first task and is frozen after it)",
    )
    scope: str = _option(DEFAULT_SCOPE, help="prune per layer or globally", choices=SCOPES)
    init_scale: float = _option(
        DEFAULT_INIT_SCALE, help="epn/packnet: factor on PyTorch's default weight init"
    )
    free_weights: str = _option(
        "redraw",
        help="epn/packnet: redraw the free weights before each task, or keep the values "
        "earlier tasks pruned away",
        choices=FREE_WEIGHTS,
    )
    train_layers: str | None = _option(
        None,
        help="epn/packnet: 'first' has each task after the first train only the first "
        "layer's free weights, reusing the deeper weights earlier tasks own",
        choices=TRAIN_LAYERS,
        shown="every layer",
    )
    regularisation: float | None = _option(
        None, help="lambda of ewc/si, alpha of lwf, c of hat (default: the strategy's)"
    )
    eval_every_tasks: int = _option(
        1, help="evaluate earlier tasks after every N-th task only (current and last always)"
    )
    allow_frozen_features: bool = _option(
        False, help="with no free weight left, train a task's head on frozen features"
    )
    task_agnostic: bool = _option(
        False,
        help="epn/packnet: also evaluate without task labels (task inferred per example); "
        "adds the task-agnostic and task-id accuracy matrices to results.json",
    )
    task_inference: str | None = _option(
        None,
        help="with --task-agnostic: how each example's task is found",
        choices=tuple(METHODS),
        shown="inputs where every task's inputs are recorded, as epn/packnet do, else example",
    )
    task_agnostic_examples: int | None = _option(
        None,
        help="with --task-agnostic: answer at most N test examples of each task without its "
        "label (a seeded sample; scoring grows with the tasks, so long streams need one)",
        shown="all",
    )
    seed: int = _option(0, help="seed of data order, permutations and initialisation")
    train_per_class: int | None = _option(
        None, help="keep this many training images per class (seeded), to study small data"
    )
    data_root: str | None = _option(
        None, help="folder in torchvision's layout (default: Avalanche's data folder)"
    )
    download: bool = _option(False, help="let torchvision fetch missing data (needs internet)")
    device: str = _option("auto", help="cpu, cuda, or auto (cuda when present)")
    tensorboard: bool = _option(False, help="also log to TensorBoard (out/tensorboard)")
    wandb: bool = _option(
        False, help="also log to Weights & Biases (WANDB_MODE=offline works without network)"
    )

    def resolved(self) -> RunConfig:
        """This config with the options left to the strategy (`optimizer`, `lr`) filled in:
        its spec's `defaults` (the peer methods' papers), else clearn's."""
        spec = STRATEGIES.get(self.strategy)
        defaults = {"optimizer": DEFAULT_OPTIMIZER, "lr": DEFAULT_LR}
        defaults.update(spec.defaults if spec else {})
        left = {key: value for key, value in defaults.items() if getattr(self, key) is None}
        return dataclasses.replace(self, **left) if left else self

    def validate(self) -> RunConfig:
        """Check every option, its type first; return self."""
        self._check_types()
        resolved = self.resolved()
        self._check_names(resolved)
        self._check_numbers()
        self._check_combinations(spec_for(self.strategy))
        self._check_training(resolved)
        return self

    def _check_names(self, resolved: RunConfig) -> None:
        """Named choices (scenario, strategy, model, optimizer) and the core's own checks."""
        if self.scenario not in STREAM_NAMES:
            raise ValueError(
                f"unknown scenario {brief(self.scenario)}; choose one of {', '.join(STREAM_NAMES)}"
            )
        if self.strategy not in STRATEGIES:
            raise ValueError(
                f"unknown strategy {brief(self.strategy)}; choose one of "
                f"{', '.join(STRATEGY_NAMES)}"
            )
        check_run_alpha(self.alpha)
        check_seed(self.seed)
        check_gamma(self.gamma)
        if self.model not in MODELS:
            raise ValueError(
                f"unknown model {brief(self.model)}; choose one of {', '.join(MODELS)}"
            )
        if resolved.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"unknown optimizer {brief(self.optimizer)}; choose one of {', '.join(OPTIMIZERS)}"
            )

    def _check_numbers(self) -> None:
        """Sizes and ranges of the stream, the network and the optimizer."""
        if self.tasks is not None and not 1 <= self.tasks <= MAX_TASKS:
            raise ValueError(
                f"tasks must be at least 1 and at most {MAX_TASKS} (the most that ownership "
                f"masks can tell apart), got {self.tasks}"
            )
        if not 0.0 <= self.momentum < 1.0 or self.weight_decay < 0:
            raise ValueError(
                f"momentum must be in [0, 1) and weight_decay not negative, got "
                f"{self.momentum:g} and {self.weight_decay:g}"
            )
        if self.classes_per_task is not None and self.classes_per_task < 1:
            raise ValueError(f"classes_per_task must be at least 1, got {self.classes_per_task}")
        if self.regularisation is not None and self.regularisation < 0:
            raise ValueError(f"regularisation must not be negative, got {self.regularisation:g}")
        check_device(self.device)

    def _check_combinations(self, spec: StrategySpec) -> None:
        """Options that hold only with the strategy or another option."""
        if self.task_agnostic and not spec.packs:
            raise ValueError(
                f"task_agnostic inference needs a packed network "
                f"({', '.join(n for n in STRATEGY_NAMES if spec_for(n).packs)}), not "
                f"{self.strategy}"
            )
        if self.task_inference is not None and self.task_inference not in METHODS:
            raise ValueError(
                f"unknown task_inference {brief(self.task_inference)}; choose one of "
                f"{', '.join(METHODS)}"
            )
        if self.task_inference is not None and not self.task_agnostic:
            raise ValueError(
                "task_inference chooses how task_agnostic evaluation finds the task: give "
                "task_agnostic too (--task-agnostic)"
            )
        if self.train_layers is not None and self.train_layers not in TRAIN_LAYERS:
            raise ValueError(
                f"train_layers must be one of {', '.join(TRAIN_LAYERS)}, got "
                f"{brief(self.train_layers)}"
            )
        if self.train_layers is not None and not spec.packs:
            raise ValueError(
                f"train_layers chooses what a packed network's later tasks train "
                f"({', '.join(n for n in STRATEGY_NAMES if spec_for(n).packs)}), not "
                f"{self.strategy}"
            )
        if self.task_agnostic_examples is not None and (
            not self.task_agnostic or self.task_agnostic_examples < 1
        ):
            raise ValueError(
                f"task_agnostic_examples samples what task_agnostic evaluation answers: give "
                f"task_agnostic too (--task-agnostic) and a positive number, got "
                f"{self.task_agnostic_examples}"
            )
        if self.train_per_class is not None and self.train_per_class < 2:
            raise ValueError(
                f"train_per_class must be at least 2 (or unset for all), got "
                f"{self.train_per_class}: validation images are held out of the training "
                "images, which must keep every class"
            )
        if self.epochs < spec.min_epochs:
            raise ValueError(
                f"epochs must be at least {spec.min_epochs} for {self.strategy}, got {self.epochs}"
            )

    def _check_training(self, resolved: RunConfig) -> None:
        """The training budget, pruning and the network's options."""
        if self.patience < 0:
            raise ValueError(f"patience must be 0 (off) or a number of epochs, got {self.patience}")
        if self.retrain_epochs < 0:
            raise ValueError(f"retrain_epochs must not be negative, got {self.retrain_epochs}")
        if self.density is not None and not 0.0 < self.density <= 1.0:
            raise ValueError(f"density must be in (0, 1], got {self.density}")
        if not 0.0 <= self.prune_fraction < 1.0:
            raise ValueError(f"prune_fraction must be in [0, 1), got {self.prune_fraction}")
        check_task_budget(self.task_budget)
        if resolved.lr <= 0 or self.batch_size < 1 or self.eval_every_tasks < 1:
            raise ValueError("lr must be positive; batch_size and eval_every_tasks at least 1")
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise ValueError(f"hidden needs positive layer widths, got {brief(self.hidden)}")
        if self.scope not in SCOPES:
            raise ValueError(f"scope must be 'layer' or 'global', got {brief(self.scope)}")
        self._check_model()
        if not self.init_scale > 0:
            raise ValueError(f"init_scale must be positive, got {self.init_scale}")
        if self.free_weights not in FREE_WEIGHTS:
            raise ValueError(
                f"free_weights must be one of {', '.join(FREE_WEIGHTS)}, got "
                f"{brief(self.free_weights)}"
            )

    def _check_model(self) -> None:
        """The model takes the scenario's images and its parameters fit in the memory of the
        run's device, checked on a model built without memory (PyTorch's meta device)."""
        shape = INPUT_SHAPES[self.scenario.partition("-")[2]]
        try:
            with torch.device("meta"):
                features, width = backbone(self.model, input_shape=shape, hidden=self.hidden)
        except ValueError as error:
            raise ValueError(
                f"model {self.model} cannot take {self.scenario}'s "
                f"{'×'.join(map(str, shape))} images: {error}"
            ) from None
        parameters = sum(p.numel() for p in features.parameters()) + width * 10
        needed = parameters * BYTES_PER_PARAMETER
        available, where = _device_memory(self.device)
        if needed > available:
            named, fix = (
                (f"hidden {brief(self.hidden)}", "narrower layers")
                if self.model == "mlp"
                else (f"model {self.model}", "a smaller model")
            )
            raise ValueError(
                f"{named} makes a model of {parameters:.3g} parameters, about "
                f"{needed / 2**30:.3g} GiB to train, more than the {available / 2**30:.3g} GiB "
                f"of {where}: use {fix}"
            )

    def _check_types(self) -> None:
        """Each field of its declared type (a TOML file can hold anything), floats finite."""
        hints = typing.get_type_hints(RunConfig)
        for option in dataclasses.fields(self):
            value, kind = getattr(self, option.name), hints[option.name]
            if not _has_type(value, kind):
                raise ValueError(f"{option.name} must be {_type_name(kind)}, got {brief(value)}")
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{option.name} must be a finite number, got {brief(value)}")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every option, those left to the strategy filled in (other None
        values kept)."""
        return dataclasses.asdict(self.resolved())


def _has_type(value: object, kind: object) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is str:
        return isinstance(value, str)
    if typing.get_origin(kind) is list:
        (element,) = typing.get_args(kind)
        return isinstance(value, list) and all(_has_type(v, element) for v in value)
    options = typing.get_args(kind)  # X | None
    return any(value is None if t is type(None) else _has_type(value, t) for t in options)


def _type_name(kind: object) -> str:
    if typing.get_origin(kind) is list:
        plurals = {int: "whole numbers", float: "numbers", str: "texts"}
        return f"a list of {plurals[typing.get_args(kind)[0]]}"
    names = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}
    if kind in names:
        return names[kind]
    return " or ".join("unset" if t is type(None) else _type_name(t) for t in typing.get_args(kind))


def check_run_alpha(alpha: float) -> float:
    """`alpha` as the core checks it, and at most MAX_ALPHA; ValueError otherwise."""
    if check_alpha(alpha) > MAX_ALPHA:
        raise ValueError(
            f"alpha must be at most {MAX_ALPHA:g} (w = |θ|^α underflows beyond; the "
            f"Powerprop paper uses 1 to 5), got {alpha:g}"
        )
    return alpha


def check_seed(seed: int) -> int:
    """Return `seed`, or raise ValueError naming it when no generator of a run takes it."""
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be a whole number from 0 to {MAX_SEED}, got {brief(seed)}")
    return seed


def check_device(device: str) -> str:
    """Return `device` ("auto", "cpu", "cuda" or "cuda:N"), or raise ValueError naming it
    when it is no such device or this machine lacks it."""
    if device == "auto":
        return device
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be auto, cpu or cuda[:N], got {brief(device)}") from None
    if parsed.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda[:N], got {brief(device)}")
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device} asked for, but this machine has no CUDA GPU: use cpu")
    if parsed.type == "cuda" and (parsed.index or 0) >= torch.cuda.device_count():
        raise ValueError(
            f"device {device} asked for, but this machine has {torch.cuda.device_count()} "
            f"CUDA GPU(s): use cuda:0 to cuda:{torch.cuda.device_count() - 1}"
        )
    return device


def _device_memory(device: str) -> tuple[int, str]:
    """Bytes a run on `device` may use, and what they are (a GPU's memory, else free RAM)."""
    if device != "cpu" and torch.cuda.is_available():
        index = torch.device("cuda" if device == "auto" else device).index or 0
        return torch.cuda.get_device_properties(index).total_memory, f"GPU {index}"
    try:  # MemAvailable counts the page cache the kernel gives back; SC_AVPHYS_PAGES does not
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024, "memory available"
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "memory available"


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
    spelled: dict[str, str] = {}
    for key in options:
        name = key.replace("-", "_")
        if name in spelled:
            raise ValueError(
                f"config file {path} sets {name} twice, as {brief(spelled[name])} and "
                f"{brief(key)}: keep one"
            )
        spelled[name] = key
    options = {name: options[key] for name, key in spelled.items()}
    known = {f.name for f in dataclasses.fields(RunConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        shown = ", ".join(brief(key) for key in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise ValueError(
            f"config file {path} has unknown options {shown}{more}; known: "
            f"{', '.join(sorted(known))}"
        )
    return options


def write_config(config: RunConfig, path: str | Path) -> Path:
    """Save `config` as TOML (options that are None are left out)."""
    content = {key: value for key, value in config.to_dict().items() if value is not None}
    return write_text_atomic(path, tomli_w.dumps(content))
