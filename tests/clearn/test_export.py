import torch
from torch import nn
from torch.nn.utils import parametrize

from clearn.export import export_task
from clearn.network import PackedNetwork
from clearn.packing import TaskPacker


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
