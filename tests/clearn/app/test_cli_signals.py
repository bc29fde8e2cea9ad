"""Ctrl-C sent to a real `clearn` process at any moment of its start-up and run: one line
on stderr and exit code 1, never a traceback (the first moments load torch and Avalanche,
before the command line's own code runs)."""

import os
import signal
import subprocess
import sys
import time

import pytest

ENVIRONMENT = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
RUN = ["run", "--scenario", "permuted-digits", "--tasks", "3", "--epochs", "3", "--hidden", "8"]


@pytest.mark.parametrize("delay", [0.25, 0.8, 1.3, 2.0, 3.0])
def test_ctrl_c_after_any_delay_is_one_line_and_exit_1(delay, tmp_path):
    """Delays from the interpreter's first imports (torch) to the middle of training;
    whatever the moment, what the user sees is the same."""
    process = subprocess.Popen(
        [sys.executable, "-m", "clearn", *RUN, "--out", str(tmp_path / "run")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENVIRONMENT,
    )  # fmt: skip
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _, error = process.communicate(timeout=300)
    assert process.returncode == 1, error
    assert "Traceback" not in error, error
    lines = error.splitlines()
    assert "interrupted" in lines[-1] and sum("interrupted" in line for line in lines) == 1, error
