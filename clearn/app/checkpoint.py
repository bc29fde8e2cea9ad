"""Checkpoints written atomically as tensors and plain data, and read back without running code.

A checkpoint is read with `torch.load(..., weights_only=True)`: a file holding anything but
tensors and plain containers (a pickle with a `__reduce__` payload, say) is refused before any
of it runs. One written by another checkpoint format is refused by its marker.
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from clearn.app.io import write_atomic

__all__ = ["CHECKPOINT_FORMAT", "CheckpointError", "load_checkpoint", "save_checkpoint"]

CHECKPOINT_FORMAT = "clearn-checkpoint-5"
"""Version 5: the accuracy matrices are tensors of their values and places (`_packed_rows`);
version 4: the network's model of each task's inputs is probabilistic PCA
(`input_density.*`); version 3: a diagonal Gaussian in buffers (`input_statistics.*`);
version 2: plain data only (version 1 pickled plugins and RNG states)."""


class CheckpointError(ValueError):
    """A checkpoint file is corrupt, truncated, unsafe, or was not written by this clearn."""


def save_checkpoint(path: str | Path, content: dict[str, Any]) -> Path:
    """torch.save `content` (plus a format marker), atomically. A run's accuracy rows
    (`matrix`, each of `task_agnostic`'s) are written as tensors, read back as rows."""
    content = _with_rows(content, _packed_rows)
    return write_atomic(
        path, lambda stream: torch.save({"format": CHECKPOINT_FORMAT, **content}, stream)
    )


def _with_rows(content: dict[str, Any], convert: Callable[[Any], Any]) -> dict[str, Any]:
    """`content` with its accuracy rows (where it has them) passed through `convert`."""
    converted = dict(content)
    if "matrix" in content:
        converted["matrix"] = convert(content["matrix"])
    if isinstance(content.get("task_agnostic"), dict):
        converted["task_agnostic"] = {k: convert(v) for k, v in content["task_agnostic"].items()}
    return converted


def _packed_rows(rows: list[list[float | None]]) -> dict[str, Tensor]:
    """Rows of accuracies, None where a task was not evaluated, as tensors of the values and
    their (row, column) places. A run saves its matrices after every task: pickled as lists,
    their T×T Python objects took longer than training a task on frozen features past a few
    hundred tasks, and between full evaluations a row holds one value."""
    places = [(i, j) for i, row in enumerate(rows) for j, v in enumerate(row) if v is not None]
    return {
        "shape": torch.tensor([len(rows), len(rows[0]) if rows else 0]),
        "places": torch.tensor(places, dtype=torch.long).reshape(-1, 2),
        "values": torch.tensor([rows[i][j] for i, j in places], dtype=torch.float64),
    }


def _unpacked_rows(packed: dict[str, Tensor]) -> list[list[float | None]]:
    """The rows `_packed_rows` packed."""
    count, width = packed["shape"].tolist()
    rows: list[list[float | None]] = [[None] * width for _ in range(count)]
    for (i, j), value in zip(packed["places"].tolist(), packed["values"].tolist(), strict=True):
        rows[i][j] = value
    return rows


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`, or raise CheckpointError naming it."""
    path = Path(path)
    try:
        with warnings.catch_warnings():  # torch warns in lines of its own about old pickles
            warnings.simplefilter("ignore")
            content = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # torch's message is many lines long, and a damaged file reads like a crafted one.
        raise CheckpointError(
            f"{path}: cannot read the checkpoint: refused, it is damaged or holds objects "
            f"other than tensors and plain data (none of it was run); delete it to start over"
        ) from None
    except Exception as error:  # torch raises many types for a damaged file
        raise CheckpointError(
            f"{path}: cannot read the checkpoint ({type(error).__name__}: {one_line(error)}); "
            f"delete it to start over"
        ) from None
    if not isinstance(content, dict) or content.get("format") != CHECKPOINT_FORMAT:
        found = content.get("format") if isinstance(content, dict) else None
        raise CheckpointError(
            f"{path}: not a clearn checkpoint of this version (format {one_line(found)!s}, "
            f"expected {CHECKPOINT_FORMAT}); delete it to start over"
        )
    try:
        return _with_rows(content, _unpacked_rows)
    except (AttributeError, KeyError, TypeError, ValueError, RuntimeError) as error:
        raise CheckpointError(
            f"{path}: its accuracy rows are not a table of numbers ({one_line(error)}); "
            f"delete it to start over"
        ) from None


def one_line(value: object, limit: int = 200) -> str:
    """`value`'s text on one line, cut to `limit` characters."""
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[:limit] + "…"
