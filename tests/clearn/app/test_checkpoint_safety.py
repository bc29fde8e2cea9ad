"""A run folder's checkpoint is data: a crafted one cannot run code, a damaged one is refused
in one line (exit 2), and what clearn writes is tensors and plain data only."""

import pickle

import pytest
import torch

from clearn.app import run as run_module
from clearn.app.checkpoint import (
    CHECKPOINT_FORMAT,
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)
from clearn.app.config import RunConfig
from clearn.app.experiment import CHECKPOINT, run_experiment
from strategies.training_state import TrainingStateError, from_plain, to_plain

TINY = dict(scenario="permuted-digits", tasks=2, epochs=2, hidden=[8], patience=0, seed=0)


class Stop(BaseException):
    """Ends a run right after its first checkpoint, as a kill would."""


@pytest.fixture
def stopped_run(tmp_path, monkeypatch):
    """A run folder holding the checkpoint of task 0 of `strategy` (and no results)."""

    def make(strategy: str = "naive"):
        out = tmp_path / strategy
        original = run_module.save_checkpoint

        def save_then_stop(path, state):
            original(path, state)
            raise Stop

        with monkeypatch.context() as patched:
            patched.setattr(run_module, "save_checkpoint", save_then_stop)
            with pytest.raises(Stop):
                run_experiment(RunConfig(**TINY, strategy=strategy), out)
        return out

    return make


class Payload:
    """Pickles to a call of `open(marker, "w")`: loading it creates the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def one_line_error(code: int, err: str) -> None:
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err


@pytest.mark.parametrize("container", ["torch", "pickle"])
def test_a_crafted_checkpoint_is_refused_without_running_its_payload(
    container, stopped_run, tmp_path, cli
):
    out = stopped_run()
    marker = tmp_path / "owned"
    content = {"format": CHECKPOINT_FORMAT, "config": Payload(marker)}
    if container == "torch":
        torch.save(content, out / CHECKPOINT)
    else:
        (out / CHECKPOINT).write_bytes(pickle.dumps(content))
    code, _, err = cli("run", "--out", str(out), "--resume")
    one_line_error(code, err)
    assert "refused" in err and str(out / CHECKPOINT) in err
    assert not marker.exists()


@pytest.mark.parametrize("strategy", ["ewc", "si", "lwf", "avalanche-packnet", "epn"])
def test_every_strategy_checkpoint_is_plain_data(strategy, stopped_run):
    out = stopped_run(strategy)
    # weights_only=True: torch's own allow-list of tensors and containers; nothing else passes.
    content = torch.load(out / CHECKPOINT, weights_only=True)
    assert content["format"] == CHECKPOINT_FORMAT
    assert isinstance(content["rng"]["numpy"]["key"], torch.Tensor)


def test_a_plugin_holding_other_objects_is_refused_when_saved_not_pickled():
    class Opaque:
        pass

    with pytest.raises(TrainingStateError, match="Opaque"):
        to_plain({"plugin": [Opaque()]}, "plugin 3")


def test_a_saved_state_rebuilds_only_allow_listed_classes():
    tagged = {"__kind__": "object", "class": "os.system", "fields": {}}
    with pytest.raises(TrainingStateError, match="does not restore"):
        from_plain({"metric": tagged}, "plugin 0")


def damage_shapes(content):
    name = next(iter(content["model"]))
    content["model"][name] = torch.zeros(3, 3, 3)


def damage_missing(content):
    del content["strategy"]["plugins"]


def damage_config(content):
    content["config"]["no_such_option"] = 1


def damage_options(content):
    content["config"]["lr"] = 0.5  # config.toml says otherwise


def damage_format(content):
    content["format"] = "clearn-checkpoint-0"


def damage_rows(content):
    content["matrix"] = "not a table"


@pytest.mark.parametrize(
    "damage",
    [damage_shapes, damage_missing, damage_config, damage_options, damage_format, damage_rows],
)
def test_a_damaged_or_edited_checkpoint_is_one_line_and_exit_2(damage, stopped_run, cli):
    out = stopped_run()
    content = torch.load(out / CHECKPOINT, weights_only=True)
    damage(content)
    torch.save(content, out / CHECKPOINT)
    config_before = (out / "config.toml").read_text()
    code, _, err = cli("run", "--out", str(out), "--resume")
    one_line_error(code, err)
    assert str(out / CHECKPOINT) in err
    assert (out / "config.toml").read_text() == config_before


def test_a_truncated_checkpoint_is_a_checkpoint_error(stopped_run):
    out = stopped_run()
    data = (out / CHECKPOINT).read_bytes()
    (out / CHECKPOINT).write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(out / CHECKPOINT)


def test_accuracy_rows_come_back_as_they_were_saved(tmp_path):
    rows = [[0.5, None, None], [0.25, 0.75, None], [None, None, 1.0]]
    agnostic = {"accuracy": [[0.125, None, None]], "task_id": []}
    save_checkpoint(tmp_path / "c.pt", {"matrix": rows, "task_agnostic": agnostic})
    loaded = load_checkpoint(tmp_path / "c.pt")
    assert loaded["matrix"] == rows and loaded["task_agnostic"] == agnostic
    on_disk = torch.load(tmp_path / "c.pt", weights_only=True)
    assert not isinstance(on_disk["matrix"], list)  # not T×T Python objects to pickle
