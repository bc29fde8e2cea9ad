"""Every bad input is one line on stderr and exit code 2 (1 for a run that stopped), with no
traceback, and nothing written that was not asked for."""

import errno
import time
from urllib.error import URLError

import pytest

from clearn.app import experiment, run
from clearn.app.checkpoint import load_checkpoint
from clearn.app.config import INPUT_SHAPES, RunConfig, write_config
from scenarios.datasets import load_dataset

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
        ('task_agnostic = true\ntask_inference = "nearest"',
         "unknown task_inference 'nearest'; choose one of example, batch, one-shot, inputs"),
        ('task_inference = "inputs"', "task_inference chooses how task_agnostic evaluation"),
        ("task_agnostic_examples = 100", "give task_agnostic too"),
        ('train_layers = "last"', "train_layers must be one of all, first"),
        ('strategy = "naive"\ntrain_layers = "first"', "train_layers chooses what a packed"),
        ("task_agnostic = true\ntask_agnostic_examples = 0", "a positive number, got 0"),
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
    original = run.save_checkpoint

    def fill_up(path, content):
        if saved:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        saved.append(path)
        return original(path, content)

    monkeypatch.setattr(run, "save_checkpoint", fill_up)
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


def _one_line_naming(code: int, error: str, *names: str) -> bool:
    """Exit code 2 and a single line on stderr that names each of `names`."""
    return code == 2 and error.count("\n") == 1 and all(name in error for name in names)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--hidden", "1000000", "1000000"], "hidden"),
        (["--hidden", "16", "3000000000"], "hidden"),
        (["--seed", str(2**64)], "seed"),
        (["--seed", "-1"], "seed"),
        (["--model", "alexnet"], "model alexnet"),
        (["--model", "alexnet", "--scenario", "split-digits"], "model alexnet"),
        (["--scenario", "split-digits", "--train-per-class", "1"], "train_per_class"),
        (["--scenario", "permuted-digits", "--train-per-class", "1"], "train_per_class"),
    ],
)
def test_a_run_that_cannot_start_is_refused_before_its_folder_exists(
    tmp_path, cli, options, named
):
    code, _, error = cli("run", *QUICK, *options, "--out", str(tmp_path / "run"))
    assert _one_line_naming(code, error, named), error
    assert not (tmp_path / "run").exists()


def test_the_smallest_train_per_class_of_a_split_stream_runs(tmp_path, cli):
    split = ["--scenario", "split-digits", "--train-per-class", "2", "--strategy", "naive"]
    code, _, error = cli("run", *QUICK, *split, "--out", str(tmp_path / "run"))
    assert code == 0, error


def test_the_shapes_checked_before_loading_are_the_data_sets_shapes():
    assert load_dataset("digits").input_shape == INPUT_SHAPES["digits"]


@pytest.mark.parametrize(
    "toml",
    [
        'scenario = "{huge}"',
        'strategy = "{huge}"',
        'device = "{huge}"',
        'model = "{huge}"',
        'tasks = "{huge}"',
        '"{huge}" = 1',
        "hidden = [{huge_list}]",
    ],
)
def test_a_huge_value_in_a_config_file_is_not_echoed_whole(tmp_path, cli, toml):
    config = tmp_path / "huge.toml"
    huge, huge_list = "x" * 1_000_000, ", ".join(["-1"] * 200_000)
    config.write_text(toml.format(huge=huge, huge_list=huge_list) + "\n")
    code, _, error = cli("run", "--config", str(config), "--out", str(tmp_path / "run"))
    assert code == 2 and error.count("\n") == 1 and len(error) < 1000, len(error)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("lines", "spellings"),
    [
        (["batch_size = 32", "batch-size = 64"], ("batch_size", "batch-size")),
        (["per-task-norm = true", "per_task_norm = false"], ("per-task-norm", "per_task_norm")),
    ],
)
def test_one_option_spelled_twice_in_a_config_file_is_refused(tmp_path, cli, lines, spellings):
    config = tmp_path / "twice.toml"
    quick = ['scenario = "permuted-digits"', "tasks = 2", "epochs = 1", "hidden = [16]"]
    config.write_text("\n".join([*quick, *lines]) + "\n")
    code, _, error = cli("run", "--config", str(config), "--out", str(tmp_path / "run"))
    assert _one_line_naming(code, error, *spellings), error
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--vary", "batch_size=8,16", "--vary", "batch-size=32"], "batch_size"),
        (["--lrs", "0.1", "0.2", "--vary", "lr=0.3"], "lr"),
        (["--seeds", "0", "1", "--vary", "seed=2"], "seed"),
    ],
)
def test_a_sweep_option_varied_twice_is_refused(tmp_path, cli, options, named):
    code, _, error = cli("sweep", *QUICK, *options, "--out", str(tmp_path / "sweep"))
    assert _one_line_naming(code, error, named), error
    assert not (tmp_path / "sweep").exists()


