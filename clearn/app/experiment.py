"""`clearn run`: train a stream with Avalanche, checkpoint every task, write results and plots.

It assembles `scenarios` (streams), `strategies` (Avalanche strategies and plugins) and the
mechanism in `clearn`'s core.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from avalanche.evaluation.metrics import accuracy_metrics, bwt_metrics, forgetting_metrics
from avalanche.logging import TensorboardLogger, TextLogger
from avalanche.training.plugins import EvaluationPlugin
from tqdm.auto import tqdm

import strategies
from clearn.app.checkpoint import CheckpointError, load_checkpoint, one_line, save_checkpoint
from clearn.app.config import RunConfig, read_config, write_config
from clearn.app.factory import assemble, run_stream
from clearn.app.io import open_for_append, write_text_atomic
from clearn.app.plots import (
    plot_accuracy_matrix,
    plot_capacity,
    plot_task_accuracy,
    plot_weight_histogram,
)
from clearn.app.registry import spec_for
from clearn.app.results import RESULTS_FILE, RunResult
from clearn.app.run_folder import CONFIG_FILE, ResultsExistError, claim_run_folder
from clearn.defaults import DEFAULT_EVAL_BATCH_SIZE
from clearn.evaluation import task_agnostic_score
from clearn.metrics import average_accuracy, backward_transfer, forgetting
from clearn.powerprop import effective_weights
from clearn.weight_study import magnitude_histogram
from scenarios.tasks import TensorBatchLoader
from strategies.capacity_metrics import capacity_metrics, model_cap, model_capacity
from strategies.csv_logger import AppendingCSVLogger
from strategies.distributed import process_rank
from strategies.metric_keys import experience_accuracy_key
from strategies.training_state import load_strategy_state, strategy_state
from strategies.wandb_logger import WandBLogger

__all__ = ["ResultsExistError", "draw_plots", "run_experiment", "run_or_reuse"]

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


def _evaluator(out: Path, config: RunConfig):
    # Line-buffered: a killed run loses no line of its log.
    log = open_for_append(out / "avalanche_log.txt")  # closed by the run
    if process_rank()[0] != 0:  # Avalanche lets only the main process of a group log
        loggers = []
    else:
        loggers = [TextLogger(log), AppendingCSVLogger(str(out / "avalanche_csv"))]
    if config.tensorboard and loggers:
        loggers.append(TensorboardLogger(str(out / "tensorboard")))
    if config.wandb and loggers:
        loggers.append(
            WandBLogger(
                project_name="clearn", run_name=out.name, dir=str(out), config=config.to_dict()
            )
        )
    evaluator = EvaluationPlugin(
        accuracy_metrics(experience=True, stream=True),
        forgetting_metrics(experience=True, stream=True),
        bwt_metrics(experience=True, stream=True),
        *capacity_metrics(),
        loggers=loggers,
    )
    return evaluator, log, loggers


def _weight_histogram(assembled) -> dict[str, Any]:
    if assembled.network is not None:
        network = assembled.network
        network.select(None)
        weights = effective_weights(network.backbone)
        values = torch.cat(
            [weights[n][used].abs().flatten() for n, used in network.used_masks().items()]
        )
    else:
        values = torch.cat([w.abs().flatten() for w in effective_weights(assembled.model).values()])
    return magnitude_histogram(values)


def draw_plots(results: RunResult, out: Path) -> list[Path]:
    """Draw every plot of a run's results into `out`; return their paths."""
    matrix = results.accuracy_matrix
    title = f"{results.scenario}, {results.strategy}, α={results.alpha:g}"
    paths = [
        plot_accuracy_matrix(matrix, out / "accuracy_matrix.png", title=title),
        plot_task_accuracy(matrix, out / "task_accuracy.png"),
    ]
    if results.capacity is not None:
        paths.append(plot_capacity(results.capacity, results.free_fraction, out / "capacity.png"))
    if results.task_agnostic_matrix is not None:
        paths.append(
            plot_accuracy_matrix(
                results.task_agnostic_matrix,
                out / "task_agnostic_accuracy_matrix.png",
                title=f"{title}, task-agnostic",
            )
        )
    if results.weight_histogram:
        paths.append(plot_weight_histogram(results.weight_histogram, out / "weight_histogram.png"))
    return paths


