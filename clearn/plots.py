"""Figures written next to results: PNG files drawn with matplotlib's non-interactive backend."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["plot_prune_curve"]


def plot_prune_curve(curve: Mapping[str, Any], path: str | Path) -> Path:
    """Test accuracy vs weights remaining (log x-axis), one line per α, dense level dotted."""
    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    for index, (alpha, series) in enumerate(curve["alphas"].items()):
        colour = f"C{index}"
        kept_percent = [100.0 * k for k in series["kept"]]
        axes.plot(
            kept_percent,
            series["test_acc"],
            marker="o",
            ms=3,
            color=colour,
            label=f"α = {alpha} (dense {series['dense_test_acc']:.3f})",
        )
        axes.axhline(series["dense_test_acc"], color=colour, ls=":", lw=0.8)
    axes.set_xscale("log")
    axes.set_xlabel("weights remaining (%)")
    axes.set_ylabel("test accuracy")
    axes.set_title(
        f"One-shot magnitude pruning, {curve['dataset']}, {curve['steps']} steps, "
        f"{curve.get('scope', 'layer')}-wise",
        fontsize=10,
    )
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
