"""Checkpoints between experiences for any Avalanche strategy: Avalanche's two calls, in
plain data.

Avalanche 0.6's `avalanche.checkpointing.save_checkpoint` pickles the whole strategy with
dill, which fails on this stack for every strategy (dill cannot pickle a `typing_extensions`
sentinel reached through torch's optimizer) and, for clearn's network, on its parametrized
layers. These two calls have the same shape and the same loop:

    strategy, start = maybe_load_checkpoint(strategy, "ckpt.pt")
    for experience in benchmark.train_stream[start:]:
        strategy.train(experience)
        save_checkpoint(strategy, "ckpt.pt")

A checkpoint holds the model's state dict, the optimizer's and every plugin's state (see
`strategies.training_state`: the evaluator's metric history, Avalanche's clock and
regularisers, clearn's packing) and the random generators of torch, numpy and Python, all
as tensors and plain data, read back with `torch.load(..., weights_only=True)`. A killed
script resumed this way computes bit for bit what the uninterrupted one would.

Limits: call them between experiences only (not inside `train`); the script must build the
strategy the same way (model, optimizer, plugins in the same order); the benchmark is not
saved (the script builds it again, as with Avalanche's `unique_objects`); a plugin whose
state `training_state` has no adapter for is refused when the checkpoint is written.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from strategies.training_state import (
    TrainingStateError,
    from_plain,
    load_strategy_state,
    strategy_state,
    to_plain,
)

__all__ = ["FORMAT", "maybe_load_checkpoint", "rng_state", "save_checkpoint", "set_rng_state"]

FORMAT = "clearn-strategy-checkpoint-1"
"""The marker of a file written by `save_checkpoint`."""

Strategy = TypeVar("Strategy")


def rng_state() -> dict[str, Any]:
    """The state of torch's, numpy's and Python's global generators, as plain data."""
    state = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(legacy=True),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return to_plain(state, "random generators")


def set_rng_state(saved: dict[str, Any]) -> None:
    """Restore what `rng_state` returned."""
    state = from_plain(saved, "random generators")
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    version, words, gauss = state["python"]
    random.setstate((version, tuple(words), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(strategy, fname: str | os.PathLike) -> None:
    """Save `strategy`'s whole training state to `fname` (written to a temporary file and
    renamed over it, so that a kill while writing keeps the previous checkpoint)."""
    content = {
        "format": FORMAT,
        "exp_counter": int(strategy.clock.train_exp_counter),
        "model": strategy.model.state_dict(),
        "strategy": strategy_state(strategy),
        "rng": rng_state(),
    }
    path = Path(fname)
    partial = path.with_name(f".{path.name}.partial")
    torch.save(content, partial)
    os.replace(partial, path)


def maybe_load_checkpoint(
    strategy: Strategy, fname: str | os.PathLike, map_location: Any = None
) -> tuple[Strategy, int]:
    """Load `fname` into `strategy` (built as the saving script built it); return the
    strategy and the index of the next training experience. Without a file there yet,
    the strategy unchanged and 0, as Avalanche's call does."""
    path = Path(fname)
    if not path.exists():
        return strategy, 0
    content = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise TrainingStateError(
            f"{path} is not a checkpoint written by strategies.checkpoint.save_checkpoint"
        )
    strategy.model.load_state_dict(content["model"])
    load_strategy_state(strategy, content["strategy"])
    set_rng_state(content["rng"])
    return strategy, int(content["exp_counter"])
