"""The task-inference benchmark's scoring: re-ranking and the accuracies it reports."""

from __future__ import annotations

import pytest
import torch

from benchmarks.task_inference import _accuracies, _rerank, _task_data, _TaskData, _Views
from scenarios.streams import build_stream


def test_rerank_keeps_the_input_models_top_three_ranked_by_the_views() -> None:
    inputs = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0]])
    views = torch.tensor([[0.0, 1.0, 9.0, 99.0, 2.0]])  # task 3 is best but not a candidate
    (ranked,) = _rerank([inputs], [views])
    assert int(ranked.argmax(1)) == 2
    assert torch.isinf(ranked[0, 3]) and torch.isinf(ranked[0, 4])


def test_accuracies_count_an_example_right_only_with_its_task_and_its_class() -> None:
    labels = torch.tensor([0, 1, 0, 1])
    data = _TaskData(train=[], test=[(torch.zeros(4, 2), labels), (torch.zeros(4, 2), labels)])
    # Task 0's examples: the 1st is sent to task 1, the others to task 0; task 1's all right.
    scores = [torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]),
              torch.tensor([[0.0, 1.0]] * 4)]  # fmt: skip
    right = torch.nn.functional.one_hot(labels, 2).float()
    wrong = torch.nn.functional.one_hot(1 - labels, 2).float()
    logits = [[right, wrong], [wrong, torch.cat([right[:2], wrong[2:]])]]
    found = _accuracies(scores, data, _Views(logits, [[], []], 0.0))
    assert found["task_id_example"] == (3 / 4 + 1) / 2
    assert found["agnostic_acc_example"] == (3 / 4 + 2 / 4) / 2
    # One batch per task (4 < 16): task 0's summed scores still pick task 0.
    assert found["task_id_batch"] == 1.0
    assert found["agnostic_acc_batch"] == (1 + 2 / 4) / 2


def test_training_data_drawn_on_demand_is_each_tasks_whole_training_split() -> None:
    stream = build_stream("permuted-digits", n_tasks=3)
    eager = _task_data(stream, 3, 10)
    on_demand = _task_data(stream, 3, 10, train_on_demand=True)
    assert len(on_demand.train) == 3
    for (inputs, labels), (drawn, drawn_labels) in zip(eager.train, on_demand.train, strict=True):
        assert torch.equal(inputs, drawn) and torch.equal(labels, drawn_labels)
    assert not torch.equal(on_demand.train[0][0], on_demand.train[1][0])  # its own permutation
    with pytest.raises(IndexError):
        on_demand.train[3]
