"""`python -m benchmarks [--quick] [--only NAME ...]`: the benchmarks in one run."""

from __future__ import annotations

import argparse
import importlib
import os
import time
from pathlib import Path

BENCHMARKS = (
    "powerprop_step",
    "step_breakdown",
    "task_count",
    "loader",
    "avalanche_example",
    "packing_vs_avalanche",
    "speed",
    "avalanche_speed",
    "scale",
    "mechanism",
    "quality",
    "long_stream",
    "frontier",
    "robustness",
    "task_agnostic",
    "task_inference",
    "peers",
    "reuse",
)
LONG = (
    "long_stream", "frontier", "robustness", "task_agnostic", "task_inference", "peers", "reuse",
)
"""Left out unless named with --only: the 1,000-task streams take about 3 hours on 2 cores
(`python -m benchmarks.long_stream --tasks 100`: 25 minutes), the frontier study about 25
minutes, the robustness study about 45, task-agnostic inference about 15 (it trains two
streams), the task-inference methods about 10, the peer mask methods about 40, first-layer
reuse about 15."""

parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
parser.add_argument("--quick", action="store_true", help="reduced version, a few minutes")
parser.add_argument(
    "--only",
    nargs="+",
    choices=BENCHMARKS,
    default=[name for name in BENCHMARKS if name not in LONG],
    help=f"run these only (default: all but {', '.join(LONG)})",
)
arguments = parser.parse_args()
if arguments.quick:  # reduced figures must not overwrite the full ones
    os.environ.setdefault(
        "CLEARN_BENCH_RESULTS", str(Path(__file__).resolve().parent / "results" / "quick")
    )
began = time.perf_counter()
for name in arguments.only:
    print(f"== {name}", flush=True)
    started = time.perf_counter()
    # Imported only now, after the results folder is settled.
    importlib.import_module(f"benchmarks.{name}").run(quick=arguments.quick)
    print(f"({name}: {time.perf_counter() - started:.0f} s)\n", flush=True)
print(f"all benchmarks: {(time.perf_counter() - began) / 60:.1f} min")
