import pytest
import torch
from torch import nn

from clearn.mask_capacity import (
    mask_capacity,
    network_mask_capacity,
    ownership_mask_capacity,
    subnet_mask_capacity,
)
from clearn.network import PackedNetwork
from clearn.subnet_mask import pack_bits
from clearn.subnet_network import SubnetNetwork


def test_the_formula_on_a_hand_checked_case():
    # 6 of 8 weights used, 16 mask bits: 6/8 + 16/(32·8) = 0.75 + 0.0625
    assert mask_capacity(used=6, total=8, mask_bits=16) == pytest.approx(0.8125)


def test_subnet_masks_count_the_union_and_one_bit_per_task_per_weight():
    network = SubnetNetwork(
        backbone=nn.Sequential(nn.Linear(4, 4)), method="wsn", density=0.25, feature_size=4,
        classes_per_task=[2, 2],
    )  # fmt: skip
    (mask,) = network.masks.values()
    first = torch.zeros(16, dtype=torch.bool)
    first[[0, 1, 2, 3]] = True
    second = torch.zeros(16, dtype=torch.bool)
    second[[2, 3, 4, 5]] = True  # two reused, two new
    mask.bits = torch.stack([pack_bits(first), pack_bits(second)])
    network.trained_tasks = 2
    # used 6 of 16; storage 2 bits a weight: 6/16 + 2·16/(32·16) = 0.375 + 0.0625
    assert subnet_mask_capacity(network) == pytest.approx(0.4375)
    assert network_mask_capacity(network) == pytest.approx(0.4375)
    capacity = network.capacity()
    assert capacity.owned == pytest.approx((0.25, 0.125)) and capacity.free == 0.625


def test_owner_codes_count_trained_owners_and_the_codes_bits():
    owners = [torch.tensor([0, 1, 1, 2, 0, 0, 0, 3], dtype=torch.uint8)]  # code 3: untrained
    # 3 of 8 owned by tasks 1..2; 8 bits a weight: 3/8 + 8/32 = 0.375 + 0.25
    assert ownership_mask_capacity(owners, tasks=2) == pytest.approx(0.625)
    wide = [owners[0].to(torch.int16)]
    assert ownership_mask_capacity(wide, tasks=2) == pytest.approx(0.375 + 0.5)


def test_an_epn_network_reports_the_same_definition():
    network = PackedNetwork(backbone=nn.Sequential(nn.Linear(4, 2)), feature_size=2,
                          classes_per_task=[2], alpha=1.0)  # fmt: skip
    (mask,) = network.masks.values()
    mask.assign(0, torch.tensor([[True] * 4, [False] * 4]))
    network.trained_tasks = 1
    assert network_mask_capacity(network) == pytest.approx(0.5 + 0.25)


def test_impossible_counts_are_refused():
    with pytest.raises(ValueError, match="positive number of weights"):
        mask_capacity(used=0, total=0, mask_bits=0)
    with pytest.raises(ValueError, match="used weights must be in 0..total"):
        mask_capacity(used=9, total=8, mask_bits=0)
