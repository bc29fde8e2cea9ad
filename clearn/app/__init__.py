"""The clearn application: run configs, experiments, sweeps, comparisons, prune curves, plots
and the command line, assembled from the core, the data streams and the Avalanche strategies."""
