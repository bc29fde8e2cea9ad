"""Figures written next to results: PNG files drawn on matplotlib `Figure` objects.

No pyplot and no backend switch: importing this module leaves the user's matplotlib as it
was (inline plots in a notebook keep working), and figures never open a window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from clearn.app.io import write_atomic

__all__ = [
    "plot_accuracy_matrix",
    "plot_average_accuracy",
    "plot_capacity",
    "plot_free_capacity",
    "plot_frontier",
    "plot_mechanism",
    "plot_peer_frontiers",
    "plot_prune_curve",
    "plot_robustness",
    "plot_task_accuracy",
    "plot_weight_histogram",
]


def plot_prune_curve(curve: Mapping[str, Any], path: str | Path) -> Path:
    """Test accuracy vs weights remaining (log x-axis), one line per α, dense level dotted."""
    figure, axes = _figure(figsize=(6.4, 4.2))
    for index, (alpha, series) in enumerate(curve["alphas"].items()):
        if "diverged" in series:
            continue
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
    if axes.get_legend_handles_labels()[0]:  # every α may have diverged
        axes.legend(fontsize=8)
    return _save(figure, path)


def _figure(*grid: int, figsize: tuple[float, float], **options: Any) -> tuple[Figure, Any]:
    """A figure and its axes, as pyplot's `subplots` returns them, without pyplot."""
    figure = Figure(figsize=figsize)
    return figure, figure.subplots(*grid, **options)


def _save(figure: Figure, path: str | Path) -> Path:
    """Write the figure as PNG through `write_atomic` (never through a link at `path`)."""
    figure.tight_layout()
    return write_atomic(path, lambda stream: figure.savefig(stream, format="png", dpi=120))


def plot_accuracy_matrix(
    matrix: Sequence[Sequence[float | None]], path: str | Path, title: str = ""
) -> Path:
    """Heatmap of R: rows = after training task i, columns = task j, values in the cells."""
    rows, columns = len(matrix), max(len(r) for r in matrix)
    values = np.full((rows, columns), np.nan)
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            if value is not None:
                values[i, j] = value
    side = min(0.5 * max(rows, columns) + 2.5, 14)
    figure, axes = _figure(figsize=(side + 1, side))
    image = axes.imshow(values, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    if max(rows, columns) <= 20:
        for i in range(rows):
            for j in range(columns):
                if not np.isnan(values[i, j]):
                    colour = "black" if values[i, j] > 0.6 else "white"
                    axes.text(
                        j,
                        i,
                        f"{values[i, j]:.2f}",
                        ha="center",
                        va="center",
                        fontsize=8,
                        color=colour,
                    )
    axes.set_xlabel("evaluated task j")
    axes.set_ylabel("after training task i")
    axes.set_title(title or "test accuracy R[i][j]", fontsize=10)
    figure.colorbar(image, ax=axes, fraction=0.046)
    return _save(figure, path)


def plot_task_accuracy(matrix: Sequence[Sequence[float | None]], path: str | Path) -> Path:
    """Accuracy of each task over the rest of the stream (one line per task)."""
    figure, axes = _figure(figsize=(6.4, 4.2))
    for j in range(len(matrix)):
        points = [(i, matrix[i][j]) for i in range(j, len(matrix)) if matrix[i][j] is not None]
        if points:
            axes.plot(
                *zip(*points, strict=True),
                marker="o",
                ms=3,
                lw=1,
                label=f"task {j}" if len(matrix) <= 10 else None,
            )
    axes.set_xlabel("after training task")
    axes.set_ylabel("test accuracy")
    axes.set_ylim(0, 1.02)
    axes.grid(alpha=0.3)
    if len(matrix) <= 10:
        axes.legend(fontsize=7, ncol=2)
    return _save(figure, path)


def plot_capacity(capacity: Sequence[float], free_fraction: float, path: str | Path) -> Path:
    """One stacked bar: the share of the network each task owns, and what is still free."""
    figure, axes = _figure(figsize=(6.4, 2.6))
    left = 0.0
    colours = colormaps["tab20"]
    for task, share in enumerate(capacity):
        axes.barh(0, share, left=left, color=colours(task % 20), edgecolor="white", lw=0.3)
        if share > 0.04:
            axes.text(left + share / 2, 0, str(task), ha="center", va="center", fontsize=7)
        left += share
    axes.barh(0, free_fraction, left=left, color="lightgrey", label="free")
    axes.set_xlim(0, 1)
    axes.set_yticks([])
    axes.set_xlabel("share of the backbone's weights (bars: tasks in order; grey: free)")
    return _save(figure, path)


def plot_weight_histogram(histogram: Mapping[str, Sequence[float]], path: str | Path) -> Path:
    """Histogram of |effective weight| of the backbone (log-spaced bins), from stored counts."""
    edges, counts = np.asarray(histogram["edges"]), np.asarray(histogram["counts"])
    figure, axes = _figure(figsize=(6.4, 4.0))
    axes.stairs(counts, edges, fill=True, alpha=0.7)
    axes.set_xscale("log")
    axes.set_xlabel("|effective weight|")
    axes.set_ylabel("weights")
    axes.set_title(f"{histogram.get('zeros', 0)} weights exactly 0 not shown", fontsize=9)
    return _save(figure, path)


def plot_average_accuracy(
    runs: Mapping[str, Sequence[Sequence[float | None]]], path: str | Path
) -> Path:
    """Mean accuracy over the tasks seen so far, after each task that evaluated every task
    seen (a run with `eval_every_tasks` > 1 evaluates only the current task in between), one
    line per run."""
    figure, axes = _figure(figsize=(6.4, 4.2))
    for label, matrix in runs.items():
        points = [(i + 1, sum(row[: i + 1]) / (i + 1)) for i, row in enumerate(matrix)
                  if all(v is not None for v in row[: i + 1])]  # fmt: skip
        if points:
            axes.plot(*zip(*points, strict=True), marker="o", ms=3, label=label)
    axes.set_xlabel("tasks seen")
    axes.set_ylabel("mean test accuracy over tasks seen")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    return _save(figure, path)


def _option_label(key: str, value: Any) -> str:
    if key == "setting":
        return str(value)
    return f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}"


