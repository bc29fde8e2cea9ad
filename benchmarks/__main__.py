"""`python -m benchmarks [--quick] [--only NAME ...]`: the benchmarks in one run."""

from __future__ import annotations

import argparse
import time

from benchmarks import (
    frontier,
    loader,
    long_stream,
    mechanism,
    packing_vs_avalanche,
    powerprop_step,
    quality,
    scale,
    speed,
)

BENCHMARKS = {
    "powerprop_step": powerprop_step,
    "loader": loader,
    "packing_vs_avalanche": packing_vs_avalanche,
    "speed": speed,
    "scale": scale,
    "mechanism": mechanism,
    "quality": quality,
    "long_stream": long_stream,
    "frontier": frontier,
}
LONG = ("frontier",)
"""Left out unless named with --only: the frontier study alone takes about 25 minutes."""

parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
parser.add_argument("--quick", action="store_true", help="reduced version, a few minutes")
parser.add_argument(
    "--only",
    nargs="+",
    choices=list(BENCHMARKS),
    default=[name for name in BENCHMARKS if name not in LONG],
    help=f"run these only (default: all but {', '.join(LONG)})",
)
arguments = parser.parse_args()
began = time.perf_counter()
for name in arguments.only:
    print(f"== {name}", flush=True)
    started = time.perf_counter()
    BENCHMARKS[name].run(quick=arguments.quick)
    print(f"({name}: {time.perf_counter() - started:.0f} s)\n", flush=True)
print(f"all benchmarks: {(time.perf_counter() - began) / 60:.1f} min")
