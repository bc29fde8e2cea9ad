"""One `clearn run` under way: its log and loggers, its strategy, its tasks trained one by one
and evaluated, a checkpoint after each; whatever it opened is closed however it ends."""

from __future__ import annotations

import logging
import random
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from avalanche.evaluation.metrics import accuracy_metrics, bwt_metrics, forgetting_metrics
from avalanche.logging import TensorboardLogger, TextLogger
from avalanche.training.plugins import EvaluationPlugin
from tqdm.auto import tqdm

import strategies
from clearn.app.checkpoint import CheckpointError, one_line, save_checkpoint
from clearn.app.code_version import code_version
from clearn.app.config import RunConfig
from clearn.app.factory import Assembled, assemble
from clearn.app.io import open_for_append
from clearn.app.registry import spec_for
from clearn.defaults import DEFAULT_EVAL_BATCH_SIZE
from clearn.evaluation import task_agnostic_score
from scenarios.streams import TaskStream
from scenarios.tasks import TensorBatchLoader
from strategies.capacity_metrics import capacity_metrics
from strategies.csv_logger import AppendingCSVLogger
from strategies.experience_accuracy import ExperienceAccuracyPlugin
from strategies.training_state import load_strategy_state, strategy_state
from strategies.wandb_logger import WandBLogger

__all__ = ["CHECKPOINT", "Run", "RunProgress"]

CHECKPOINT = Path("checkpoints") / "last.pt"