def plot_frontier(
    points: Sequence[Mapping[str, Any]],
    *,
    series_keys: Sequence[str],
    path: str | Path,
    title: str = "",
) -> Path:
    """Mean final accuracy vs capacity used, one point per γ, one line per other setting;
    points that are means over seeds get ± one standard deviation as error bars. A series key
    named "setting" is shown by its value alone."""
    figure, axes = _figure(figsize=(6.8, 4.4))
    groups: dict[str, list] = {}
    for point in points:
        if point.get("capacity_used") is None:
            continue
        label = ", ".join(_option_label(k, point[k]) for k in series_keys) or "runs"
        groups.setdefault(label, []).append(point)
    for label, group in groups.items():
        group.sort(key=lambda p: p["capacity_used"])
        axes.errorbar(
            [100 * p["capacity_used"] for p in group],
            [100 * p["acc"] for p in group],
            xerr=[100 * (p.get("capacity_std") or 0.0) for p in group],
            yerr=[100 * (p.get("acc_std") or 0.0) for p in group],
            marker="o",
            ms=4,
            capsize=2,
            label=label + (f" ({group[0]['seeds']} seeds)" if "seeds" in group[0] else ""),
        )
        for p in group:
            if "gamma" in p:
                axes.annotate(
                    f"γ={p['gamma']:g}",
                    (100 * p["capacity_used"], 100 * p["acc"]),
                    fontsize=6,
                    xytext=(3, 3),
                    textcoords="offset points",
                )
    axes.set_xlabel("capacity used by all tasks (% of the backbone)")
    axes.set_ylabel("ACC (% mean final test accuracy)")
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    return _save(figure, path)


def plot_free_capacity(free: Mapping[str, Sequence[float]], path: str | Path) -> Path:
    """Free share of the backbone after each task, one line per run."""
    figure, axes = _figure(figsize=(6.4, 4.0))
    for label, values in free.items():
        axes.plot(range(1, len(values) + 1), [100 * v for v in values], label=label)
    axes.axhline(5, color="grey", ls=":", lw=0.8)
    axes.set_xlabel("tasks seen")
    axes.set_ylabel("free capacity (% of the backbone)")
    axes.set_ylim(0, 100)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    return _save(figure, path)


