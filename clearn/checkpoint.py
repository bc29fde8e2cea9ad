"""Checkpoints written atomically and read back with a clear error when they are not ours."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["CHECKPOINT_FORMAT", "CheckpointError", "load_checkpoint", "save_checkpoint"]

CHECKPOINT_FORMAT = "clearn-checkpoint-1"


class CheckpointError(ValueError):
    """A checkpoint file is corrupt, truncated, or was not written by clearn."""


def save_checkpoint(path: str | Path, content: dict[str, Any]) -> Path:
    """torch.save `content` (plus a format marker) to a temporary file, then rename it over."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            torch.save({"format": CHECKPOINT_FORMAT, **content}, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


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
