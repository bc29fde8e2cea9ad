import json
import subprocess
import sys


def run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "clearn", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def test_prune_curve_runs_offline_on_digits(tmp_path):
    out = tmp_path / "curve"
    done = run_cli(
        "prune-curve",
        "--dataset",
        "digits",
        "--alphas",
        "1",
        "2",
        "--epochs",
        "2",
        "--points",
        "4",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    assert str(out / "prune_curve.png") in done.stdout
    assert set(json.loads((out / "prune_curve.json").read_text())["alphas"]) == {"1", "2"}


def test_bad_alpha_is_a_one_line_error_with_exit_code_2(tmp_path):
    done = run_cli("prune-curve", "--alphas", "0.5", "--out", str(tmp_path))
    assert done.returncode == 2
    assert "alpha must be a finite number ≥ 1" in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_data_is_a_one_line_error_saying_where_it_looked(tmp_path):
    done = run_cli(
        "prune-curve",
        "--dataset",
        "mnist",
        "--data-root",
        str(tmp_path),
        "--out",
        str(tmp_path / "o"),
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert str(tmp_path / "MNIST" / "raw") in done.stderr
