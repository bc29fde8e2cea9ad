"""WSN (Winning SubNetworks, Kang et al., ICML 2022) as an Avalanche strategy."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from avalanche.core import BasePlugin
from avalanche.training.plugins.evaluation import default_evaluator
from torch import nn

from clearn.epn import DEFAULT_EVAL_BATCH_SIZE
from clearn.subnet_network import SubnetNetwork
from clearn.subnet_training import DEFAULT_WSN_BATCH_SIZE, DEFAULT_WSN_EPOCHS
from strategies.subnet_strategy import SubnetStrategy
from strategies.validation import DEFAULT_VALIDATION_SHARE

__all__ = ["WSN"]


class WSN(SubnetStrategy):
    """Per task, the top-c share of learnt scores per layer picks the task's subnetwork;
    weights no earlier task selected train with the scores, the others stay bit for bit.

    `model = SubnetTaskNetwork(backbone=..., method="wsn", density=c)`. Defaults are the
    paper's permuted-MNIST protocol: batch 10, 5 epochs, Adam lr 1e-3 fresh per task (`optimizer`
    None), every epoch trained (`patience` None). The paper also decays the learning rate when
    validation stalls; that is not done here.
    """

    method = "wsn"

    def __init__(
        self,
        *,
        model: SubnetNetwork,
        optimizer: torch.optim.Optimizer | None = None,
        criterion: nn.Module | None = None,
        train_mb_size: int = DEFAULT_WSN_BATCH_SIZE,
        train_epochs: int = DEFAULT_WSN_EPOCHS,
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
