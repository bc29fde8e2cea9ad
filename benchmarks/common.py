"""Helpers shared by the benchmarks: timing and the results folder."""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from clearn.app.config import RunConfig
from clearn.app.executors import RunFailure, RunJob, run_jobs
from clearn.app.io import write_json_atomic
from clearn.app.results import RunResult

__all__ = [
    "RESULTS_DIR",
    "Diverged",
    "StepTimes",
    "interleaved_step_times",
    "main",
    "mnist_sized_batches",
    "median_seconds",
    "run_all",
    "save_result",
    "sgd_step",
]

RESULTS_DIR = Path(
    os.environ.get("CLEARN_BENCH_RESULTS", Path(__file__).resolve().parent / "results")
)
"""Where figures go: benchmarks/results, or $CLEARN_BENCH_RESULTS (--quick: results/quick)."""


def median_seconds(step: Callable[[], Any], *, repeats: int, calls: int) -> float:
    """Median over `repeats` of the mean wall time of `calls` calls of `step`."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            step()
        samples.append((time.perf_counter() - start) / calls)
    return statistics.median(samples)


def mnist_sized_batches(rows: int = 6000) -> tuple[Tensor, Tensor]:
    """Seeded random inputs (rows × 784, in [0, 1)) and labels (10 classes) for step timings."""
    generator = torch.Generator().manual_seed(0)
    inputs = torch.rand(rows, 784, generator=generator)
    return inputs, torch.randint(0, 10, (rows,), generator=generator)


def sgd_step(
    logits: Callable[[Tensor], Tensor],
    parameters: Iterable[nn.Parameter],
    inputs: Tensor,
    labels: Tensor,
    *,
    before_step: Callable[[], None] | None = None,
    after_step: Callable[[], None] | None = None,
    batch: int = 60,
    lr: float = 0.1,
) -> Callable[[], None]:
    """A function doing one SGD step (cross-entropy of `logits(x)`) on the next `batch` rows
    of `inputs`, cycling over them; `before_step` runs between the backward pass and the
    optimizer step, `after_step` after it."""
    optimizer = torch.optim.SGD(parameters, lr=lr)
    batches = len(labels) // batch
    position = [0]

    def step() -> None:
        start = batch * (position[0] % batches)
        position[0] += 1
        rows = slice(start, start + batch)
        loss = nn.functional.cross_entropy(logits(inputs[rows]), labels[rows])
        optimizer.zero_grad()
        loss.backward()
        if before_step is not None:
            before_step()
        optimizer.step()
        if after_step is not None:
            after_step()

    return step


@dataclass(frozen=True)
class StepTimes:
    """Seconds per call of each variant (median over rounds) and, per variant, its ratio to
    the reference within each round (the spread that drift of the machine leaves)."""

    seconds: dict[str, float]
    ratios: dict[str, list[float]]

    def ratio(self, name: str) -> float:
        """Median of the per-round ratios of `name` to the reference."""
        return statistics.median(self.ratios[name])

    def rows(self) -> list[list[str]]:
        """One table row per variant: ms per call, ratio, spread."""
        return [
            [name, f"{1000 * value:.3f}", f"{self.ratio(name):.3f}",
             f"{min(self.ratios[name]):.3f}–{max(self.ratios[name]):.3f}"]
            for name, value in self.seconds.items()
        ]


def interleaved_step_times(
    steps: Mapping[str, Callable[[], Any]], *, reference: str, calls: int, rounds: int
) -> StepTimes:
    """Time every step function in `rounds` rounds of `calls` calls each, the variants taking
    turns within a round, so that drift of the machine hits all of them alike."""
    for step in steps.values():
        median_seconds(step, repeats=1, calls=calls)  # warm-up
    samples: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            samples[name].append(median_seconds(step, repeats=1, calls=calls))
    return StepTimes(
        seconds={name: statistics.median(values) for name, values in samples.items()},
        ratios={
            name: [a / b for a, b in zip(values, samples[reference], strict=True)]
            for name, values in samples.items()
        },
    )


def save_result(name: str, content: dict[str, Any]) -> Path:
    """Write one benchmark's figures to `benchmarks/results/NAME.json`."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    return write_json_atomic(RESULTS_DIR / f"{name}.json", content)


def main(run: Callable[..., Any], description: str | None) -> None:
    """Command line of one benchmark module: `python -m benchmarks.NAME [--quick]`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="reduced version, a few minutes")
    run(quick=parser.parse_args().quick)


@dataclass(frozen=True)
class Diverged:
    """A run whose loss went NaN or infinite (its last good checkpoint is kept)."""

    message: str


def run_all(
    runs: Mapping[Hashable, tuple[RunConfig, Path]], *, jobs: int = 2
) -> dict[Hashable, RunResult | Diverged]:
    """`run_or_reuse` every (config, folder), `jobs` at a time in worker processes of one
    thread each (`clearn sweep`'s local executor; on a small CPU two single-threaded MLP runs
    train faster than one run on two threads); prints a line per finished run. Times are per
    run, under that load. A run whose loss diverges gives a Diverged record, and the others
    go on; any other failure stops the benchmark."""
    keys = list(runs)
    results: dict[Hashable, RunResult | Diverged] = {}
    outcomes = run_jobs([RunJob(*runs[key]) for key in keys], workers=jobs)
    for index, outcome in outcomes:
        key, folder = keys[index], runs[keys[index]][1]
        if isinstance(outcome, RunFailure):
            if not outcome.diverged:
                raise RuntimeError(f"{folder}: {outcome.error}")
            results[key] = Diverged(outcome.error)
            print(f"  {folder}: diverged ({outcome.error})", flush=True)
            continue
        results[key] = outcome
        print(
            f"  {folder}: ACC {100 * outcome.acc:.1f}%, {outcome.train_seconds:.0f} s", flush=True
        )
    return results
