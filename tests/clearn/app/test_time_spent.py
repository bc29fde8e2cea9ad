import dataclasses

import pytest

from clearn.app.config import RunConfig
from clearn.app.experiment import run_experiment
from clearn.app.results import RunResult
from clearn.app.time_spent import time_spent


def _result(reports: list[dict], seconds: list[float], retrain_epochs: int) -> RunResult:
    return RunResult(
        scenario="permuted-digits", strategy="epn", alpha=1.5, tasks=len(reports),
        accuracy_matrix=[[0.9] * len(reports)] * len(reports), acc=0.9, bwt=0.0,
        forgetting=0.0, capacity=[0.1] * len(reports), free_fraction=0.5,
        train_seconds=sum(seconds), train_seconds_per_task=seconds,
        config={"retrain_epochs": retrain_epochs}, task_reports=reports,
    )  # fmt: skip


def test_epochs_after_a_task_reached_its_final_accuracy_are_counted_as_after_it():
    # 5 epochs + 1 retraining epoch in 12 s beside a 2 s search: 10 s over 6 epochs.
    # The final accuracy 0.90 was reached (within half a point) at epoch 2.
    report = {"epochs_trained": 5, "val_acc_per_epoch": [0.5, 0.897, 0.91, 0.89, 0.90],
              "search_seconds": 2.0, "validation_seconds": 0.5}  # fmt: skip
    spent = time_spent(_result([report, {**report, "val_acc_per_epoch": [0.1] * 5}],
                               [12.0, 12.0], retrain_epochs=1))  # fmt: skip
    per_epoch = 10.0 / 6
    assert spent.to_final_accuracy == pytest.approx(12.0 - 3 * per_epoch + 12.0 - 4 * per_epoch)
    assert spent.after_final_accuracy == pytest.approx(7 * per_epoch)
    assert (spent.search, spent.validation) == (4.0, 1.0)


def test_the_input_model_fit_is_neither_an_epoch_nor_the_search():
    # 4 epochs in 10 s beside a 1 s search and a 3 s input-model fit: 1.5 s per epoch.
    report = {"epochs_trained": 4, "val_acc_per_epoch": [0.5, 0.9, 0.9, 0.9],
              "search_seconds": 1.0, "validation_seconds": 0.5,
              "input_model_seconds": 3.0}  # fmt: skip
    spent = time_spent(_result([report], [10.0], retrain_epochs=0))
    assert spent.after_final_accuracy == pytest.approx(2 * 1.5)
    assert (spent.search, spent.input_model) == (1.0, 3.0)
    assert spent.epochs == 4
    assert spent.per_epoch == pytest.approx(1.5)


def test_a_run_without_per_epoch_validation_has_no_breakdown():
    report = {"epochs_trained": 3, "val_acc_per_epoch": [], "search_seconds": 0.0}
    assert time_spent(_result([report], [3.0], retrain_epochs=0)) is None
    assert time_spent(dataclasses.replace(_result([report], [3.0], 0), task_reports=[])) is None


def test_a_real_run_breaks_down_within_its_train_time(tmp_path):
    config = RunConfig(scenario="permuted-digits", tasks=2, epochs=8, patience=2, hidden=[32])
    result = run_experiment(config, tmp_path / "run")
    spent = time_spent(result)
    assert 0 < spent.search < spent.train
    assert 0 < spent.validation < spent.train
    assert spent.search + spent.validation < spent.to_final_accuracy <= spent.train
