"""A task's subnetwork as a plain dense model: no masks, no parametrizations, same logits."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import parametrize

from clearn.network import PackedNetwork

__all__ = ["export_task", "plain_copy"]


@torch.no_grad()
def plain_copy(model: nn.Module) -> nn.Module:
    """A deep copy of `model` whose parametrized tensors are baked in: each holds the value
    its parametrizations compute now, in the layer's plain class. `model` is left as it was,
    where `remove_parametrizations` on a deep copy would break it: the copy shares the
    model's parametrized classes, and removing the tensor's property from them strips the
    model's layers too."""
    modules = dict(model.named_modules())
    values = {
        (name, tensor): getattr(module, tensor).detach().clone()
        for name, module in modules.items()
        if parametrize.is_parametrized(module)
        for tensor in module.parametrizations
    }
    copied = copy.deepcopy(model)
    copies = dict(copied.named_modules())
    for name in dict.fromkeys(name for name, _ in values):
        layer = copies[name]
        layer.__class__ = parametrize.type_before_parametrizations(layer)
        del layer.parametrizations
    for (name, tensor), value in values.items():
        setattr(copies[name], tensor, nn.Parameter(value))
    return copied


@torch.no_grad()
def export_task(network: PackedNetwork, task: int) -> nn.Sequential:
    """A plain dense copy of task `task`'s subnetwork: backbone then its head, same logits.

    The backbone is copied under the task's view (`plain_copy`: each masked weight baked
    in as the task sees it) and each per-task BatchNorm replaced by the task's own copy.
    """
    network.check_task(task)
    with network.viewing(task):
        backbone = plain_copy(network.backbone)
    copies = dict(backbone.named_modules())
    for name in network.norms:
        parent, _, child = name.rpartition(".")
        setattr(copies[parent], child, copies[name].norms[task])
    return nn.Sequential(backbone, copy.deepcopy(network.heads[task])).train(network.training)
