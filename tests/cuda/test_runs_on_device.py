"""Whole runs on the GPU, through the library as `clearn run --device cuda` runs them: the
packing and mask strategies forget nothing bit for bit, per-task BatchNorm included, and a
run stopped at a random step of each task resumes to the same results."""

import pytest

from clearn.app.config import RunConfig
from clearn.app.experiment import run_experiment
from tests.clearn.app import test_resume as on_cpu
from tests.cuda.device import DEVICE, ON_DEVICE

pytestmark = ON_DEVICE

TINY = dict(tasks=3, epochs=2, patience=0, seed=0, device=DEVICE)
ZERO_FORGETTING = ("epn", "packnet", "wsn", "supsup")
"""The strategies whose earlier tasks' logits cannot change (HAT's soft gates may)."""


def assert_nothing_forgotten(matrix: list[list[float]]) -> None:
    """Every task's accuracy, exactly the same after every later task."""
    for row in range(len(matrix)):
        for task in range(row):
            assert matrix[row][task] == matrix[task][task], (row, task, matrix)


@pytest.mark.parametrize("strategy", ZERO_FORGETTING)
def test_earlier_tasks_are_bit_for_bit_unchanged_on_the_gpu(strategy, tmp_path):
    config = RunConfig(
        scenario="permuted-digits", strategy=strategy, hidden=[32], optimizer="adamw",
        lr=0.01, weight_decay=0.01, **TINY,
    )  # fmt: skip
    assert_nothing_forgotten(run_experiment(config, tmp_path / "run").accuracy_matrix)


def test_per_task_batchnorm_of_a_resnet_forgets_nothing_on_the_gpu(cifar10_root, tmp_path):
    config = RunConfig(
        scenario="split-cifar10", strategy="epn", model="resnet18", per_task_norm=True,
        data_root=str(cifar10_root), optimizer="sgd", lr=0.05, momentum=0.9,
        weight_decay=1e-3, batch_size=8, **{**TINY, "tasks": 2},
    )  # fmt: skip
    assert_nothing_forgotten(run_experiment(config, tmp_path / "run").accuracy_matrix)


@pytest.mark.parametrize("strategy", ["epn", "wsn", "supsup", "hat"])
def test_a_run_stopped_in_each_task_resumes_to_the_same_results_on_the_gpu(
    strategy, tmp_path, monkeypatch, run_counting_steps
):
    on_cpu.test_every_strategy_stopped_at_a_random_step_of_each_task_resumes_to_the_same_results(
        strategy, tmp_path, monkeypatch, run_counting_steps, device=DEVICE
    )
