from typing import get_args

import pytest
import torch

from clearn.network import PackedNetwork
from clearn.task_inference import (
    METHODS,
    Method,
    TaskGuess,
    default_method,
    infer_task,
    predict_task_agnostic,
)


def test_the_registry_holds_every_method_and_infer_task_asks_it(tiny_network, monkeypatch):
    assert tuple(METHODS) == get_args(Method)
    net = tiny_network()
    called = []

    def first_task(network, inputs):
        called.append(network)
        tasks = torch.zeros(len(inputs), dtype=torch.long)
        logits = [network(inputs, 0), None]
        return TaskGuess(tasks=tasks, confidence=torch.ones(len(inputs)), logits=logits)

    monkeypatch.setitem(METHODS, "first", first_task)  # a new method is one entry
    inputs = torch.randn(3, 4)
    assert torch.equal(predict_task_agnostic(net, inputs, method="first"), net(inputs, 0))
    assert called == [net]
    with pytest.raises(ValueError, match="method must be one of example, batch"):
        infer_task(net, inputs, method="nearest")


def test_without_task_labels_each_example_goes_to_its_most_certain_task(tiny_network):
    net = tiny_network()
    inputs = torch.randn(6, 4)
    guess = infer_task(net, inputs)
    assert torch.equal(predict_task_agnostic(net, inputs), net(inputs, guess.tasks))
    entropies = []
    for task in (0, 1):
        p = torch.softmax(net(inputs, task), 1)
        entropies.append(-(p * p.log()).sum(1))
    assert torch.equal(guess.tasks, torch.stack(entropies, 1).argmin(1))
    assert bool(((guess.confidence >= 0) & (guess.confidence <= 1)).all())


def test_batch_inference_names_one_task_for_the_whole_batch(tiny_network):
    guess = infer_task(tiny_network(), torch.randn(16, 4), method="batch")
    assert len(set(guess.tasks.tolist())) == 1


def test_one_trained_task_is_inferred_with_full_confidence(tiny_network):
    net = tiny_network()
    net.trained_tasks = 1
    guess = infer_task(net, torch.randn(3, 4))
    assert guess.tasks.tolist() == [0, 0, 0] and guess.confidence.tolist() == [1.0] * 3


@pytest.mark.parametrize("certain", [0, 1])
def test_one_shot_inference_takes_the_task_whose_view_lowers_the_mixed_entropy(
    tiny_network, certain
):
    net = tiny_network()
    with torch.no_grad():
        for task, head in enumerate(net.heads):  # one head sure of class 0, the other unsure
            head.weight.zero_()
            head.bias.copy_(torch.tensor([8.0, -8.0]) if task == certain else torch.zeros(2))
    guess = infer_task(net, torch.randn(8, 4), method="one-shot")
    assert guess.tasks.tolist() == [certain] * 8
    assert all(mask.superposition is None for mask in net.masks.values())
    assert net.view is None


def two_input_distributions(net: PackedNetwork) -> tuple[torch.Tensor, torch.Tensor]:
    """Record task 0 on inputs around -2 and task 1 on inputs around +2 (feature 3 constant
    in task 0); return fresh inputs drawn from each."""
    generator = torch.Generator().manual_seed(1)
    task_0 = torch.randn(200, 4, generator=generator) - 2
    task_0[:, 3] = 0.0
    task_1 = torch.randn(200, 4, generator=generator) + 2
    net.record_inputs(0, task_0.split(64))  # in batches, as a data loader gives them
    net.record_inputs(1, task_1.split(64))
    fresh_0 = torch.randn(8, 4, generator=generator) - 2
    fresh_0[:, 3] = 0.0
    return fresh_0, torch.randn(8, 4, generator=generator) + 2


@pytest.mark.parametrize("method", ["inputs", "inputs-batch"])
def test_inference_by_inputs_finds_the_task_whose_inputs_look_alike(tiny_network, method):
    net = tiny_network()
    from_0, from_1 = two_input_distributions(net)
    for task, inputs in ((0, from_0), (1, from_1)):
        guess = infer_task(net, inputs, method=method)
        assert guess.tasks.tolist() == [task] * 8
        assert bool((guess.confidence > 0.5).all() & (guess.confidence <= 1).all())
        assert torch.equal(guess.logits[task], net(inputs, task))
        assert guess.logits[1 - task] is None  # no pass for a task that was not found


def test_a_batch_is_given_the_task_its_examples_favour_together(tiny_network):
    net = tiny_network()
    from_0, from_1 = two_input_distributions(net)
    mixed = torch.cat([from_0[:6], from_1[:2]])
    assert infer_task(net, mixed, method="inputs").tasks.tolist() == [0] * 6 + [1] * 2
    assert infer_task(net, mixed, method="inputs-batch").tasks.tolist() == [0] * 8


def test_the_input_model_survives_a_state_dict_and_is_needed_for_every_task(tiny_network):
    net = tiny_network()
    from_0, from_1 = two_input_distributions(net)
    inputs = torch.cat([from_0, from_1])
    copy = tiny_network()
    copy.load_state_dict(net.state_dict())
    assert torch.equal(copy.input_density.score(inputs), net.input_density.score(inputs))
    assert torch.equal(infer_task(copy, inputs).tasks, infer_task(net, inputs).tasks)
    fresh = tiny_network()
    fresh.record_inputs(0, [from_0])  # task 1 not recorded
    with pytest.raises(ValueError, match=r"tasks \[1\] have no model of their inputs"):
        infer_task(fresh, inputs, method="inputs")


def test_without_task_labels_the_recorded_inputs_decide_where_every_task_has_them(
    tiny_network,
):
    net = tiny_network()
    from_0, from_1 = two_input_distributions(net)
    inputs = torch.cat([from_1[:3], from_0[:3]])
    assert default_method(net) == "inputs"
    assert infer_task(net, inputs).tasks.tolist() == [1, 1, 1, 0, 0, 0]
    expected = net(inputs, torch.tensor([1, 1, 1, 0, 0, 0]))
    assert torch.equal(predict_task_agnostic(net, inputs), expected)
    partial = tiny_network()
    partial.record_inputs(0, [from_0])  # one task without them: the lowest entropy decides
    assert default_method(partial) == "example"
    by_entropy = infer_task(partial, inputs, method="example").tasks
    assert torch.equal(infer_task(partial, inputs).tasks, by_entropy)


def test_a_per_class_input_model_tells_tasks_apart_that_share_their_pooled_inputs(
    tiny_network,
):
    # Both tasks' inputs, pooled, have the same mean and about the same covariance; per class
    # they differ: task 0's classes sit at (±3, 0) spread along y, task 1's at (0, ±3)
    # spread along x (features 2 and 3 are noise).
    generator = torch.Generator().manual_seed(2)

    def task(number: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.arange(size) % 2
        inputs = 0.1 * torch.randn(size, 4, generator=generator)
        inputs[:, number] += 3.0 * (1 - 2 * labels)  # the class centre
        inputs[:, 1 - number] *= 30  # the spread within a class: as wide as between
        return inputs, labels

    pooled, per_class = tiny_network(), tiny_network(per_class_inputs=True)
    for net in (pooled, per_class):
        for number in (0, 1):
            net.record_inputs(number, [task(number, 400)])
    tests = [task(number, 200)[0] for number in (0, 1)]
    found = [
        [float((infer_task(net, x).tasks == t).float().mean()) for t, x in enumerate(tests)]
        for net in (pooled, per_class)
    ]
    # Pooled, a guess near chance; per class, all but the few near where classes cross.
    assert min(found[1]) > 0.95 and sum(found[0]) / 2 < 0.6
