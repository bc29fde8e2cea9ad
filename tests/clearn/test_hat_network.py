import pytest
import torch
from torch import nn

from clearn.hat import HatTrainer
from clearn.hat_network import HatNetwork
from clearn.network import UnknownTaskError


def conv_backbone() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(6 * 4 * 4, 12), nn.ReLU(),
    )  # fmt: skip


def trained(seed: int = 0, tasks: int = 2) -> tuple[HatNetwork, torch.Tensor]:
    """A conv HatNetwork with per-task BatchNorm, trained a few steps on each task."""
    torch.manual_seed(seed)
    network = HatNetwork(backbone=conv_backbone(), feature_size=12, classes_per_task=[3, 4])
    trainer = HatTrainer(network)
    optimizer = torch.optim.SGD(network.parameters(), lr=0.1)
    x = torch.randn(16, 1, 8, 8)
    for task in range(tasks):
        trainer.begin_task(task)
        network.train()
        y = torch.randint(0, network.heads[task].out_features, (16,))
        for step in range(5):
            trainer.set_step(step, 5)
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(network(x, task), y) + trainer.regulariser()
            loss.backward()
            trainer.mask_gradients()
            optimizer.step()
            trainer.after_step(restore=False)
        trainer.end_task()
    return network.eval(), x


def test_a_mixed_task_batch_equals_the_per_task_calls():
    network, x = trained()
    labels = torch.tensor([0, 1, 1, 0] * 4)
    mixed = network(x, labels)
    for task, width in ((0, 3), (1, 4)):
        rows = labels == task
        assert torch.equal(mixed[rows, :width], network(x[rows], task))
    assert torch.equal(mixed[labels == 0, 3], torch.zeros(8))


def test_the_export_is_a_plain_module_with_the_same_logits():
    network, x = trained()
    for task in range(2):
        exported = network.export_task(task)
        assert not any(m._forward_hooks for m in exported.modules())
        assert not any(isinstance(m, nn.ParameterList) for m in exported.modules())
        assert torch.equal(exported(x), network(x, task))


def test_a_state_dict_loads_into_a_freshly_built_network_with_the_same_outputs():
    network, x = trained()
    torch.manual_seed(1)
    fresh = HatNetwork(backbone=conv_backbone(), feature_size=12, classes_per_task=[3, 4])
    fresh.load_state_dict(network.state_dict())
    fresh.eval()
    assert fresh.trained_tasks == 2
    for task in range(2):
        assert torch.equal(fresh(x, task), network(x, task))
        gate = next(iter(fresh.gates.values()))
        assert torch.equal(gate.cumulative, next(iter(network.gates.values())).cumulative)


def test_each_task_has_its_own_batchnorm_and_untrained_tasks_are_refused():
    network, x = trained(tasks=1)
    assert len(network.norms["1"].norms) == 2
    with pytest.raises(UnknownTaskError, match="task 1 has not been trained"):
        network(x, 1)
    assert network(x, 1, allow_untrained=True).shape == (16, 4)


def test_bad_arguments_say_what_to_do():
    with pytest.raises(ValueError, match="need feature_size"):
        HatNetwork(backbone=conv_backbone(), classes_per_task=[2])
    with pytest.raises(ValueError, match="no Linear/Conv1d/Conv2d/Conv3d layer"):
        HatNetwork(backbone=nn.Sequential(nn.ReLU()))
    with pytest.raises(ValueError, match="s_max must be at least 1"):
        HatNetwork(backbone=conv_backbone(), s_max=0.5)