def _write_matrix_csv(matrix: list[list[float | None]], path: Path) -> None:
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(["after_task"] + [f"task_{j}" for j in range(len(matrix[0]))])
    for i, row in enumerate(matrix):
        writer.writerow([i] + ["" if v is None else f"{v:.6f}" for v in row])
    write_text_atomic(path, text.getvalue())


def _add_task_agnostic_rows(agnostic, network, stream, evaluated, device) -> None:
    """One row of task-agnostic and of task-id accuracy: each evaluated task's test examples
    answered without their task label (task inferred per example)."""
    total = stream.n_tasks
    accuracy: list[float | None] = [None] * total
    task_id: list[float | None] = [None] * total
    for j in evaluated:
        batches = TensorBatchLoader(
            stream.test[j], batch_size=DEFAULT_EVAL_BATCH_SIZE, shuffle=False
        )
        score = task_agnostic_score(network, batches, j, device)
        accuracy[j], task_id[j] = score.accuracy, score.task_id_accuracy
    agnostic["accuracy"].append(accuracy)
    agnostic["task_id"].append(task_id)


def _tasks_to_evaluate(task: int, total: int, every: int, strategy: str) -> list[int]:
    if spec_for(strategy).joint or task == total - 1 or (task + 1) % every == 0:
        return list(range(task + 1))
    return [task]


def run_experiment(config: RunConfig, out: str | Path, *, resume: bool = False) -> RunResult:
    """Train `config`'s stream, writing checkpoints and results into `out`; return the results.

    With `resume`, continue the run saved in `out` (with its saved configuration); a
    finished run is returned as it is.
    """
    out = Path(out)
    if process_rank()[0] != 0:
        # One run over several processes (torchrun): rank 0 alone writes the run folder;
        # the others write into a scratch folder and, to resume, read rank 0's checkpoint.
        with tempfile.TemporaryDirectory(prefix="clearn-rank-") as scratch:
            return _run(config, Path(scratch), resume=resume, saved=out)
    with claim_run_folder(out, resume=resume):
        return _run(config, out, resume=resume, saved=out)


