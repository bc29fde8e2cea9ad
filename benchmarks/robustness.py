"""Do the defaults hold on data no one tuned them on? The default `epn` against `epn --alpha 1`,
classic PackNet and EWC, on permuted and split digits and Fashion-MNIST, with 100 to all training
images per class, and on the WSN preset; every strategy under the same budget (each task trains
until its validation loss stops improving, 50 epochs at most). A second table says where the
default's train time goes (the epochs that reached each task's final validation accuracy, the
epochs after them, validation, the search, the input models) against its train time before
issue 26 (the results file at BEFORE_COMMIT) and classic PackNet's, and why it differs from
PackNet's (the search, the epochs, the seconds per epoch).

Writes benchmarks/results/robustness.{json,md,png} and docs/results/robustness.md. Targets:
on every stream the default reaches the best ACC of `epn --alpha 1` and PackNet minus 1 point,
with at most half of `epn --alpha 1`'s capacity (issue "Defaults that hold on data nobody tuned
them on"); its train time is at most classic PackNet's, with ACC no more than half a point
lower and no more capacity (issue "Time to a result").
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import time
import tomllib
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS_DIR, Diverged, main, run_all, save_result
from benchmarks.report import write_results_page
from clearn.app.config import RunConfig
from clearn.app.plots import plot_robustness
from clearn.app.results import RunResult
from clearn.app.tables import markdown_table, percent
from clearn.app.time_spent import REACHED_WITHIN, time_spent
from clearn.defaults import MIN_PATIENCE_STEPS
from scenarios.datasets import DEBIAN_FASHION_MNIST

METHODS = {
    "epn (default)": {},
    "epn --alpha 1": {"alpha": 1.0},
    "packnet (classic, α=1)": {"strategy": "packnet", "alpha": 1.0, "init_scale": 1.0},
    "ewc": {"strategy": "ewc"},
}
DEFAULT, ALPHA_ONE, PACKNET = list(METHODS)[:3]
PERMUTED_TASKS = 5
DIGITS_SIZES: tuple[int | None, ...] = (100, None)
"""The digits hold about 144 training images per class: 100 and all of them."""
FMNIST_SIZES: tuple[int | None, ...] = (100, 500, 2000, None)
FEW_SEEDS_FROM = 2000
"""Sizes from this one up run one seed (they take minutes per run); smaller ones three."""
PRESET = Path(__file__).resolve().parent / "presets" / "wsn-permuted-mnist.toml"
BEFORE_COMMIT = "2be9354"
"""The robustness results made before issue 26's speed work (same streams, sizes and seeds)."""


SPENT_KEYS = (
    "to_final_accuracy", "after_final_accuracy", "validation", "search", "input_model", "epochs",
    "per_epoch",
)
"""What each method's summary holds of its runs' `time_spent` (means over seeds)."""


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _studies(quick: bool) -> list[tuple[str, int | None]]:
    streams = [("permuted-digits", DIGITS_SIZES), ("split-digits", DIGITS_SIZES)]
    if DEBIAN_FASHION_MNIST.is_dir() and not quick:
        streams += [("permuted-fmnist", FMNIST_SIZES), ("split-fmnist", FMNIST_SIZES)]
    return [(stream, size) for stream, sizes in streams for size in sizes]


def _seeds(size: int | None, quick: bool) -> list[int]:
    if quick or size is None or size >= FEW_SEEDS_FROM:
        return [0]
    return [0, 1, 2]


def _summary(runs: list[RunResult | Diverged]) -> dict[str, Any]:
    done = [r for r in runs if isinstance(r, RunResult)]
    if not done:
        return {"diverged": len(runs)}
    used = [r.capacity_used for r in done if r.capacity_used is not None]
    spent = [s for s in map(time_spent, done) if s is not None]
    return {
        "acc": [r.acc for r in done],
        "capacity": used or None,
        "train_seconds": statistics.fmean(r.train_seconds for r in done),
        "time_spent": {
            key: statistics.fmean(getattr(s, key) for s in spent)
            for key in SPENT_KEYS
        } if len(spent) == len(done) else None,  # fmt: skip
        "under_trained_tasks": sum(len(r.under_trained_tasks) for r in done),
        "diverged": len(runs) - len(done),
    }


def _mean(values: list[float] | None) -> float | None:
    return statistics.fmean(values) if values else None


def _cell(values: list[float] | None) -> str:
    if not values:
        return "–"
    return percent(statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None)


def _verdict(rows: dict[str, dict[str, Any]]) -> str:
    """Whether the default meets the target on one stream, or by how much it misses."""
    accs = {name: _mean(rows[name].get("acc")) for name in (DEFAULT, ALPHA_ONE, PACKNET)}
    if None in accs.values():
        return "not measured (a run diverged)"
    bar = max(accs[ALPHA_ONE], accs[PACKNET]) - 0.01
    cap, cap_one = _mean(rows[DEFAULT]["capacity"]), _mean(rows[ALPHA_ONE]["capacity"])
    missed = []
    if accs[DEFAULT] < bar:
        missed.append(f"ACC {100 * (bar - accs[DEFAULT]):.1f} pt short")
    if cap > cap_one / 2:
        missed.append(f"capacity {cap / cap_one:.2f}× α=1's")
    return "met" if not missed else "missed: " + ", ".join(missed)


