"""Every strategy `clearn run` trains, one spec each: its model, its strategy and the traits
the run, the config, the command line and the tests read off it.

Adding a strategy is one `StrategySpec` in `STRATEGIES`; nothing else names strategies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from avalanche.models.packnet import PackNetModel
from avalanche.training import EWC, LwF, Naive
from avalanche.training.supervised.joint_training import JointTraining
from avalanche.training.templates import SupervisedTemplate
from torch import nn

from clearn.hat import DEFAULT_C as HAT_C
from clearn.hat import DEFAULT_LR as HAT_LR
from clearn.subnet_training import DEFAULT_SUPSUP_LR, DEFAULT_WSN_LR
from scenarios.streams import TaskStream
from strategies.avalanche_compat import PackNetPlugin, SynapticIntelligencePlugin
from strategies.efficient_packnet import EfficientPackNet
from strategies.hat import HAT
from strategies.hat_model import HatNetwork
from strategies.heads import MultiHeadNet
from strategies.subnet_model import SubnetTaskNetwork
from strategies.supsup import SupSup
from strategies.task_model import TaskNetwork
from strategies.wsn import WSN

if TYPE_CHECKING:  # the config names strategies from here; the builders only read it
    from clearn.app.config import RunConfig

__all__ = [
    "BASELINE_DEFAULTS",
    "STRATEGIES",
    "STRATEGY_NAMES",
    "ModelRequest",
    "StrategySpec",
    "spec_for",
]

BASELINE_DEFAULTS = {"ewc": 100.0, "si": 1.0, "lwf": 1.0}
"""Default λ (ewc, si) and distillation weight α (lwf) when the run gives none. EWC's λ 1000
diverged at lr 0.3 on permuted Fashion-MNIST (loss NaN in task 5): the summed importance
times λ times the step grows with every task."""
LWF_TEMPERATURE = 2.0
EWC_DECAY = 1.0
"""Online EWC keeps every earlier task's importance undecayed (a sum, like separate EWC)."""


@dataclass(frozen=True)
class ModelRequest:
    """What a strategy's model is built from: the backbone without its output layer."""

    features: nn.Module
    width: int
    """Width of the backbone's output."""
    classes_per_task: Sequence[int]
    config: RunConfig


ModelBuilder = Callable[[ModelRequest], nn.Module]
StrategyBuilder = Callable[["RunConfig", TaskStream, dict[str, Any]], SupervisedTemplate]
"""(config, stream, the template's common keyword arguments) → strategy."""


@dataclass(frozen=True, kw_only=True)
class StrategySpec:
    """One strategy: how it is built and what the run does around it."""

    name: str
    summary: str
    build_model: ModelBuilder
    build_strategy: StrategyBuilder
    packs: bool = False
    """Trains a packed `TaskNetwork` (α, capacity, task-agnostic inference, packing reports)."""
    plateau_stop: bool = False
    """Gets the baselines' validation-plateau stop (the packing strategies stop on their own)."""
    distributed: bool = False
    """`torchrun ... -m clearn run` trains it data-parallel."""
    joint: bool = False
    """Trains the whole stream at once and evaluates every task."""
    min_epochs: int = 1
    """Fewest epochs a task can train with (Avalanche's PackNet prunes after the first)."""
    defaults: dict[str, Any] = field(default_factory=dict)
    """Run options the strategy sets when the run leaves them unset (`optimizer`, `lr`):
    the peer methods' papers' settings."""


def _packed_network(request: ModelRequest) -> nn.Module:
    config = request.config
    return TaskNetwork(
        backbone=request.features,
        feature_size=request.width,
        classes_per_task=request.classes_per_task,
        alpha=config.alpha,
        normalise_step=config.normalise_step,
        per_task_norm=config.per_task_norm,
    )


def _multi_head(request: ModelRequest) -> nn.Module:
    return MultiHeadNet(
        backbone=request.features,
        feature_size=request.width,
        classes_per_task=request.classes_per_task,
    )