PRUNE_QUICK = ["prune-curve", "--epochs", "1", "--points", "2", "--alphas", "1"]


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--device", "cuda"], "cuda"),
        (["--device", "cuda:7"], "cuda"),
        (["--device", "toaster"], "--device"),
        (["--alphas", "1e6"], "alpha must be at most 8"),
        (["--alphas", "2", "9"], "alpha must be at most 8"),
        (["--seed", str(2**40)], "seed"),
    ],
)
def test_a_bad_prune_curve_option_is_one_line_before_anything_is_written(
    tmp_path, cli, monkeypatch, options, named
):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    code, _, error = cli(*PRUNE_QUICK, *options, "--out", str(tmp_path / "curve"))
    assert _one_line_naming(code, error, named), error
    assert not (tmp_path / "curve").exists()


def test_a_failed_download_is_one_line_naming_the_file(tmp_path, cli, monkeypatch):
    def offline(*args, **kwargs):
        raise URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr("torchvision.datasets.mnist.download_and_extract_archive", offline)
    out = tmp_path / "run"
    code, _, error = cli("run", "--scenario", "split-mnist", "--download", "--data-root",
                         str(tmp_path / "data"), "--out", str(out))
    assert code != 0 and error.count("\n") == 1, error
    assert "train-images-idx3-ubyte" in error and "Traceback" not in error
    assert not out.exists()


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize(
    ("target", "command"),
    [
        ("clearn.app.cli.build_parser", ["run", *QUICK]),  # while parsing the options
        ("clearn.app.cli.read_config", ["run", "--config", "x.toml"]),  # reading the file
        ("clearn.app.cli.run_prune_curve", PRUNE_QUICK),
        ("clearn.app.cli.draw_plots", ["plot", "folder"]),
    ],
)
def test_ctrl_c_anywhere_is_one_line_and_exit_1(tmp_path, cli, monkeypatch, target, command):
    monkeypatch.setattr(target, _interrupt)
    monkeypatch.setattr("clearn.app.cli.RunResult.read", lambda folder: None)
    monkeypatch.chdir(tmp_path)
    try:
        code, _, error = cli(*command)
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped main (a traceback for the user)")
    assert code == 1 and error.count("\n") == 1 and "interrupted" in error, error
    if command[0] != "run":  # only a run has a checkpoint to continue from
        assert "--resume" not in error


class _ClosedPipe:
    """A stdout whose reader has gone (`clearn ... | head -0`)."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


def test_results_printed_into_a_closed_pipe_end_quietly(tmp_path, cli, monkeypatch):
    out = tmp_path / "run"
    assert cli("run", *QUICK, "--out", str(out))[0] == 0
    monkeypatch.setattr("sys.stdout", _ClosedPipe())
    code, _, error = cli("plot", str(out))
    assert code == 1 and error == ""


def test_an_unreachable_ray_address_fails_in_seconds(tmp_path, cli, monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    began = time.monotonic()
    code, _, error = cli("sweep", *QUICK, "--alphas", "1", "2", "--executor", "ray",
                         "--ray-address", "127.0.0.1:1", "--out", str(tmp_path / "sweep"))
    assert time.monotonic() - began < 30
    assert _one_line_naming(code, error, "--ray-address", "127.0.0.1:1"), error
    assert not (tmp_path / "sweep").exists()
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")
    code, _, error = cli("sweep", *QUICK, "--alphas", "1", "2", "--executor", "ray",
                         "--out", str(tmp_path / "sweep"))
    assert _one_line_naming(code, error, "RAY_ADDRESS"), error
