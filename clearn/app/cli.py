"""The `clearn` command line: argument parsing and one-line errors (exit code 2)."""

# ruff: noqa: E402 - the Ctrl-C handler below is set before the slow imports it covers.
from __future__ import annotations

import os
import signal
import sys


def _interrupted_while_starting(signum: int, frame: object) -> None:
    """Ctrl-C while the command line's modules load: one line, exit code 1, at once. Not an
    exception: raised inside a library's import, it can surface as another error with a
    traceback (matplotlib and scipy turn it into a ValueError or a RecursionError)."""
    sys.stderr.write("clearn: interrupted while starting; nothing was written\n")
    sys.stderr.flush()
    os._exit(1)


# Nothing slow before this (not even `threading`): the handler covers all but Python's own
# start-up. Only the main thread may set a handler; imported elsewhere, nothing is set.
try:
    signal.signal(signal.SIGINT, _interrupted_while_starting)
    _IN_MAIN_THREAD = True
except ValueError:
    _IN_MAIN_THREAD = False

# jax is installed only as one of qpsolvers' optional QP solvers, which qpsolvers tries to
# import when Avalanche (its GEM plugin) imports it; no command uses it, and loading it is
# about 0.9 s of every command's start-up. Marked absent, qpsolvers skips that one solver.
sys.modules.setdefault("jax", None)

import argparse
import dataclasses
import tomllib
import typing
from argparse import SUPPRESS
from collections.abc import Sequence
from pathlib import Path

import torch

from clearn.app.compare import compare_runs
from clearn.app.config import RunConfig, brief, check_device, read_config
from clearn.app.executors import EXECUTORS
from clearn.app.experiment import draw_plots, run_experiment
from clearn.app.prune_curve import PruneCurveConfig, run_prune_curve, summary_table
from clearn.app.registry import STRATEGIES, spec_for
from clearn.app.results import RESULTS_FILE, RunResult
from clearn.app.sweep import SweepFailedError, run_sweep, sweep_table
from clearn.packing import CapacityExhaustedError
from clearn.powerprop import check_alpha
from scenarios.datasets import DatasetNotFoundError
from strategies.distributed import (
    launched_by_torchrun,
    process_rank,
    start_process_group,
    stop_process_group,
)

if _IN_MAIN_THREAD:  # loaded: from here on Ctrl-C is KeyboardInterrupt, which main reports
    signal.signal(signal.SIGINT, signal.default_int_handler)

__all__ = ["main"]

LONGEST_MESSAGE = 1200
"""Longest error message printed (a value from a file or a library's error can be huge);
room for a message that names two deep paths and its fix."""


def _one_line(message: object) -> str:
    """`message` as one line of at most about LONGEST_MESSAGE characters: a longer one keeps
    its start (what was wrong) and its end (how to fix it)."""
    line = " ".join(str(message).split())
    if len(line) <= LONGEST_MESSAGE:
        return line
    half = LONGEST_MESSAGE // 2 - 20
    return f"{line[:half]} ... ({len(line):,} characters) ... {line[-half:]}"


class _OneLineErrorParser(argparse.ArgumentParser):
    """Argument errors as one line and exit code 2, without the usage block."""

    def error(self, message: str) -> None:
        self.exit(2, f"{self.prog}: error: {_one_line(message)} (see --help)\n")


