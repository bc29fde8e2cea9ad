"""Quality side by side: clearn (epn α ∈ {1, 2, 3} and the default α, packnet) vs Avalanche's
PackNet and the classic baselines on the same streams, epochs and optimizer; mean ± std over
seeds.

Also the literature's permuted-MNIST protocol as a preset (MLP 100-100, per-task heads, 10
tasks, 5 epochs, batch 10, as in the WSN paper), run on MNIST when it is here, else on
Fashion-MNIST.
"""

from __future__ import annotations

import statistics
import time
import tomllib
from pathlib import Path

from benchmarks.common import RESULTS_DIR, Diverged, main, run_all, save_result
from benchmarks.report import write_results_page
from clearn.app.config import RunConfig
from clearn.app.results import RunResult
from clearn.app.tables import markdown_table, number, percent
from scenarios.datasets import DEBIAN_FASHION_MNIST, DatasetNotFoundError, load_dataset

EPN_ALPHAS = sorted({1.0, 2.0, 3.0, RunConfig.alpha})
BEST_EPN = f"epn α={RunConfig.alpha:g}"
"""The shipped `epn` setting: `clearn run`'s default α."""
VARIANTS = {
    **{f"epn α={a:g}": {"strategy": "epn", "alpha": a} for a in EPN_ALPHAS},
    "packnet α=1": {"strategy": "packnet", "alpha": 1.0, "init_scale": 1.0},  # classic
    "avalanche-packnet": {"strategy": "avalanche-packnet"},
    "naive": {"strategy": "naive"},
    "ewc (online)": {"strategy": "ewc"},
    "si": {"strategy": "si"},
}
QUICK_VARIANTS = ("epn α=1", BEST_EPN, "naive")

PUBLISHED_PERMUTED_MNIST = (
    "Published on real permuted MNIST with this protocol (WSN paper, ICML 2022): PackNet 96.37% "
    "ACC at 96.4% capacity, SupSup 96.31%, WSN 96.41% at 77.7% and 94.84% at 19.9%."
)


def _stat(values: list[float | None]) -> str:
    present = [v for v in values if v is not None]
    if not present:
        return "–"
    return percent(statistics.fmean(present), _spread(present))


