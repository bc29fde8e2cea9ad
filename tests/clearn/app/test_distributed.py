"""`clearn run` under torchrun: gloo, two processes on this machine.

torchrun is started with `--standalone` (a free port of its own choosing); `--master-port 0`
makes the processes wait for each other forever.
"""

import json
import os
import random
import subprocess
import sys
import textwrap

import pytest

from clearn.app.checkpoint import load_checkpoint
from clearn.app.config import RunConfig
from clearn.app.experiment import CHECKPOINT

CONFIG = dict(
    scenario="permuted-digits", tasks=2, epochs=2, hidden=[32], batch_size=60, patience=0, seed=0
)
OPTIONS = [
    "--scenario", "permuted-digits", "--tasks", "2", "--epochs", "2", "--hidden", "32",
    "--batch-size", "60", "--patience", "0", "--seed", "0",
]
ENVIRONMENT = {**os.environ, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}
TOLERANCE = 0.02
"""Two processes sum each batch's gradient in two halves, so their floats may round apart
from one process's: accuracies may differ by this much (measured: not at all)."""

# The command line, killing rank 1 (SIGKILL: no cleanup) at a given training step.
KILL_RANK_1 = textwrap.dedent(
    """
    import os, signal, sys
    import torch
    kill_at, steps = int(sys.argv[1]), [0]
    original = torch.optim.SGD.step
    def step(self, *args, **kwargs):
        steps[0] += 1
        if steps[0] == kill_at and os.environ["RANK"] == "1":
            os.kill(os.getpid(), signal.SIGKILL)
        return original(self, *args, **kwargs)
    torch.optim.SGD.step = step
    from clearn.app.cli import main
    sys.exit(main(sys.argv[2:]))
    """
)

# Each rank receives rank 0's tensors, then checks tensors that agree, then tensors that
# rank 1 changed.
RANK_CHECK = textwrap.dedent(
    """
    import os
    import torch
    import torch.distributed as dist
    from strategies.distributed import (
        RanksDivergedError, broadcast_from_rank_0, check_same_on_every_rank
    )
    dist.init_process_group("gloo")
    own = [torch.full((3,), float(dist.get_rank())), torch.tensor([dist.get_rank()])]
    shared = broadcast_from_rank_0(own, device=torch.device("cpu"))
    print(f"rank {os.environ['RANK']} received {[t.tolist() for t in shared]}")
    same = {"mask": torch.ones(4, dtype=torch.bool), "weight": torch.arange(3.0)}
    check_same_on_every_rank(same, what="masks")
    changed = dict(same, weight=torch.tensor([0.0, 1.0, 2.0 + dist.get_rank()]))
    try:
        check_same_on_every_rank(changed, what="weights")
    except RanksDivergedError as error:
        print(f"rank {os.environ['RANK']} raised: {error}")
    dist.destroy_process_group()
    """
)


def torchrun(*arguments: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", "2", *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=ENVIRONMENT)


def test_two_processes_match_one_and_resume_exactly_after_rank_1_is_killed(
    tmp_path, run_counting_steps
):
    one, steps = run_counting_steps(RunConfig(**CONFIG), tmp_path / "one")
    two = torchrun("-m", "clearn", "run", *OPTIONS, "--out", str(tmp_path / "two"))
    assert two.returncode == 0, two.stderr[-3000:]
    got = json.loads((tmp_path / "two" / "results.json").read_text())
    assert got["forgetting"] == 0.0 and got["bwt"] == 0.0
    for row_two, row_one in zip(got["accuracy_matrix"], one["accuracy_matrix"], strict=True):
        for a, b in zip(row_two, row_one, strict=True):
            assert (a is None and b is None) or abs(a - b) <= TOLERANCE
    assert got["capacity"] == pytest.approx(one["capacity"], abs=TOLERANCE)

    script = tmp_path / "kill_rank_1.py"
    script.write_text(KILL_RANK_1)
    killed = tmp_path / "killed"
    in_task_1 = steps[0] + random.Random(0).randint(1, steps[1])
    attempt = torchrun(str(script), str(in_task_1), "run", *OPTIONS, "--out", str(killed))
    assert attempt.returncode != 0 and "Signal 9 (SIGKILL)" in attempt.stderr
    assert len(load_checkpoint(killed / CHECKPOINT)["matrix"]) == 1
    resumed = torchrun("-m", "clearn", "run", "--out", str(killed), "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    again = json.loads((killed / "results.json").read_text())
    for key in ("accuracy_matrix", "acc", "forgetting", "capacity", "avalanche_metrics"):
        assert again[key] == got[key], key


def test_rank_0s_tensors_reach_every_rank_and_the_check_raises_on_every_rank(tmp_path):
    script = tmp_path / "rank_check.py"
    script.write_text(RANK_CHECK)
    checked = torchrun(str(script))
    assert checked.returncode == 0, checked.stderr[-3000:]
    assert "rank 1 raised: weights differ between the processes: rank 1 differs from rank 0 " \
        "in weight" in checked.stdout
    assert "rank 0 raised: weights differ between the processes: rank 1 differs from rank 0" \
        in checked.stdout
    assert "masks" not in checked.stdout
    for rank in (0, 1):
        assert f"rank {rank} received [[0.0, 0.0, 0.0], [0]]" in checked.stdout


def test_strategies_without_data_parallel_training_are_refused_under_torchrun(
    tmp_path, monkeypatch, cli
):
    monkeypatch.setenv("WORLD_SIZE", "2")  # what torchrun sets for each of its processes
    monkeypatch.setenv("RANK", "0")
    code, _, error = cli("run", *OPTIONS, "--strategy", "ewc", "--out", str(tmp_path / "ewc"))
    assert code == 2
    assert "run --strategy ewc as one process" in error and "Traceback" not in error
    assert not (tmp_path / "ewc").exists()
