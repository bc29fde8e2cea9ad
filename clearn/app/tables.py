"""The one table writer: markdown tables for the console, README and result files."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["markdown_table", "number", "percent"]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown table; cells are written with str() (format numbers with the helpers)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"a row has {len(row)} cells, the header {len(header)}: {row}")
        lines.append("| " + " | ".join(str(cell) for cell in row) + " |")
    return "\n".join(lines)


def percent(value: float | None, spread: float | None = None, *, digits: int = 1) -> str:
    """`value` (a share) in %, with ± `spread` when given; "–" for None."""
    if value is None:
        return "–"
    text = f"{100 * value:.{digits}f}"
    return text if spread is None else f"{text} ± {100 * spread:.{digits}f}"


def number(value: float | None, digits: int = 1) -> str:
    """`value` with `digits` decimals; "–" for None."""
    return "–" if value is None else f"{value:.{digits}f}"
