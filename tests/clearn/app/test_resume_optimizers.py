"""Resume is exact whatever the optimizer carries between steps: SGD's momentum, Adam's and
AdamW's moments survive a checkpoint and are not reset by the strategy's first set-up."""

import random

import pytest
import torch

from clearn import packing
from clearn.app import io as io_module
from clearn.app import run as run_module
from clearn.app.config import RunConfig
from clearn.app.experiment import run_experiment
from clearn.app.registry import STRATEGY_NAMES

RESULT_KEYS = ("accuracy_matrix", "acc", "bwt", "forgetting", "capacity", "free_fraction")
TINY = dict(scenario="permuted-digits", tasks=2, epochs=2, hidden=[8], patience=0, seed=0)
OPTIMIZERS = {
    "momentum": (dict(optimizer="sgd", lr=0.05, momentum=0.9), torch.optim.SGD),
    "adam": (dict(optimizer="adam", lr=0.01), torch.optim.Adam),
    "adamw": (dict(optimizer="adamw", lr=0.01, weight_decay=0.01), torch.optim.AdamW),
}


class Stop(BaseException):
    """Stops a run as a kill would (not an Exception: nothing may catch it)."""


def straight(config: RunConfig, out, monkeypatch, kind) -> tuple[dict, int]:
    """The uninterrupted run's results and the optimizer steps its first task took."""
    steps, first = [0], []
    original_step, original_save = kind.step, run_module.save_checkpoint

    def step(self, *args, **kwargs):
        steps[0] += 1
        return original_step(self, *args, **kwargs)

    def save(path, state):
        first.append(steps[0])
        return original_save(path, state)

    with monkeypatch.context() as patched:
        patched.setattr(kind, "step", step)
        patched.setattr(run_module, "save_checkpoint", save)
        results = run_experiment(config, out).to_dict()
    return results, steps[0] - first[0]


def stop_after_first_checkpoint(config: RunConfig, out, monkeypatch) -> None:
    original = run_module.save_checkpoint

    def save_then_stop(path, state):
        original(path, state)
        raise Stop

    with monkeypatch.context() as patched:
        patched.setattr(run_module, "save_checkpoint", save_then_stop)
        with pytest.raises(Stop):
            run_experiment(config, out)


def stop_at_step(config: RunConfig, out, monkeypatch, kind, at: int) -> None:
    original, steps = kind.step, [0]

    def step(self, *args, **kwargs):
        steps[0] += 1
        if steps[0] == at:
            raise Stop
        return original(self, *args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(kind, "step", step)
        with pytest.raises(Stop):
            run_experiment(config, out, resume=True)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("strategy", [name for name in STRATEGY_NAMES if name != "joint"])
def test_resumed_after_a_checkpoint_and_again_mid_task_gives_the_same_results(
    strategy, optimizer, tmp_path, monkeypatch
):
    options, kind = OPTIMIZERS[optimizer]
    config = RunConfig(**TINY, **options, strategy=strategy)
    expected, second_task_steps = straight(config, tmp_path / "straight", monkeypatch, kind)
    out = tmp_path / "stopped"
    stop_after_first_checkpoint(config, out, monkeypatch)
    at = random.Random(f"{strategy}{optimizer}").randint(1, second_task_steps)
    stop_at_step(config, out, monkeypatch, kind, at)  # mid-task, after resuming once
    got = run_experiment(config, out, resume=True).to_dict()
    for key in RESULT_KEYS:
        assert got[key] == expected[key], key
    assert got["avalanche_metrics"] == expected["avalanche_metrics"]


def test_joint_stopped_after_its_checkpoint_does_not_train_again(tmp_path, monkeypatch):
    config = RunConfig(**TINY, **OPTIMIZERS["momentum"][0], strategy="joint")
    expected, _ = straight(config, tmp_path / "straight", monkeypatch, torch.optim.SGD)
    out = tmp_path / "stopped"
    stop_after_first_checkpoint(config, out, monkeypatch)
    steps = [0]
    original = torch.optim.SGD.step

    def step(self, *args, **kwargs):
        steps[0] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "step", step)
    got = run_experiment(config, out, resume=True).to_dict()
    assert steps[0] == 0
    for key in RESULT_KEYS:
        assert got[key] == expected[key], key


def _epn_under_adam_resumed_equals_straight(tmp_path, monkeypatch, stop_somewhere) -> None:
    """epn under Adam stopped by `stop_somewhere` (given the monkeypatch context) and resumed
    ends as the uninterrupted run."""
    options, kind = OPTIMIZERS["adam"]
    config = RunConfig(**TINY, **options, strategy="epn")
    expected, _ = straight(config, tmp_path / "straight", monkeypatch, kind)
    out = tmp_path / "stopped"
    with monkeypatch.context() as patched:
        stop_somewhere(patched)
        with pytest.raises(Stop):
            run_experiment(config, out)
    got = run_experiment(config, out, resume=True).to_dict()
    for key in RESULT_KEYS:
        assert got[key] == expected[key], key


def test_stopped_in_the_middle_of_the_second_tasks_search_resumes_exactly(tmp_path, monkeypatch):
    original, calls = packing.search_kept_fraction, [0]

    def search_then_stop(score_at, **kwargs):
        calls[0] += 1
        if calls[0] == 2:
            score_at(0.5)  # mid-search: a candidate was scored, nothing decided
            raise Stop
        return original(score_at, **kwargs)

    _epn_under_adam_resumed_equals_straight(
        tmp_path, monkeypatch,
        lambda patched: patched.setattr(packing, "search_kept_fraction", search_then_stop),
    )  # fmt: skip
    assert calls[0] == 2


def test_stopped_while_a_checkpoint_is_written_resumes_exactly_from_the_one_before(
    tmp_path, monkeypatch
):
    original, renames = io_module.os.replace, [0]

    def replace_then_stop(source, target):
        if str(target).endswith(".pt"):
            renames[0] += 1
            if renames[0] == 2:  # the second checkpoint is written but not yet in place
                raise Stop
        return original(source, target)

    _epn_under_adam_resumed_equals_straight(
        tmp_path, monkeypatch,
        lambda patched: patched.setattr(io_module.os, "replace", replace_then_stop),
    )  # fmt: skip
    assert renames[0] == 2
    assert not list((tmp_path / "stopped").rglob("*.tmp"))
