"""Benchmarks run by `make bench`: figures printed beside the reference they name, as ratios."""
