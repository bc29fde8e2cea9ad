"""benchmarks/long_stream.py: the figures it reads off a run, and what a partial run is named."""

import dataclasses

from benchmarks import long_stream
from clearn.app.config import RunConfig
from clearn.app.experiment import run_experiment


def test_accuracy_after_some_tasks_is_read_off_each_task_just_after_it_trained():
    # Evaluated in full after the second task only: the first row holds its own task.
    matrix = [[0.9, None, None], [0.9, 0.7, None], [None, None, 0.5]]
    assert long_stream._mean_accuracy_after(matrix, 2) == 0.8
    assert long_stream._mean_accuracy_after(matrix, 4) is None
    assert long_stream._largest_drift(matrix) == 0.0
    matrix[1][0] = 0.85
    assert abs(long_stream._largest_drift(matrix) - 0.05) < 1e-12


def test_the_last_full_row_is_the_last_evaluation_of_every_task_seen():
    matrix = [[0.9, None, None], [0.9, 0.7, None], [None, None, 0.5]]
    assert long_stream._last_full_row(matrix) == [0.9, 0.7]
    assert long_stream._last_full_row([[None, 0.5]]) == []


def test_a_checkpoint_read_so_far_holds_what_the_run_reported(tmp_path) -> None:
    config = RunConfig(scenario="permuted-digits", tasks=3, epochs=2, eval_every_tasks=2,
                       task_agnostic=True, train_per_class=20)  # fmt: skip
    result = run_experiment(config, tmp_path / "run")
    so_far = long_stream._Measured.so_far(tmp_path / "run")
    assert so_far.matrix == result.accuracy_matrix
    assert so_far.task_id_matrix == result.task_id_matrix
    assert [r["free_fraction"] for r in so_far.task_reports] == [
        r["free_fraction"] for r in result.task_reports
    ]
    assert so_far.train_seconds_per_task == result.train_seconds_per_task
    diagonal = [row[i] for i, row in enumerate(result.accuracy_matrix)]
    assert abs(so_far.acc - sum(diagonal) / 3) < 1e-12


def test_a_partial_run_never_takes_the_whole_benchmarks_name():
    every = list(long_stream.METHODS)
    assert long_stream._name_and_command(1000, None, every)[0] == "long_stream"
    name, command = long_stream._name_and_command(100, ["permuted-digits"], ["default", "α = 1"])
    assert name == "long_stream_100_permuted-digits_default_alpha-1"
    assert command.endswith("--streams permuted-digits --methods 'default' 'α = 1'")
    assert long_stream._name_and_command(100, None, ["default"])[0] == "long_stream_100_default"


def test_only_the_long_fashion_mnist_default_answers_a_sample_of_its_test_sets(
    monkeypatch,
) -> None:
    every = list(long_stream.METHODS)
    sampled = long_stream._configs("permuted-fmnist", long_stream.TASKS, every)
    key = ("permuted-fmnist", "default")
    assert sampled[key].task_agnostic_examples == 500
    monkeypatch.setattr(long_stream, "TASK_ID_EXAMPLES", {})
    unsampled = long_stream._configs("permuted-fmnist", long_stream.TASKS, every)
    assert {k for k in sampled if sampled[k] != unsampled[k]} == {key}
    assert dataclasses.replace(sampled[key], task_agnostic_examples=None) == unsampled[key]
    for scenario, tasks in (("permuted-fmnist", 100), ("permuted-digits", long_stream.TASKS)):
        configs = long_stream._configs(scenario, tasks, every).values()
        assert all(c.task_agnostic_examples is None for c in configs)


def test_task_id_accuracy_names_the_tasks_it_covered_when_more_trained_since() -> None:
    figures = {"task_id_end": 1.0, "task_id_tasks": 100, "tasks_trained": 100}
    assert long_stream._task_id_cell(figures) == "100.0"
    assert long_stream._task_id_cell({**figures, "tasks_trained": 182}) == "100.0 (of 100 tasks)"
    assert long_stream._task_id_cell({**figures, "task_id_end": None}) == "–"
