"""Why the α > 1 pruning curve falls gradually: a look at the weights, not only the accuracy.

Trains the prune-curve MLP (784-300-100-10, SGD, batch 60, lr 0.3, 20 epochs), α 1 and 3, on
Fashion-MNIST (digits with --quick) and measures, per α: the |w| histogram, how far weights
moved from init by initial magnitude, overlap of the init and final magnitude rankings,
each layer's share under global ranking, and each layer's sensitivity (test accuracy when
only that layer is pruned, the others dense). Writes benchmarks/results/mechanism.{json,png}
and docs/results/mechanism.md.
"""

from __future__ import annotations

import dataclasses
import math
import time

import torch

from benchmarks.common import RESULTS_DIR, main, save_result
from benchmarks.report import write_results_page
from clearn.app.config import RunConfig
from clearn.app.plots import plot_mechanism
from clearn.app.prune_curve import PruneCurveConfig, masked_accuracy, protocol_splits, train_mlp
from clearn.app.tables import markdown_table
from clearn.powerprop import effective_weights
from clearn.pruning import magnitude_masks
from clearn.weight_study import (
    kept_share_per_layer,
    magnitude_histogram,
    moved_fraction,
    movement_by_initial_magnitude,
    ranking_overlap,
)
from scenarios.datasets import DEBIAN_FASHION_MNIST, load_dataset

KEPT = (0.02, 0.05, 0.1, 0.2, 0.5)


def _study(alpha: float, data, splits, config: PruneCurveConfig, steps: int) -> dict:
    initial, dense = train_mlp(alpha, data, splits, config, steps)
    final = effective_weights(dense)
    test = splits["test"]
    magnitudes = torch.cat([w.abs().flatten() for w in final.values()]).double()
    sensitivity = {
        name: [masked_accuracy(dense, magnitude_masks({name: w}, kept), *test) for kept in KEPT]
        for name, w in final.items()
    }
    return {
        "dense_test_acc": masked_accuracy(dense, {}, *test),
        "histogram": magnitude_histogram(magnitudes, low=1e-6),
        "share_below_1e-3": float((magnitudes < 1e-3).double().mean()),
        "moved_fraction": moved_fraction(initial, final),
        "movement_by_initial_decile": movement_by_initial_magnitude(initial, final),
        "ranking_overlap": [ranking_overlap(initial, final, kept) for kept in KEPT],
        "global_share_at_5pct": kept_share_per_layer(final, 0.05),
        "only_layer_pruned_acc": sensitivity,
    }


def run(*, quick: bool = False) -> dict:
    """Train and measure each α; print the tables; write mechanism.{json,png} and its page."""
    began = time.perf_counter()
    dataset = "fmnist" if DEBIAN_FASHION_MNIST.is_dir() and not quick else "digits"
    # lr 0.3 is where α = 3 wins the Fashion-MNIST pruning curve; digits diverge above 0.1.
    lr = 0.1 if dataset == "digits" else 0.3
    config = PruneCurveConfig(dataset=dataset, alphas=(1.0, 3.0), lr=lr, epochs=20)
    data = load_dataset(dataset)
    splits = protocol_splits(data, config)
    steps = config.epochs * math.ceil(len(splits["train"][1]) / config.batch_size)
    studies = {f"{a:g}": _study(a, data, splits, config, steps) for a in config.alphas}
    result = {"dataset": dataset, "steps": steps, "lr": config.lr, "kept": KEPT, "alphas": studies}
    header = [
        "α", "dense", "abs w < 1e-3", "moved", "move small/large decile", "overlap@5%",
        "overlap@20%",
    ]
    rows = [
        [alpha, f"{s['dense_test_acc']:.3f}", f"{s['share_below_1e-3']:.2f}",
         f"{s['moved_fraction']:.2f}",
         f"{s['movement_by_initial_decile'][0]:.2f} / {s['movement_by_initial_decile'][-1]:.2f}",
         f"{s['ranking_overlap'][1]:.2f}", f"{s['ranking_overlap'][3]:.2f}"]
        for alpha, s in studies.items()
    ]
    sensitivity = [
        [alpha, layer, *(f"{a:.3f}" for a in accuracies),
         f"{100 * s['global_share_at_5pct'][layer]:.1f}"]
        for alpha, s in studies.items()
        for layer, accuracies in s["only_layer_pruned_acc"].items()
    ]
    text = "\n\n".join([
        f"Weights after {steps} steps, {dataset}, lr {config.lr}:",
        markdown_table(header, rows),
        "Test accuracy with only one layer pruned, by the share of it kept:",
        markdown_table(["α", "layer", *(f"kept {k:g}" for k in KEPT),
                        "global ranking at 5% keeps % of it"], sensitivity),
    ])  # fmt: skip
    print(text)
    plot = plot_mechanism(result, RESULTS_DIR / "mechanism.png")
    save_result("mechanism", result)
    write_results_page(
        "mechanism-quick" if quick else "mechanism",
        title="Why the α > 1 pruning curve falls gradually: the weights "
              "(`python -m benchmarks --only mechanism`)",
        body=f"{text}\n\n![The weights per α](../../benchmarks/results/{plot.name})\n",
        command="python -m benchmarks --only mechanism" + (" --quick" if quick else ""),
        seconds=time.perf_counter() - began,
        configs={"prune-curve MLP": dataclasses.asdict(config)},
        defaults=RunConfig().to_dict(),
    )  # fmt: skip
    return result


if __name__ == "__main__":
    main(run, __doc__)
