"""Quality side by side: clearn (epn α ∈ {1, 2, 3}, packnet) vs Avalanche's PackNet and the
classic baselines on the same streams, epochs and optimizer; mean ± std over seeds.

Also the literature's permuted-MNIST protocol as a preset (MLP 100-100, per-task heads, 10
tasks, 5 epochs, batch 10, as in the WSN paper), run on whichever MNIST-family data is here.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import tomllib

from benchmarks.common import RESULTS_DIR, main, run_all, save_result
from clearn.config import RunConfig
from scenarios.datasets import DEBIAN_FASHION_MNIST, DatasetNotFoundError, load_dataset

VARIANTS = {
    "epn α=1": {"strategy": "epn", "alpha": 1.0},
    "epn α=2": {"strategy": "epn", "alpha": 2.0},
    "epn α=3": {"strategy": "epn", "alpha": 3.0},
    "packnet α=1": {"strategy": "packnet", "alpha": 1.0},
    "avalanche-packnet": {"strategy": "avalanche-packnet"},
    "naive": {"strategy": "naive"},
    "ewc": {"strategy": "ewc"},
    "si": {"strategy": "si"},
}

PUBLISHED_PERMUTED_MNIST = (
    "Published on real permuted MNIST with this protocol (WSN paper, ICML 2022): PackNet 96.37% "
    "ACC at 96.4% capacity, SupSup 96.31%, WSN 96.41% at 77.7% and 94.84% at 19.9%."
)


def _stat(values: list[float | None]) -> str:
    present = [v for v in values if v is not None]
    if not present:
        return "–"
    mean = 100 * statistics.fmean(present)
    spread = 100 * statistics.stdev(present) if len(present) > 1 else 0.0
    return f"{mean:.1f} ± {spread:.1f}"


def _table(scenario: str, rows: dict[str, list[dict]]) -> str:
    lines = [
        f"**{scenario}**",
        "",
        "| strategy | ACC % | BWT % | forgetting % | capacity used % | train s |",
        "|---|---|---|---|---|---|",
    ]
    for name, runs in rows.items():
        used = [sum(r["capacity"]) if r.get("capacity") is not None else None for r in runs]
        seconds = statistics.fmean(r["train_seconds"] for r in runs)
        lines.append(
            f"| {name} | {_stat([r['acc'] for r in runs])} | "
            f"{_stat([r['bwt'] for r in runs])} | "
            f"{_stat([r['forgetting'] for r in runs])} | {_stat(used)} | "
            f"{seconds:.0f} |"
        )
    return "\n".join(lines)


def _run_grid(
    scenario: str, base: dict, variants: dict, seeds: list[int], folder: Path, *, jobs: int = 2
) -> dict[str, list[dict]]:
    """Every variant × seed, `jobs` runs at a time; results grouped by variant."""
    runs = {
        (name, seed): (
            RunConfig(scenario=scenario, seed=seed, **base, **options),
            folder / scenario / name.replace(" ", "_").replace("=", "") / f"seed{seed}",
        )
        for name, options in variants.items()
        for seed in seeds
    }
    results = run_all(runs, jobs=jobs)
    rows: dict[str, list[dict]] = {}
    for name, seed in runs:
        rows.setdefault(name, []).append(results[name, seed])
    return rows


PRESET = Path(__file__).resolve().parent / "presets" / "wsn-permuted-mnist.toml"


def _have_mnist() -> bool:
    try:
        load_dataset("mnist")
    except DatasetNotFoundError:
        return False
    return True


def run(*, quick: bool = False, folder: Path | None = None) -> dict:
    """Run every table; print them; write benchmarks/results/quality.{json,md}."""
    folder = folder or RESULTS_DIR / "runs"
    fmnist = DEBIAN_FASHION_MNIST.is_dir() and not quick
    seeds = [0] if quick else [0, 1, 2]
    base = {"epochs": 2 if quick else 3, "lr": 0.1, "batch_size": 60, "hidden": [300, 100]}
    studies = [
        ("permuted-fmnist" if fmnist else "permuted-digits", {"tasks": 3 if quick else 10}),
        ("split-fmnist" if fmnist else "split-digits", {}),
        ("split-digits", {}),
    ]
    tables, figures = [], {}
    for scenario, extra in dict(studies).items():
        variants = (
            VARIANTS if not quick else {k: VARIANTS[k] for k in ("epn α=1", "epn α=2", "naive")}
        )
        rows = _run_grid(scenario, {**base, **extra}, variants, seeds, folder)
        tables.append(_table(scenario, rows))
        figures[scenario] = {
            name: [
                {k: r[k] for k in ("acc", "bwt", "forgetting", "capacity", "train_seconds")}
                for r in runs
            ]
            for name, runs in rows.items()
        }
    if _have_mnist() and not quick:
        preset = tomllib.loads(PRESET.read_text())
        scenario = preset.pop("scenario")
        for key in ("strategy", "alpha"):
            preset.pop(key)
        rows = _run_grid(
            scenario,
            preset,
            {k: VARIANTS[k] for k in ("epn α=1", "epn α=2", "packnet α=1")},
            [0],
            folder / "wsn-preset",
        )
        tables.append(
            _table("WSN preset (MLP 100-100, batch 10, 5 epochs), permuted MNIST", rows)
            + "\n\n"
            + PUBLISHED_PERMUTED_MNIST
        )
    else:
        tables.append(
            "WSN preset: no MNIST here (MNIST/raw under the data root), not run. "
            + PUBLISHED_PERMUTED_MNIST
        )
    text = "\n\n".join(tables)
    print(text)
    (RESULTS_DIR / "quality.md").write_text(text + "\n")
    save_result("quality", figures)
    return figures


if __name__ == "__main__":
    main(run, __doc__)
