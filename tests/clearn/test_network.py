import pytest
import torch
from torch import nn

from clearn.network import TaskNetwork


def network(**options) -> TaskNetwork:
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU())
    options = {"feature_size": 3, "classes_per_task": [2, 2], **options}
    net = TaskNetwork(backbone=backbone, **options)
    net.trained_tasks = 2
    return net


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (torch.tensor([0, 1]), "one label per example: 3 examples"),  # shorter than the batch
        (torch.tensor([0, 0]), "one label per example: 3 examples"),  # naming one task
        (torch.tensor([0.0, 1.0, 0.0]), "must be integers"),
        (torch.tensor([], dtype=torch.long), "one label per example"),
        (True, "must be an int or a tensor"),
    ],
)
def test_task_labels_that_do_not_fit_the_batch_are_named(labels, message):
    with pytest.raises(ValueError, match=message):
        network()(torch.zeros(3, 4), labels)


def test_classes_per_task_must_be_whole_numbers():
    with pytest.raises(ValueError, match="one positive class count per task"):
        network(classes_per_task=[2.5])


def test_a_wrong_feature_size_is_named_at_the_first_query():
    with pytest.raises(ValueError, match="set feature_size to the backbone's output width"):
        network(feature_size=5)(torch.zeros(3, 4), 0)


def test_a_mixed_batch_is_answered_per_task():
    net = network()
    inputs, labels = torch.randn(5, 4), torch.tensor([1, 0, 1, 1, 0])
    mixed = net(inputs, labels)
    for task in (0, 1):
        rows = labels == task
        assert torch.equal(mixed[rows], net(inputs[rows], task))


def test_without_task_labels_each_example_goes_to_its_most_certain_task():
    net = network()
    inputs = torch.randn(6, 4)
    guess = net.infer_task(inputs)
    assert torch.equal(net(inputs), net(inputs, guess.tasks))
    entropies = []
    for task in (0, 1):
        p = torch.softmax(net(inputs, task), 1)
        entropies.append(-(p * p.log()).sum(1))
    assert torch.equal(guess.tasks, torch.stack(entropies, 1).argmin(1))
    assert bool(((guess.confidence >= 0) & (guess.confidence <= 1)).all())


def test_batch_inference_names_one_task_for_the_whole_batch():
    guess = network().infer_task(torch.randn(16, 4), method="batch")
    assert len(set(guess.tasks.tolist())) == 1


def test_one_trained_task_is_inferred_with_full_confidence():
    net = network()
    net.trained_tasks = 1
    guess = net.infer_task(torch.randn(3, 4))
    assert guess.tasks.tolist() == [0, 0, 0] and guess.confidence.tolist() == [1.0] * 3


@pytest.mark.parametrize("certain", [0, 1])
def test_one_shot_inference_takes_the_task_whose_view_lowers_the_mixed_entropy(certain):
    net = network()
    with torch.no_grad():
        for task, head in enumerate(net.heads):  # one head sure of class 0, the other unsure
            head.weight.zero_()
            head.bias.copy_(torch.tensor([8.0, -8.0]) if task == certain else torch.zeros(2))
    guess = net.infer_task(torch.randn(8, 4), method="one-shot")
    assert guess.tasks.tolist() == [certain] * 8
    assert all(mask.superposition is None for mask in net.masks.values())
