import pytest
import torch
from torch import nn

from clearn.models import cnn, resnet18
from clearn.powerprop import prunable_layers
from clearn.unit_gates import INPUT, UnitGate, annealed_scale, gate_sites, trace_sources


def test_the_scale_anneals_from_one_over_s_max_to_s_max_within_an_epoch():
    scales = [annealed_scale(step, 10, 400.0) for step in range(10)]
    assert scales[0] == pytest.approx(1 / 400)
    assert scales[-1] == pytest.approx(400.0)
    assert all(a < b for a, b in zip(scales, scales[1:], strict=False))
    assert annealed_scale(0, 1, 400.0) == 400.0
    with pytest.raises(ValueError, match="step must be in"):
        annealed_scale(10, 10, 400.0)


def test_gates_binarise_as_the_scale_grows():
    torch.manual_seed(0)
    gate = UnitGate(units=1000, channel_dim=-1)
    gate.add_task()
    distance = [
        torch.minimum(g, 1 - g).max().item()
        for g in (gate.gate(0, s) for s in (1 / 400, 1.0, 25.0, 400.0))
    ]
    assert distance == sorted(distance, reverse=True)
    assert distance[0] > 0.49  # σ(e/400) ≈ 1/2: every unit half open
    binary = gate.gate(0, 400.0)
    near = (binary < 1e-6) | (binary > 1 - 1e-6)
    assert near.float().mean() > 0.95  # at s_max all but the units with |e| < 0.035


def test_a_gate_multiplies_the_output_units_of_its_layer():
    layer = nn.Conv2d(2, 3, 1)
    gate = UnitGate(units=3, channel_dim=1)
    gate.add_task()
    with torch.no_grad():
        gate.embeddings[0].copy_(torch.tensor([1.0, -1.0, 1.0]))
    layer.register_forward_hook(gate.hook)
    x = torch.randn(4, 2, 5, 5)
    plain = layer(x)
    gate.view_task, gate.scale = 0, 400.0
    gated = layer(x)
    assert torch.equal(gated[:, 1], torch.zeros_like(gated[:, 1]))
    assert torch.equal(gated[:, [0, 2]], plain[:, [0, 2]])


def test_a_convolution_followed_by_batchnorm_is_gated_after_the_norm():
    features = resnet18(in_channels=3)[:-1]
    sites = gate_sites(features, dict(prunable_layers(features)))
    assert sites["0"] == "1"
    assert sites["3.0.conv1"] == "3.0.bn1"
    assert sites["4.0.shortcut.0"] == "4.0.shortcut.1"


def test_sources_follow_chains_flattens_and_residual_sums():
    features = cnn(in_channels=1, image_size=8)[:-1]
    layers = dict(prunable_layers(features))
    sources = trace_sources(features, layers, gate_sites(features, layers), torch.randn(1, 1, 8, 8))
    assert sources == {"0": {INPUT}, "3": {"0"}, "7": {"3"}}
    features = resnet18(in_channels=3)[:-1].eval()
    layers = dict(prunable_layers(features))
    sites = gate_sites(features, layers)
    sources = trace_sources(features, layers, sites, torch.randn(1, 3, 8, 8))
    assert sources["3.0.conv2"] == {"3.0.conv1"}
    assert sources["3.1.conv1"] == {"0", "3.0.conv2"}  # stem through the identity shortcut
    assert sources["4.1.conv1"] == {"4.0.conv2", "4.0.shortcut.0"}
