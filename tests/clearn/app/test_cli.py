import dataclasses
import json
import os
import subprocess
import sys
from urllib.error import URLError

from clearn.app.cli import _config_options, build_parser
from clearn.app.config import RunConfig


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


def test_bad_alpha_is_a_one_line_error_with_exit_code_2(tmp_path, cli):
    code, _, error = cli("prune-curve", "--alphas", "0.5", "--out", str(tmp_path))
    assert code == 2
    assert "alpha must be a finite number ≥ 1" in error
    assert "Traceback" not in error and len(error.strip().splitlines()) == 1


def test_missing_data_is_a_one_line_error_saying_where_it_looked(tmp_path, cli):
    code, _, error = cli(
        "prune-curve", "--dataset", "mnist", "--data-root", str(tmp_path),
        "--out", str(tmp_path / "o"),
    )  # fmt: skip
    assert code == 2
    assert "Traceback" not in error and len(error.strip().splitlines()) == 1
    assert str(tmp_path / "MNIST" / "raw") in error


def test_a_download_that_fails_offline_is_one_line_and_exit_2(tmp_path, cli, monkeypatch):
    """torchvision's real downloader with no network: bad input (exit 2), not a failure."""

    def offline(*args, **kwargs):
        raise URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    out = tmp_path / "run"
    code, _, error = cli(
        "run", "--scenario", "permuted-mnist", "--download", "--data-root",
        str(tmp_path / "data"), "--out", str(out),
    )  # fmt: skip
    assert code == 2 and error.count("\n") == 1, error
    assert "downloading into" in error and "Name or service not known" in error
    assert not out.exists()


def test_run_and_sweep_take_every_run_option_with_its_help():
    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    for name in ("run", "sweep"):
        options = {action.dest: action for action in commands[name]._actions}
        for option in dataclasses.fields(RunConfig):
            assert option.metadata["help"] in options[option.name].help, (name, option.name)


def test_a_run_option_overrides_the_config_file_and_only_when_given(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('scenario = "split-digits"\nbatch-size = 10\nseed = 3\n')
    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    args = commands["run"].parse_args(["--config", str(config), "--seed", "5", "--no-download"])
    options = _config_options(args)
    assert options == {"scenario": "split-digits", "batch_size": 10, "seed": 5, "download": False}


def test_wandb_records_every_metric_capacity_included_offline(tmp_path):
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "clearn", "run", "--scenario", "split-digits", "--tasks", "2",
         "--epochs", "2", "--hidden", "16", "--wandb", "--out", str(out)],
        env={**os.environ, "WANDB_MODE": "offline", "HOME": str(tmp_path)},
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (run_file,) = out.glob("wandb/offline-run-*/run-*.wandb")
    assert b"Capacity/used" in run_file.read_bytes()
    assert b"Top1_Acc_Stream" in run_file.read_bytes()


def test_the_command_line_does_not_load_jax_and_avalanche_keeps_its_qp_solvers():
    probe = (
        "import sys, clearn.app.cli, avalanche.training, qpsolvers; "
        "print(sys.modules['jax'] is None, 'quadprog' in qpsolvers.available_solvers)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "True"]
