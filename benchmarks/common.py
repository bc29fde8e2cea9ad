"""Helpers shared by the benchmarks: timing and the results folder."""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from clearn.io import write_json_atomic

__all__ = ["RESULTS_DIR", "main", "median_seconds", "save_result"]

RESULTS_DIR = Path(__file__).resolve().parent / "results"


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
