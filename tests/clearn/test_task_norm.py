"""Per-task BatchNorm: each task keeps its own statistics, bit for bit, and exports them."""

import pytest
import torch

from clearn.export import export_task
from clearn.models import backbone
from clearn.task_norm import TaskBatchNorm


@pytest.mark.parametrize(
    "optimizer",
    [
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-3),
        lambda p: torch.optim.AdamW(p, lr=1e-3, weight_decay=0.05),
    ],
)
def test_each_task_keeps_its_own_batchnorm_bit_for_bit(cifar_packnet, optimizer):
    strategy, stream = cifar_packnet("resnet18", optimizer=optimizer, per_task_norm=True)
    model = strategy.model
    inputs = [split.inputs(torch.arange(len(split))) for split in stream.test]
    strategy.train(stream.benchmark.train_stream[0], eval_streams=[])
    model.eval()
    with torch.no_grad():
        first = model(inputs[0], 0)
    strategy.train(stream.benchmark.train_stream[1], eval_streams=[])
    model.eval()
    norms = [m for m in model.modules() if isinstance(m, TaskBatchNorm)]
    plain = backbone("resnet18", input_shape=stream.input_shape)[0]
    assert len(norms) == sum(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules())
    assert all(len(n.norms) == 2 for n in norms)
    # Task 1 trained its own statistics; task 0's are untouched.
    assert any(
        not torch.equal(n.norms[0].running_mean, n.norms[1].running_mean) for n in norms
    )
    with torch.no_grad():
        assert torch.equal(model(inputs[0], 0), first)
        for task in (0, 1):
            exported = export_task(model, task).eval()
            assert torch.allclose(exported(inputs[task]), model(inputs[task], task), atol=1e-5)
        mixed = torch.cat(inputs)
        labels = torch.tensor([0] * len(inputs[0]) + [1] * len(inputs[1]))
        assert torch.equal(model(mixed, labels)[: len(inputs[0])], model(inputs[0], 0))