def plot_mechanism(study: Mapping[str, Any], path: str | Path) -> Path:
    """Four panels per α: |w| histogram, movement by initial magnitude, init/final ranking
    overlap, and per-layer sensitivity (accuracy with only that layer pruned)."""
    figure, axes = _figure(2, 2, figsize=(11, 7.6))
    kept = [100 * k for k in study["kept"]]
    for index, (alpha, s) in enumerate(study["alphas"].items()):
        colour, label = f"C{index}", f"α={alpha}"
        edges = np.asarray(s["histogram"]["edges"])
        axes[0, 0].stairs(s["histogram"]["counts"], edges, color=colour, label=label)
        movement = s["movement_by_initial_decile"]
        axes[0, 1].plot(range(1, len(movement) + 1), movement, "o-", color=colour, label=label)
        axes[1, 0].plot(
            kept, [100 * o for o in s["ranking_overlap"]], "o-", color=colour, label=label
        )
        for line, (layer, accuracy) in zip(
            ("-", "--", ":"), s["only_layer_pruned_acc"].items(), strict=True
        ):
            axes[1, 1].plot(
                kept,
                accuracy,
                line,
                marker="o",
                ms=3,
                color=colour,
                label=f"{label}, layer {layer}",
            )
    axes[1, 0].plot(kept, kept, color="grey", lw=0.8, label="chance")
    axes[0, 0].set(xscale="log", xlabel="|w| after training", ylabel="weights", title="magnitudes")
    axes[0, 1].set(
        xlabel="decile of initial |w| (1 = smallest)",
        ylabel="mean |Δw| / layer's initial mean |w|",
        title="movement from init",
    )
    axes[1, 0].set(
        xscale="log",
        xlabel="kept % (layer-wise)",
        ylabel="% of final top-k already top-k at init",
        title="init vs final ranking",
    )
    axes[1, 1].set(
        xscale="log",
        xlabel="kept % of that layer",
        ylabel="test accuracy",
        title="only one layer pruned",
    )
    for panel in axes[1]:
        panel.set_xticks(kept, [f"{k:g}" for k in kept])
        panel.minorticks_off()
    for panel in axes.flat:
        panel.grid(alpha=0.3)
        panel.legend(fontsize=7)
    figure.suptitle(f"{study['dataset']}, {study['steps']} steps, lr {study['lr']:g}", fontsize=10)
    figure.tight_layout()
    return _save(figure, path)


def plot_robustness(
    summary: Mapping[str, Mapping[str, Mapping[str, Any]]],
    methods: Sequence[str],
    path: str | Path,
) -> Path:
    """ACC (top) and capacity used (bottom) against training images per class, one column
    per stream, one line per method; `summary` maps "stream @ size" to each method's runs."""
    streams: dict[str, list[str]] = {}
    for study in summary:
        stream, _, size = study.partition(" @ ")
        streams.setdefault(stream, []).append(size)
    figure, axes = _figure(
        2, len(streams), figsize=(3.4 * len(streams), 6.0), squeeze=False, sharex="col"
    )
    for column, (stream, sizes) in enumerate(streams.items()):
        positions = list(range(len(sizes)))
        for index, method in enumerate(methods):
            for row, key in enumerate(("acc", "capacity")):
                values = [summary[f"{stream} @ {size}"][method].get(key) for size in sizes]
                means = [100 * float(np.mean(v)) if v else np.nan for v in values]
                if not np.isnan(means).all():
                    axes[row][column].plot(
                        positions, means, marker="o", ms=4, color=f"C{index}", label=method
                    )
        axes[0][column].set_title(stream, fontsize=10)
        axes[1][column].set_xticks(positions, sizes)
        axes[1][column].set_xlabel("training images per class")
        for row in range(2):
            axes[row][column].grid(alpha=0.3)
    axes[0][0].set_ylabel("ACC (%)")
    axes[1][0].set_ylabel("capacity used (%)")
    axes[0][0].legend(fontsize=7)
    return _save(figure, path)


def plot_peer_frontiers(
    panels: Mapping[str, Mapping[str, Sequence[tuple[float, float, str]]]], path: str | Path
) -> Path:
    """ACC against CAP (the WSN paper's), one panel per stream and protocol, one line per
    method through its operating points `(cap, acc, label)`."""
    columns = min(3, len(panels))
    rows = -(-len(panels) // columns)
    figure, axes = _figure(
        rows, columns, figsize=(4.2 * columns, 3.6 * rows), squeeze=False
    )
    for index, (title, methods) in enumerate(panels.items()):
        axis = axes[index // columns][index % columns]
        for colour, (method, points) in enumerate(methods.items()):
            ordered = sorted(points)
            if not ordered:
                continue
            axis.plot(
                [100 * cap for cap, _, _ in ordered],
                [100 * acc for _, acc, _ in ordered],
                marker="o", ms=4, color=f"C{colour}", label=method,
            )  # fmt: skip
            for cap, acc, label in ordered:
                axis.annotate(label, (100 * cap, 100 * acc), fontsize=5, xytext=(2, 2),
                              textcoords="offset points")  # fmt: skip
        axis.set_title(title, fontsize=9)
        axis.set_xlabel("CAP (% of the dense float32 network)")
        axis.set_ylabel("ACC (%)")
        axis.grid(alpha=0.3)
    for index in range(len(panels), rows * columns):
        axes[index // columns][index % columns].set_visible(False)
    axes[0][0].legend(fontsize=7)
    return _save(figure, path)
