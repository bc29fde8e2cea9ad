"""A task's subnetwork as a plain dense model: no masks, no parametrizations, same logits."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import parametrize

from clearn.network import PackedNetwork

__all__ = ["export_task"]


@torch.no_grad()
def export_task(network: PackedNetwork, task: int) -> nn.Sequential:
    """A plain dense copy of task `task`'s subnetwork: backbone then its head, same logits.

    The backbone is copied with each masked layer turned back into its plain class holding
    the task's effective (masked) weight, and each per-task BatchNorm replaced by the task's
    own copy. The network is left as it was: `remove_parametrizations` on a deep copy would
    not do, as the copy shares its parametrized classes with the network, and removing the
    weight property from them breaks the network's layers too.
    """
    network.check_task(task)
    layers = dict(network.backbone.named_modules())
    with network.viewing(task):
        weights = {name: layers[name].weight.detach().clone() for name in network.masks}
    backbone = copy.deepcopy(network.backbone)
    copies = dict(backbone.named_modules())
    for name, weight in weights.items():
        layer = copies[name]
        layer.__class__ = parametrize.type_before_parametrizations(layer)
        del layer.parametrizations
        layer.weight = nn.Parameter(weight)
    for name in network.norms:
        parent, _, child = name.rpartition(".")
        setattr(copies[parent], child, copies[name].norms[task])
    return nn.Sequential(backbone, copy.deepcopy(network.heads[task])).train(network.training)