def _shared_head(request: ModelRequest) -> nn.Module:
    # Avalanche's PackNet packs the output layer too: one shared head as wide as the widest
    # task, each task using its own subnetwork of it.
    head = nn.Linear(request.width, max(request.classes_per_task))
    return PackNetModel(nn.Sequential(request.features, head))


def _efficient_packnet(mode: str) -> StrategyBuilder:
    def build(config: RunConfig, stream: TaskStream, common: dict[str, Any]):
        return EfficientPackNet(
            valid_stream=stream.benchmark.valid_stream,
            mode=mode,
            gamma=config.gamma,
            prune_fraction=config.prune_fraction,
            task_budget=config.task_budget,
            retrain_epochs=config.retrain_epochs,
            patience=config.patience or None,
            scope=config.scope,
            allow_frozen_features=config.allow_frozen_features,
            seed=config.seed,
            init_scale=config.init_scale,
            redraw_free=config.free_weights == "redraw",
            train_layers=config.train_layers or "all",
            **common,
        )

    return build


def _template_with(common: dict[str, Any], plugin) -> SupervisedTemplate:
    """Avalanche's plain template with the run's plugins and `plugin` after them: what its
    PackNet and SynapticIntelligence strategies are, built from clearn's patched plugins."""
    return SupervisedTemplate(**{**common, "plugins": [*common["plugins"], plugin]})


def _avalanche_packnet(config: RunConfig, stream: TaskStream, common: dict[str, Any]):
    # Avalanche's PackNet template nests the plugins it is given in a list of its own
    # (`plugins=[plugins, PackNetPlugin(...)]`), so that none of them is ever called: the
    # same template with its plugin appended.
    plugin = PackNetPlugin(
        post_prune_epochs=min(config.retrain_epochs, config.epochs - 1),
        prune_proportion=config.prune_fraction,
    )
    return _template_with(common, plugin)


def _ewc(config: RunConfig, stream: TaskStream, common: dict[str, Any]):
    # Online EWC (one running importance sum, anchored at the last task's weights): its cost
    # per step stays flat over a long stream, where "separate" adds a penalty per task.
    strength = config.regularisation
    return EWC(
        ewc_lambda=BASELINE_DEFAULTS["ewc"] if strength is None else strength,
        mode="online",
        decay_factor=EWC_DECAY,
        **common,
    )


def _si(config: RunConfig, stream: TaskStream, common: dict[str, Any]):
    # The SI plugin copies its weight snapshots (strategies.avalanche_compat).
    strength = config.regularisation
    plugin = SynapticIntelligencePlugin(
        si_lambda=BASELINE_DEFAULTS["si"] if strength is None else strength
    )
    return _template_with(common, plugin)


def _lwf(config: RunConfig, stream: TaskStream, common: dict[str, Any]):
    strength = config.regularisation
    return LwF(
        alpha=BASELINE_DEFAULTS["lwf"] if strength is None else strength,
        temperature=LWF_TEMPERATURE,
        **common,
    )


def _subnet_network(method: str) -> ModelBuilder:
    def build(request: ModelRequest) -> nn.Module:
        config = request.config
        return SubnetTaskNetwork(
            backbone=request.features,
            feature_size=request.width,
            classes_per_task=request.classes_per_task,
            method=method,
            density=config.density,
            per_task_norm=config.per_task_norm,
            seed=config.seed,
        )

    return build


def _subnet_strategy(template: type[SupervisedTemplate]) -> StrategyBuilder:
    # The run's plateau stop (spec.plateau_stop) budgets each task, as for the baselines.
    def build(config: RunConfig, stream: TaskStream, common: dict[str, Any]):
        return template(valid_stream=stream.benchmark.valid_stream, seed=config.seed, **common)

    return build


