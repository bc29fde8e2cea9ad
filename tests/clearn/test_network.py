import pytest
import torch
from torch import nn

from clearn.network import PackedNetwork


def network(**options) -> PackedNetwork:
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU())
    options = {"feature_size": 3, "classes_per_task": [2, 2], **options}
    net = PackedNetwork(backbone=backbone, **options)
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


def test_input_statistics_are_the_mean_and_variance_over_all_batches():
    net = network()
    inputs = torch.randn(100, 2, 2, dtype=torch.float64)
    net.record_inputs(0, inputs.split(30))
    mean, variance = net.input_statistics[0]
    assert torch.allclose(mean.double(), inputs.flatten(1).mean(0), atol=1e-6)
    assert torch.allclose(variance.double(), inputs.flatten(1).var(0, unbiased=False), atol=1e-6)


@pytest.mark.parametrize("method", ["inputs", "inputs-batch"])
def test_inference_by_inputs_finds_the_task_whose_inputs_look_alike(method):
    net = network()
    from_0, from_1 = two_input_distributions(net)
    for task, inputs in ((0, from_0), (1, from_1)):
        guess = net.infer_task(inputs, method=method)
        assert guess.tasks.tolist() == [task] * 8
        assert bool((guess.confidence > 0.5).all() & (guess.confidence <= 1).all())
        assert torch.equal(guess.logits[task], net(inputs, task))
        assert guess.logits[1 - task] is None  # no pass for a task that was not found


def test_a_batch_is_given_the_task_its_examples_favour_together():
    net = network()
    from_0, from_1 = two_input_distributions(net)
    mixed = torch.cat([from_0[:6], from_1[:2]])
    assert net.infer_task(mixed, method="inputs").tasks.tolist() == [0] * 6 + [1] * 2
    assert net.infer_task(mixed, method="inputs-batch").tasks.tolist() == [0] * 8


def test_input_statistics_survive_a_state_dict_and_are_needed_for_every_task():
    net = network()
    two_input_distributions(net)
    copy = network()
    copy.load_state_dict(net.state_dict())
    for task in (0, 1):
        for saved, loaded in zip(net.input_statistics[task], copy.input_statistics[task],
                                 strict=True):
            assert torch.equal(saved, loaded)
    del copy.input_statistics[1]
    with pytest.raises(ValueError, match=r"tasks \[1\] have no input statistics"):
        copy.infer_task(torch.zeros(2, 4), method="inputs")
    with pytest.raises(ValueError, match="no inputs given to record for task 0"):
        copy.record_inputs(0, [])


def test_without_task_labels_the_recorded_inputs_decide_where_every_task_has_them():
    net = network()
    from_0, from_1 = two_input_distributions(net)
    inputs = torch.cat([from_1[:3], from_0[:3]])
    assert net.infer_task(inputs).tasks.tolist() == [1, 1, 1, 0, 0, 0]
    assert torch.equal(net(inputs), net(inputs, torch.tensor([1, 1, 1, 0, 0, 0])))
    del net.input_statistics[0]  # one task without them: the lowest entropy decides
    assert torch.equal(net.infer_task(inputs).tasks, net.infer_task(inputs, method="example").tasks)
