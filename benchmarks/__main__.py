"""`python -m benchmarks [--quick] [--only NAME ...]`: the benchmarks in one run."""

from __future__ import annotations

import argparse

from benchmarks import (
    loader,
    long_stream,
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
    "quality": quality,
    "long_stream": long_stream,
}

parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
parser.add_argument("--quick", action="store_true", help="reduced version, a few minutes")
parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), default=list(BENCHMARKS))
arguments = parser.parse_args()
for name in arguments.only:
    print(f"== {name}")
    BENCHMARKS[name].run(quick=arguments.quick)
    print()
