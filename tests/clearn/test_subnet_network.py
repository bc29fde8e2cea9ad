import pytest
import torch
from torch import nn

from clearn.export import export_task
from clearn.subnet_network import SubnetNetwork
from clearn.subnet_training import SubnetTrainer
from clearn.task_inference import infer_task
from scenarios.datasets import load_dataset


def build(method: str = "wsn", *, norm: bool = False, tasks: int = 2, seed: int = 0):
    torch.manual_seed(seed)
    layers = [nn.Flatten(), nn.Linear(64, 48)]
    layers += [nn.BatchNorm1d(48)] if norm else []
    layers += [nn.ReLU(), nn.Linear(48, 32), nn.ReLU()]
    return SubnetNetwork(
        backbone=nn.Sequential(*layers), method=method, feature_size=32,
        classes_per_task=[10] * tasks, per_task_norm=norm, seed=seed,
    )  # fmt: skip


@pytest.fixture(scope="module")
def permuted_digits():
    """Three tasks of sklearn's digits: as they are, and two fixed pixel permutations."""
    digits = load_dataset("digits")
    images = digits.train_images.float().flatten(1) / 16
    test = digits.test_images.float().flatten(1) / 16
    generator = torch.Generator().manual_seed(0)
    orders = [torch.arange(64)] + [torch.randperm(64, generator=generator) for _ in range(2)]
    return [
        (images[:, o], digits.train_labels, test[:, o], digits.test_labels) for o in orders
    ]


def train(network, tasks, *, steps: int = 150, lr: float = 0.05) -> SubnetNetwork:
    trainer = SubnetTrainer(network)
    for task, (inputs, labels, _, _) in enumerate(tasks):
        optimizer = torch.optim.Adam([p for p in network.parameters() if p.requires_grad], lr=lr)
        trainer.begin_task(task)
        network.train()
        generator = torch.Generator().manual_seed(task)
        for _ in range(steps):
            rows = torch.randint(len(inputs), (64,), generator=generator)
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(network(inputs[rows], task), labels[rows])
            loss.backward()
            optimizer.step()
            trainer.restore_frozen()
        trainer.end_task()
    network.eval()
    return network


@pytest.fixture(scope="module")
def trained(permuted_digits):
    """A WSN network with per-task BatchNorm and a SupSup one, each trained on three tasks."""
    return {
        "wsn": train(build("wsn", norm=True, tasks=3), permuted_digits, steps=40),
        "supsup": train(build("supsup", tasks=3), permuted_digits),
    }


@pytest.mark.parametrize("method", ["wsn", "supsup"])
def test_a_mixed_batch_equals_per_task_calls(trained, permuted_digits, method):
    network = trained[method]
    inputs = torch.cat([task[2][:7] for task in permuted_digits])
    labels = torch.tensor([2, 0, 1] * 7)
    with torch.no_grad():
        mixed = network(inputs, labels)
        for task in range(3):
            rows = labels == task
            assert torch.equal(mixed[rows], network(inputs[rows], task))


@pytest.mark.parametrize("method", ["wsn", "supsup"])
def test_an_exported_task_is_a_plain_dense_module_with_the_same_logits(
    trained, permuted_digits, method
):
    network = trained[method]
    for task in range(3):
        exported = export_task(network, task).eval()
        assert not any("parametrizations" in key for key in exported.state_dict())
        inputs = permuted_digits[task][2][:32]
        with torch.no_grad():
            assert torch.equal(exported(inputs), network(inputs, task))


@pytest.mark.parametrize("method", ["wsn", "supsup"])
def test_a_state_dict_loads_into_a_fresh_network_with_identical_outputs(
    trained, permuted_digits, method
):
    network = trained[method]
    fresh = build(method, norm=method == "wsn", tasks=3, seed=1)
    fresh.load_state_dict(network.state_dict())
    fresh.eval()
    assert fresh.trained_tasks == 3
    inputs = permuted_digits[1][2][:32]
    with torch.no_grad():
        for task in range(3):
            assert torch.equal(fresh(inputs, task), network(inputs, task))


def test_a_checkpoint_of_another_method_or_density_is_refused(trained):
    state = trained["supsup"].state_dict()
    with pytest.raises(ValueError, match="build the network alike"):
        build("wsn", tasks=3).load_state_dict(state)


def block_tasks(seed: int) -> list[tuple[torch.Tensor, ...]]:
    """Three clearly different tasks: each on its own block of 16 of the 64 input features
    (zero elsewhere), 4 classes by a random linear rule; 400 training, 200 test examples."""
    generator = torch.Generator().manual_seed(seed)
    tasks = []
    for task in range(3):
        inputs = torch.zeros(600, 64)
        block = slice(16 * task, 16 * task + 16)
        inputs[:, block] = torch.randn(600, 16, generator=generator) + 1.0
        labels = (inputs[:, block] @ torch.randn(16, 4, generator=generator)).argmax(1)
        tasks.append((inputs[:400], labels[:400], inputs[400:], labels[400:]))
    return tasks


def test_one_shot_inference_finds_each_supsup_task_of_clearly_different_tasks():
    tasks = block_tasks(seed=2)
    network = train(build("supsup", tasks=3, seed=2), tasks)
    for task, (_, _, inputs, _) in enumerate(tasks):
        for batch in inputs.split(50):
            guess = infer_task(network, batch, method="one-shot")
            assert bool((guess.tasks == task).all()), task


def test_capacity_counts_what_each_task_first_selected(trained):
    network = trained["wsn"]
    capacity = network.capacity()
    total = sum(mask.scores.numel() for mask in network.masks.values())
    used = sum(int(m.sum()) for m in network.used_masks().values())
    assert capacity.owned[0] == pytest.approx(0.5, abs=1 / total)  # the first task: its c
    assert sum(capacity.owned) == pytest.approx(used / total)
    assert capacity.free == pytest.approx(1 - used / total)


def test_subnet_layers_lose_their_biases_and_a_wrong_method_is_named():
    network = build("wsn")
    assert all(layer.bias is None for layer in network.layers.values())
    with pytest.raises(ValueError, match="method must be one of wsn, supsup"):
        build("hat")
