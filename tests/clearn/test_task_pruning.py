import pytest
import torch
from torch import nn

from clearn.network import PackedNetwork
from clearn.packing import TaskPacker
from clearn.task_pruning import PruningRule, RetrainingCheck


def test_retraining_that_lowers_accuracy_is_undone_bit_for_bit():
    torch.manual_seed(0)
    network = nn.Linear(4, 3)
    pruned = {k: v.clone() for k, v in network.state_dict().items()}
    check = RetrainingCheck(network, pruned_accuracy=0.8)
    with torch.no_grad():
        network.weight.add_(1.0)  # "retraining"
    assert check.keep_if_it_helped(0.7) is False
    assert all(torch.equal(network.state_dict()[k], pruned[k]) for k in pruned)


def test_undone_retraining_restores_a_packed_task_s_weights_and_statistics_bit_for_bit():
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU())
    network = PackedNetwork(backbone=backbone, feature_size=8, classes_per_task=[2, 2],
                            alpha=1.5, per_task_norm=True)  # fmt: skip
    packer = TaskPacker(network)
    packer.begin_task(0)
    packer.prune(0.5)
    packer.end_task()
    packer.begin_task(1)
    packer.prune(0.5)
    pruned = {k: v.clone() for k, v in network.state_dict().items() if torch.is_tensor(v)}
    check = RetrainingCheck(network, pruned_accuracy=0.8)
    optimizer = torch.optim.SGD(network.parameters(), lr=0.5, momentum=0.9)
    network.train()
    for _ in range(3):  # "retraining": the survivors, head 1 and its BatchNorm copy move
        optimizer.zero_grad()
        network(torch.randn(16, 6), 1).square().mean().backward()
        optimizer.step()
        packer.restore_frozen()
    state = network.state_dict()
    assert not all(torch.equal(state[k], pruned[k]) for k in pruned)
    assert check.keep_if_it_helped(0.7) is False
    assert all(torch.equal(network.state_dict()[k], pruned[k]) for k in pruned)


def test_retraining_that_keeps_accuracy_stays():
    network = nn.Linear(4, 3)
    check = RetrainingCheck(network, pruned_accuracy=0.8)
    with torch.no_grad():
        network.weight.add_(1.0)
    retrained = network.weight.clone()
    assert check.keep_if_it_helped(0.8) is True
    assert torch.equal(network.weight, retrained)


@pytest.mark.parametrize(
    ("mode", "gamma", "fraction"),
    [("magnitude", 0.99, 0.5), ("epn", 0.99, 1.0), ("packnet", 0.99, -0.1), ("epn", 1.5, 0.5)],
)
def test_a_rule_out_of_range_is_refused_in_one_sentence(mode, gamma, fraction):
    with pytest.raises(ValueError, match="mode must be|prune_fraction must be|gamma must be"):
        PruningRule(mode, gamma, fraction)


def test_a_task_budget_shares_what_is_left_equally_among_the_tasks_to_come():
    rule = PruningRule("epn", task_budget=4)
    assert [rule.kept_budget(t) for t in range(6)] == [1 / 4, 1 / 3, 1 / 2, 1.0, 1.0, 1.0]
    assert PruningRule("epn").kept_budget(0) is None
    # Each of the 4 tasks then owns a quarter of the network: 1/4 of all, 1/3 of 3/4, ...
    free, owned = 1.0, []
    for task in range(4):
        owned.append(free * rule.kept_budget(task))
        free -= owned[-1]
    assert owned == pytest.approx([0.25] * 4)


@pytest.mark.parametrize("budget", [0, -3, 2.5, True, "10"])
def test_a_task_budget_that_is_not_a_count_of_tasks_is_refused(budget):
    with pytest.raises(ValueError, match="task_budget must be the number of tasks"):
        PruningRule("epn", task_budget=budget)
