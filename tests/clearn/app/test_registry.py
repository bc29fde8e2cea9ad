"""The strategy registry: every strategy is built from its spec, and the baselines built from
it are measured right (Avalanche's PackNet: its plugins reached, its capacity its own)."""

import torch
from avalanche.core import SupervisedPlugin
from avalanche.training.plugins import EvaluationPlugin, EWCPlugin

from clearn.app.cli import build_parser
from clearn.app.config import RunConfig
from clearn.app.experiment import run_experiment
from clearn.app.factory import assemble, run_stream
from clearn.app.registry import STRATEGIES, STRATEGY_NAMES
from strategies.plateau_stop import PlateauBudgetPlugin
from strategies.validation_split import ValidationSplitPlugin

TINY = dict(scenario="permuted-digits", tasks=3, epochs=2, hidden=[16], patience=0)


class _CountingPlugin(SupervisedPlugin):
    def __init__(self) -> None:
        super().__init__()
        self.updates = 0

    def after_update(self, strategy, **kwargs) -> None:
        self.updates += 1


def test_the_command_line_offers_exactly_the_registered_strategies():
    parser = build_parser()
    run = parser._subparsers._group_actions[0].choices["run"]  # noqa: SLF001 - argparse's tree
    (strategy,) = [a for a in run._actions if a.dest == "strategy"]  # noqa: SLF001
    assert tuple(strategy.choices) == STRATEGY_NAMES


def test_every_plugin_given_reaches_every_strategy():
    # Avalanche's PackNet template nests its plugins in a list of their own: none was called.
    for name in STRATEGY_NAMES:
        config = RunConfig(**{**TINY, "tasks": 1}, strategy=name).validate()
        stream = run_stream(config)
        counting = _CountingPlugin()
        assembled = assemble(
            config,
            stream,
            device=torch.device("cpu"),
            evaluator=EvaluationPlugin(loggers=[]),
            extra_plugins=[counting],
        )
        experiences = stream.benchmark.train_stream
        assembled.strategy.train(experiences if STRATEGIES[name].joint else experiences[0])
        assert counting.updates > 0, name


def test_avalanche_packnet_capacity_is_the_share_its_tasks_own(tmp_path):
    # Prune fraction 0.5: each task keeps half of what is left, so 1 - 0.5^T is used.
    config = RunConfig(**TINY, strategy="avalanche-packnet", prune_fraction=0.5)
    results = run_experiment(config, tmp_path / "run")
    used = results.capacity_used
    assert abs(used - (1 - 0.5**3)) < 0.01, used
    assert abs(results.free_fraction - (1 - used)) < 1e-12
    assert all(abs(share - 0.5 ** (t + 1)) < 0.01 for t, share in enumerate(results.capacity))


def test_avalanche_packnet_with_one_epoch_is_refused_in_one_line(tmp_path, cli):
    code, _, error = cli(
        "run", "--scenario", "permuted-digits", "--strategy", "avalanche-packnet",
        "--epochs", "1", "--out", str(tmp_path / "run"),
    )  # fmt: skip
    assert code == 2 and "epochs must be at least 2" in error and error.count("\n") == 1
    assert not (tmp_path / "run").exists()


def test_a_regularisation_of_zero_is_kept_not_replaced_by_the_default():
    config = RunConfig(**TINY, strategy="ewc", regularisation=0.0).validate()
    assembled = assemble(
        config, run_stream(config), device=torch.device("cpu"), evaluator=EvaluationPlugin()
    )
    (ewc,) = [p for p in assembled.strategy.plugins if isinstance(p, EWCPlugin)]
    assert ewc.ewc_lambda == 0.0


def test_packing_strategies_and_baselines_share_one_hold_out_and_budget():
    # One hold-out plugin and one budget plugin per strategy, the budget validating on the
    # hold-out's data: EfficientPackNet's own for epn/packnet, the run's for the baselines.
    for name in ("epn", "packnet", "naive", "ewc", "wsn"):
        config = RunConfig(**{**TINY, "patience": 3}, strategy=name).validate()
        assembled = assemble(
            config, run_stream(config), device=torch.device("cpu"), evaluator=EvaluationPlugin()
        )
        plugins = assembled.strategy.plugins
        (split,) = [p for p in plugins if isinstance(p, ValidationSplitPlugin)]
        (budget,) = [p for p in plugins if isinstance(p, PlateauBudgetPlugin)]
        assert budget.validation is split.data, name
        assert plugins.index(split) < plugins.index(budget), name
