"""Avalanche's WandBLogger, mended for the wandb releases that install beside this stack.

Avalanche 0.6.0's logger calls `wandb.util.generate_id` (gone since wandb 0.24) and
`wandb.viz` (gone since 0.19), so with any wandb that pip resolves next to torch 2.14 and
TensorBoard it fails on its first call; older wandb needs a protobuf TensorBoard rejects.
This subclass starts the run without the first and logs numbers (every metric clearn
records) without the second; images and other values still go through Avalanche's code.
"""

from __future__ import annotations

import os
import uuid

from avalanche.logging import WandBLogger as _AvalancheWandBLogger

__all__ = ["WandBLogger"]


class WandBLogger(_AvalancheWandBLogger):
    """Logs every Avalanche metric to Weights & Biases (`WANDB_MODE=offline` works offline)."""

    def before_run(self) -> None:
        if self.init_kwargs is None:
            self.init_kwargs = {}
        run_id = self.init_kwargs.get("id") or os.environ.get("WANDB_RUN_ID")
        self.init_kwargs["id"] = run_id or uuid.uuid4().hex[:8]
        self.wandb.init(**self.init_kwargs)

    def log_single_metric(self, name, value, x_plot) -> None:
        if isinstance(value, float | int):  # Avalanche's check names wandb.viz first
            self.step = x_plot
            self.wandb.log({name: value}, step=self.step)
            return
        super().log_single_metric(name, value, x_plot)
