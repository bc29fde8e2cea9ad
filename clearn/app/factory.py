"""Builds the Avalanche strategy a run names: ours (epn, packnet) or Avalanche's baselines."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from avalanche.core import SupervisedPlugin
from avalanche.models.packnet import PackNetModel
from avalanche.training import EWC, LwF, Naive, PackNet, SynapticIntelligence
from avalanche.training.supervised.joint_training import JointTraining
from avalanche.training.templates import SupervisedTemplate
from torch import nn

from clearn.app.config import RunConfig
from clearn.epn import DEFAULT_EVAL_BATCH_SIZE
from clearn.models import backbone
from scenarios.streams import TaskStream, build_stream
from strategies.distributed import process_rank
from strategies.efficient_packnet import EfficientPackNet
from strategies.epn import PackingPlugin
from strategies.guards import FiniteLossPlugin, ProgressPlugin
from strategies.heads import MultiHeadNet
from strategies.plateau_stop import PlateauStopPlugin
from strategies.task_model import TaskNetwork
from strategies.tensor_loader import TensorLoaderPlugin

__all__ = [
    "BASELINE_DEFAULTS",
    "PLATEAU_STOPPED",
    "Assembled",
    "assemble",
    "make_optimizer",
    "run_stream",
]

BASELINE_DEFAULTS = {"ewc": 100.0, "si": 1.0, "lwf": 1.0}
"""Default λ (ewc, si) and distillation weight α (lwf) when the run gives none. EWC's λ 1000
diverged at lr 0.3 on permuted Fashion-MNIST (loss NaN in task 5): the summed importance
times λ times the step grows with every task."""
PLATEAU_STOPPED = ("naive", "ewc", "si", "lwf")
"""Baselines that stop each task on a validation plateau, as epn and packnet do; joint
training and Avalanche's PackNet (whose pruning epoch is fixed) train every epoch."""
LWF_TEMPERATURE = 2.0
EWC_DECAY = 1.0
"""Online EWC keeps every earlier task's importance undecayed (a sum, like separate EWC)."""


@dataclass
class Assembled:
    """A strategy ready to train, with the pieces a run reports on and checkpoints."""

    strategy: SupervisedTemplate
    model: nn.Module
    network: TaskNetwork | None
    """The packing network of `epn` / `packnet`, None for the baselines."""
    packing: PackingPlugin | None
    plateau_stop: PlateauStopPlugin | None = None
    """The baselines' validation-plateau stop, None where the strategy has none."""


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
    """The optimizer the run names, over `parameters`."""
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
    features, width = backbone(config.model, input_shape=stream.input_shape, hidden=config.hidden)
    plugins: list[SupervisedPlugin] = [TensorLoaderPlugin()]
    network = None
    if config.strategy in ("epn", "packnet"):
        network = TaskNetwork(
            backbone=features,
            feature_size=width,
            classes_per_task=stream.classes_per_task,
            alpha=config.alpha,
            normalise_step=config.normalise_step,
            per_task_norm=config.per_task_norm,
        )
        model: nn.Module = network
    elif config.strategy == "avalanche-packnet":
        # Avalanche's PackNet packs the output layer too: one shared head as wide as the
        # widest task, each task using its own subnetwork of it.
        head = nn.Linear(width, max(stream.classes_per_task))
        model = PackNetModel(nn.Sequential(features, head))
    else:
        model = MultiHeadNet(
            backbone=features, feature_size=width, classes_per_task=stream.classes_per_task
        )
    plateau_stop = None
    if config.strategy in PLATEAU_STOPPED and config.patience:
        plateau_stop = PlateauStopPlugin(
            stream.benchmark.valid_stream, patience=config.patience, seed=config.seed
        )
        plugins.append(plateau_stop)
    plugins.append(FiniteLossPlugin())
    # One bar for a run over several processes; the same plugins on each, as checkpoints hold.
    plugins.append(ProgressPlugin(hidden=process_rank()[0] != 0))
    plugins += extra_plugins or []
    model.to(device)
    optimizer = make_optimizer(config, model.parameters())
    common = dict(
        model=model,
        optimizer=optimizer,
        criterion=nn.CrossEntropyLoss(),
        train_mb_size=config.batch_size,
        train_epochs=config.epochs,
        eval_mb_size=DEFAULT_EVAL_BATCH_SIZE,
        device=device,
        plugins=plugins,
        evaluator=evaluator,
    )
    strength = config.regularisation
    packing = None
    if network is not None:
        strategy = EfficientPackNet(
            valid_stream=stream.benchmark.valid_stream,
            mode=config.strategy,
            gamma=config.gamma,
            prune_fraction=config.prune_fraction,
            retrain_epochs=config.retrain_epochs,
            patience=config.patience or None,
            scope=config.scope,
            allow_frozen_features=config.allow_frozen_features,
            seed=config.seed,
            init_scale=config.init_scale,
            redraw_free=config.free_weights == "redraw",
            **common,
        )
        packing = strategy.packing
    elif config.strategy == "avalanche-packnet":
        strategy = PackNet(
            post_prune_epochs=min(config.retrain_epochs, config.epochs - 1),
            prune_proportion=config.prune_fraction,
            **common,
        )
    elif config.strategy == "ewc":
        # Online EWC (one running importance sum, anchored at the last task's weights): its cost
        # per step stays flat over a long stream, where "separate" adds a penalty per task.
        strategy = EWC(
            ewc_lambda=strength or BASELINE_DEFAULTS["ewc"],
            mode="online",
            decay_factor=EWC_DECAY,
            **common,
        )
    elif config.strategy == "si":
        strategy = SynapticIntelligence(
            si_lambda=strength or BASELINE_DEFAULTS["si"],
            **common,
        )
    elif config.strategy == "lwf":
        strategy = LwF(
            alpha=strength or BASELINE_DEFAULTS["lwf"],
            temperature=LWF_TEMPERATURE,
            **common,
        )
    elif config.strategy == "joint":
        strategy = JointTraining(**common)
    else:
        strategy = Naive(**common)
    return Assembled(strategy, model, network, packing, plateau_stop)
