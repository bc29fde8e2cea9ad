"""SupSup (Supermasks in Superposition, Wortsman et al., NeurIPS 2020) as an Avalanche strategy."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from avalanche.core import BasePlugin
from avalanche.training.plugins.evaluation import default_evaluator
from torch import nn

from clearn.epn import DEFAULT_EVAL_BATCH_SIZE
from clearn.subnet_network import SubnetNetwork
from clearn.subnet_training import DEFAULT_SUPSUP_BATCH_SIZE, DEFAULT_SUPSUP_EPOCHS
from strategies.subnet_strategy import SubnetStrategy
from strategies.validation import DEFAULT_VALIDATION_SHARE

__all__ = ["SupSup"]


class SupSup(SubnetStrategy):
    """Per task a supermask, the top-k share of learnt scores per layer, over weights fixed at
    the signed Kaiming constant that never train; tasks without labels are found by SupSup's
    one-shot inference (`model.infer_task(x, method="one-shot")`).

    `model = SubnetTaskNetwork(backbone=..., method="supsup", density=k)`. Defaults are the
    paper's split CIFAR-100 (GG) setting: batch 128, 100 epochs, Adam lr 1e-3 fresh per task
    (`optimizer` None; its long permuted-MNIST run: RMSprop lr 1e-4, `paper_optimizer(...,
    protocol="pmnist")`), every epoch trained (`patience` None).
    """

    method = "supsup"

    def __init__(
        self,
        *,
        model: SubnetNetwork,
        optimizer: torch.optim.Optimizer | None = None,
        criterion: nn.Module | None = None,
        train_mb_size: int = DEFAULT_SUPSUP_BATCH_SIZE,
        train_epochs: int = DEFAULT_SUPSUP_EPOCHS,
        eval_mb_size: int = DEFAULT_EVAL_BATCH_SIZE,
        device: str | torch.device = "cpu",
        plugins: Sequence[BasePlugin] | None = None,
        evaluator=default_evaluator,
        eval_every: int = -1,
        valid_stream=None,
        validation_share: float = DEFAULT_VALIDATION_SHARE,
        patience: int | None = None,
        seed: int = 0,
        **base_kwargs,
    ) -> None:
        super().__init__(
            model=model, optimizer=optimizer, criterion=criterion, train_mb_size=train_mb_size,
            train_epochs=train_epochs, eval_mb_size=eval_mb_size, device=device, plugins=plugins,
            evaluator=evaluator, eval_every=eval_every, valid_stream=valid_stream,
            validation_share=validation_share, patience=patience, seed=seed, **base_kwargs,
        )  # fmt: skip