def _run(config: RunConfig, out: Path, *, resume: bool, saved: Path) -> RunResult:
    """The run, written into `out`; with `resume`, continued from the run in `saved`."""
    quiet = process_rank()[0] != 0
    state: dict[str, Any] | None = None
    if resume:
        if (saved / RESULTS_FILE).exists() and not (saved / CHECKPOINT).exists():
            return dataclasses.replace(RunResult.read(saved), already_finished=True)
        if (saved / CHECKPOINT).exists():
            state = load_checkpoint(saved / CHECKPOINT)
            config = _checkpoint_config(state, saved)
            if state.get("finished"):
                return dataclasses.replace(RunResult.read(saved), already_finished=True)
        else:  # killed before its first task ended: nothing to keep, start it again
            config = RunConfig(**read_config(saved / CONFIG_FILE))
    config.validate()
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    random.seed(config.seed)
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu")
        if config.device == "auto"
        else config.device
    )
    stream = run_stream(config)
    total = stream.n_tasks
    write_config(config, out / CONFIG_FILE)
    evaluator, log, loggers = _evaluator(out, config)
    # The library's notices (logging, `strategies.*`) go to the run's text log; the run
    # prints its own lines on screen.
    notices = logging.StreamHandler(log)
    logging.getLogger(strategies.__name__).addHandler(notices)
    matrix: list[list[float | None]] = []
    seconds: list[float] = []
    agnostic: dict[str, list] = {"accuracy": [], "task_id": []}
    """Task-agnostic and task-id accuracy matrices (--task-agnostic)."""
    checkpoint = state  # the last saved checkpoint; replaced after every trained task
    try:
        assembled = assemble(config, stream, device=device, evaluator=evaluator)
        strategy = assembled.strategy
        if state is not None:
            matrix, seconds, agnostic = _restore(state, assembled, total, saved / CHECKPOINT)
        start_task = len(matrix)
        experiences = stream.benchmark.train_stream
        joint = spec_for(config.strategy).joint
        if joint:  # one unit of training, done once: a checkpoint holds its result
            units = [] if matrix else [(total - 1, experiences)]
        else:
            units = [(task, experiences[task]) for task in range(start_task, total)]
        progress = tqdm(
            units,
            desc=f"{config.scenario} · {config.strategy}",
            unit="task",
            initial=start_task,
            total=1 if joint else total,
            # Passed only to hide it: an explicit disable=False would override TQDM_DISABLE.
            **({"disable": True} if quiet else {}),
        )
        for task, experience in progress:
            began = time.perf_counter()
            strategy.train(experience, eval_streams=[])
            seconds.append(time.perf_counter() - began)
            evaluated = _tasks_to_evaluate(task, total, config.eval_every_tasks, config.strategy)
            metrics = strategy.eval([stream.benchmark.test_stream[j] for j in evaluated])
            row: list[float | None] = [None] * total
            for j in evaluated:
                row[j] = float(metrics[experience_accuracy_key(j)])
            matrix.append(row)
            if config.task_agnostic:
                _add_task_agnostic_rows(agnostic, assembled.network, stream, evaluated, device)
            if not quiet:
                progress.write(_task_line(task, row[task], seconds[-1], assembled))
            if task in _under_trained(assembled) and not quiet:
                warning = (
                    f"warning: task {task} was still improving (validation loss) when the "
                    f"cap of {config.epochs} epochs ended its training; raise --epochs"
                )
                progress.write(warning)
                log.write(warning + "\n")
            checkpoint = {
                "config": config.to_dict(),
                "matrix": matrix,
                "task_agnostic": agnostic,
                "train_seconds": seconds,
                "model": assembled.model.state_dict(),
                "strategy": strategy_state(strategy),
                "rng": _rng_state(),
            }
            save_checkpoint(out / CHECKPOINT, checkpoint)
        final_metrics = {
            k: v for k, v in evaluator.get_last_metrics().items() if "Stream" in k.split("/")[0]
        }
    except FloatingPointError as error:
        kept = (
            f"the checkpoint after task {len(matrix) - 1} is kept (continue with --resume)"
            if matrix
            else "no task had finished, so there is no checkpoint"
        )
        raise FloatingPointError(f"{error}; {kept}") from None
    finally:
        logging.getLogger(strategies.__name__).removeHandler(notices)
        for logger in loggers:
            if hasattr(logger, "close"):
                logger.close()
        log.close()
    results = _results(config, stream, matrix, seconds, assembled, final_metrics, resumed=resume)
    if config.task_agnostic:
        results = dataclasses.replace(
            results,
            task_agnostic_matrix=agnostic["accuracy"],
            task_id_matrix=agnostic["task_id"],
        )
    # Saved before plotting, so that a plot error loses nothing.
    results.write(out)
    _write_matrix_csv(matrix, out / "accuracy_matrix.csv")
    if not quiet:
        results = dataclasses.replace(results, plots=[str(p) for p in draw_plots(results, out)])
    results.write(out)
    save_checkpoint(out / CHECKPOINT, {**checkpoint, "finished": True})
    return results


