import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from clearn.subnet_mask import SubnetMask, check_density, pack_bits, top_share, unpack_bits


@pytest.mark.parametrize("shape", [(3, 5), (8,), (2, 3, 3, 3), (1,)])
def test_packed_bits_round_trip(shape):
    mask = torch.rand(shape, generator=torch.Generator().manual_seed(0)) < 0.4
    packed = pack_bits(mask)
    assert packed.dtype == torch.uint8 and packed.numel() == -(-mask.numel() // 8)
    assert torch.equal(unpack_bits(packed, mask.shape), mask)


@pytest.mark.parametrize("density", [0.03, 0.1, 0.3, 0.5, 1.0])
def test_the_top_share_has_exactly_round_c_n_entries_even_with_ties(density):
    scores = torch.tensor([1.0, -1.0, 1.0, 0.5] * 25)  # ties everywhere
    assert int(top_share(scores, density).sum()) == max(1, round(density * 100))


def test_the_scores_learn_through_the_straight_through_estimator():
    layer = nn.Linear(4, 3, bias=False)
    mask = SubnetMask(layer.weight.shape, density=0.5)
    parametrize.register_parametrization(layer, "weight", mask)
    mask.live = True
    layer(torch.randn(2, 4)).sum().backward()
    assert mask.scores.grad is not None and bool((mask.scores.grad != 0).any())
    weight_grad = layer.parametrizations.weight.original.grad
    assert bool((weight_grad[~mask.live_mask()] == 0).all())  # unselected weights get none


def test_a_stored_view_is_the_weight_where_selected_and_exact_zero_elsewhere():
    layer = nn.Linear(6, 4, bias=False)
    mask = SubnetMask(layer.weight.shape, density=0.25)
    parametrize.register_parametrization(layer, "weight", mask)
    kept = mask.store(0)
    assert int(kept.sum()) == 6
    mask.view_task = 0
    weight = layer.parametrizations.weight.original
    assert torch.equal(layer.weight, torch.where(kept, weight, torch.zeros(())))
    with pytest.raises(ValueError, match="in task order"):
        mask.store(2)


@pytest.mark.parametrize("density", [0.0, 1.5, -0.1, True])
def test_a_density_outside_0_1_is_refused(density):
    with pytest.raises(ValueError, match=r"must be in \(0, 1\]"):
        check_density(density)
