import torch
from torch import nn
from torch.nn.utils import parametrize

from clearn.export import export_task, plain_copy
from clearn.network import PackedNetwork
from clearn.packing import TaskPacker
from clearn.powerprop import apply_powerprop


def test_export_is_a_plain_copy_and_leaves_the_network_as_it_was():
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU())
    net = PackedNetwork(backbone=backbone, feature_size=8, classes_per_task=[3, 3],
                        alpha=2.0, per_task_norm=True)  # fmt: skip
    packer = TaskPacker(net)
    for task in range(2):
        packer.begin_task(task)
        packer.prune(0.5)
        packer.end_task()
    net.eval()
    inputs = torch.randn(5, 6)
    before = [net(inputs, task) for task in range(2)]
    exported = [export_task(net, task).eval() for task in range(2)]
    for task, dense in enumerate(exported):
        assert torch.equal(dense(inputs), before[task])
        assert not any(parametrize.is_parametrized(m) for m in dense.modules())
        assert type(dense[0][0]) is nn.Linear and type(dense[0][1]) is nn.BatchNorm1d
    # A deep copy shares the parametrized classes: baking one in must not strip the network.
    assert all(torch.equal(net(inputs, task), before[task]) for task in range(2))
    assert net.view is None
    with torch.no_grad():
        exported[0][0][0].weight.zero_()  # the copy owns its tensors
    assert torch.equal(net(inputs, 0), before[0])


def test_a_plain_copy_bakes_powerprop_in_and_leaves_the_model_parametrized():
    torch.manual_seed(0)
    model = apply_powerprop(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)), alpha=3.0)
    inputs = torch.randn(5, 3)
    before = model(inputs)
    plain = plain_copy(model)
    assert [type(m) for m in plain] == [nn.Linear, nn.ReLU, nn.Linear]
    assert torch.equal(plain(inputs), before)
    assert all(parametrize.is_parametrized(model[i], "weight") for i in (0, 2))
    assert torch.equal(model(inputs), before)  # remove_powerprop(deepcopy(model)) breaks this
