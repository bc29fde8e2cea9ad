"""Builds the Avalanche strategy a run names, from its spec in `clearn.app.registry`."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from avalanche.core import SupervisedPlugin
from avalanche.training.templates import SupervisedTemplate
from torch import nn

from clearn.app.config import RunConfig
from clearn.app.registry import ModelRequest, spec_for
from clearn.defaults import DEFAULT_EVAL_BATCH_SIZE
from clearn.models import backbone
from scenarios.streams import TaskStream, build_stream
from strategies.distributed import process_rank
from strategies.epn import PackingPlugin
from strategies.guards import FiniteLossPlugin, ProgressPlugin
from strategies.plateau_stop import PlateauBudgetPlugin
from strategies.task_model import TaskNetwork
from strategies.tensor_loader import TensorLoaderPlugin
from strategies.validation_split import ValidationSplitPlugin

__all__ = [
    "Assembled",
    "assemble",
    "make_optimizer",
    "run_stream",
]

@dataclass
class Assembled:
    """A strategy ready to train, with the pieces a run reports on and checkpoints."""

    strategy: SupervisedTemplate
    model: nn.Module
    network: TaskNetwork | None
    """The packing network of `epn` / `packnet`, None for the baselines."""
    packing: PackingPlugin | None
    plateau_stop: PlateauBudgetPlugin | None = None
    """The baselines' validation-plateau budget, None where the strategy has none."""


def run_stream(config: RunConfig) -> TaskStream:
    """The stream `config` names, with its data options (the same tasks, permutations and
    subsample every time)."""
    return build_stream(
        config.scenario,
        n_tasks=config.tasks,
        classes_per_task=config.classes_per_task,
        seed=config.seed,
        data_root=config.data_root,
        download=config.download,
        train_per_class=config.train_per_class,
    )


def make_optimizer(config: RunConfig, parameters) -> torch.optim.Optimizer:
    """The optimizer the run names (or its strategy's), over `parameters`."""
    config = config.resolved()
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            parameters, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    if config.optimizer == "adam":
        return torch.optim.Adam(parameters, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)


def assemble(
    config: RunConfig,
    stream: TaskStream,
    *,
    device: torch.device,
    evaluator,
    extra_plugins: list[SupervisedPlugin] | None = None,
) -> Assembled:
    """Model, optimizer, plugins and strategy for `config.strategy` on `stream`."""
    spec = spec_for(config.strategy)
    features, width = backbone(config.model, input_shape=stream.input_shape, hidden=config.hidden)
    model = spec.build_model(ModelRequest(features, width, stream.classes_per_task, config))
    plugins: list[SupervisedPlugin] = [TensorLoaderPlugin()]
    plateau_stop = None
    if spec.plateau_stop and config.patience:
        split = ValidationSplitPlugin(stream.benchmark.valid_stream, seed=config.seed)
        plateau_stop = PlateauBudgetPlugin(split.data, patience=config.patience)
        plugins += [split, plateau_stop]
    plugins.append(FiniteLossPlugin())
    # One bar for a run over several processes; the same plugins on each, as checkpoints hold.
    plugins.append(ProgressPlugin(hidden=process_rank()[0] != 0))
    plugins += extra_plugins or []
    model.to(device)
    common = dict(
        model=model,
        optimizer=make_optimizer(config, model.parameters()),
        criterion=nn.CrossEntropyLoss(),
        train_mb_size=config.batch_size,
        train_epochs=config.epochs,
        eval_mb_size=DEFAULT_EVAL_BATCH_SIZE,
        device=device,
        plugins=plugins,
        evaluator=evaluator,
    )
    strategy = spec.build_strategy(config, stream, common)
    network = model if isinstance(model, TaskNetwork) else None
    packing = getattr(strategy, "packing", None)
    return Assembled(strategy, model, network, packing, plateau_stop)
