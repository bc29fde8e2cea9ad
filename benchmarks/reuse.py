"""Do later tasks need fresh weights beyond their first layer? Each task after the first
trained on the first layer's free weights only (`--train-layers first`, reusing the deeper
weights earlier tasks own) against every layer (the default), on permuted and split streams
of three sizes, two seeds each, and on two 100-task permuted streams (one seed): average
accuracy, the share of the network used at the end, and what each task came to own. Every
other option is `clearn run`'s default.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from benchmarks.common import RESULTS_DIR, main, run_all, save_result
from benchmarks.report import write_results_page
from clearn.app.config import RunConfig
from clearn.app.tables import markdown_table, percent
from scenarios.datasets import DEBIAN_FASHION_MNIST

SEEDS = (0, 1)
LONG = {"tasks": 100, "eval_every_tasks": 10, "allow_frozen_features": True}
"""The 100-task streams, one seed each: whether what a task leaves free pays later; a task
that finds no free weight trains its head on frozen features, as in the long stream."""
LONG_STREAMS: dict[str, dict[str, Any]] = {
    "permuted digits, 100 tasks": {"scenario": "permuted-digits", **LONG},
    "permuted FMNIST 100/class, 100 tasks": {
        "scenario": "permuted-fmnist", "train_per_class": 100, **LONG,
    },
}  # fmt: skip
STREAMS: dict[str, dict[str, Any]] = {
    "permuted digits, 20 tasks": {"scenario": "permuted-digits", "tasks": 20},
    "permuted FMNIST 100/class, 20 tasks": {
        "scenario": "permuted-fmnist", "tasks": 20, "train_per_class": 100,
    },
    "permuted FMNIST 1000/class, 10 tasks": {
        "scenario": "permuted-fmnist", "tasks": 10, "train_per_class": 1000,
    },
    "split digits, 5 tasks": {"scenario": "split-digits"},
    "split FMNIST 500/class, 5 tasks": {"scenario": "split-fmnist", "train_per_class": 500},
}  # fmt: skip
QUICK_STREAMS = {"permuted digits, 5 tasks": {"scenario": "permuted-digits", "tasks": 5},
                 "split digits, 5 tasks": {"scenario": "split-digits"}}  # fmt: skip
SETTINGS: dict[str, dict[str, Any]] = {
    "every layer (default)": {},
    "first layer only": {"train_layers": "first"},
}
HEADER = [
    "stream", "later tasks train", "ACC %", "used % at end", "owned % per later task",
    "ACC vs default, points", "used vs default", "train s",
]  # fmt: skip


def _figures(results: list) -> dict[str, float]:
    """Seed means of a setting's runs."""
    def mean(values) -> float:
        return statistics.fmean(values)

    return {
        "acc": mean(r.acc for r in results),
        "used": mean(1.0 - r.task_reports[-1]["free_fraction"] for r in results),
        "owned_later": mean(
            statistics.fmean(t["owned_fraction"] for t in r.task_reports[1:]) for r in results
        ),
        "train_seconds": mean(r.train_seconds for r in results),
        "accs": [r.acc for r in results],
    }


def run(*, quick: bool = False) -> dict:
    """Every stream × setting × seed (reusing finished runs); print and write the table."""
    began = time.perf_counter()
    if quick:
        streams, seeds = QUICK_STREAMS, {stream: SEEDS[:1] for stream in QUICK_STREAMS}
    else:
        streams = STREAMS | LONG_STREAMS
        seeds = {stream: SEEDS for stream in STREAMS} | {stream: (0,) for stream in LONG_STREAMS}
    if not DEBIAN_FASHION_MNIST.is_dir():
        streams = {k: v for k, v in streams.items() if "fmnist" not in v["scenario"]}
    runs = {
        (stream, setting, seed): (
            RunConfig(**options, **SETTINGS[setting], seed=seed).validate(),
            RESULTS_DIR / "runs" / "reuse" / f"{options['scenario']}-{options.get('tasks', 5)}"
            f"-{options.get('train_per_class', 'all')}" / setting.split(" ")[0] / f"s{seed}",
        )
        for stream, options in streams.items() for setting in SETTINGS for seed in seeds[stream]
    }  # fmt: skip
    finished = run_all(runs)
    figures: dict[str, dict[str, Any]] = {}
    rows = []
    for stream in streams:
        figures[stream] = {
            setting: _figures([finished[(stream, setting, seed)] for seed in seeds[stream]])
            for setting in SETTINGS
        }
        default = figures[stream]["every layer (default)"]
        for setting, f in figures[stream].items():
            rows.append([
                stream, setting, percent(f["acc"]), percent(f["used"]),
                percent(f["owned_later"], digits=2), f"{100 * (f['acc'] - default['acc']):+.1f}",
                f"{f['used'] / default['used']:.2f}×", f"{f['train_seconds']:.0f}",
            ])  # fmt: skip
    table = markdown_table(HEADER, rows)
    print(table)
    save_result("reuse", {"seeds": {k: list(v) for k, v in seeds.items()}, "streams": figures})
    write_results_page(
        "reuse-quick" if quick else "reuse",
        title="Later tasks on their first layer only, reusing the deeper ones "
              "(`python -m benchmarks --only reuse`)",
        body=f"Means over seeds {list(SEEDS)} ({', '.join(LONG_STREAMS)}: seed 0); a task's "
             f"owned share is of the whole network.\n\n{table}\n",
        command="python -m benchmarks --only reuse" + (" --quick" if quick else ""),
        seconds=time.perf_counter() - began,
        configs={f"{stream} · {setting} · seed {seed}": config.to_dict()
                 for (stream, setting, seed), (config, _) in runs.items()},
        defaults=RunConfig().to_dict(),
    )  # fmt: skip
    return figures


if __name__ == "__main__":
    main(run, __doc__)

