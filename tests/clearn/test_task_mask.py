import torch
from torch import nn

from clearn.network import PackedNetwork
from clearn.packing import TaskPacker
from clearn.task_mask import MASKED_WEIGHT_CACHE_SIZE, TaskMask, owner_dtype_for


def test_owner_type_is_one_byte_up_to_254_tasks_and_widens_after():
    assert owner_dtype_for(253) == torch.uint8  # task 253 is the 254th
    assert owner_dtype_for(254) == torch.int16
    mask = TaskMask(torch.Size([4, 4]))
    mask.assign(253, torch.eye(4, dtype=torch.bool))
    assert mask.owner.dtype == torch.uint8
    mask.assign(299, torch.ones(4, 4, dtype=torch.bool).triu(1))
    assert mask.owner.dtype == torch.int16
    diagonal, upper = torch.eye(4, dtype=torch.bool), torch.ones(4, 4, dtype=torch.bool).triu()
    assert not mask.owned_up_to(252).any()
    assert torch.equal(mask.owned_up_to(298), diagonal)  # task 253's
    assert torch.equal(mask.owned_up_to(299), upper)  # and task 299's


def test_views_show_only_tasks_up_to_the_selected_one():
    mask = TaskMask(torch.Size([1, 4]))
    mask.assign(0, torch.tensor([[True, False, False, False]]))
    mask.assign(1, torch.tensor([[False, True, False, False]]))
    weight = torch.ones(1, 4)
    mask.view_task = 0
    assert mask(weight).tolist() == [[1, 0, 0, 0]]
    mask.view_task = 1
    assert mask(weight).tolist() == [[1, 1, 0, 0]]
    mask.include_free = True
    assert mask(weight).tolist() == [[1, 1, 1, 1]]
    assert mask.visible() is None  # everything visible: no multiply at all


def test_a_300_task_stream_packs_and_each_task_keeps_its_view():
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Linear(40, 100), nn.ReLU())
    net = PackedNetwork(backbone=backbone, feature_size=100, classes_per_task=[2] * 300)
    packer = TaskPacker(net)
    inputs = torch.randn(3, 40)
    answers = {}
    for task in range(300):
        packer.begin_task(task)
        packer.prune(0.01)
        packer.end_task()
        if task in (0, 253, 254, 299):
            answers[task] = net(inputs, task).detach().clone()
    assert net.masks["0"].owner.dtype == torch.int16
    assert net.masks["0"].owned_up_to(299).any() and not net.masks["0"].free().all()
    for task, answer in answers.items():
        assert torch.equal(net(inputs, task), answer)


def test_inference_cache_follows_in_place_updates_and_never_thrashes():
    mask = TaskMask(torch.Size([1, 12]))
    for task in range(12):
        mask.assign(task, torch.arange(12).eq(task).view(1, 12))
    weight = torch.ones(1, 12)
    with torch.no_grad():
        for _ in range(2):  # 12 views cycled twice: more than the cache holds
            for task in range(12):
                mask.view_task = task
                assert mask(weight).sum().item() == task + 1
        weight.mul_(2.0)  # an in-place update (an optimizer step) must not be served stale
        mask.view_task = 2
        assert mask(weight).tolist() == [[2, 2, 2] + [0] * 9]
        other = torch.full((1, 12), 5.0)  # another tensor, same view
        assert mask(other).sum().item() == 15
    assert len(mask._masked) == MASKED_WEIGHT_CACHE_SIZE


def test_a_cached_masked_weight_is_served_without_rebuilding_its_view(monkeypatch):
    mask = TaskMask(torch.Size([1, 12]))
    for task in range(6):
        mask.assign(task, torch.arange(12).eq(task).view(1, 12))
    weight = torch.ones(1, 12)
    views = (0, 1, 2, 3, 4, 5)  # more views than VIEW_CACHE_SIZE: its LRU would thrash
    with torch.no_grad():
        for task in views:
            mask.view_task = task
            mask(weight)
        built = []
        monkeypatch.setattr(TaskMask, "visible", lambda self: built.append(1) or None)
        for task in views:
            mask.view_task = task
            assert mask(weight).sum().item() == task + 1
    assert built == []
