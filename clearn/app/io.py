"""Atomic writes: a reader never sees a half-written results or checkpoint file."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = ["write_atomic", "write_json_atomic"]


def write_atomic(path: str | Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Call `write` on a temporary file beside `path`, flush it to disk, rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | Path, content: Any) -> Path:
    """Write `content` as indented JSON, atomically."""
    return write_atomic(path, lambda stream: stream.write(json.dumps(content, indent=2).encode()))
