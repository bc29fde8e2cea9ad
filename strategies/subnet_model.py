"""clearn's SubnetNetwork (WSN, SupSup) as Avalanche's multi-task model, growing a head per task."""

from __future__ import annotations

from clearn.subnet_network import SubnetNetwork
from strategies.task_model import TaskNetwork

__all__ = ["SubnetTaskNetwork"]


class SubnetTaskNetwork(SubnetNetwork, TaskNetwork):
    """`SubnetTaskNetwork(backbone=..., method="wsn" | "supsup", density=...)`: a binary mask
    per task on the backbone's weights, a head per task label.

    `clearn.subnet_network.SubnetNetwork` (the torch-only mechanism) seen by Avalanche as a
    multi-task model, adapted before each experience as `strategies.TaskNetwork` is: a new
    task label gets its head, sized from the experience's classes, the backbone's output width
    measured on its first example. Train it with `strategies.WSN` or `strategies.SupSup` (or
    `SubnetPlugin` in a template of one's own).
    """
