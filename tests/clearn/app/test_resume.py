"""Runs survive what users do to them: killed at any point, resumed bit for bit; one run per
folder; logs kept across a resume."""

import json
import os
import random
import subprocess
import sys
import textwrap

import pytest

from clearn.app.config import RunConfig
from clearn.app.experiment import run_experiment
from clearn.app.run_folder import ResultsExistError, claim_run_folder

STRATEGIES = ("epn", "packnet", "avalanche-packnet", "naive", "ewc", "si", "lwf", "joint")
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


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_killed_at_a_random_step_of_each_task_and_resumed_gives_the_same_results(
    strategy, tmp_path
):
    straight = cli_run(*options(strategy), "--out", str(tmp_path / "straight"))
    assert straight.returncode == 0, straight.stderr[-2000:]
    steps_per_task = 2 * 22  # 2 epochs of 22 minibatches (permuted digits, batch 60)
    rng = random.Random(strategy)  # seeded: the same kill points every time
    out = tmp_path / "killed"
    first = cli_run(*options(strategy), "--out", str(out), kill_at=rng.randint(1, steps_per_task))
    assert first.returncode == -9
    units = 1 if strategy == "joint" else 2  # joint trains the whole stream as one unit
    for _ in range(units):  # resumed and killed again somewhere in the next unit of training
        again = cli_run("--out", str(out), "--resume", kill_at=rng.randint(1, steps_per_task))
        assert again.returncode in (0, -9), again.stderr[-2000:]
    final = cli_run("--out", str(out), "--resume")
    assert final.returncode == 0, final.stderr[-2000:]
    expected = json.loads((tmp_path / "straight" / "results.json").read_text())
    got = json.loads((out / "results.json").read_text())
    for key in ("accuracy_matrix", "acc", "bwt", "forgetting", "capacity", "free_fraction"):
        assert got[key] == expected[key], key
    if strategy != "joint":  # Avalanche's own stream metrics, over the whole resumed run
        assert got["avalanche_metrics"] == expected["avalanche_metrics"]


def test_a_resumed_run_appends_to_its_logs(tmp_path):
    out = tmp_path / "run"
    killed = cli_run(*options("epn"), "--out", str(out), kill_at=50)  # in task 1
    assert killed.returncode == -9
    text_before = (out / "avalanche_log.txt").read_text()
    csv_before = (out / "avalanche_csv" / "eval_results.csv").read_text().splitlines()
    assert len(csv_before) > 1 and "Start of training phase" in text_before
    assert cli_run("--out", str(out), "--resume").returncode == 0
    assert (out / "avalanche_log.txt").read_text().startswith(text_before)
    csv_after = (out / "avalanche_csv" / "eval_results.csv").read_text().splitlines()
    assert csv_after[: len(csv_before)] == csv_before and len(csv_after) > len(csv_before)


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
