"""Where `WandBLogger` was: it lives with Avalanche's other patches now."""

from strategies.avalanche_compat import WandBLogger

__all__ = ["WandBLogger"]
