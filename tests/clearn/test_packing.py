import math

import pytest
import torch
from torch import nn

from clearn import powerprop
from clearn.export import export_task
from clearn.frozen import zero_gradient_moves_nothing
from clearn.network import PackedNetwork, UnknownTaskError
from clearn.packing import CapacityExhaustedError, Phase, PhaseError, TaskPacker
from clearn.powerprop import effective_weights, stored_weight
from clearn.task_mask import task_masks

INPUTS = 12


def network(
    *, tasks: int = 3, alpha: float = 1.0, batch_norm: bool = False, device: str = "cpu"
) -> PackedNetwork:
    torch.manual_seed(0)
    if batch_norm:
        backbone = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(4 * 4 * 3, 16),
            nn.ReLU(),
        )
    else:
        backbone = nn.Sequential(nn.Flatten(), nn.Linear(INPUTS, 16), nn.ReLU())
    return PackedNetwork(
        backbone=backbone, feature_size=16, classes_per_task=[3] * tasks, alpha=alpha
    ).to(device)


def device_of(net: nn.Module) -> torch.device:
    return next(net.parameters()).device


def task_data(task: int, count: int = 96, device="cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """The same data on every device (drawn on the CPU)."""
    generator = torch.Generator().manual_seed(100 + task)
    inputs = torch.randn(count, 1, 4, 3, generator=generator)
    labels = (inputs.flatten(1)[:, task] > 0).long() + (inputs.flatten(1)[:, task + 1] > 0).long()
    return inputs.to(device), labels.to(device)


def train_task(
    packer: TaskPacker,
    optimizer: torch.optim.Optimizer,
    task: int,
    steps: int = 30,
    kept: float = 0.4,
    zero_gradients: bool = False,
) -> None:
    inputs, labels = task_data(task, device=device_of(packer.network))
    packer.begin_task(task)
    packer.network.train()
    for step in range(steps):
        rows = slice(16 * (step % 6), 16 * (step % 6) + 16)
        loss = nn.functional.cross_entropy(packer.network(inputs[rows], task), labels[rows])
        optimizer.zero_grad()
        loss.backward()
        if zero_gradients:
            packer.zero_frozen_gradients()
        optimizer.step()
        packer.restore_frozen(parameters=not zero_gradients)
    packer.prune(kept)
    packer.end_task()


def whole_batch_steps(
    packer: TaskPacker, optimizer: torch.optim.Optimizer, task: int, steps: int
) -> None:
    """`steps` optimizer steps on all of task `task`'s data, within the packer's round."""
    inputs, labels = task_data(task)
    packer.network.train()
    for _ in range(steps):
        loss = nn.functional.cross_entropy(packer.network(inputs, task), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        packer.restore_frozen()


def logits(net: PackedNetwork, task: int) -> torch.Tensor:
    net.eval()
    with torch.no_grad():
        return net(task_data(task, device=device_of(net))[0], task)


OPTIMIZERS = {
    "sgd-momentum-decay": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-2),
    "adam": lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=1e-3),
    "adamw": lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1),
}


@pytest.mark.parametrize("optimizer_name", OPTIMIZERS)
@pytest.mark.parametrize("alpha", [1.0, 3.0])
@pytest.mark.parametrize("batch_norm", [False, True])
# Kept 0.05: earlier tasks own 5% then 9.75% of each layer, restored by index; 0.4: 40% then
# 64%, restored by bitwise passes (SPARSE_RESTORE_BELOW); 0.85 then 98%.
@pytest.mark.parametrize("kept", [0.05, 0.4, 0.85])
def test_earlier_tasks_are_bit_for_bit_unchanged_under_any_optimizer(
    optimizer_name, alpha, batch_norm, kept, device: str = "cpu"
):
    net = network(alpha=alpha, batch_norm=batch_norm, device=device)
    packer = TaskPacker(net)
    # One optimizer for the whole stream: its momentum and moments carry over between tasks.
    optimizer = OPTIMIZERS[optimizer_name](net.parameters())
    train_task(packer, optimizer, 0, kept=kept)
    first = logits(net, 0)
    train_task(packer, optimizer, 1, kept=kept)
    second = logits(net, 1)
    train_task(packer, optimizer, 2, kept=kept)
    assert torch.equal(logits(net, 0), first)
    assert torch.equal(logits(net, 1), second)


@pytest.mark.parametrize("alpha", [1.0, 3.0])
@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("kept", [0.05, 0.4, 0.85])
def test_under_plain_sgd_zeroed_gradients_keep_earlier_tasks_bit_for_bit(
    alpha, batch_norm, kept, device: str = "cpu"
):
    net = network(alpha=alpha, batch_norm=batch_norm, device=device)
    packer = TaskPacker(net)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    assert zero_gradient_moves_nothing(optimizer)
    train_task(packer, optimizer, 0, kept=kept, zero_gradients=True)
    first = logits(net, 0)
    train_task(packer, optimizer, 1, kept=kept, zero_gradients=True)
    second = logits(net, 1)
    train_task(packer, optimizer, 2, kept=kept, zero_gradients=True)
    assert torch.equal(logits(net, 0), first)
    assert torch.equal(logits(net, 1), second)


@pytest.mark.parametrize("optimizer_name", OPTIMIZERS)
def test_optimizers_that_move_zero_gradients_are_told_apart(optimizer_name):
    net = network()
    packer = TaskPacker(net)
    optimizer = OPTIMIZERS[optimizer_name](net.parameters())
    assert not zero_gradient_moves_nothing(optimizer)
    # Why: with zeroed gradients and nothing restored, their momentum, decay or moments do
    # move the first task's weights.
    train_task(packer, optimizer, 0, zero_gradients=True)
    first = logits(net, 0)
    train_task(packer, optimizer, 1, zero_gradients=True)
    assert not torch.equal(logits(net, 0), first)


@pytest.mark.parametrize(
    "options", [{"maximize": True}, {"lr": math.inf}, {"momentum": 0.5}, {"weight_decay": 1e-4}]
)
def test_plain_sgd_only_moves_nothing_on_a_zero_gradient(options):
    optimizer = torch.optim.SGD(network().parameters(), **{"lr": 0.1, **options})
    assert not zero_gradient_moves_nothing(optimizer)


def test_later_tasks_do_use_what_earlier_tasks_left_free():
    net = network()
    packer = TaskPacker(net)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    train_task(packer, optimizer, 0)
    owners_after_first = net.masks["1"].owner.clone()
    train_task(packer, optimizer, 1)
    owner = net.masks["1"].owner
    assert torch.equal(owner[owners_after_first == 1], owners_after_first[owners_after_first == 1])
    assert int((owner == 2).sum()) == round(0.4 * int((owners_after_first == 0).sum()))
    one_weight = 1 / net.masks["1"].owner.numel()  # counts are rounded to whole weights
    assert net.capacity().owned == pytest.approx([0.4, 0.24], abs=one_weight)
    assert net.capacity().free == pytest.approx(0.36, abs=one_weight)


def test_mixed_task_batch_equals_per_task_batches(device: str = "cpu"):
    net = network(device=device)
    packer = TaskPacker(net)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    for task in range(3):
        train_task(packer, optimizer, task)
    net.eval()
    inputs = torch.randn(30, 1, 4, 3).to(device)
    tasks = torch.tensor([0, 2, 1] * 10).to(device)
    with torch.no_grad():
        mixed = net(inputs, tasks)
        for task in range(3):
            assert torch.equal(mixed[tasks == task], net(inputs[tasks == task], task))


def test_untrained_task_is_a_clear_error():
    net = network()
    with pytest.raises(UnknownTaskError, match="task 0 has not been trained"):
        net(torch.randn(2, 1, 4, 3), 0)
    packer = TaskPacker(net)
    train_task(packer, torch.optim.SGD(net.parameters(), lr=0.1), 0)
    with pytest.raises(UnknownTaskError, match=r"trained tasks: 0\.\.0"):
        net(torch.randn(2, 1, 4, 3), torch.tensor([0, 1]))


def test_exported_subnetwork_computes_the_same_logits(device: str = "cpu"):
    net = network(alpha=2.0, device=device)
    packer = TaskPacker(net)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    for task in range(2):
        train_task(packer, optimizer, task)
    for task in range(2):
        dense = export_task(net, task).eval()
        assert not task_masks(dense)
        with torch.no_grad():
            torch.testing.assert_close(
                dense(task_data(task, device=device)[0]), logits(net, task), rtol=0, atol=1e-6
            )


def test_checkpoint_reloads_into_identical_behaviour(device: str = "cpu"):
    net = network(alpha=3.0, device=device)
    packer = TaskPacker(net)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    for task in range(2):
        train_task(packer, optimizer, task)
    state, packer_state = net.state_dict(), packer.state_dict()
    restored = network(alpha=3.0, device=device)
    restored.load_state_dict(state)
    restored_packer = TaskPacker(restored)
    restored_packer.load_state_dict(packer_state)
    assert restored.trained_tasks == 2
    for task in range(2):
        assert torch.equal(logits(restored, task), logits(net, task))
    with pytest.raises(ValueError, match="alpha=3.0"):
        network(alpha=2.0).load_state_dict(state)


def test_lifecycle_steps_out_of_order_raise_phase_errors():
    packer = TaskPacker(network())
    with pytest.raises(PhaseError, match="needs phase training"):
        packer.prune(0.5)
    with pytest.raises(ValueError, match="expected task 0"):
        packer.begin_task(1)
    packer.begin_task(0)
    assert packer.phase is Phase.TRAINING
    with pytest.raises(PhaseError, match="between tasks"):
        packer.state_dict()


def test_running_out_of_capacity_names_the_options_or_trains_the_head_only():
    net = network()
    packer = TaskPacker(net)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    packer.begin_task(0)
    packer.prune(1.0)
    packer.end_task()
    assert net.capacity().free == 0.0
    with pytest.raises(
        CapacityExhaustedError, match="lower gamma.*bigger backbone.*allow_frozen_features"
    ):
        packer.begin_task(1)
    before = logits(net, 0)
    packer.begin_task(1, allow_frozen_features=True)
    head_before = net.heads[1].weight.detach().clone()
    whole_batch_steps(packer, optimizer, 1, 5)
    packer.prune(0.0)
    packer.end_task()
    assert not torch.equal(net.heads[1].weight, head_before)
    assert torch.equal(logits(net, 0), before)


def _head_only_round(
    *, alpha: float, batch_norm: bool, through_backbone: bool
) -> tuple[PackedNetwork, TaskPacker]:
    """Task 0 keeps every weight; task 1 trains on frozen features, with autograd through
    the backbone when `through_backbone` (the path before head-only training)."""
    net = network(alpha=alpha, batch_norm=batch_norm)
    packer = TaskPacker(net)
    train_task(packer, torch.optim.SGD(net.parameters(), lr=0.1), 0, kept=1.0)
    packer.begin_task(1, allow_frozen_features=True)
    net.head_only = net.head_only and not through_backbone
    whole_batch_steps(packer, torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9), 1, 5)
    return net, packer


@pytest.mark.parametrize("alpha", [1.0, 3.0])
@pytest.mark.parametrize("batch_norm", [False, True])
def test_a_task_on_frozen_features_trains_its_head_alone_as_through_the_backbone(
    alpha, batch_norm
):
    head_only, _ = _head_only_round(alpha=alpha, batch_norm=batch_norm, through_backbone=False)
    through, _ = _head_only_round(alpha=alpha, batch_norm=batch_norm, through_backbone=True)
    assert head_only.head_only
    assert all(w.grad is None for w in head_only.masked_weights().values())
    for (name, mine), (_, theirs) in zip(
        head_only.state_dict().items(), through.state_dict().items(), strict=True
    ):
        if isinstance(mine, torch.Tensor):
            assert torch.equal(mine, theirs), name
    assert not torch.equal(head_only.heads[1].weight, network().heads[1].weight)


@pytest.mark.parametrize("through_backbone", [False, True])
def test_a_head_only_task_computes_the_effective_weights_once(through_backbone, monkeypatch):
    calls = []
    original = powerprop._SignedPower.forward

    def counted(ctx, theta, alpha, scale):
        calls.append(theta.shape)
        return original(ctx, theta, alpha, scale)

    monkeypatch.setattr(powerprop._SignedPower, "forward", staticmethod(counted))
    net, packer = _head_only_round(alpha=3.0, batch_norm=False, through_backbone=through_backbone)
    layers = len(net.masks)
    calls.clear()
    whole_batch_steps(packer, torch.optim.SGD(net.parameters(), lr=0.1), 1, 5)
    assert len(calls) == (5 * layers if through_backbone else 0)  # cached before the steps


def test_per_task_normalisation_keeps_the_backbone_in_a_frozen_features_task():
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Flatten(), nn.Linear(INPUTS, 16), nn.BatchNorm1d(16), nn.ReLU())
    net = PackedNetwork(backbone=backbone, feature_size=16, classes_per_task=[3, 3],
                        per_task_norm=True)  # fmt: skip
    packer = TaskPacker(net)
    train_task(packer, torch.optim.SGD(net.parameters(), lr=0.1), 0, kept=1.0)
    packer.begin_task(1, allow_frozen_features=True)
    assert packer.frozen_features and not net.head_only  # its BatchNorm copy trains
    norm = net.norms["2"].norms[1]
    before = norm.weight.detach().clone()
    whole_batch_steps(packer, torch.optim.SGD(net.parameters(), lr=0.1), 1, 3)
    assert not torch.equal(norm.weight, before)
    packer.prune(0.0)
    packer.end_task()
    assert not net.head_only


@pytest.mark.parametrize("alpha", [1.0, 3.0])
def test_free_weights_are_redrawn_per_task_or_kept_as_trained(alpha):
    for redraw in (True, False):
        net = network(alpha=alpha)
        packer = TaskPacker(net, redraw_free=redraw)
        train_task(packer, torch.optim.SGD(net.parameters(), lr=0.1), 0)
        mask = net.masks["1"]
        freed = mask.owner == 0
        before = stored_weight(net.backbone[1]).detach().clone()
        packer.begin_task(1)
        after = stored_weight(net.backbone[1]).detach()
        assert torch.equal(after[~freed], before[~freed])  # task 0's weights untouched
        assert torch.equal(after[freed], before[freed]) is not redraw


@pytest.mark.parametrize("alpha", [1.0, 2.0])
def test_init_scale_multiplies_the_effective_initial_weights(alpha):
    spreads = {}
    for scale in (1.0, 0.25):
        net = network(alpha=alpha)
        TaskPacker(net, seed=3, init_scale=scale).begin_task(0)
        with net.viewing(None):
            spreads[scale] = float(effective_weights(net.backbone)["1"].abs().max())
    assert spreads[0.25] == pytest.approx(0.25 * spreads[1.0], rel=1e-5)


def _trained_for_search() -> tuple[TaskPacker, torch.Tensor, torch.Tensor]:
    net = network(tasks=1)
    packer = TaskPacker(net)
    inputs, labels = task_data(0)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.2)
    packer.begin_task(0)
    for _ in range(60):
        loss = nn.functional.cross_entropy(net(inputs, 0), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return packer, inputs, labels


def _accuracy(net: PackedNetwork, inputs: torch.Tensor, labels: torch.Tensor) -> float:
    with torch.no_grad():
        return float((net(inputs, 0).argmax(1) == labels).float().mean())


def test_a_guard_can_only_make_the_search_keep_more():
    packer, inputs, labels = _trained_for_search()

    def validation() -> float:  # a tiny validation set: 8 examples
        return _accuracy(packer.network, inputs[:8], labels[:8])

    def training() -> float:
        return _accuracy(packer.network, inputs, labels)

    alone = packer.search(validation, gamma=0.95)
    guarded = packer.search(validation, gamma=0.95, guard=training)
    assert guarded.kept >= alone.kept
    assert guarded.score >= guarded.threshold
    at_kept = packer.evaluate_candidate(packer.candidate_masks(guarded.kept), training)
    assert at_kept >= 0.95 * training()
    failing = [k for k, s in guarded.evaluations.items() if s == -1.0]
    assert all(k < guarded.kept for k in failing)


def test_the_guard_runs_only_on_candidates_that_pass_validation():
    packer, inputs, labels = _trained_for_search()
    guarded_kept: list[float] = []

    def validation() -> float:
        return _accuracy(packer.network, inputs[:8], labels[:8])

    def training() -> float:
        guarded_kept.append(packer.network.masks["1"].candidate is not None)
        return _accuracy(packer.network, inputs, labels)

    result = packer.search(validation, gamma=0.95, guard=training)
    passing = [k for k, s in result.evaluations.items() if s >= result.threshold or s == -1.0]
    # The unpruned reference, then one guard call per candidate that passed validation.
    assert guarded_kept == [False] + [True] * len(passing)
    assert len(passing) < len(result.evaluations)


def test_a_guard_that_never_holds_keeps_everything():
    packer, inputs, labels = _trained_for_search()
    calls = iter(range(10_000))

    def guard() -> float:  # the unpruned network scores 1, every candidate 0
        return 1.0 if next(calls) == 0 else 0.0

    result = packer.search(
        lambda: _accuracy(packer.network, inputs, labels), gamma=0.9, guard=guard
    )
    assert result.kept == 1.0


def test_a_non_finite_weight_outside_a_view_does_not_leak_into_it():
    net = network()
    packer = TaskPacker(net)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    train_task(packer, optimizer, 0)
    before = logits(net, 0)
    layer = dict(net.backbone.named_modules())["1"]
    free = net.masks["1"].owner == 0
    with torch.no_grad():
        stored_weight(layer)[free] = float("nan")
    assert torch.equal(logits(net, 0), before)


def two_layer_network(tasks: int = 3) -> PackedNetwork:
    torch.manual_seed(0)
    backbone = nn.Sequential(
        nn.Flatten(), nn.Linear(INPUTS, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU()
    )
    return PackedNetwork(backbone=backbone, feature_size=16, classes_per_task=[3] * tasks)


def test_later_tasks_can_train_the_first_layer_only_reusing_the_deeper_ones():
    net = two_layer_network()
    packer = TaskPacker(net, train_layers="first")
    optimizer = OPTIMIZERS["sgd-momentum-decay"](net.parameters())
    first, deeper = list(net.masks)
    train_task(packer, optimizer, 0)
    assert all(bool((m.owned_up_to(0)).any()) for m in net.masks.values())  # task 0: both
    task_0 = logits(net, 0)
    deeper_free = net.masks[deeper].free().clone()
    packer.begin_task(1)
    with net.viewing(1):
        assert net.masks[first].include_free and not net.masks[deeper].include_free
        assert not net.layers[deeper].weight[deeper_free].any()  # hidden from the task
    assert not packer.trained_free_weights()[deeper].any()
    whole_batch_steps(packer, optimizer, 1, 30)
    packer.prune(0.4)
    packer.end_task()
    new = {name: m.owned_up_to(1) & ~m.owned_up_to(0) for name, m in net.masks.items()}
    assert new[first].any() and not new[deeper].any()
    assert torch.equal(net.masks[deeper].free(), deeper_free)
    assert torch.equal(logits(net, 0), task_0)


def test_a_full_first_layer_puts_a_first_layer_task_on_frozen_features():
    net = two_layer_network()
    packer = TaskPacker(net, train_layers="first")
    first, deeper = list(net.masks)
    train_task(packer, torch.optim.SGD(net.parameters(), lr=0.1), 0)
    net.masks[first].assign(0, net.masks[first].free())
    assert net.masks[deeper].free().any()  # deeper weights are still free
    with pytest.raises(CapacityExhaustedError, match="allow_frozen_features"):
        packer.begin_task(1)
    packer.begin_task(1, allow_frozen_features=True)
    assert packer.frozen_features
    assert not any(mask.include_free for mask in net.masks.values())
    with pytest.raises(ValueError, match="train_layers must be 'all' or 'first'"):
        TaskPacker(net, train_layers="last")


def test_parameters_frozen_whole_take_no_gradient_while_a_task_trains():
    net = network()
    packer = TaskPacker(net)
    user_frozen = net.heads[2].bias
    user_frozen.requires_grad_(False)
    train_task(packer, torch.optim.SGD(net.parameters(), lr=0.1), 0)
    stale = net.heads[0].weight
    stale.grad = torch.ones_like(stale)  # left over: a momentum step would move it
    packer.begin_task(1)
    held = set(map(id, packer.held_parameters))
    assert id(stale) in held and stale.grad is None
    assert id(net.backbone[1].bias) in held  # shared parameters, from the second task on
    assert id(user_frozen) not in held and id(net.heads[1].weight) not in held
    loss = net(task_data(1)[0], 1).sum() + net(task_data(1)[0], 0).sum()
    loss.backward()
    assert stale.grad is None and net.heads[1].weight.grad is not None
    packer.prune(0.4)
    packer.end_task()
    assert stale.requires_grad and net.backbone[1].bias.requires_grad
    assert not user_frozen.requires_grad
