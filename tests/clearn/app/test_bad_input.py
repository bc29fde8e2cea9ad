"""Every bad input is one line on stderr and exit code 2 (1 for a run that stopped), with no
traceback, and nothing written that was not asked for."""

import errno

import pytest

from clearn.app import experiment
from clearn.app.checkpoint import load_checkpoint
from clearn.app.config import RunConfig, write_config

QUICK = ["--scenario", "permuted-digits", "--tasks", "2", "--epochs", "1", "--hidden", "16"]


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('tasks = "ten"', "tasks must be a whole number or unset, got 'ten'"),
        ("hidden = 100", "hidden must be a list of whole numbers"),
        ('lr = "0.1"', "lr must be a number"),
        ("epochs = 2.5", "epochs must be a whole number"),
        ('tensorboard = "false"', "tensorboard must be true or false"),
        ("lr = inf", "lr must be a finite number"),
        ("weight_decay = nan", "weight_decay must be a finite number"),
        ("alpha = 1e9", "alpha must be at most 8"),
        ("init_scale = inf", "init_scale must be a finite number"),
        ("tasks = 1000000", "at most 32766"),
        ('device = "foo"', "device must be auto, cpu or cuda"),
    ],
)
def test_a_bad_config_value_is_one_line_before_anything_is_written(tmp_path, cli, toml, message):
    config = tmp_path / "bad.toml"
    config.write_text(toml + "\n")
    code, _, error = cli("run", "--config", str(config), "--out", str(tmp_path / "run"))
    assert code == 2 and message in error and error.count("\n") == 1
    assert not (tmp_path / "run").exists()


def test_cuda_without_a_gpu_is_named(tmp_path, cli, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    code, _, error = cli("run", "--device", "cuda", "--out", str(tmp_path / "run"))
    assert code == 2 and "no CUDA GPU" in error


def test_a_bad_sweep_value_fails_before_any_run(tmp_path, cli):
    code, _, error = cli("sweep", *QUICK, "--vary", "lr=abc", "--out", str(tmp_path / "sweep"))
    assert code == 2 and "lr must be a number or unset, got 'abc'" in error
    assert not (tmp_path / "sweep").exists()


@pytest.mark.parametrize(
    ("content", "message"), [("{}", "missing"), ("{not json", "cannot read")]
)
def test_damaged_results_are_one_line_naming_the_file(tmp_path, cli, content, message):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "results.json").write_text(content)
    for command in (["plot", str(folder)], ["compare", str(folder), "--out", str(tmp_path)]):
        code, _, error = cli(*command)
        assert code == 2 and message in error and "results.json" in error


def test_a_full_disk_keeps_the_last_good_checkpoint(tmp_path, cli, monkeypatch):
    saved = []
    original = experiment.save_checkpoint

    def fill_up(path, content):
        if saved:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        saved.append(path)
        return original(path, content)

    monkeypatch.setattr(experiment, "save_checkpoint", fill_up)
    code, _, error = cli("run", *QUICK, "--out", str(tmp_path / "run"))
    last_line = error.strip().splitlines()[-1]  # after the progress bars
    assert code == 2 and last_line.startswith("clearn run: error: No space left on device")
    assert "Traceback" not in error
    assert len(load_checkpoint(saved[0])["matrix"]) == 1  # task 0's checkpoint, whole


def test_ctrl_c_is_one_line_and_keeps_the_checkpoint(tmp_path, cli, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(experiment, "run_experiment", interrupt)
    monkeypatch.setattr("clearn.app.cli.run_experiment", interrupt)
    code, _, error = cli("run", *QUICK, "--out", str(tmp_path / "run"))
    assert code == 1 and "interrupted" in error and "--resume" in error


def test_a_finished_checkpoint_without_results_is_one_line(tmp_path, cli):
    out = tmp_path / "run"
    assert cli("run", *QUICK, "--out", str(out))[0] == 0
    (out / "results.json").unlink()
    code, _, error = cli("run", "--out", str(out), "--resume")
    assert code == 2 and "results.json" in error


def test_divergence_in_the_first_task_says_no_checkpoint_exists(tmp_path, cli, monkeypatch):
    config = RunConfig(scenario="permuted-digits", tasks=2, epochs=1, hidden=[16], lr=1e30)
    write_config(config, tmp_path / "diverges.toml")
    code, _, error = cli("run", "--config", str(tmp_path / "diverges.toml"), "--out",
                         str(tmp_path / "run"))
    assert code == 1 and "no task had finished, so there is no checkpoint" in error
