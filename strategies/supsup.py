"""SupSup (Supermasks in Superposition, Wortsman et al., NeurIPS 2020) as an Avalanche strategy."""

from __future__ import annotations

from clearn.subnet_training import DEFAULT_SUPSUP_BATCH_SIZE, DEFAULT_SUPSUP_EPOCHS
from strategies.subnet_strategy import SubnetStrategy

__all__ = ["SupSup"]


class SupSup(SubnetStrategy):
    """Per task a supermask, the top-k share of learnt scores per layer, over weights fixed at
    the signed Kaiming constant that never train; tasks without labels are found by SupSup's
    one-shot inference (`clearn.infer_task(model, x, method="one-shot")`).

    `model = SubnetTaskNetwork(backbone=..., method="supsup", density=k)`. Defaults are the
    paper's split CIFAR-100 (GG) setting: batch 128, 100 epochs, Adam lr 1e-3 fresh per task
    (`optimizer` None; its long permuted-MNIST run: RMSprop lr 1e-4, `paper_optimizer(...,
    protocol="pmnist")`), every epoch trained (`patience` None).
    """

    method = "supsup"
    default_batch_size = DEFAULT_SUPSUP_BATCH_SIZE
    default_epochs = DEFAULT_SUPSUP_EPOCHS
