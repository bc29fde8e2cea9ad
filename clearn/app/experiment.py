"""`clearn run`: train a stream with Avalanche, checkpoint every task, write results and plots.

It assembles `scenarios` (streams), `strategies` (Avalanche strategies and plugins) and the
mechanism in `clearn`'s core; the run under way is a `clearn.app.run.Run`.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from clearn.app.checkpoint import CheckpointError, load_checkpoint, one_line
from clearn.app.code_version import code_version
from clearn.app.config import RunConfig, read_config, write_config
from clearn.app.factory import run_stream
from clearn.app.io import write_text_atomic
from clearn.app.plots import (
    plot_accuracy_matrix,
    plot_capacity,
    plot_task_accuracy,
    plot_weight_histogram,
)
from clearn.app.registry import spec_for
from clearn.app.results import RESULTS_FILE, RunResult
from clearn.app.run import CHECKPOINT, Run, under_trained
from clearn.app.run_folder import CONFIG_FILE, ResultsExistError, claim_run_folder
from clearn.metrics import average_accuracy, backward_transfer, forgetting
from clearn.powerprop import effective_weights
from clearn.weight_study import magnitude_histogram
from strategies.capacity_metrics import model_cap, model_capacity
from strategies.distributed import process_rank

__all__ = ["CHECKPOINT", "ResultsExistError", "draw_plots", "run_experiment", "run_or_reuse"]


def _weight_histogram(assembled) -> dict[str, Any]:
    if assembled.network is not None:
        network = assembled.network
        with network.viewing(None):
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


def _saved_run(
    config: RunConfig, saved: Path
) -> tuple[RunResult | None, RunConfig, dict[str, Any] | None]:
    """What resuming the run in `saved` starts from: its results when it is finished, else
    its configuration and last checkpoint (None when killed before its first task ended)."""
    if (saved / RESULTS_FILE).exists() and not (saved / CHECKPOINT).exists():
        return dataclasses.replace(RunResult.read(saved), already_finished=True), config, None
    if not (saved / CHECKPOINT).exists():  # nothing to keep: start it again
        return None, RunConfig(**read_config(saved / CONFIG_FILE)), None
    state = load_checkpoint(saved / CHECKPOINT)
    config = _checkpoint_config(state, saved)
    _check_same_code(state.get("code_version"), saved / CHECKPOINT, "resume it")
    if state.get("finished"):
        return dataclasses.replace(RunResult.read(saved), already_finished=True), config, state
    return None, config, state


def _seed(config: RunConfig) -> torch.device:
    """Seed every generator from `config.seed`; return the device the run trains on."""
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    random.seed(config.seed)
    if config.device != "auto":
        return torch.device(config.device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _run(config: RunConfig, out: Path, *, resume: bool, saved: Path) -> RunResult:
    """The run, written into `out`; with `resume`, continued from the run in `saved`."""
    state = None
    if resume:
        finished, config, state = _saved_run(config, saved)
        if finished is not None:
            return finished
    config.validate()
    device = _seed(config)
    stream = run_stream(config)
    write_config(config, out / CONFIG_FILE)
    quiet = process_rank()[0] != 0
    with Run(config, stream, out, device=device, quiet=quiet) as run:
        run.assemble(state, path=saved / CHECKPOINT)
        run.train()
    results = _results(run, resumed=resume)
    # Saved before plotting, so that a plot error loses nothing.
    results.write(out)
    _write_matrix_csv(run.progress.matrix, out / "accuracy_matrix.csv")
    if not quiet:
        results = dataclasses.replace(results, plots=[str(p) for p in draw_plots(results, out)])
    results.write(out)
    run.mark_finished()
    return results


def _check_same_code(made_by: object, path: Path, reuse: str) -> None:
    """CheckpointError unless `path` was written by this code (`made_by`, its recorded
    code version): a run continued or reused by other code would mix two codes' figures."""
    if made_by != code_version():
        maker = f"code version {made_by}" if made_by else "a clearn that did not record it"
        raise CheckpointError(
            f"{path} was written by other code ({maker}; this clearn is {code_version()}): "
            f"{reuse} with the clearn that made it, or delete the folder"
        )


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
    if (out / RESULTS_FILE).exists():
        _check_same_code(RunResult.read(out).code_version, out / RESULTS_FILE, "reuse it")
    return True


def run_or_reuse(config: RunConfig, out: str | Path) -> RunResult:
    """Results of the run in `out`: read back when finished, resumed when started, else run."""
    return run_experiment(config, out, resume=check_reusable(config, out))


def _results(run: Run, *, resumed: bool) -> RunResult:
    config, assembled, progress = run.config, run.assembled, run.progress
    matrix = progress.matrix
    capacity = model_capacity(assembled.model, tasks=len(matrix))
    reports = assembled.packing.reports if assembled.packing else []
    agnostic = progress.agnostic if config.task_agnostic else None
    return RunResult(
        scenario=config.scenario,
        strategy=config.strategy,
        alpha=config.alpha if spec_for(config.strategy).packs else 1.0,
        tasks=run.stream.n_tasks,
        accuracy_matrix=matrix,
        acc=average_accuracy(matrix),
        bwt=backward_transfer(matrix),
        forgetting=forgetting(matrix),
        capacity=list(capacity.owned) if capacity else None,
        free_fraction=capacity.free if capacity else None,
        cap=model_cap(assembled.model, tasks=len(matrix)),
        train_seconds=sum(progress.seconds),
        train_seconds_per_task=progress.seconds,
        task_reports=[dataclasses.asdict(r) for r in reports],
        under_trained_tasks=under_trained(assembled),
        avalanche_metrics=run.avalanche_metrics,
        resumed=resumed,
        weight_histogram=_weight_histogram(assembled),
        task_agnostic_matrix=agnostic["accuracy"] if agnostic else None,
        task_id_matrix=agnostic["task_id"] if agnostic else None,
        config=config.to_dict(),
        code_version=code_version(),
    )
