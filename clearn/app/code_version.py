"""Which code made a run: a fingerprint of the sources that train it and the libraries under them.

A sweep or a benchmark reuses the finished runs in its folders; a run made by other code would
pass its figures off as this code's (a results table regenerated from runs of an earlier
clearn showed 77% of the network used where today's code uses 17%). Every run records the
fingerprint, and a run made by other code is never reused or resumed as if it were this
code's (`clearn.app.experiment`).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import clearn
import scenarios
import strategies

__all__ = ["code_version", "fingerprint"]

_PACKAGES = (clearn, strategies, scenarios)
"""The packages whose code trains and evaluates a run (the application included)."""
_LIBRARIES = ("torch", "avalanche-lib")
"""Libraries whose version changes a run's figures (kernels, templates)."""


def _library_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "absent"


def fingerprint(sources: Mapping[str, Path], libraries: Iterable[str]) -> str:
    """16 hex digits of the bytes of every .py file under each named source folder (its
    docstrings too: bytes, not meaning), their paths, and the installed version of each of
    `libraries`."""
    digest = hashlib.sha256()
    for name in libraries:
        digest.update(f"{name}=={_library_version(name)}\n".encode())
    for name, root in sorted(sources.items()):
        for path in sorted(root.rglob("*.py")):
            digest.update(f"{name}/{path.relative_to(root).as_posix()}\n".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@functools.cache
def code_version() -> str:
    """The fingerprint of this installation: clearn's, strategies' and scenarios' sources
    and the versions of torch and Avalanche."""
    sources = {p.__name__: Path(p.__file__).resolve().parent for p in _PACKAGES}
    return fingerprint(sources, _LIBRARIES)
