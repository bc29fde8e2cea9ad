"""The `clearn` command line: argument parsing and one-line errors (exit code 2)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]


def _alpha(text: str) -> float:
    from clearn.powerprop import check_alpha

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


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _add_prune_curve(commands: argparse._SubParsersAction) -> None:
    from clearn.prune_curve import PruneCurveConfig

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
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    parser.add_argument("--out", type=Path, default=Path("runs/prune-curve"))
    parser.set_defaults(handler=_run_prune_curve)


def _run_prune_curve(args: argparse.Namespace) -> None:
    from clearn.prune_curve import PruneCurveConfig, run_prune_curve, summary_table

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
        device=args.device or _default_device(),
    )
    result = run_prune_curve(config, args.out)
    print(summary_table(result))
    print(f"results: {args.out / 'prune_curve.json'}")
    print(f"plot:    {args.out / 'prune_curve.png'}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="clearn", description="Continual learning with Powerprop and task masks."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_prune_curve(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; bad input gets one line on stderr and exit code 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from scenarios.datasets import DataFileError, DatasetNotFoundError

    try:
        args.handler(args)
    except (ValueError, DatasetNotFoundError, DataFileError, FloatingPointError) as error:
        print(f"clearn {args.command}: error: {error}", file=sys.stderr)
        return 2
    except PermissionError as error:
        print(f"clearn {args.command}: error: cannot write: {error}", file=sys.stderr)
        return 2
    return 0