def _spread(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def _table(scenario: str, rows: dict[str, list[RunResult | Diverged]]) -> str:
    body = []
    for name, all_runs in rows.items():
        runs = [r for r in all_runs if isinstance(r, RunResult)]
        if not runs:
            body.append([name, "diverged (loss NaN) in every seed", "", "", "", ""])
            continue
        note = (
            f" ({len(all_runs) - len(runs)} seed(s) diverged)" if len(runs) < len(all_runs) else ""
        )
        body.append(
            [
                name + note,
                _stat([r.acc for r in runs]),
                _stat([r.bwt for r in runs]),
                _stat([r.forgetting for r in runs]),
                _stat([r.capacity_used for r in runs]),
                number(statistics.fmean(r.train_seconds for r in runs), 0),
            ]
        )
    header = ["strategy", "ACC %", "BWT %", "forgetting %", "capacity used %", "train s"]
    return f"**{scenario}**\n\n" + markdown_table(header, body)


def _grid(
    scenario: str, base: dict, variants: dict, seeds: list[int], folder: Path
) -> dict[tuple[str, int], tuple[RunConfig, Path]]:
    """Every variant × seed: (config, run folder)."""
    return {
        (name, seed): (
            RunConfig(scenario=scenario, seed=seed, **base, **options),
            folder / scenario / name.replace(" ", "_").replace("=", "") / f"seed{seed}",
        )
        for name, options in variants.items()
        for seed in seeds
    }


def _labelled(
    study: str, grid: dict[tuple[str, int], tuple[RunConfig, Path]]
) -> dict[str, dict]:
    """Each run's options by a label naming its study, variant and seed."""
    return {f"{study} · {name} · seed {seed}": config.to_dict()
            for (name, seed), (config, _) in grid.items()}  # fmt: skip


def _run_grid(
    runs: dict[tuple[str, int], tuple[RunConfig, Path]], *, jobs: int = 2
) -> dict[str, list[RunResult | Diverged]]:
    """Every run of a grid, `jobs` at a time; results grouped by variant."""
    results = run_all(runs, jobs=jobs)
    rows: dict[str, list[RunResult | Diverged]] = {}
    for name, seed in runs:
        rows.setdefault(name, []).append(results[name, seed])
    return rows


FIGURES = ("acc", "bwt", "forgetting", "capacity", "train_seconds")
"""What quality.json keeps of each run."""
PRESET = Path(__file__).resolve().parent / "presets" / "wsn-permuted-mnist.toml"


def _have_mnist() -> bool:
    try:
        load_dataset("mnist")
    except DatasetNotFoundError:
        return False
    return True


def _wsn_preset_scenario(quick: bool) -> str | None:
    """The MNIST-family stream the WSN preset runs on here: MNIST, else Fashion-MNIST."""
    if _have_mnist():
        return "permuted-mnist"
    if DEBIAN_FASHION_MNIST.is_dir() and not quick:
        return "permuted-fmnist"
    return None


def run(*, quick: bool = False, folder: Path | None = None) -> dict:
    """Run every table; print them; write benchmarks/results/quality.{json,md} and
    docs/results/quality.md.

    Every strategy gets `clearn run`'s default optimizer and learning rate, 3 epochs per task,
    batch 60, MLP 784-300-100 with a head per task; three seeds (one with --quick).
    """
    began = time.perf_counter()
    # Quick runs use fewer epochs: their own folder, so they never meet the full runs.
    folder = folder or RESULTS_DIR / "runs" / ("quick" if quick else "")
    fmnist = DEBIAN_FASHION_MNIST.is_dir() and not quick
    seeds = [0] if quick else [0, 1, 2]
    base = {"epochs": 2 if quick else 3, "batch_size": 60, "hidden": [300, 100]}
    studies = {
        "permuted-fmnist" if fmnist else "permuted-digits": {"tasks": 3 if quick else 10},
        "split-fmnist" if fmnist else "split-digits": {},
        "split-digits": {},
    }
    variants = VARIANTS if not quick else {k: VARIANTS[k] for k in QUICK_VARIANTS}
    tables, figures, configs = [], {}, {}
    for scenario, extra in studies.items():
        grid = _grid(scenario, {**base, **extra}, variants, seeds, folder)
        configs.update(_labelled(scenario, grid))
        rows = _run_grid(grid)
        tables.append(_table(scenario, rows))
        figures[scenario] = {
            name: [
                {k: getattr(r, k) for k in FIGURES} if isinstance(r, RunResult)
                else {"diverged": r.message}
                for r in runs
            ]
            for name, runs in rows.items()
        }
    scenario = _wsn_preset_scenario(quick)
    if scenario is not None:
        preset = tomllib.loads(PRESET.read_text())
        for key in ("scenario", "strategy", "alpha"):
            preset.pop(key, None)
        grid = _grid(
            scenario,
            preset,
            {k: VARIANTS[k] for k in (BEST_EPN, "packnet α=1")},
            [0],
            folder / "wsn-preset",
        )
        configs.update(_labelled(f"WSN preset, {scenario}", grid))
        rows = _run_grid(grid)
        tables.append(
            _table(f"WSN preset (MLP 100-100, batch 10, 5 epochs), {scenario}", rows)
            + "\n\n"
            + PUBLISHED_PERMUTED_MNIST
            + ("" if scenario == "permuted-mnist" else " (Those are MNIST figures: no MNIST here.)")
        )
        figures["wsn-preset"] = {
            name: runs[0].acc if isinstance(runs[0], RunResult) else None
            for name, runs in rows.items()
        }
    else:
        tables.append("WSN preset: no MNIST-family data here, not run. " + PUBLISHED_PERMUTED_MNIST)
    text = "\n\n".join(tables)
    print(text)
    (RESULTS_DIR / "quality.md").write_text(text + "\n")
    save_result("quality", figures)
    write_results_page(
        "quality-quick" if quick else "quality",
        title="Quality side by side: clearn, Avalanche's PackNet and the classic baselines "
              "(`python -m benchmarks --only quality`)",
        body=text + "\n",
        command="python -m benchmarks --only quality" + (" --quick" if quick else ""),
        seconds=time.perf_counter() - began,
        configs=configs,
        defaults=RunConfig().to_dict(),
    )  # fmt: skip
    return figures


if __name__ == "__main__":
    main(run, __doc__)
