import pytest
import torch
from torch import nn

from clearn.packing import PhaseError
from clearn.powerprop import stored_weight
from clearn.subnet_network import SubnetNetwork
from clearn.subnet_training import SubnetTrainer, paper_optimizer


def build(method: str, *, density: float = 0.3, norm: bool = False, seed: int = 0):
    torch.manual_seed(seed)
    layers = [nn.Flatten(), nn.Linear(10, 24)]
    layers += [nn.BatchNorm1d(24)] if norm else []
    layers += [nn.ReLU(), nn.Linear(24, 16), nn.ReLU()]
    return SubnetNetwork(
        backbone=nn.Sequential(*layers), method=method, density=density, feature_size=16,
        classes_per_task=[3, 3, 3], per_task_norm=norm, seed=seed,
    )  # fmt: skip


def task_data(task: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(100 + task)
    inputs = torch.randn(60, 10, generator=generator)
    return inputs, (inputs[:, task] * 2 + inputs[:, task + 1]).gt(0).long() + (task % 2)


def train_task(network, trainer, task, make_optimizer, *, steps: int = 15) -> dict:
    """Train `task` for a few steps; return its stored masks by layer."""
    inputs, labels = task_data(task)
    optimizer = make_optimizer(network.parameters())
    trainer.begin_task(task)
    network.train()
    for _ in range(steps):
        optimizer.zero_grad()
        nn.functional.cross_entropy(network(inputs, task), labels).backward()
        optimizer.step()
        trainer.restore_frozen()
    masks = trainer.end_task()
    network.eval()
    return masks


OPTIMIZERS = {
    "sgd-momentum-decay": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-2),
    "adamw": lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1),
}


@pytest.mark.parametrize("density", [0.03, 0.1, 0.5])
def test_each_wsn_task_mask_has_exactly_c_of_every_layer(density):
    network = build("wsn", density=density)
    trainer = SubnetTrainer(network)
    for task in range(2):
        masks = train_task(network, trainer, task, OPTIMIZERS["adamw"])
        for name, mask in masks.items():
            assert torch.equal(network.masks[name].mask(task), mask)
            assert int(mask.sum()) == round(density * mask.numel()), name


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_weights_earlier_wsn_tasks_selected_stay_bit_for_bit(optimizer):
    network = build("wsn", density=0.3)
    trainer = SubnetTrainer(network)
    train_task(network, trainer, 0, OPTIMIZERS[optimizer])
    used = network.used_masks()
    weights = {name: stored_weight(layer) for name, layer in network.layers.items()}
    before = {n: w.detach().clone() for n, w in weights.items()}
    train_task(network, trainer, 1, OPTIMIZERS[optimizer])
    for name, weight in weights.items():
        assert torch.equal(weight[used[name]], before[name][used[name]]), name
        assert not torch.equal(weight, before[name])  # the free ones did train
    assert bool((network.used_masks()[name] >= used[name]).all())  # M_1 = M_0 ∨ m_1


@pytest.mark.parametrize("method", ["wsn", "supsup"])
@pytest.mark.parametrize("norm", [False, True])
def test_task_0_logits_are_bit_for_bit_the_same_after_later_tasks(method, norm):
    network = build(method, norm=norm)
    trainer = SubnetTrainer(network)
    probe = torch.randn(20, 10)
    train_task(network, trainer, 0, OPTIMIZERS["sgd-momentum-decay"])
    with torch.no_grad():
        first = network(probe, 0)
    for task in (1, 2):
        train_task(network, trainer, task, OPTIMIZERS["adamw"])
    with torch.no_grad():
        assert torch.equal(network(probe, 0), first)


def test_supsup_weights_never_change_and_are_the_signed_kaiming_constant():
    network = build("supsup")
    trainer = SubnetTrainer(network)
    weights = {name: stored_weight(layer) for name, layer in network.layers.items()}
    before = {n: w.detach().clone() for n, w in weights.items()}
    for name, layer in network.layers.items():
        std = (2.0 / layer.in_features) ** 0.5
        assert torch.equal(before[name].abs(), torch.full_like(before[name], std)), name
        assert layer.bias is None
    scores = [m.scores.detach().clone() for m in network.masks.values()]
    for task, name in enumerate(OPTIMIZERS):
        train_task(network, trainer, task, OPTIMIZERS[name])
    for name, weight in weights.items():
        assert torch.equal(weight, before[name]), name
    assert not torch.equal(scores[0], next(iter(network.masks.values())).scores)  # scores learn


def test_supsup_draws_fresh_scores_per_task_and_wsn_keeps_them():
    for method, kept in (("supsup", False), ("wsn", True)):
        network = build(method)
        trainer = SubnetTrainer(network)
        train_task(network, trainer, 0, OPTIMIZERS["adamw"])
        after_0 = [m.scores.detach().clone() for m in network.masks.values()]
        trainer.begin_task(1)
        masks = network.masks.values()
        same = all(torch.equal(a, m.scores) for a, m in zip(after_0, masks, strict=True))
        assert same is kept, method


def test_the_lifecycle_refuses_steps_out_of_order():
    network = build("wsn")
    trainer = SubnetTrainer(network)
    with pytest.raises(ValueError, match="expected task 0, got 1"):
        trainer.begin_task(1)
    with pytest.raises(PhaseError):
        trainer.end_task()
    trainer.begin_task(0)
    with pytest.raises(PhaseError, match="save between tasks"):
        trainer.state_dict()
    with pytest.raises(ValueError, match="SubnetTrainer trains a SubnetNetwork"):
        SubnetTrainer(nn.Linear(2, 2))


def test_the_papers_optimizers():
    network = build("supsup")
    adam = paper_optimizer(network.parameters(), "wsn")
    assert isinstance(adam, torch.optim.Adam) and adam.param_groups[0]["lr"] == 1e-3
    rmsprop = paper_optimizer(network.parameters(), "supsup", protocol="pmnist")
    assert isinstance(rmsprop, torch.optim.RMSprop) and rmsprop.param_groups[0]["lr"] == 1e-4
    trained = {id(p) for p in rmsprop.param_groups[0]["params"]}
    assert not any(id(stored_weight(layer)) in trained for layer in network.layers.values())