def _table(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    header = [
        "stream", "train images / class", "seeds",
        *(f"{m} ACC % / capacity % / s" for m in METHODS), "target",
    ]
    body = []
    for study, rows in results.items():
        stream, _, size = study.partition(" @ ")
        cells = []
        for name in METHODS:
            row = rows[name]
            if "acc" not in row:
                cells.append("diverged")
                continue
            cells.append(
                f"{_cell(row['acc'])} / {_cell(row['capacity'])} / {row['train_seconds']:.0f}"
            )
        seeds = len(rows[DEFAULT].get("acc", [])) or "–"
        body.append([stream, size, seeds, *cells, _verdict(rows)])
    return markdown_table(header, body)


def _before() -> dict[str, dict[str, Any]]:
    """The streams' figures at BEFORE_COMMIT ({} outside a git checkout that has it)."""
    try:
        done = subprocess.run(
            ["git", "show", f"{BEFORE_COMMIT}:benchmarks/results/robustness.json"],
            capture_output=True, text=True, timeout=30, cwd=Path(__file__).parent,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return {}
    return json.loads(done.stdout)["streams"] if done.returncode == 0 else {}


def _time_verdict(rows: dict[str, dict[str, Any]]) -> str:
    """Whether the default trains no longer than classic PackNet with ACC no more than half a
    point lower and no more capacity, or by how much it misses."""
    default, packnet = rows[DEFAULT], rows[PACKNET]
    if "acc" not in default or "acc" not in packnet:
        return "not measured (a run diverged)"
    ratio = default["train_seconds"] / packnet["train_seconds"]
    missed = [f"{ratio:.2f}× PackNet's time"] if ratio > 1 else []
    if _mean(default["acc"]) < _mean(packnet["acc"]) - 0.005:
        missed.append("lower ACC")
    if _mean(default["capacity"]) > _mean(packnet["capacity"]):
        missed.append("more capacity")
    return f"met ({ratio:.2f}×)" if not missed else "missed: " + ", ".join(missed)


def _time_gap(rows: dict[str, dict[str, Any]]) -> str:
    """Why the default's train time differs from classic PackNet's: the search, the number
    of epochs, and the time per epoch (Powerprop's step, the masks), each side by side."""
    default, packnet = (rows[name].get("time_spent") for name in (DEFAULT, PACKNET))
    if not default or not packnet or "epochs" not in default or "epochs" not in packnet:
        return "–"
    return (
        f"search {_seconds(default['search'])} vs {_seconds(packnet['search'])} s; "
        f"epochs {default['epochs']:.0f} vs {packnet['epochs']:.0f}; "
        f"per epoch {default['per_epoch'] / packnet['per_epoch']:.2f}×"
    )


def _seconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


def _packnet_ratio(rows: dict[str, dict[str, Any]]) -> float | None:
    """The default's train time over classic PackNet's, in one results file (one machine)."""
    default, packnet = (rows.get(name, {}).get("train_seconds") for name in (DEFAULT, PACKNET))
    return default / packnet if default and packnet else None


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def _time_table(results: dict[str, dict[str, dict[str, Any]]], before: dict) -> str:
    header = [
        "stream", "train images / class", "default train s", "of which to final accuracy",
        "after it (%)", "validation", "search", "input model", "PackNet train s",
        f"default ÷ PackNet before ({BEFORE_COMMIT})", "default ÷ PackNet now",
        "target: default ≤ PackNet (ACC within 0.5 pt, capacity ≤)", "why: default vs PackNet",
    ]  # fmt: skip
    body = []
    for study, rows in results.items():
        stream, _, size = study.partition(" @ ")
        row, spent = rows[DEFAULT], rows[DEFAULT].get("time_spent") or {}
        now = row.get("train_seconds")
        after = spent.get("after_final_accuracy")
        share = f" ({100 * after / now:.0f}%)" if after is not None else ""
        body.append([
            stream, size, _seconds(now), _seconds(spent.get("to_final_accuracy")),
            _seconds(after) + share, _seconds(spent.get("validation")),
            _seconds(spent.get("search")), _seconds(spent.get("input_model")),
            _seconds(rows[PACKNET].get("train_seconds")),
            _ratio(_packnet_ratio(before.get(study, {}))), _ratio(_packnet_ratio(rows)),
            _time_verdict(rows), _time_gap(rows),
        ])  # fmt: skip
    note = (
        "Of the default's train time: the seconds to final accuracy are what it would have "
        "taken had each task stopped at the first epoch within "
        f"{100 * REACHED_WITHIN:.1f} points of its final validation accuracy, the rest came "
        "after it; validation, the search and the fit of each task's input model (for task "
        "inference) are parts of the train time (the last two of the seconds to final "
        "accuracy). Train times before and now are compared as ratios to PackNet's in the "
        "same results file (one machine): the machine behind the results at "
        f"{BEFORE_COMMIT} was not recorded. The last column compares the default with "
        "PackNet: the search, the epochs (retraining included) and the seconds per epoch (the "
        "train time less the search and the input model, over the epochs). Each epoch is "
        "costed at the task's mean, so the per-task set-up is spread over the epochs and the "
        "seconds after final accuracy are an upper bound on what a stop at that epoch would "
        "save, an epoch known only in hindsight: the stop needs its patience epochs, and at "
        f"least {MIN_PATIENCE_STEPS} optimizer steps, to see the plateau, which on the small "
        "streams is many epochs.\n\n"
    )
    return note + markdown_table(header, body)


def _preset_runs(folder: Path) -> dict:
    """The WSN preset (its protocol, the defaults' method) on Fashion-MNIST: no MNIST here."""
    preset = tomllib.loads(PRESET.read_text())
    preset.update(scenario="permuted-fmnist")
    methods = {name: METHODS[name] for name in (DEFAULT, ALPHA_ONE, PACKNET)}
    return {
        ("wsn-preset", name): (
            RunConfig(**{**preset, **options}).validate(),
            folder / "wsn-preset" / _slug(name),
        )
        for name, options in methods.items()
    }


def run(*, quick: bool = False) -> dict:
    """Run every stream × size × method × seed (finished runs reused); write the table."""
    began = time.perf_counter()
    folder = RESULTS_DIR / "runs" / "robustness"
    runs = {}
    for stream, size in _studies(quick):
        tasks = PERMUTED_TASKS if stream.startswith("permuted") else None
        for name, options in METHODS.items():
            for seed in _seeds(size, quick):
                config = RunConfig(
                    scenario=stream, tasks=tasks, train_per_class=size, seed=seed, **options
                )
                path = folder / stream / f"{size or 'all'}" / _slug(name) / f"s{seed}"
                runs[(f"{stream} @ {size or 'all'}", name, seed)] = (config.validate(), path)
    if DEBIAN_FASHION_MNIST.is_dir() and not quick:
        runs.update({(*key, 0): run for key, run in _preset_runs(folder).items()})
    finished = run_all(runs)
    results: dict[str, dict[str, list[RunResult | Diverged]]] = {}
    for study, name, _seed in runs:
        results.setdefault(study, {}).setdefault(name, [])
    for (study, name, seed), _ in runs.items():
        results[study][name].append(finished[study, name, seed])
    summary = {
        study: {name: _summary(found) for name, found in rows.items()}
        for study, rows in results.items()
    }
    preset = summary.pop("wsn-preset", None)
    text = (
        "Default `epn`: "
        + ", ".join(f"{k} {v}" for k, v in _default_settings().items())
        + "\n\n"
        + _table(summary)
        + "\n\n**Where the default's train time goes**\n\n"
        + _time_table(summary, _before())
    )
    if preset is not None:
        text += "\n\n**WSN preset** (MLP 100-100, batch 10, lr 0.01, 5 epochs, 10 tasks) on "
        text += "permuted Fashion-MNIST (no MNIST here): " + "; ".join(
            f"{name} {_cell(row.get('acc'))}% ACC at {_cell(row.get('capacity'))}% capacity"
            for name, row in preset.items()
        )
        text += ". Published on real MNIST (WSN, ICML 2022): PackNet 96.37% at 96.4%, WSN "
        text += "94.84% at 19.9%."
    print(text)
    (RESULTS_DIR / "robustness.md").write_text(text + "\n")
    plot = plot_robustness(summary, list(METHODS), RESULTS_DIR / "robustness.png")
    save_result("robustness", {"streams": summary, "wsn_preset": preset})
    write_results_page(
        "robustness-quick" if quick else "robustness",
        title="Defaults on data no one tuned them on (`python -m benchmarks --only robustness`)",
        body=f"{text}\n\n![ACC and capacity per stream](../../benchmarks/results/{plot.name})\n",
        command="python -m benchmarks --only robustness" + (" --quick" if quick else ""),
        seconds=time.perf_counter() - began,
        configs={f"{study} · {name} · seed {seed}": config.to_dict()
                 for (study, name, seed), (config, _) in runs.items()},
        defaults=RunConfig().to_dict(),
    )  # fmt: skip
    return summary


def _default_settings() -> dict[str, Any]:
    defaults = RunConfig().resolved()
    keys = ("alpha", "normalise_step", "init_scale", "gamma", "retrain_epochs", "lr", "epochs")
    return {key: getattr(defaults, key) for key in (*keys, "patience")}


if __name__ == "__main__":
    main(run, __doc__)
