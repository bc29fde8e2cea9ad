"""One run per folder: the folder's rules, and an exclusive lock held for the run's life.

The lock is an advisory `flock` on `<out>/.lock`: the kernel releases it when the process
ends however it ends, so a lock left by a killed run is never mistaken for a live one. A new
folder is created with one `mkdir` (no `exist_ok`), so that of two runs racing for it exactly
one proceeds, and only a run that holds the lock ever removes what it created. A folder
holding a symbolic link is refused: nothing a run writes may land outside it.
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


def _links(out: Path) -> list[str]:
    """Symbolic links anywhere under `out` (not followed), relative to it."""
    found = []
    for root, folders, files in os.walk(out):
        for name in folders + files:
            if (Path(root) / name).is_symlink():
                found.append(str((Path(root) / name).relative_to(out)))
    return sorted(found)


def _check_contents(out: Path, *, resume: bool) -> None:
    links = _links(out)
    if links:
        raise ResultsExistError(
            f"{out} holds symbolic links ({', '.join(links[:3])}); a run folder holds only "
            f"the files clearn writes: remove them"
        )
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


def _create(out: Path, *, resume: bool) -> bool:
    """Make `out` (its parents as needed); return whether this call created it."""
    if out.is_symlink():
        raise ResultsExistError(f"{out} is a symbolic link; choose a real folder for the run")
    if resume:
        if not out.is_dir():
            raise ResultsExistError(f"{out} does not exist: there is no run to resume")
        return False
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise PermissionError(f"output folder {out} is not writable ({error.strerror})") from None
    try:
        os.mkdir(out)
    except FileExistsError:
        if not out.is_dir():
            raise ResultsExistError(f"{out} exists and is not a folder") from None
        return False
    except OSError as error:
        raise PermissionError(f"output folder {out} is not writable ({error.strerror})") from None
    return True


def _open_lock(path: Path) -> tuple[int, bool]:
    """The lock file's descriptor, and whether this call created the file (never through a
    link: `O_NOFOLLOW`)."""
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o644), True
    except FileExistsError:
        pass
    try:
        return os.open(path, flags), False
    except OSError as error:
        reason = (
            "is a symbolic link" if path.is_symlink() else f"cannot be opened ({error.strerror})"
        )
        raise ResultsExistError(f"{path} {reason}; remove it") from None


def _lock(descriptor: int, out: Path) -> None:
    """Take the folder's lock, or raise ResultsExistError naming its holder."""
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = os.pread(descriptor, 200, 0).decode(errors="replace").strip()
        raise ResultsExistError(
            f"{out} is in use by another clearn run ({owner or 'another process'}); wait for "
            f"it to end or choose another --out"
        ) from None
    try:
        current = os.stat(out / LOCK_FILE, follow_symlinks=False)
    except FileNotFoundError:
        current = None
    if current is None or current.st_ino != os.fstat(descriptor).st_ino:
        # The file was removed by a run giving the folder up as we opened it: not ours.
        raise ResultsExistError(f"{out} is in use by another clearn run; choose another --out")


@contextmanager
def claim_run_folder(out: Path, *, resume: bool) -> Iterator[None]:
    """Check that `out` may take this run (a new or empty folder; with `resume`, a folder
    holding a run) and hold its lock until the block ends. A refused or failed run leaves
    no lock file and no folder it created behind (only the lock's holder removes them)."""
    out = Path(out)
    created = _create(out, resume=resume)
    try:
        descriptor, made_lock = _open_lock(out / LOCK_FILE)
    except BaseException:
        if created:
            out.rmdir()
        raise
    held = False
    try:
        _lock(descriptor, out)
        held = True
        _check_contents(out, resume=resume)
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"pid {os.getpid()}\n".encode(), 0)
        yield
    except BaseException:
        if held and made_lock:
            (out / LOCK_FILE).unlink(missing_ok=True)
            if created and not any(out.iterdir()):
                out.rmdir()
        raise
    finally:
        os.close(descriptor)  # closing releases the lock