def _hat_network(request: ModelRequest) -> nn.Module:
    return HatNetwork(
        backbone=request.features,
        feature_size=request.width,
        classes_per_task=request.classes_per_task,
    )


def _hat(config: RunConfig, stream: TaskStream, common: dict[str, Any]):
    # HAT sets the step size itself: each task starts at lr, divided by 3 on a plateau of
    # its validation loss (5 epochs), the task ending below 1e-4 or at the epoch cap.
    return HAT(
        valid_stream=stream.benchmark.valid_stream,
        c=HAT_C if config.regularisation is None else config.regularisation,
        lr=config.resolved().lr,
        seed=config.seed,
        **common,
    )


def _template(template: type[SupervisedTemplate]) -> StrategyBuilder:
    return lambda config, stream, common: template(**common)


STRATEGIES: dict[str, StrategySpec] = {
    spec.name: spec
    for spec in (
        StrategySpec(
            name="epn",
            summary="EfficientPackNet (ours): each task pruned to γ of its accuracy",
            build_model=_packed_network,
            build_strategy=_efficient_packnet("epn"),
            packs=True,
            distributed=True,
        ),
        StrategySpec(
            name="packnet",
            summary="classic PackNet on clearn's mechanism: a fixed prune fraction",
            build_model=_packed_network,
            build_strategy=_efficient_packnet("packnet"),
            packs=True,
            distributed=True,
        ),
        StrategySpec(
            name="wsn",
            summary="WSN (Kang et al. 2022): a learnt top-c mask per task (c: --density)",
            build_model=_subnet_network("wsn"),
            build_strategy=_subnet_strategy(WSN),
            plateau_stop=True,
            defaults={"optimizer": "adam", "lr": DEFAULT_WSN_LR},  # ihaeyong/WSN scripts
        ),
        StrategySpec(
            name="supsup",
            summary="SupSup (Wortsman et al. 2020): a supermask per task on fixed random weights",
            build_model=_subnet_network("supsup"),
            build_strategy=_subnet_strategy(SupSup),
            plateau_stop=True,
            defaults={"optimizer": "adam", "lr": DEFAULT_SUPSUP_LR},  # supsup rn18-supsup.yaml
        ),
        StrategySpec(
            name="hat",
            summary="HAT (Serrà et al. 2018): per-task unit gates (c: --regularisation)",
            build_model=_hat_network,
            build_strategy=_hat,
            defaults={"lr": HAT_LR},  # joansj/hat src/run.py: SGD lr 0.05
        ),
        StrategySpec(
            name="avalanche-packnet",
            summary="Avalanche's own PackNet (one shared head)",
            build_model=_shared_head,
            build_strategy=_avalanche_packnet,
            min_epochs=2,
        ),
        StrategySpec(
            name="naive",
            summary="fine-tuning, no protection",
            build_model=_multi_head,
            build_strategy=_template(Naive),
            plateau_stop=True,
        ),
        StrategySpec(
            name="ewc",
            summary="online EWC (λ: --regularisation)",
            build_model=_multi_head,
            build_strategy=_ewc,
            plateau_stop=True,
        ),
        StrategySpec(
            name="si",
            summary="Synaptic Intelligence (λ: --regularisation)",
            build_model=_multi_head,
            build_strategy=_si,
            plateau_stop=True,
        ),
        StrategySpec(
            name="lwf",
            summary="Learning without Forgetting (α: --regularisation)",
            build_model=_multi_head,
            build_strategy=_lwf,
            plateau_stop=True,
        ),
        StrategySpec(
            name="joint",
            summary="every task at once (an upper bound, not continual)",
            build_model=_multi_head,
            build_strategy=_template(JointTraining),
            joint=True,
        ),
    )
}
STRATEGY_NAMES: tuple[str, ...] = tuple(STRATEGIES)


def spec_for(name: str) -> StrategySpec:
    """The spec of strategy `name`; ValueError naming the choices when there is none."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGY_NAMES)}")
    return STRATEGIES[name]
