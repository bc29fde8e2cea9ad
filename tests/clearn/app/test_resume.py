"""Runs survive what users do to them: killed at any point, resumed bit for bit; one run per
folder; logs kept across a resume."""

import json
import os
import random
import subprocess
import sys
import textwrap

import pytest

from clearn.app.checkpoint import load_checkpoint
from clearn.app.config import RunConfig
from clearn.app.experiment import CHECKPOINT, run_experiment
from clearn.app.registry import STRATEGY_NAMES
from clearn.app.run_folder import ResultsExistError, claim_run_folder
from tests.clearn.app.conftest import count_optimizer_steps

TINY = dict(scenario="permuted-digits", tasks=2, epochs=2, hidden=[16], patience=0)

# Runs the command line, killing itself (SIGKILL: no cleanup, no flush) at a given training
# step, as a user's Ctrl-\\ or an out-of-memory killer would.
KILLED_RUN = textwrap.dedent(
    """
    import os, signal, sys
    import torch
    kill_at, steps = int(sys.argv[1]), [0]
    original = torch.optim.SGD.step
    def step(self, *args, **kwargs):
        steps[0] += 1
        if steps[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(self, *args, **kwargs)
    torch.optim.SGD.step = step
    from clearn.app.cli import main
    sys.exit(main(sys.argv[2:]))
    """
)


def cli_run(*args: str, kill_at: int = 0) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", KILLED_RUN, str(kill_at), "run", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TQDM_DISABLE": "1"},
    )


def options(strategy: str) -> list[str]:
    return [
        "--scenario", "permuted-digits", "--strategy", strategy, "--tasks", "2", "--epochs", "2",
        "--hidden", "16", "--patience", "0", "--seed", "0",
    ]


RESULT_KEYS = ("accuracy_matrix", "acc", "bwt", "forgetting", "capacity", "free_fraction")


def saved_tasks(out) -> int:
    """How many tasks the checkpoint in `out` holds (0 without one)."""
    return len(load_checkpoint(out / CHECKPOINT)["matrix"]) if (out / CHECKPOINT).exists() else 0


def stop_points(steps_per_task: list[int], seed: str) -> list[int]:
    """Where to stop each attempt, counted in optimizer steps from the attempt's start: the
    first in task 0, then attempt u (which restarts at task u - 1, the last one saved being
    u - 2) somewhere in task u. Every task is stopped once; all but the first resume from a
    checkpoint."""
    rng = random.Random(seed)  # seeded: the same points every time
    points = [rng.randint(1, steps_per_task[0])]
    for task in range(1, len(steps_per_task)):
        points.append(steps_per_task[task - 1] + rng.randint(1, steps_per_task[task]))
    return points


def test_killed_at_a_random_step_of_each_task_resumes_to_the_same_results_and_logs(
    tmp_path, run_counting_steps
):
    """SIGKILL (no cleanup, no flush) in a real process, once in each task."""
    expected, steps = run_counting_steps(RunConfig(**TINY, seed=0), tmp_path / "straight")
    out = tmp_path / "killed"
    first, *later = stop_points(steps, "epn")
    assert cli_run(*options("epn"), "--out", str(out), kill_at=first).returncode == -9
    text_before = (out / "avalanche_log.txt").read_text()
    assert "Start of training phase" in text_before
    for point in later:
        assert cli_run("--out", str(out), "--resume", kill_at=point).returncode == -9
    assert saved_tasks(out) == len(steps) - 1
    final = cli_run("--out", str(out), "--resume")
    assert final.returncode == 0, final.stderr[-2000:]
    assert "task/s" not in final.stderr and "batch/s" not in final.stderr  # TQDM_DISABLE=1
    got = json.loads((out / "results.json").read_text())
    for key in (*RESULT_KEYS, "avalanche_metrics"):
        assert got[key] == expected[key], key
    assert (out / "avalanche_log.txt").read_text().startswith(text_before)
    csv = (out / "avalanche_csv" / "eval_results.csv").read_text().splitlines()
    assert len(csv) > 1 + 2  # a header, then rows from before and after the kills


class Interrupted(BaseException):
    """Stops a run mid-step as a signal would (not an Exception: nothing may catch it)."""


def interrupt_at(monkeypatch, step: int) -> None:
    """Make the `step`-th optimizer step from now raise Interrupted."""
    steps = [0]

    def counted() -> None:
        steps[0] += 1
        if steps[0] == step:
            raise Interrupted

    count_optimizer_steps(monkeypatch, counted)


@pytest.mark.parametrize("strategy", STRATEGY_NAMES)
def test_every_strategy_stopped_at_a_random_step_of_each_task_resumes_to_the_same_results(
    strategy, tmp_path, monkeypatch, run_counting_steps, device: str = "cpu"
):
    """Each strategy's own state (importances, old models, masks) survives a checkpoint."""
    config = RunConfig(**TINY, strategy=strategy, seed=0, device=device)
    expected, steps = run_counting_steps(config, tmp_path / "straight")
    out = tmp_path / "stopped"
    for attempt, point in enumerate(stop_points(steps, strategy)):
        interrupt_at(monkeypatch, point)
        with pytest.raises(Interrupted):
            run_experiment(config, out, resume=attempt > 0)
        monkeypatch.undo()
    assert saved_tasks(out) == len(steps) - 1  # the last attempt resumed from a checkpoint
    got = run_experiment(config, out, resume=True).to_dict()
    for key in RESULT_KEYS:
        assert got[key] == expected[key], key
    if strategy != "joint":  # Avalanche's own stream metrics, over the whole resumed run
        assert got["avalanche_metrics"] == expected["avalanche_metrics"]


def test_one_run_per_folder(tmp_path):
    out = tmp_path / "run"
    with claim_run_folder(out, resume=False):
        with pytest.raises(ResultsExistError, match="in use by another clearn run"):
            with claim_run_folder(out, resume=False):
                pass
    # The lock went with its holder: the folder can be claimed again (and would be after a
    # killed run, whose lock the kernel releases).
    with claim_run_folder(out, resume=False):
        pass


def test_a_folder_of_other_files_is_never_written_into(tmp_path):
    out = tmp_path / "papers"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ResultsExistError, match="holds other files"):
        run_experiment(RunConfig(**TINY), out)
    assert sorted(p.name for p in out.iterdir() if p.name != ".lock") == ["notes.txt"]


def test_resume_needs_an_existing_run_and_creates_nothing(tmp_path):
    with pytest.raises(ResultsExistError, match="does not exist"):
        run_experiment(RunConfig(**TINY), tmp_path / "missing", resume=True)
    assert not (tmp_path / "missing").exists()


def test_a_run_refused_before_it_starts_leaves_no_folder(tmp_path, monkeypatch):
    monkeypatch.setattr("scenarios.streams._available_memory", lambda: 2**16)
    with pytest.raises(ValueError, match="GiB of memory"):
        run_experiment(RunConfig(**TINY), tmp_path / "run")
    assert not (tmp_path / "run").exists()
