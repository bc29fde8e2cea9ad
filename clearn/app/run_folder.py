"""One run per folder: the folder's rules, and an exclusive lock held for the run's life.

The lock is an advisory `flock` on `<out>/.lock`: the kernel releases it when the process
ends however it ends, so a lock left by a killed run is never mistaken for a live one.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["CONFIG_FILE", "LOCK_FILE", "ResultsExistError", "claim_run_folder"]

CONFIG_FILE = "config.toml"
"""Written first by every run: a folder holding it holds a run."""
LOCK_FILE = ".lock"


class ResultsExistError(FileExistsError):
    """The folder holds a run (or other files), or no run to resume, or is in use."""


def _check_contents(out: Path, *, resume: bool) -> None:
    holds_run = (out / CONFIG_FILE).is_file()
    if resume and not holds_run:
        raise ResultsExistError(f"{out} holds no run to resume (no {CONFIG_FILE})")
    if not resume and holds_run:
        raise ResultsExistError(
            f"{out} already holds a run; pass --resume to continue it, or choose another --out"
        )
    others = sorted(p.name for p in out.iterdir() if p.name != LOCK_FILE)
    if not resume and others:
        raise ResultsExistError(
            f"{out} holds other files ({', '.join(others[:3])}{', …' if len(others) > 3 else ''})"
            f"; choose an empty or new folder for the run"
        )


@contextmanager
def claim_run_folder(out: Path, *, resume: bool) -> Iterator[None]:
    """Check that `out` may take this run (a new or empty folder; with `resume`, a folder
    holding a run) and hold its lock until the block ends."""
    if resume and not out.is_dir():
        raise ResultsExistError(f"{out} does not exist: there is no run to resume")
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock = open(out / LOCK_FILE, "a+")  # noqa: SIM115 - held for the whole block
    except OSError as error:
        raise PermissionError(f"output folder {out} is not writable ({error.strerror})") from None
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            owner = lock.read().strip() or "another process"
            raise ResultsExistError(
                f"{out} is in use by another clearn run ({owner}); wait for it to end or "
                f"choose another --out"
            ) from None
        _check_contents(out, resume=resume)
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}\n")
        lock.flush()
        yield
    except BaseException:
        # A run that failed before writing anything leaves no folder it created behind.
        if created and [p.name for p in out.iterdir()] == [LOCK_FILE]:
            (out / LOCK_FILE).unlink()
            out.rmdir()
        raise
    finally:
        lock.close()  # closing releases the lock
