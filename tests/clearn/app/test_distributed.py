"""`clearn run` under torchrun (gloo, two processes on this machine)."""

import os
import subprocess
import sys

OPTIONS = [
    "--scenario", "permuted-digits", "--tasks", "2", "--epochs", "2", "--hidden", "32",
    "--batch-size", "60", "--seed", "0",
]
ENVIRONMENT = {**os.environ, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}


def torchrun(*arguments: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
               "--master-port", "0", *arguments]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=600, env=ENVIRONMENT
    )


def test_strategies_without_data_parallel_training_are_refused_under_torchrun(tmp_path):
    refused = torchrun("-m", "clearn", "run", *OPTIONS, "--strategy", "ewc",
                       "--out", str(tmp_path / "ewc"))
    assert refused.returncode != 0
    assert "run --strategy ewc as one process" in refused.stderr
    assert not (tmp_path / "ewc").exists()
