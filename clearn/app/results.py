"""The results of one `clearn run`, typed: what results.json holds, read by plots, sweeps,
comparisons and benchmarks alike."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clearn.app.io import write_json_atomic
from clearn.app.registry import STRATEGIES

__all__ = ["RESULTS_FILE", "RunResult"]

RESULTS_FILE = "results.json"


@dataclass(frozen=True, kw_only=True)
class RunResult:
    """One run's figures. `R[i][j]` = test accuracy on task j after training task i."""

    scenario: str
    strategy: str
    alpha: float
    """Powerprop exponent of `epn` / `packnet`; 1 for every other strategy."""
    tasks: int
    accuracy_matrix: list[list[float | None]]
    acc: float
    bwt: float | None
    forgetting: float | None
    capacity: list[float] | None
    """Share of the maskable weights each task owns; None for strategies that do not pack."""
    free_fraction: float | None
    cap: float | None = None
    """The WSN paper's CAP after the last task, one definition for every mask method: share
    of the weights any task uses plus the masks' storage as a share of the float32 network
    (`strategies.capacity_metrics.model_cap`); None for strategies that mask nothing."""
    train_seconds: float
    train_seconds_per_task: list[float]
    config: dict[str, Any]
    task_reports: list[dict[str, Any]] = field(default_factory=list)
    under_trained_tasks: list[int] = field(default_factory=list)
    avalanche_metrics: dict[str, Any] = field(default_factory=dict)
    resumed: bool = False
    weight_histogram: dict[str, Any] | None = None
    task_agnostic_matrix: list[list[float | None]] | None = None
    """With --task-agnostic: `R[i][j]` for task j's examples answered without their task label
    (task inferred per example, then the class; right only when both are)."""
    task_id_matrix: list[list[float | None]] | None = None
    """With --task-agnostic: share of task j's examples whose task is inferred right."""
    plots: list[str] = field(default_factory=list)
    code_version: str | None = None
    """`clearn.app.code_version` of the code that made the run; None: a clearn too old to
    record it."""
    already_finished: bool = field(default=False, compare=False)
    """True when the run was found finished rather than run (not saved)."""

    @property
    def capacity_used(self) -> float | None:
        """Share of the maskable weights owned by some task; None for non-packing runs."""
        return None if self.capacity is None else sum(self.capacity)

    @property
    def label(self) -> str:
        """Strategy name, with α where it matters."""
        if self.strategy in STRATEGIES and STRATEGIES[self.strategy].packs:
            return f"{self.strategy} α={self.alpha:g}"
        return self.strategy

    def to_dict(self) -> dict[str, Any]:
        """results.json's content."""
        content = dataclasses.asdict(self)
        del content["already_finished"]
        return content

    def write(self, folder: str | Path) -> Path:
        """Write results.json into `folder`, atomically."""
        return write_json_atomic(Path(folder) / RESULTS_FILE, self.to_dict())

    @classmethod
    def read(cls, folder: str | Path) -> RunResult:
        """The results of run folder `folder`; ValueError naming the file when unreadable."""
        path = Path(folder) / RESULTS_FILE
        if not path.is_file():
            raise ValueError(f"{folder} holds no {RESULTS_FILE}: is it a `clearn run` folder?")
        try:
            content = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"cannot read {path}: {error}") from None
        fields = dataclasses.fields(cls)
        required = {f.name for f in fields if f.default is f.default_factory is dataclasses.MISSING}
        missing = sorted(required - set(content)) if isinstance(content, dict) else ["all"]
        if missing:
            raise ValueError(f"{path} is not a `clearn run`'s results: {missing} missing")
        hints = typing.get_type_hints(cls)
        for name in (f.name for f in fields if f.name in content):
            if not _fits(content[name], hints[name]):
                raise ValueError(
                    f"{path}: {name} is not a {_shown_type(hints[name])}: was the file edited?"
                )
        matrix = content["accuracy_matrix"]
        if not matrix or any(len(row) != len(matrix[0]) for row in matrix):
            raise ValueError(f"{path}: accuracy_matrix is not a table of equal rows")
        return cls(**{f.name: content[f.name] for f in fields if f.name in content})


def _fits(value: Any, kind: Any) -> bool:
    """Whether JSON `value` has the type `kind` (the annotations RunResult uses)."""
    origin, arguments = typing.get_origin(kind), typing.get_args(kind)
    if kind is Any:
        return True
    if kind is type(None):
        return value is None
    if origin in (types.UnionType, typing.Union):
        return any(_fits(value, option) for option in arguments)
    if origin is list:
        return isinstance(value, list) and all(_fits(v, arguments[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(_fits(v, arguments[1]) for v in value.values())
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _shown_type(kind: Any) -> str:
    return str(kind).replace("typing.", "")