def _alpha(text: str) -> float:
    try:
        return check_alpha(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _varied_option(text: str) -> tuple[str, list]:
    """`FIELD=V1,V2,...` → (field, values); each value read as a TOML value, else as text."""
    field, _, values = text.partition("=")
    field = field.strip().replace("-", "_")
    known = {f.name for f in dataclasses.fields(RunConfig)}
    if field not in known or not values:
        raise argparse.ArgumentTypeError(
            f"expected FIELD=V1,V2 with a run option as FIELD, got {brief(text)}; "
            f"options: {', '.join(sorted(known))}"
        )

    def parse(value: str):
        try:
            return tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            return value

    return field, [parse(v.strip()) for v in values.split(",")]


def _default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def _device(text: str) -> str:
    """A --device value: cpu, cuda[:N] (present on this machine) or auto."""
    try:
        return check_device(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _add_prune_curve(commands: argparse._SubParsersAction) -> None:
    defaults = PruneCurveConfig()
    parser = commands.add_parser(
        "prune-curve",
        help="train an MLP per alpha, prune one-shot, write prune_curve.json/.png",
        description="The Powerprop paper's Figure 1a protocol on a chosen dataset.",
    )
    parser.add_argument(
        "--dataset", default=defaults.dataset, choices=["digits", "fmnist", "mnist"]
    )
    parser.add_argument("--alphas", type=_alpha, nargs="+", default=list(defaults.alphas))
    parser.add_argument("--epochs", type=_positive_int, default=defaults.epochs)
    parser.add_argument(
        "--steps",
        type=_positive_int,
        default=None,
        help="training steps per alpha; overrides --epochs (the paper: 50000)",
    )
    parser.add_argument("--lr", type=_positive_float, default=defaults.lr)
    parser.add_argument("--batch-size", type=_positive_int, default=defaults.batch_size)
    parser.add_argument("--points", type=_positive_int, default=defaults.points)
    parser.add_argument("--min-kept", type=_positive_float, default=defaults.min_kept)
    parser.add_argument("--scope", choices=["layer", "global"], default=defaults.scope)
    parser.add_argument(
        "--plain-output", action="store_true", help="leave the output layer without Powerprop"
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--data-root",
        default=None,
        help="folder in torchvision's layout (default: Avalanche's data folder)",
    )
    parser.add_argument("--download", action="store_true", help="let torchvision fetch data")
    parser.add_argument(
        "--device", type=_device, default="auto", help="cpu, cuda[:N] or auto (cuda if present)"
    )
    parser.add_argument("--out", type=Path, default=Path("runs/prune-curve"))
    parser.set_defaults(handler=_run_prune_curve)


def _run_prune_curve(args: argparse.Namespace) -> None:
    config = PruneCurveConfig(
        dataset=args.dataset,
        alphas=tuple(args.alphas),
        epochs=args.epochs,
        steps=args.steps,
        lr=args.lr,
        batch_size=args.batch_size,
        points=args.points,
        min_kept=args.min_kept,
        scope=args.scope,
        plain_output=args.plain_output,
        seed=args.seed,
        data_root=args.data_root,
        download=args.download,
        device=_default_device() if args.device == "auto" else args.device,
    )
    result = run_prune_curve(config, args.out)
    print(summary_table(result))
    print(f"results: {args.out / 'prune_curve.json'}")
    print(f"plot:    {args.out / 'prune_curve.png'}")


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    """One option per RunConfig field, with the field's help, type and choices; an option
    not given is absent from the parsed arguments, so it overrides nothing."""
    types = typing.get_type_hints(RunConfig)
    for option in dataclasses.fields(RunConfig):
        kind = types[option.name]
        flag = "--" + option.name.replace("_", "-")
        default = option.default_factory() if callable(option.default_factory) else option.default
        shown = option.metadata.get("shown") or _shown(default)
        help_text = f"{option.metadata['help']} (default: {shown})"
        if kind is bool:
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=SUPPRESS, help=help_text
            )
            continue
        element = next(
            (t for t in (int, float, str) if kind is t or t in typing.get_args(kind)), str
        )
        listed = typing.get_origin(kind) is list
        parser.add_argument(
            flag,
            type=int if listed else element,
            nargs="+" if listed else None,
            choices=option.metadata["choices"],
            default=SUPPRESS,
            help=help_text,
        )


def _shown(value: object) -> str:
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return "the scenario's" if value is None else str(value)


def _add_run(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "run",
        help="train a task stream with a strategy; write results.json, plots, checkpoints",
        description="Train a task-incremental stream with Avalanche. Options given here "
        "override the --config file, which overrides the defaults.",
    )
    _add_config_options(parser)
    parser.add_argument("--config", type=Path, help="TOML file with the same options")
    parser.add_argument("--out", type=Path, default=Path("runs/latest"))
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run saved in --out (with its saved options)",
    )
    parser.set_defaults(handler=_run)


