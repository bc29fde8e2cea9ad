"""WSN (Winning SubNetworks, Kang et al., ICML 2022) as an Avalanche strategy."""

from __future__ import annotations

from clearn.subnet_training import DEFAULT_WSN_BATCH_SIZE, DEFAULT_WSN_EPOCHS
from strategies.subnet_strategy import SubnetStrategy

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
    default_batch_size = DEFAULT_WSN_BATCH_SIZE
    default_epochs = DEFAULT_WSN_EPOCHS
