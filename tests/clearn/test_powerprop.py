import math

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from clearn.powerprop import (
    PowerPropagation,
    apply_powerprop,
    effective_weights,
    powerprop_alpha,
    remove_powerprop,
)


def small_mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 5))


@pytest.mark.parametrize("alpha", [1.5, 2.0, 3.0, 4.5])
def test_gradcheck_float64(alpha):
    theta = torch.randn(6, 5, dtype=torch.float64)
    theta = (theta + 0.1 * theta.sign()).requires_grad_(True)  # away from the kink at 0
    assert torch.autograd.gradcheck(PowerPropagation(alpha=alpha), (theta,))


@pytest.mark.parametrize("alpha", [1.5, 2.0, 3.0])
def test_gradient_is_alpha_abs_theta_power_times_weight_gradient(alpha):
    layer = nn.Linear(8, 4).double()
    apply_powerprop(layer, alpha=alpha)
    inputs = torch.randn(10, 8, dtype=torch.float64)
    theta = layer.parametrizations.weight.original
    plain = nn.Linear(8, 4).double()
    with torch.no_grad():
        plain.weight.copy_(layer.weight)
        plain.bias.copy_(layer.bias)
    layer(inputs).square().sum().backward()
    plain(inputs).square().sum().backward()
    expected = alpha * theta.detach().abs().pow(alpha - 1) * plain.weight.grad
    torch.testing.assert_close(theta.grad, expected)


@pytest.mark.parametrize("alpha", [1.5, 2.0, 3.0])
def test_no_nan_at_exact_zeros(alpha):
    layer = nn.Linear(6, 3)
    apply_powerprop(layer, alpha=alpha)
    with torch.no_grad():
        layer.parametrizations.weight.original[:, :2] = 0.0
    layer(torch.randn(4, 6)).sum().backward()
    grad = layer.parametrizations.weight.original.grad
    assert torch.isfinite(grad).all()
    assert (grad[:, :2] == 0).all()
    assert (layer.weight[:, :2] == 0).all()


def test_alpha_one_leaves_outputs_unchanged():
    model = small_mlp()
    inputs = torch.randn(7, 20)
    before = model(inputs)
    apply_powerprop(model, alpha=1.0)
    assert torch.equal(model(inputs), before)


@pytest.mark.parametrize("alpha", [2.0, 3.0, 4.0])
def test_initial_effective_weights_keep_the_layers_distribution(alpha):
    torch.manual_seed(1)
    layer = nn.Linear(784, 300)
    original = layer.weight.detach().clone()
    apply_powerprop(layer, alpha=alpha)
    torch.testing.assert_close(layer.weight.detach(), original, rtol=1e-5, atol=1e-7)
    bound = 1 / math.sqrt(784)  # PyTorch's Linear draws U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert layer.weight.abs().max() <= bound
    assert abs(layer.weight.std().item() - bound / math.sqrt(3)) < 0.02 * bound
    theta = layer.parametrizations.weight.original
    assert theta.abs().mean() > layer.weight.abs().mean()


