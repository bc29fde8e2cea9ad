"""The one clearn network inside a strategy's model, found by type."""

from __future__ import annotations

from typing import TypeVar

from torch import nn

__all__ = ["the_one"]

Network = TypeVar("Network", bound=nn.Module)


def the_one(model: nn.Module, kind: type[Network], *, needed_by: str, build: str) -> Network:
    """The one `kind` module that `model` is or holds; ValueError otherwise, saying that
    `needed_by` needs one and how to `build` it."""
    found = [m for m in model.modules() if isinstance(m, kind)]
    if len(found) != 1:
        raise ValueError(
            f"{needed_by} the strategy's model, which must be (or hold exactly one) "
            f"{kind.__name__}: use model={build}; got {type(model).__name__} holding "
            f"{len(found)}"
        )
    return found[0]
