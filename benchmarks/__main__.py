"""`python -m benchmarks [--quick]`: every benchmark in one run."""

from __future__ import annotations

import argparse

from benchmarks import powerprop_step

parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
parser.add_argument("--quick", action="store_true", help="reduced repeats, a few minutes")
arguments = parser.parse_args()
powerprop_step.run(quick=arguments.quick)