def test_state_dict_round_trip():
    model = apply_powerprop(small_mlp(0), alpha=3.0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    inputs = torch.randn(9, 20)
    model(inputs).sum().backward()
    optimizer.step()
    state = model.state_dict()
    assert any(key.endswith("parametrizations.weight.original") for key in state)
    restored = apply_powerprop(small_mlp(1), alpha=3.0)
    restored.load_state_dict(state)
    assert torch.equal(restored(inputs), model(inputs))


def test_conv2d_works():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    apply_powerprop(model, alpha=2.0)
    conv = model[0]
    theta = conv.parametrizations.weight.original
    torch.testing.assert_close(conv.weight, theta.sign() * theta.abs().pow(2.0))
    model(torch.randn(5, 3, 8, 8)).sum().backward()
    assert torch.isfinite(theta.grad).all() and theta.grad.abs().sum() > 0


def test_remove_bakes_effective_weights_back():
    model = apply_powerprop(small_mlp(), alpha=2.5)
    with torch.no_grad():
        model[0].parametrizations.weight.original.mul_(1.3)
    inputs = torch.randn(3, 20)
    before = model(inputs)
    weights = effective_weights(model)
    remove_powerprop(model)
    assert not parametrize.is_parametrized(model[0])
    assert isinstance(model[0].weight, nn.Parameter)
    assert torch.equal(model[0].weight, weights["0"])
    assert torch.equal(model(inputs), before)


def test_exclude_leaves_named_layers_plain():
    model = apply_powerprop(small_mlp(), alpha=2.0, exclude=["2"])
    assert powerprop_alpha(model[0]) == 2.0
    assert powerprop_alpha(model[2]) == 1.0
    with pytest.raises(ValueError, match="not Linear/Conv layers"):
        apply_powerprop(small_mlp(), alpha=2.0, exclude=["nope"])


def test_applying_twice_is_refused():
    model = apply_powerprop(small_mlp(), alpha=2.0)
    with pytest.raises(ValueError, match="already has a parametrization"):
        apply_powerprop(model, alpha=2.0)


@pytest.mark.parametrize("alpha", [0.5, float("nan"), float("inf"), -2, "two"])
def test_bad_alpha_is_refused(alpha):
    with pytest.raises(ValueError, match="alpha"):
        apply_powerprop(small_mlp(), alpha=alpha)


def test_small_weights_move_less_than_large_ones_under_sgd():
    layer = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.01, 1.0]]))
    apply_powerprop(layer, alpha=3.0)
    before = layer.weight.detach().clone()
    layer(torch.ones(1, 2)).sum().backward()
    torch.optim.SGD(layer.parameters(), lr=0.01).step()
    step = (layer.weight.detach() - before).abs()[0]
    assert step[0] < 0.01 * step[1]


def test_evaluation_reuses_the_power_until_theta_changes():
    layer = apply_powerprop(nn.Linear(6, 3), alpha=3.0)
    theta = layer.parametrizations.weight.original
    with torch.no_grad():
        first = layer.weight
        assert layer.weight is first
        theta.mul_(2.0)
        changed = layer.weight
    assert changed is not first
    torch.testing.assert_close(changed, theta.sign() * theta.abs().pow(3.0))
    assert layer.weight.requires_grad  # with gradients, computed afresh each time


@pytest.mark.parametrize("alpha", [1.5, 3.0])
def test_gradcheck_with_a_scale(alpha):
    theta = torch.randn(6, 5, dtype=torch.float64)
    theta = (theta + 0.1 * theta.sign()).requires_grad_(True)
    assert torch.autograd.gradcheck(PowerPropagation(alpha=alpha, scale=7.5), (theta,))


@pytest.mark.parametrize("alpha", [1.5, 2.0, 4.0])
def test_normalised_step_moves_a_typical_weight_as_alpha_one_does(alpha):
    torch.manual_seed(0)
    plain = nn.Linear(300, 50).double()
    layer = nn.Linear(300, 50).double()
    with torch.no_grad():
        layer.weight.copy_(plain.weight)
    start = plain.weight.detach().clone()
    apply_powerprop(layer, alpha=alpha, normalise_step=True)
    assert torch.allclose(layer.weight, start)  # the same function at the start
    inputs, lr = torch.randn(64, 300, dtype=torch.float64), 1e-4
    for model, stored in ((plain, plain.weight), (layer, layer.parametrizations.weight.original)):
        model(inputs).square().mean().backward()
        with torch.no_grad():
            stored -= lr * stored.grad
    step_plain = (plain.weight.detach() - start).abs()
    step_power = (layer.weight.detach() - start).abs()
    rms = float(start.pow(2).mean().sqrt())
    typical = (start.abs() > 0.8 * rms) & (start.abs() < 1.2 * rms)
    ratio = float(step_power[typical].sum() / step_plain[typical].sum())
    assert ratio == pytest.approx(1.0, rel=0.15)
    relative = step_power / step_plain
    assert float(relative[start.abs() > 1.5 * rms].mean()) > 1.2  # the rich still get richer
    assert float(relative[start.abs() < 0.5 * rms].mean()) < 0.8


def test_the_scale_travels_with_the_state_dict():
    model = apply_powerprop(small_mlp(0), alpha=2.0, normalise_step=True)
    rebuilt = apply_powerprop(small_mlp(1), alpha=2.0, normalise_step=True)
    rebuilt.load_state_dict(model.state_dict())
    inputs = torch.randn(4, 20)
    assert torch.equal(rebuilt(inputs), model(inputs))