def _rng_state() -> dict[str, Any]:
    """Every generator's state as tensors and plain data (what a safe checkpoint holds)."""
    name, key, position, has_gauss, cached = np.random.get_state(legacy=True)
    version, words, gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": name,
            "key": torch.from_numpy(key.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {"version": version, "words": list(words), "gauss": gauss},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    saved = state["numpy"]
    np.random.set_state(
        (
            saved["name"],
            saved["key"].numpy().astype(np.uint32),
            saved["position"],
            saved["has_gauss"],
            saved["cached_gaussian"],
        )
    )
    python = state["python"]
    random.setstate((python["version"], tuple(python["words"]), python["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass
class RunProgress:
    """What the run has measured so far (a checkpoint holds it): `R[i][j]`, the seconds each
    task trained, and with --task-agnostic the task-agnostic and task-id rows."""

    matrix: list[list[float | None]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    agnostic: dict[str, list] = field(default_factory=lambda: {"accuracy": [], "task_id": []})


def _tasks_to_evaluate(task: int, total: int, every: int, strategy: str) -> list[int]:
    if spec_for(strategy).joint or task == total - 1 or (task + 1) % every == 0:
        return list(range(task + 1))
    return [task]


def under_trained(assembled: Assembled) -> list[int]:
    """Tasks whose epoch cap stopped them while their validation loss still fell."""
    if assembled.packing is not None:
        return [r.task for r in assembled.packing.reports if r.under_trained]
    if assembled.plateau_stop is not None:
        return sorted(assembled.plateau_stop.under_trained)
    return []


def _task_line(task: int, accuracy: float | None, seconds: float, assembled: Assembled) -> str:
    line = f"task {task}: test acc {accuracy:.3f}, {seconds:.1f}s"
    if assembled.packing is not None and assembled.packing.reports:
        report = assembled.packing.reports[-1]
        if report.unpruned_val_acc is not None:
            line += (
                f" | val {report.unpruned_val_acc:.3f} unpruned, {report.pruned_val_acc:.3f} pruned"
            )
        line += (
            f" | kept {report.kept_of_trained:.1%} of trained, owns "
            f"{report.owned_fraction:.1%} | free {report.free_fraction:.1%}"
        )
        if report.budget_bound:
            line += f" | budget bound: at most {report.kept_budget:.1%} of trained"
    return line


def task_agnostic_rows(
    network, stream: TaskStream, evaluated: list[int], device: torch.device,
    method: str | None = None, examples: int | None = None,
) -> tuple[list[float | None], list[float | None]]:
    """A row of task-agnostic and of task-id accuracy: each evaluated task's test examples
    (at most `examples` of them, a sample seeded by the task's number) answered without
    their task label (task inferred by `method`; None: `infer_task`'s default)."""
    accuracy: list[float | None] = [None] * stream.n_tasks
    task_id: list[float | None] = [None] * stream.n_tasks
    for j in evaluated:
        test = stream.test[j] if examples is None else stream.test[j].sample(examples, seed=j)
        batches = TensorBatchLoader(test, batch_size=DEFAULT_EVAL_BATCH_SIZE, shuffle=False)
        score = task_agnostic_score(network, batches, j, device, method=method)
        accuracy[j], task_id[j] = score.accuracy, score.task_id_accuracy
    return accuracy, task_id


class Run:
    """A run of `config` on `stream`, written into `out`. A context manager: the log, the
    Avalanche loggers and the log handler it opens on entry are closed when the block ends,
    however it ends (a failing assembly, an exception mid-run, Ctrl-C).

    In the block: `assemble` (optionally from a checkpoint's `state`), then `train`; then
    `progress`, `assembled` and `avalanche_metrics` hold what the results need.
    """

    def __init__(
        self, config: RunConfig, stream: TaskStream, out: Path, *, device: torch.device,
        quiet: bool,
    ) -> None:
        self.config = config
        self.stream = stream
        self.out = out
        self.device = device
        self.quiet = quiet
        """True on the processes of a group other than rank 0: no log, no lines, no bar."""
        self.progress = RunProgress()
        self.checkpoint: dict[str, Any] | None = None
        """The last saved checkpoint; replaced after every trained task."""
        self.assembled: Assembled | None = None
        self.evaluator: EvaluationPlugin | None = None
        self.accuracy = ExperienceAccuracyPlugin()
        """Each evaluated test experience's accuracy: the matrix's rows come from here."""
        self.log = None
        self.loggers: list = []
        self._open = ExitStack()

    def __enter__(self) -> Run:
        try:
            self._open_logs()
        except BaseException:
            self._open.close()
            raise
        return self

    def __exit__(self, *exception) -> None:
        self._open.close()

    def _opened(self, thing):
        """Register `thing` (a logger or file) to be closed on exit; return it."""
        if hasattr(thing, "close"):
            self._open.callback(thing.close)
        return thing

    def _open_logs(self) -> None:
        out, config = self.out, self.config
        # Line-buffered: a killed run loses no line of its log.
        self.log = self._opened(open_for_append(out / "avalanche_log.txt"))
        if not self.quiet:  # Avalanche lets only the main process of a group log
            self.loggers = [
                self._opened(TextLogger(self.log)),
                self._opened(AppendingCSVLogger(str(out / "avalanche_csv"))),
            ]
            if config.tensorboard:
                self.loggers.append(self._opened(TensorboardLogger(str(out / "tensorboard"))))
            if config.wandb:
                self.loggers.append(self._opened(WandBLogger(
                    project_name="clearn", run_name=out.name, dir=str(out),
                    config=config.to_dict(),
                )))  # fmt: skip
        # The library's notices (logging, `strategies.*`) go to the run's text log; the run
        # prints its own lines on screen.
        notices = logging.StreamHandler(self.log)
        library = logging.getLogger(strategies.__name__)
        library.addHandler(notices)
        self._open.callback(library.removeHandler, notices)
        self.evaluator = EvaluationPlugin(
            accuracy_metrics(experience=True, stream=True),
            forgetting_metrics(experience=True, stream=True),
            bwt_metrics(experience=True, stream=True),
            *capacity_metrics(),
            loggers=self.loggers,
        )

    def assemble(self, state: dict[str, Any] | None = None, *, path: Path | None = None) -> None:
        """Build the strategy; with the `state` of checkpoint file `path`, continue it."""
        self.assembled = assemble(
            self.config, self.stream, device=self.device, evaluator=self.evaluator,
            extra_plugins=[self.accuracy],
        )
        if state is not None:
            self.progress = self._restore(state, path)
            self.checkpoint = state

    def _restore(self, state: dict[str, Any], path: Path | None) -> RunProgress:
        """Load a checkpoint into the assembled strategy; return its progress. A checkpoint
        that does not fit raises CheckpointError naming it."""
        total = self.stream.n_tasks
        try:
            matrix = state["matrix"]
            progress = RunProgress(matrix, state["train_seconds"], state["task_agnostic"])
            if not isinstance(matrix, list) or not 0 < len(matrix) <= total:
                raise ValueError(f"its accuracy matrix has no row for 1 to {total} tasks")
            self.assembled.model.load_state_dict(state["model"])
            load_strategy_state(self.assembled.strategy, state["strategy"])
            _set_rng_state(state["rng"])
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as error:
            raise CheckpointError(
                f"{path} does not fit this run ({type(error).__name__}: {one_line(error)}); "
                f"delete it to start over"
            ) from None
        return progress

    def _units(self) -> list[tuple[int, Any]]:
        """The (last task, experience) pairs left to train."""
        experiences = self.stream.benchmark.train_stream
        total, done = self.stream.n_tasks, len(self.progress.matrix)
        if spec_for(self.config.strategy).joint:  # one unit, done once: a checkpoint holds it
            return [] if done else [(total - 1, experiences)]
        return [(task, experiences[task]) for task in range(done, total)]

    def train(self) -> None:
        """Train every task left, evaluating and checkpointing after each."""
        joint = spec_for(self.config.strategy).joint
        bar = tqdm(
            self._units(),
            desc=f"{self.config.scenario} · {self.config.strategy}",
            unit="task",
            initial=len(self.progress.matrix),
            total=1 if joint else self.stream.n_tasks,
            # Passed only to hide it: an explicit disable=False would override TQDM_DISABLE.
            **({"disable": True} if self.quiet else {}),
        )
        try:
            for task, experience in bar:
                self._train_task(task, experience, bar)
        except FloatingPointError as error:
            kept = (
                f"the checkpoint after task {len(self.progress.matrix) - 1} is kept "
                f"(continue with --resume)"
                if self.progress.matrix
                else "no task had finished, so there is no checkpoint"
            )
            raise FloatingPointError(f"{error}; {kept}") from None

    def _train_task(self, task: int, experience, bar) -> None:
        strategy, progress = self.assembled.strategy, self.progress
        began = time.perf_counter()
        strategy.train(experience, eval_streams=[])
        progress.seconds.append(time.perf_counter() - began)
        evaluated = _tasks_to_evaluate(
            task, self.stream.n_tasks, self.config.eval_every_tasks, self.config.strategy
        )
        row = self._evaluate(evaluated)
        progress.matrix.append(row)
        if self.config.task_agnostic:
            rows = task_agnostic_rows(
                self.assembled.network, self.stream, evaluated, self.device,
                self.config.task_inference, self.config.task_agnostic_examples,
            )
            progress.agnostic["accuracy"].append(rows[0])
            progress.agnostic["task_id"].append(rows[1])
        if not self.quiet:
            bar.write(_task_line(task, row[task], progress.seconds[-1], self.assembled))
        if task in under_trained(self.assembled) and not self.quiet:
            warning = (
                f"warning: task {task} was still improving (validation loss) when the "
                f"cap of {self.config.epochs} epochs ended its training; raise --epochs"
            )
            bar.write(warning)
            self.log.write(warning + "\n")
        self._save_checkpoint()

    def _evaluate(self, tasks: list[int]) -> list[float | None]:
        """A row of `R`: the test accuracy of each of `tasks`, None for the others."""
        test = self.stream.benchmark.test_stream
        self.assembled.strategy.eval([test[j] for j in tasks])
        row: list[float | None] = [None] * self.stream.n_tasks
        for j, accuracy in zip(tasks, self.accuracy.accuracies, strict=True):
            row[j] = float(accuracy)
        return row

    def _save_checkpoint(self) -> None:
        progress = self.progress
        self.checkpoint = {
            "config": self.config.to_dict(),
            "code_version": code_version(),
            "matrix": progress.matrix,
            "task_agnostic": progress.agnostic,
            "train_seconds": progress.seconds,
            "model": self.assembled.model.state_dict(),
            "strategy": strategy_state(self.assembled.strategy),
            "rng": _rng_state(),
        }
        save_checkpoint(self.out / CHECKPOINT, self.checkpoint)

    def mark_finished(self) -> None:
        """Save the last checkpoint again, marked finished (resuming then reads results)."""
        save_checkpoint(self.out / CHECKPOINT, {**self.checkpoint, "finished": True})

    @property
    def avalanche_metrics(self) -> dict[str, Any]:
        """Avalanche's stream-level metrics after the last evaluation (for the logs)."""
        last = self.evaluator.get_last_metrics()
        return {k: v for k, v in last.items() if "Stream" in k.split("/")[0]}
