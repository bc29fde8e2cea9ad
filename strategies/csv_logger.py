"""Where `AppendingCSVLogger` was: it lives with Avalanche's other patches now."""

from strategies.avalanche_compat import CAPACITY_FILE, AppendingCSVLogger

__all__ = ["CAPACITY_FILE", "AppendingCSVLogger"]