def _checkpoint_config(state: dict[str, Any], saved: Path) -> RunConfig:
    """The configuration a checkpoint was saved with, which must be the run folder's."""
    path = saved / CHECKPOINT
    options = state.get("config")
    try:
        config = RunConfig(**options)
    except TypeError as error:
        raise CheckpointError(
            f"{path}: its options do not fit this clearn version ({one_line(error)})"
        ) from None
    if (saved / CONFIG_FILE).exists():
        folder = RunConfig(**read_config(saved / CONFIG_FILE)).to_dict()
        changed = sorted(k for k, v in config.to_dict().items() if folder.get(k) != v)
        if changed:
            raise CheckpointError(
                f"{path} was saved with other options than {saved / CONFIG_FILE} "
                f"({', '.join(changed)} differ); one of the two was edited: restore it or "
                f"delete the folder"
            )
    return config


def _restore(state: dict[str, Any], assembled, total: int, path: Path) -> tuple[list, list, dict]:
    """Load a checkpoint into the assembled strategy; return its matrix, per-task seconds and
    task-agnostic rows. A checkpoint that does not fit raises CheckpointError naming it."""
    try:
        matrix, seconds, agnostic = state["matrix"], state["train_seconds"], state["task_agnostic"]
        if not isinstance(matrix, list) or not 0 < len(matrix) <= total:
            raise ValueError(f"its accuracy matrix has no row for 1 to {total} tasks")
        assembled.model.load_state_dict(state["model"])
        load_strategy_state(assembled.strategy, state["strategy"])
        _set_rng_state(state["rng"])
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as error:
        raise CheckpointError(
            f"{path} does not fit this run ({type(error).__name__}: {one_line(error)}); "
            f"delete it to start over"
        ) from None
    return matrix, seconds, agnostic


def check_reusable(config: RunConfig, out: str | Path) -> bool:
    """Whether `out` holds a run started with `config` (False: no run there yet); raise
    ResultsExistError when it holds one with other options."""
    out = Path(out)
    if not (out / CONFIG_FILE).exists():
        return False
    saved = RunConfig(**read_config(out / CONFIG_FILE)).to_dict()
    requested = config.to_dict()
    if saved != requested:
        changed = sorted(k for k, v in requested.items() if saved[k] != v)
        raise ResultsExistError(
            f"{out} holds a run with other options ({', '.join(changed)} differ); "
            f"delete it or choose another folder"
        )
    return True


def run_or_reuse(config: RunConfig, out: str | Path) -> RunResult:
    """Results of the run in `out`: read back when finished, resumed when started, else run."""
    return run_experiment(config, out, resume=check_reusable(config, out))


def _under_trained(assembled) -> list[int]:
    """Tasks whose epoch cap stopped them while their validation loss still fell."""
    if assembled.packing is not None:
        return [r.task for r in assembled.packing.reports if r.under_trained]
    if assembled.plateau_stop is not None:
        return sorted(assembled.plateau_stop.under_trained)
    return []


def _task_line(task: int, accuracy: float | None, seconds: float, assembled) -> str:
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
    return line


def _results(
    config: RunConfig, stream, matrix, seconds, assembled, avalanche_metrics, *, resumed: bool
) -> RunResult:
    capacity = model_capacity(assembled.model, tasks=len(matrix))
    reports = assembled.packing.reports if assembled.packing else []
    return RunResult(
        scenario=config.scenario,
        strategy=config.strategy,
        alpha=config.alpha if spec_for(config.strategy).packs else 1.0,
        tasks=stream.n_tasks,
        accuracy_matrix=matrix,
        acc=average_accuracy(matrix),
        bwt=backward_transfer(matrix),
        forgetting=forgetting(matrix),
        capacity=list(capacity.owned) if capacity else None,
        free_fraction=capacity.free if capacity else None,
        cap=model_cap(assembled.model, tasks=len(matrix)),
        train_seconds=sum(seconds),
        train_seconds_per_task=seconds,
        task_reports=[dataclasses.asdict(r) for r in reports],
        under_trained_tasks=_under_trained(assembled),
        avalanche_metrics=avalanche_metrics,
        resumed=resumed,
        weight_histogram=_weight_histogram(assembled),
        config=config.to_dict(),
    )
