"""Writes that stay where they are aimed: atomic, and never through a symbolic link.

A reader never sees a half-written results or checkpoint file, and a link planted in a run
folder (to a user's own file, say) is replaced, never written through: every file is written
to a temporary file in its folder and renamed over the name; appended files are opened with
`O_NOFOLLOW`.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = ["open_for_append", "write_atomic", "write_json_atomic", "write_text_atomic"]


def _check_folder(folder: Path) -> None:
    if folder.is_symlink():
        raise PermissionError(f"{folder} is a symbolic link; clearn writes only into real folders")


def write_atomic(path: str | Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Call `write` on a temporary file beside `path`, flush it to disk, rename it over `path`
    (replacing a link there, never writing through it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _check_folder(path.parent)
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


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write `text` (UTF-8), atomically."""
    return write_atomic(path, lambda stream: stream.write(text.encode()))


def open_for_append(path: str | Path) -> IO[str]:
    """`path` opened to append text, line-buffered; created if missing; a link is refused."""
    path = Path(path)
    _check_folder(path.parent)
    try:
        descriptor = os.open(
            path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644
        )
    except OSError:
        if path.is_symlink():
            raise PermissionError(
                f"{path} is a symbolic link; clearn does not write through links"
            ) from None
        raise
    return os.fdopen(descriptor, "a", buffering=1)
