"""Does Powerprop fit more tasks at equal accuracy? The ACC–capacity frontier of α = 1 against
the default α (with its default init scale), each at γ ∈ {0.9, 0.95, 0.99} (one frontier point
each) and three seeds, on permuted Fashion-MNIST (10 tasks, at most 3 epochs a task) and
split digits (each task to its validation plateau, at most 50 epochs); writes
frontier_<scenario>.{json,md,png} with means ± std, and docs/results/frontier_<scenario>.md.
Every option but α, the init scale and γ is pinned in `run`.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from benchmarks.common import RESULTS_DIR, main, run_all, save_result
from benchmarks.report import write_results_page
from clearn.app.config import RunConfig
from clearn.app.plots import plot_frontier
from clearn.app.sweep import seed_means, sweep_table
from scenarios.datasets import DEBIAN_FASHION_MNIST

GAMMAS = (0.9, 0.95, 0.99)
SETTINGS = {
    "α=1": ({"alpha": 1.0, "init_scale": 1.0}, GAMMAS),
    f"α={RunConfig.alpha:g} (default), init ×{RunConfig.init_scale:g}": (
        {"alpha": RunConfig.alpha, "init_scale": RunConfig.init_scale},
        GAMMAS,
    ),
}
"""Setting name → (run options, the γ values giving its frontier points)."""


def _runs(
    scenario: str, base: RunConfig, seeds: list[int]
) -> dict[tuple[str, float, int], tuple[RunConfig, Path]]:
    """Every setting × γ × seed: (config, run folder)."""
    runs = {}
    for name, (options, gammas) in SETTINGS.items():
        for gamma in gammas:
            for seed in seeds:
                config = dataclasses.replace(base, **options, gamma=gamma, seed=seed)
                folder = RESULTS_DIR / "runs" / "frontier" / scenario / name / f"g{gamma:g}-s{seed}"
                runs[name, gamma, seed] = (config.validate(), folder)
    return runs


def frontier(runs: dict[tuple[str, float, int], tuple[RunConfig, Path]]) -> list[dict]:
    """Run every setting × γ × seed of `runs` (reusing finished runs); return the seed means."""
    results = run_all(runs)
    points = [
        {
            "setting": name,
            "gamma": gamma,
            "seed": seed,
            "acc": r.acc,
            "capacity_used": r.capacity_used,
            "free_fraction": r.free_fraction,
            "train_seconds": r.train_seconds,
        }
        for (name, gamma, seed), r in sorted(results.items())
    ]
    return seed_means(points)


def run(*, quick: bool = False) -> dict:
    """Both scenarios (digits only with --quick); print the tables; plot the frontiers."""
    seeds = [0] if quick else [0, 1, 2]
    # Every option the settings do not set is pinned here, so that a change of `clearn run`'s
    # defaults cannot change what these runs mean.
    pinned = dict(
        strategy="epn", optimizer="sgd", lr=0.3, momentum=0.0, batch_size=60, hidden=[300, 100]
    )
    # A task that finds no free weight trains its head on frozen features (capacity 100%).
    pinned.update(free_weights="redraw", scope="layer", allow_frozen_features=True)
    pinned.update(normalise_step=True, retrain_epochs=1, patience=3)
    # Split-digits tasks are tiny (about 25 steps per epoch): Powerprop needs many epochs.
    scenarios = {"split-digits": RunConfig(scenario="split-digits", epochs=50, **pinned)}
    if DEBIAN_FASHION_MNIST.is_dir() and not quick:
        scenarios["permuted-fmnist"] = RunConfig(
            scenario="permuted-fmnist", tasks=10, epochs=3, **pinned
        )
    figures = {}
    for scenario, base in scenarios.items():
        began = time.perf_counter()  # each scenario's page gives its own wall time
        runs = _runs(scenario, base, seeds)
        means = frontier(runs)
        table = sweep_table(means)
        title = f"{scenario}, {base.tasks or 5} tasks × {base.epochs} epochs, lr {base.lr:g}"
        print(title, table, sep="\n")
        name = f"frontier_{scenario}"
        (RESULTS_DIR / f"{name}.md").write_text(table + "\n")
        plot_frontier(means, series_keys=["setting"], path=RESULTS_DIR / f"{name}.png", title=title)
        figures[scenario] = means
        save_result(name, {"points": means})
        write_results_page(
            f"{name}-quick" if quick else name,
            title=f"The ACC–capacity frontier, α = 1 vs the default α: {scenario} "
                  "(`python -m benchmarks --only frontier`)",
            body=f"{title}; mean ± std over seeds {seeds}.\n\n{table}\n\n"
                 f"![{scenario}: ACC against capacity](../../benchmarks/results/{name}.png)\n",
            command="python -m benchmarks --only frontier" + (" --quick" if quick else ""),
            seconds=time.perf_counter() - began,
            configs={f"{setting} · γ {gamma:g} · seed {seed}": config.to_dict()
                     for (setting, gamma, seed), (config, _) in runs.items()},
            defaults=RunConfig().to_dict(),
            benchmark="frontier",
        )  # fmt: skip
    return figures


if __name__ == "__main__":
    main(run, __doc__)
