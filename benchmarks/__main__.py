"""`python -m benchmarks [--quick]`: every benchmark in one run."""

from __future__ import annotations

import argparse

from benchmarks import loader, packing_vs_avalanche, powerprop_step

parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
parser.add_argument("--quick", action="store_true", help="reduced repeats, a few minutes")
arguments = parser.parse_args()
for benchmark in (powerprop_step, loader, packing_vs_avalanche):
    benchmark.run(quick=arguments.quick)
    print()