def _config_options(args: argparse.Namespace) -> dict:
    """The --config file's options, overridden by those given on the command line."""
    options = read_config(args.config) if args.config else {}
    fields = {option.name for option in dataclasses.fields(RunConfig)}
    options.update({key: value for key, value in vars(args).items() if key in fields})
    return options


def _run(args: argparse.Namespace) -> None:
    config = RunConfig(**_config_options(args)).validate()
    if not launched_by_torchrun():
        _run_and_report(config, args)
        return
    if not spec_for(config.strategy).distributed:
        distributed = [name for name, spec in STRATEGIES.items() if spec.distributed]
        raise ValueError(
            f"under torchrun, clearn run trains {' and '.join(distributed)} "
            f"data-parallel; run --strategy {config.strategy} as one process"
        )
    start_process_group(use_cuda=config.device != "cpu" and torch.cuda.is_available())
    try:
        if process_rank()[0] == 0:
            _run_and_report(config, args)
        else:
            run_experiment(config, args.out, resume=args.resume)
    finally:
        stop_process_group()


def _run_and_report(config: RunConfig, args: argparse.Namespace) -> None:
    results = run_experiment(config, args.out, resume=args.resume)
    if results.already_finished:
        print(f"{args.out} is already finished; nothing to resume")
        return
    print(
        f"ACC {results.acc:.4f}  BWT {_format(results.bwt)}  "
        f"forgetting {_format(results.forgetting)}  "
        f"free {_format(results.free_fraction)}  train {results.train_seconds:.1f}s"
    )
    print(f"results: {args.out / RESULTS_FILE}")
    for plot in results.plots:
        print(f"plot:    {plot}")


def _format(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def _add_plot_and_compare(commands: argparse._SubParsersAction) -> None:
    plot = commands.add_parser("plot", help="redraw the plots of a run folder")
    plot.add_argument("folder", type=Path)
    plot.set_defaults(handler=_plot)
    compare = commands.add_parser("compare", help="table and plot of several run folders")
    compare.add_argument("folders", type=Path, nargs="+")
    compare.add_argument("--out", type=Path, default=Path("runs/comparison"))
    compare.set_defaults(handler=_compare)


def _plot(args: argparse.Namespace) -> None:
    for path in draw_plots(RunResult.read(args.folder), args.folder):
        print(f"plot: {path}")


def _compare(args: argparse.Namespace) -> None:
    table, plot = compare_runs(args.folders, args.out)
    print(table.read_text(), end="")
    print(f"table: {table}\nplot:  {plot}")


def _add_sweep(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "sweep",
        help="run a grid of settings; write sweep.json/.md and the accuracy-capacity frontier",
        description="Every combination of the listed values, each a `clearn run` in its own "
        "folder under --out; finished runs are reused, so a sweep resumes. The run options "
        "set the base run (over the --config file's).",
    )
    _add_config_options(parser)
    parser.add_argument("--config", type=Path, help="TOML file with the base run's options")
    # Only what is given is varied (α and γ too); a sweep that varies nothing is refused.
    parser.add_argument("--alphas", type=_alpha, nargs="+", default=None)
    parser.add_argument("--gammas", type=float, nargs="+", default=None)
    parser.add_argument("--lrs", type=_positive_float, nargs="+", default=None)
    parser.add_argument("--optimizers", nargs="+", default=None)
    parser.add_argument("--scopes", nargs="+", default=None)
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=None, help="repeat each setting per seed"
    )
    parser.add_argument(
        "--vary",
        type=_varied_option,
        action="append",
        default=[],
        metavar="FIELD=V1,V2",
        help="any other run option over several values, e.g. momentum=0,0.9 or "
        "free_weights=redraw,keep (repeatable)",
    )
    parser.add_argument("--out", type=Path, default=Path("runs/sweep"))
    parser.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="local",
        help="local: --workers processes on this machine; ray: each run a Ray task "
        "(pip install 'clearn[ray]'), on a local Ray instance unless --ray-address or "
        "RAY_ADDRESS names a cluster. Either way every run has one torch thread, so that "
        "both give the same figures",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="runs at a time with --executor local (default: one per CPU; 1: one after "
        "another in this process)",
    )
    parser.add_argument("--ray-address", help="address of a Ray cluster (ray.init's address)")
    parser.set_defaults(handler=_sweep)


