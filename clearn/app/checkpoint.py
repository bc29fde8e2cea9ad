"""Checkpoints written atomically and read back with a clear error when they are not ours."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from clearn.app.io import write_atomic

__all__ = ["CHECKPOINT_FORMAT", "CheckpointError", "load_checkpoint", "save_checkpoint"]

CHECKPOINT_FORMAT = "clearn-checkpoint-1"


class CheckpointError(ValueError):
    """A checkpoint file is corrupt, truncated, or was not written by clearn."""


def save_checkpoint(path: str | Path, content: dict[str, Any]) -> Path:
    """torch.save `content` (plus a format marker), atomically."""
    return write_atomic(
        path, lambda stream: torch.save({"format": CHECKPOINT_FORMAT, **content}, stream)
    )


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`, or raise CheckpointError naming it."""
    path = Path(path)
    try:
        # weights_only=False: checkpoints hold RNG states and baseline plugins' state; only
        # load checkpoints you wrote.
        content = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # torch raises many types for a damaged file
        raise CheckpointError(
            f"{path}: cannot read the checkpoint ({type(error).__name__}: {error}); delete it "
            f"to start over"
        ) from error
    if not isinstance(content, dict) or content.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a clearn checkpoint ({CHECKPOINT_FORMAT})")
    return content
