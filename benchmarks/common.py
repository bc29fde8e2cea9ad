"""Helpers shared by the benchmarks: timing and the results folder."""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clearn.app.config import RunConfig
from clearn.app.executors import RunFailure, RunJob, run_jobs
from clearn.app.io import write_json_atomic
from clearn.app.results import RunResult

__all__ = ["RESULTS_DIR", "Diverged", "main", "median_seconds", "run_all", "save_result"]

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