def _sweep(args: argparse.Namespace) -> None:
    base = RunConfig(**_config_options(args)).validate()
    grid: dict[str, list] = {}
    listed = (("alpha", args.alphas), ("lr", args.lrs), ("optimizer", args.optimizers),
              ("scope", args.scopes))
    for field, values in listed:
        if values:
            grid[field] = values
    for field, values in args.vary:
        if field in grid:
            raise ValueError(
                f"--vary {field} repeats a varied option (given twice, or also as --alphas, "
                f"--lrs, --optimizers or --scopes): give its values once"
            )
        grid[field] = values
    for field, values in (("gamma", args.gammas), ("seed", args.seeds)):
        if values and field in grid:
            raise ValueError(
                f"--vary {field} and --{field}s both vary {field}: give its values once"
            )
        if values:
            grid[field] = values
    if not grid:
        raise ValueError(
            "the sweep varies nothing: give --alphas, --gammas, --lrs, --optimizers, --scopes, "
            "--seeds or --vary FIELD=V1,V2 (a single run is `clearn run`)"
        )
    points, failed = run_sweep(
        base,
        grid,
        args.out,
        executor=args.executor,
        workers=args.workers,
        ray_address=args.ray_address,
    )
    if points:
        print(sweep_table(points))
        print(f"table:    {args.out / 'sweep.md'}\nfrontier: {args.out / 'frontier.png'}")
    if failed:
        for failure in failed:
            print(f"failed: {failure['folder']}: {failure['error']}")
        raise SweepFailedError(
            f"{len(failed)} of {len(points) + len(failed)} runs failed (listed above and in "
            f"{args.out / 'sweep.json'}); fix their cause and run the sweep again: the "
            f"finished runs are reused"
        )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = _OneLineErrorParser(
        prog="clearn", description="Continual learning with Powerprop and task masks."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_prune_curve(commands)
    _add_run(commands)
    _add_plot_and_compare(commands)
    _add_sweep(commands)
    return parser


_INTERRUPTED = {
    "run": "the checkpoint of the last finished task is kept (continue with --resume)",
    "sweep": "finished runs are kept (run the sweep again to reuse them)",
}
"""What an interrupted command kept, by command (the others keep nothing half-written)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line. Every error reaches the user as one line on stderr: exit code 2
    for bad input, data or a failing operating system, 1 for a run that stopped (diverged,
    out of capacity, interrupted). Output into a closed pipe ends quietly (exit code 1).
    CLEARN_DEBUG=1 shows the traceback of unexpected errors."""
    command = "clearn"
    try:
        args = build_parser().parse_args(argv)
        command = f"clearn {args.command}"
        args.handler(args)
        sys.stdout.flush()  # a closed pipe is found here, not at exit
    except (FloatingPointError, CapacityExhaustedError, SweepFailedError) as error:
        print(f"{command}: stopped: {_one_line(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        kept = _INTERRUPTED.get(command.removeprefix("clearn "), "nothing half-written is kept")
        print(f"{command}: interrupted; {kept}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        _silence_stdout()
        return 1
    except (ValueError, DatasetNotFoundError, FileExistsError, PermissionError) as error:
        print(f"{command}: error: {_one_line(error)}", file=sys.stderr)
        return 2
    except OSError as error:
        where = f": {error.filename}" if error.filename else ""
        message = _one_line(f"{error.strerror or error}{where}")
        print(f"{command}: error: {message}", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 - one line for the user, traceback on request
        if os.environ.get("CLEARN_DEBUG"):
            raise
        print(
            f"{command}: failed: {type(error).__name__}: {_one_line(error)} "
            f"(CLEARN_DEBUG=1 shows where)",
            file=sys.stderr,
        )
        return 1
    return 0


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit into the closed pipe does not
    raise again (Python's documented way to end quietly on SIGPIPE)."""
    try:
        descriptor = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # no descriptor (a test's capture)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, descriptor)
    os.close(devnull)
