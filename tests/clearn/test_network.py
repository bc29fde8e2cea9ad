import pytest
import torch
from torch import nn

from clearn.network import PackedNetwork
from clearn.packing import TaskPacker
from clearn.task_norm import TaskBatchNorm


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (torch.tensor([0, 1]), "one label per example: 3 examples"),  # shorter than the batch
        (torch.tensor([0, 0]), "one label per example: 3 examples"),  # naming one task
        (torch.tensor([0.0, 1.0, 0.0]), "must be integers"),
        (torch.tensor([], dtype=torch.long), "one label per example"),
        (True, "must be an int or a tensor"),
        (None, r"task_labels is None: .*clearn.infer_task"),
    ],
)
def test_task_labels_that_do_not_fit_the_batch_are_named(tiny_network, labels, message):
    with pytest.raises(ValueError, match=message):
        tiny_network()(torch.zeros(3, 4), labels)


def test_classes_per_task_must_be_whole_numbers(tiny_network):
    with pytest.raises(ValueError, match="one positive class count per task"):
        tiny_network(classes_per_task=[2.5])


def test_a_wrong_feature_size_is_named_at_the_first_query(tiny_network):
    with pytest.raises(ValueError, match="set feature_size to the backbone's output width"):
        tiny_network(feature_size=5)(torch.zeros(3, 4), 0)


def test_a_mixed_batch_is_answered_per_task(tiny_network):
    net = tiny_network()
    inputs, labels = torch.randn(5, 4), torch.tensor([1, 0, 1, 1, 0])
    mixed = net(inputs, labels)
    for task in (0, 1):
        rows = labels == task
        assert torch.equal(mixed[rows], net(inputs[rows], task))


def packed_pair() -> tuple[PackedNetwork, torch.Tensor]:
    """A network whose task 0 owns half of the weights and task 1 a quarter, and inputs."""
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU())
    net = PackedNetwork(backbone=backbone, feature_size=8, classes_per_task=[3, 3],
                        alpha=2.0, per_task_norm=True)  # fmt: skip
    packer = TaskPacker(net)
    for task, kept in ((0, 0.5), (1, 0.5)):
        packer.begin_task(task)
        packer.prune(kept)
        packer.end_task()
    return net.eval(), torch.randn(5, 6)


def test_a_view_holds_inside_its_block_and_the_one_before_comes_back():
    net, inputs = packed_pair()
    mask = net.masks["0"]
    assert net.view is None and mask.view_task is None
    with net.viewing(1):
        with net.viewing(0):
            assert (net.view, mask.view_task, net.norms["1"].view_task) == (0, 0, 0)
            own_view = net.backbone(inputs)
        assert (net.view, mask.view_task, net.norms["1"].view_task) == (1, 1, 1)
    assert net.view is None and mask.view_task is None
    with pytest.raises(RuntimeError), net.viewing(0):
        raise RuntimeError("a failing query")
    assert net.view is None  # restored on the way out of an error too
    net(inputs, 1)  # a query answers inside its own view and leaves none behind
    assert net.view is None and mask.view_task is None
    with net.viewing(0):
        assert torch.equal(net.backbone(inputs), own_view)
    assert not torch.equal(net.backbone(inputs), own_view)  # every weight: another answer


def test_parameter_groups_split_the_network_without_overlap_or_gap():
    net, _ = packed_pair()
    masked = {id(w) for w in net.masked_weights().values()}
    shared = net.shared_parameters()
    own = [net.task_parameters(task) for task in range(net.n_tasks)]
    groups = [masked, {id(p) for p in shared.values()}] + [{id(p) for p in o.values()} for o in own]
    every = [id(p) for p in net.parameters()]
    assert sorted(every) == sorted(i for group in groups for i in group)  # a partition
    assert set(shared) == {"backbone.0.bias"}  # the shared layer's bias; norms are per task
    assert set(own[1]) == {"heads.1.weight", "heads.1.bias", "backbone.1.norms.1.weight",
                           "backbone.1.norms.1.bias"}  # fmt: skip
    named = dict(net.named_parameters()) | dict(net.named_buffers())
    for group in (shared, *own, net.task_buffers(0), net.task_buffers(1)):
        assert all(named[name] is tensor for name, tensor in group.items())
    assert set(net.task_buffers(1)) == {
        f"backbone.1.norms.1.{b}" for b in ("running_mean", "running_var", "num_batches_tracked")
    }
    assert net.shared_buffers() == {}  # the owners are mask state, not shared buffers
    assert all(isinstance(n, TaskBatchNorm) for n in net.norms.values())


def test_shared_batchnorm_is_a_shared_group():
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU())
    net = PackedNetwork(backbone=backbone, feature_size=8, classes_per_task=[2])
    assert set(net.shared_parameters()) == {"backbone.0.bias", "backbone.1.weight",
                                            "backbone.1.bias"}  # fmt: skip
    assert set(net.shared_buffers()) == {
        f"backbone.1.{b}" for b in ("running_mean", "running_var", "num_batches_tracked")
    }
    assert set(net.masked_weights()) == {"0"}


def test_a_state_dict_of_the_old_layout_is_refused_in_one_sentence():
    net, _ = packed_pair()
    state = net.state_dict()
    state["_extra_state"] = {**state["_extra_state"], "input_statistics": {}}
    with pytest.raises(ValueError, match="from an older clearn"):
        packed_pair()[0].load_state_dict(state)


def test_a_state_dict_with_the_diagonal_input_statistics_is_refused_in_one_sentence():
    net, _ = packed_pair()
    state = net.state_dict()
    state["input_statistics.mean"] = torch.zeros(2, 6)
    with pytest.raises(ValueError, match=r"older clearn \(a diagonal Gaussian[^\n]*$"):
        packed_pair()[0].load_state_dict(state)


def test_the_input_model_round_trips_and_a_mismatched_setting_is_refused():
    net, inputs = packed_pair()
    for task in (0, 1):
        net.record_inputs(task, [torch.randn(50, 6) + task])
    fresh, _ = packed_pair()
    fresh.load_state_dict(net.state_dict())
    assert torch.equal(fresh.input_density.score(inputs), net.input_density.score(inputs))
    other = PackedNetwork(backbone=nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU()),
                          feature_size=8, classes_per_task=[3, 3], alpha=2.0,
                          per_task_norm=True, per_class_inputs=True)  # fmt: skip
    with pytest.raises(ValueError, match="per class False; this one rank 8, per class True"):
        other.load_state_dict(net.state_dict())
