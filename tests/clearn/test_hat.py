import math

import pytest
import torch
from torch import nn

from clearn.frozen import zero_gradient_moves_nothing
from clearn.hat import HatTrainer, LrPlateau, compensation_factor
from clearn.hat_masks import weight_factors
from clearn.hat_network import HatNetwork
from clearn.packing import PhaseError
from scenarios.datasets import load_dataset


def mlp_network(seed: int = 0, inputs: int = 64, hidden: int = 32) -> HatNetwork:
    torch.manual_seed(seed)
    backbone = nn.Sequential(
        nn.Flatten(), nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU()
    )
    return HatNetwork(backbone=backbone, feature_size=hidden, classes_per_task=[5, 5])


def train_task(
    trainer, optimizer, batches, task: int, *, epochs: int = 1, restore: bool | None = None
) -> None:
    """HAT's loop over `batches` of (x, y): anneal, regularise, mask, step, clamp (and
    restore the frozen weights, by default where the optimizer is not plain SGD)."""
    network = trainer.network
    trainer.begin_task(task)
    network.train()
    if restore is None:
        restore = not zero_gradient_moves_nothing(optimizer)
    for _ in range(epochs):
        for step, (x, y) in enumerate(batches):
            trainer.set_step(step, len(batches))
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(network(x, task), y) + trainer.regulariser()
            loss.backward()
            trainer.mask_gradients()
            optimizer.step()
            trainer.after_step(restore=restore)
    trainer.end_task()
    network.eval()


def random_batches(seed: int, count: int = 8) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(16, 64, generator=generator), torch.randint(0, 5, (16,), generator=generator))
        for _ in range(count)
    ]


OPTIMIZERS = {
    "sgd": lambda p: torch.optim.SGD(p, lr=0.05),
    "sgd-momentum": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9),
    "sgd-weight-decay": lambda p: torch.optim.SGD(p, lr=0.05, weight_decay=1e-2),
    "adamw": lambda p: torch.optim.AdamW(p, lr=1e-3),
}


def frozen_and_moved(name: str, *, restore: bool | None = None) -> tuple[int, int, int]:
    """Train two tasks with one optimizer (its state carries over, as Avalanche's does);
    return how many weights or biases with gradient factor 0 changed, how many there are,
    and how many with factor 1 moved."""
    network = mlp_network()
    trainer = HatTrainer(network)
    optimizer = OPTIMIZERS[name](network.parameters())
    train_task(trainer, optimizer, random_batches(0), 0)
    factors = weight_factors(network)
    params = lambda n: (network.layers[n].weight, network.layers[n].bias)  # noqa: E731
    before = {n: [p.detach().clone() for p in params(n)] for n in network.layers}
    train_task(trainer, optimizer, random_batches(1), 1, restore=restore)
    changed = frozen = moved = 0
    for layer, layer_factors in factors.items():
        for factor, old, new in zip(layer_factors, before[layer], params(layer), strict=True):
            zero = factor == 0
            changed += int((new.detach()[zero] != old[zero]).sum())
            frozen += int(zero.sum())
            moved += int((new.detach()[factor == 1] != old[factor == 1]).sum())
    return changed, frozen, moved


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_weights_between_units_earlier_tasks_attend_to_stay_bit_for_bit(name):
    changed, frozen, moved = frozen_and_moved(name)
    assert changed == 0
    assert frozen > 0 and moved > 0


@pytest.mark.parametrize("name", ["sgd-momentum", "sgd-weight-decay", "adamw"])
def test_without_restoring_momentum_and_weight_decay_move_frozen_weights(name):
    changed, frozen, _ = frozen_and_moved(name, restore=False)
    assert changed > 0  # why HatTrainer writes them back under any optimizer but plain SGD


def test_the_regulariser_is_zero_when_no_new_unit_is_used():
    network = mlp_network()
    trainer = HatTrainer(network)
    train_task(trainer, torch.optim.SGD(network.parameters(), lr=0.05), random_batches(0), 0)
    trainer.begin_task(1)
    network.scale = network.s_max
    with torch.no_grad():
        for gate in network.gates.values():  # task 1 opens only units task 0 holds fully
            gate.embeddings[1].copy_(torch.where(gate.cumulative == 1, 6.0, -6.0))
    assert trainer.regulariser().item() == 0.0
    gate = next(iter(network.gates.values()))
    with torch.no_grad():
        gate.embeddings[1][(gate.cumulative < 1).nonzero()[0]] = 6.0  # one new unit
    assert trainer.regulariser().item() > 0.0


def test_the_first_tasks_regulariser_is_c_times_the_mean_gate():
    network = mlp_network()
    trainer = HatTrainer(network, c=0.5)
    trainer.begin_task(0)
    network.scale = 2.0
    gates = torch.cat([torch.sigmoid(2.0 * g.embeddings[0]) for g in network.gates.values()])
    assert trainer.regulariser().item() == pytest.approx(0.5 * gates.mean().item(), rel=1e-6)


