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
