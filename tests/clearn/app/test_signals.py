"""Ctrl-C and a closed pipe in a real `clearn` process: one line or nothing, never a
traceback (these need a process of their own: signals and pipes are the operating system's)."""

import os
import subprocess
import sys

ENVIRONMENT = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

INTERRUPT_WHILE_STARTING = """
import builtins, os, signal, sys
import clearn  # what runs before clearn.app.cli can set anything
real_import = builtins.__import__

def interrupting_import(name, *args, **kwargs):
    if name.startswith("avalanche"):  # one of the command line's slow imports
        builtins.__import__ = real_import
        os.kill(os.getpid(), signal.SIGINT)
    return real_import(name, *args, **kwargs)

builtins.__import__ = interrupting_import
from clearn.app.cli import main  # as the `clearn` script does
sys.exit(main(["run", "--help"]))
"""


def test_ctrl_c_while_starting_is_one_line_and_exit_1():
    done = subprocess.run(
        [sys.executable, "-c", INTERRUPT_WHILE_STARTING],
        capture_output=True, text=True, env=ENVIRONMENT, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("\n") == 1 and "interrupted" in done.stderr, done.stderr


def test_output_into_a_closed_pipe_ends_quietly(tmp_path, cli):
    out = tmp_path / "run"
    quick = ["--scenario", "permuted-digits", "--tasks", "2", "--epochs", "1", "--hidden", "16"]
    assert cli("run", *quick, "--out", str(out))[0] == 0
    process = subprocess.Popen(
        [sys.executable, "-m", "clearn", "plot", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENVIRONMENT,
    )  # fmt: skip
    process.stdout.close()  # `| head -0`: the reader is gone before anything is printed
    error = process.stderr.read().decode()
    assert process.wait(timeout=300) == 1
    assert error == ""