def test_the_compensated_embedding_gradient_matches_the_formula_by_hand():
    embedding = torch.tensor([0.5, -2.0, 0.0, 1.0])
    scale, s_max = 2.0, 400.0
    expected = [
        s_max * (math.cosh(max(-50.0, min(50.0, scale * e))) + 1) / (scale * (math.cosh(e) + 1))
        for e in (0.5, -2.0, 0.0, 1.0)
    ]
    factor = compensation_factor(embedding, scale, s_max)
    assert factor.tolist() == pytest.approx(expected, rel=1e-6)
    # At s = 400 the cosh is clamped at 50: e = 1 gives s·e = 400 → cosh(50).
    high = compensation_factor(torch.tensor([1.0]), 400.0, s_max).item()
    assert high == pytest.approx((math.cosh(50.0) + 1) / (math.cosh(1.0) + 1), rel=1e-6)
    # Unclamped, the compensated gradient of σ(s·e) is s_max·σ'(e), whatever s is.
    e = embedding.clone().requires_grad_(True)
    torch.sigmoid(scale * e).sum().backward()
    sigmoid = torch.sigmoid(embedding)
    compensated = e.grad * factor
    expected_gradient = s_max * sigmoid * (1 - sigmoid)
    assert compensated.tolist() == pytest.approx(expected_gradient.tolist(), rel=1e-5)


def test_mask_gradients_compensates_and_after_step_clamps_the_embeddings():
    network = mlp_network()
    trainer = HatTrainer(network)
    trainer.begin_task(0)
    trainer.set_step(3, 8)
    gate = next(iter(network.gates.values()))
    gate.embeddings[0].grad = torch.ones(gate.units)
    expected = compensation_factor(gate.embeddings[0].detach(), network.scale, network.s_max)
    trainer.mask_gradients()
    assert torch.equal(gate.embeddings[0].grad, expected)
    with torch.no_grad():
        gate.embeddings[0][:2] = torch.tensor([9.0, -7.0])
    trainer.after_step(restore=False)
    assert gate.embeddings[0][:2].tolist() == [6.0, -6.0]


def test_the_step_size_falls_by_its_factor_after_patience_epochs_then_stops():
    plateau = LrPlateau(lr=0.05, factor=3.0, patience=2, lr_min=0.005)
    history = [plateau.after_epoch(loss) for loss in (1.0, 0.9, 0.95, 0.95, 0.92, 0.91)]
    assert history[:2] == [(True, False), (True, False)]
    assert plateau.lr == pytest.approx(0.05 / 9)
    assert plateau.after_epoch(0.99) == (False, False)
    assert plateau.after_epoch(0.99) == (False, True)  # 0.05/27 < lr_min


def test_lifecycle_steps_out_of_order_are_refused():
    network = mlp_network()
    trainer = HatTrainer(network)
    with pytest.raises(PhaseError, match="call begin_task first"):
        trainer.set_step(0, 1)
    with pytest.raises(ValueError, match="expected task 0"):
        trainer.begin_task(1)
    trainer.begin_task(0)
    with pytest.raises(PhaseError, match="still training"):
        trainer.begin_task(0)
    with pytest.raises(ValueError, match="c must be ≥ 0"):
        HatTrainer(network, c=-1.0)


def test_task_0s_outputs_drift_near_zero_after_task_1(capsys):
    """HAT forgets near zero by design, not exactly: a gate at s_max is not exactly 0 or 1,
    so weights a task uses at 0.9999 still move. Measured on split digits (0–4, 5–9), MLP
    64-100-100, HAT's SGD at lr 0.05, batch 64, 30 epochs a task (measured: a max change of 0 to
    7e-9 in task 0's logits, no prediction changed)."""
    digits = load_dataset("digits")
    x, y = digits.train_images.float().flatten(1) / 16, digits.train_labels
    network = mlp_network(inputs=64, hidden=100)
    trainer = HatTrainer(network)
    optimizer = torch.optim.SGD(network.parameters(), lr=0.05)
    tasks = [(x[y < 5], y[y < 5]), (x[y >= 5], y[y >= 5] - 5)]
    batches = [
        [(tx[i : i + 64], ty[i : i + 64]) for i in range(0, len(tx), 64)] for tx, ty in tasks
    ]
    train_task(trainer, optimizer, batches[0], 0, epochs=30)
    with torch.no_grad():
        before = network(tasks[0][0], 0)
    train_task(trainer, optimizer, batches[1], 1, epochs=30)
    with torch.no_grad():
        after = network(tasks[0][0], 0)
    drift = (after - before).abs().max().item()
    relative = drift / before.abs().max().item()
    flips = (after.argmax(1) != before.argmax(1)).float().mean().item()
    with capsys.disabled():
        print(f"\nHAT drift of task 0's logits after task 1: max {drift:.3g} "
              f"({relative:.2%} of the largest logit), predictions changed {flips:.2%}")
    assert relative < 1e-3 and flips < 0.005
