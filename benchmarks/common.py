"""Helpers shared by the benchmarks: timing and the results folder."""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import statistics
import time
from collections.abc import Callable, Hashable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clearn.app.config import RunConfig
from clearn.app.experiment import run_or_reuse
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


@contextlib.contextmanager
def _worker_environment() -> Iterator[None]:
    """Environment the spawned workers inherit: one thread each, no progress bars (tqdm
    reads its settings at import, so they must be in the environment before the spawn)."""
    saved = dict(os.environ)
    os.environ.update(OMP_NUM_THREADS="1", TQDM_DISABLE="1")
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@dataclass(frozen=True)
class Diverged:
    """A run whose loss went NaN or infinite (its last good checkpoint is kept)."""

    message: str


def run_all(
    runs: Mapping[Hashable, tuple[RunConfig, Path]], *, jobs: int = 2
) -> dict[Hashable, RunResult | Diverged]:
    """`run_or_reuse` every (config, folder), `jobs` at a time in worker processes of one
    thread each (on a small CPU two single-threaded MLP runs train faster than one run on
    two threads); prints a line per finished run. Times are per run, under that load. A run
    whose loss diverges gives a Diverged record, and the others go on."""
    results = {}
    with (
        _worker_environment(),
        ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool,
    ):
        futures = {pool.submit(run_or_reuse, *run): key for key, run in runs.items()}
        for future in as_completed(futures):
            key = futures[future]
            try:
                results[key] = done = future.result()
            except FloatingPointError as error:  # one diverging run must not lose the others
                results[key] = Diverged(str(error))
                print(f"  {runs[key][1]}: diverged ({error})", flush=True)
                continue
            print(
                f"  {runs[key][1]}: ACC {100 * done.acc:.1f}%, {done.train_seconds:.0f} s",
                flush=True,
            )
    return results
