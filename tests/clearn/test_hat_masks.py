import pytest
import torch
from torch import nn

from clearn.hat_masks import (
    hat_capacity,
    hat_storage_fraction,
    hat_used_fraction,
    input_side,
    weight_factors,
)
from clearn.hat_network import HatNetwork


def tiny() -> HatNetwork:
    """Linear 3→2, ReLU, Linear 2→2: 10 weights, 4 units."""
    network = HatNetwork(
        backbone=nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 2)),
        feature_size=2,
        classes_per_task=[2, 2],
    )
    network.trace(torch.zeros(1, 3))
    return network


def set_embeddings(network: HatNetwork, task: int, first: list[float], second: list[float]):
    with torch.no_grad():
        network.gate("0").embeddings[task].copy_(torch.tensor(first))
        network.gate("2").embeddings[task].copy_(torch.tensor(second))


def test_the_gradient_factor_is_one_minus_the_smaller_cumulative_gate_of_its_units():
    network = tiny()
    network.gate("0").cumulative.copy_(torch.tensor([1.0, 0.5]))
    network.gate("2").cumulative.copy_(torch.tensor([1.0, 0.0]))
    factors = weight_factors(network)
    first_weight, first_bias = factors["0"]
    assert first_weight.tolist() == [[0.0] * 3, [0.5] * 3]  # the input side is 1
    assert first_bias.tolist() == [0.0, 0.5]
    second_weight, second_bias = factors["2"]
    assert second_weight.tolist() == [[0.0, 0.5], [1.0, 1.0]]
    assert second_bias.tolist() == [0.0, 1.0]


def test_a_linear_layer_after_a_flatten_takes_each_channels_gate_per_position():
    backbone = nn.Sequential(nn.Conv2d(1, 2, 1), nn.Flatten(), nn.Linear(2 * 2 * 2, 3))
    network = HatNetwork(backbone=backbone, feature_size=3, classes_per_task=[2])
    network.trace(torch.zeros(1, 1, 2, 2))
    values = {"0": torch.tensor([0.25, 1.0]), "2": torch.ones(3)}
    assert input_side(network, "2", values).tolist() == [0.25] * 4 + [1.0] * 4


def test_capacity_counts_weights_some_task_uses_plus_the_embeddings_storage():
    network = tiny()
    set_embeddings(network, 0, [1.0, -1.0], [1.0, 1.0])
    network.trained_tasks = 1
    # Task 0: layer 1's row 0 (3 weights), layer 2's column 0 (2): 5 of 10 weights.
    assert hat_used_fraction(network) == 0.5
    assert hat_storage_fraction(network) == pytest.approx(4 / 10)  # 4 float32 per task
    set_embeddings(network, 1, [-1.0, 1.0], [1.0, -1.0])
    network.trained_tasks = 2
    # Task 1 adds layer 1's row 1 (3) and weight (0, 1) of layer 2: 9 of 10.
    assert hat_used_fraction(network) == pytest.approx(0.9)
    assert hat_capacity(network) == pytest.approx(0.9 + 8 / 10)


def test_factors_need_the_traced_sources():
    network = HatNetwork(
        backbone=nn.Sequential(nn.Linear(3, 2)), feature_size=2, classes_per_task=[2]
    )
    with pytest.raises(ValueError, match="run one forward pass"):
        weight_factors(network)
