"""Powerpropagation: weights stored as θ, used as w = sign(θ)·|θ|^α (Schwarz et al., 2021).

The reparameterisation is a `torch.nn.utils.parametrize` parametrization, so any Linear or Conv
layer takes it without changing its code, and removing it gives a plain layer back.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

__all__ = [
    "PRUNABLE_LAYER_TYPES",
    "PowerPropagation",
    "apply_powerprop",
    "check_alpha",
    "effective_weights",
    "powerprop_alpha",
    "prunable_layers",
    "reinitialise_",
    "remove_powerprop",
    "stored_weight",
]

PRUNABLE_LAYER_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
"""Layers whose `weight` is reparameterised and pruned; biases and norms never are."""


def check_alpha(alpha: float) -> float:
    """Return `alpha` as a float, or raise ValueError when it is not a finite number ≥ 1."""
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        raise ValueError(f"alpha must be a number ≥ 1, got {alpha!r}") from None
    if not math.isfinite(value) or value < 1.0:
        raise ValueError(
            f"alpha must be a finite number ≥ 1 (1 is an ordinary network, 2–4 is typical "
            f"Powerprop), got {alpha!r}"
        )
    return value


class _SignedPower(torch.autograd.Function):
    """w = sign(θ)·|θ|^α with ∂w/∂θ = α·|θ|^(α−1).

    Written by hand because autograd's own derivative of the product form θ·|θ|^(α−1) is
    0·∞ = NaN at θ = 0 for 1 < α < 2, and because it costs one pass over the weights per
    direction fewer: α·|θ|^(α−1) is computed once in the forward pass and reused.
    """

    @staticmethod
    def forward(ctx, theta: Tensor, alpha: float) -> Tensor:  # noqa: D102
        slope = theta.abs()
        if alpha != 2.0:
            slope.pow_(alpha - 1.0)
        weight = theta * slope
        ctx.save_for_backward(slope.mul_(alpha))
        return weight

    @staticmethod
    def backward(ctx, grad_weight: Tensor) -> tuple[Tensor, None]:  # noqa: D102
        (slope,) = ctx.saved_tensors
        # Written in θ's own layout (Linear hands over a transposed gradient), so that
        # AccumulateGrad can take the tensor as it is instead of copying it once more.
        return torch.mul(grad_weight, slope, out=torch.empty_like(slope)), None


class PowerPropagation(nn.Module):
    """Parametrization mapping the stored θ to the effective weight sign(θ)·|θ|^α."""

    def __init__(self, *, alpha: float) -> None:
        super().__init__()
        self.alpha: float = check_alpha(alpha)
        """The exponent α; 1 leaves the weight unchanged."""
        self._no_grad_weight: tuple[tuple[int, int], Tensor] | None = None

    def forward(self, theta: Tensor) -> Tensor:
        """Effective weight used by the layer.

        Without gradients (evaluation), the result is reused until θ changes — its storage or
        its version counter, which every in-place update bumps — so that evaluating a
        mixed-task batch, one forward pass per task, computes the power once.
        """
        if self.alpha == 1.0:
            return theta
        if torch.is_grad_enabled():
            self._no_grad_weight = None
            return _SignedPower.apply(theta, self.alpha)
        key = (theta.data_ptr(), theta._version)
        if self._no_grad_weight is None or self._no_grad_weight[0] != key:
            self._no_grad_weight = (key, _SignedPower.apply(theta, self.alpha))
        return self._no_grad_weight[1]

    def right_inverse(self, weight: Tensor) -> Tensor:
        """θ = sign(w)·|w|^(1/α): the stored value whose effective weight is `weight`.

        `register_parametrization` calls this on the layer's own initial weights, so the
        effective weights start with the layer's usual distribution.
        """
        return weight.sign() * weight.abs().pow(1.0 / self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


def prunable_layers(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """Yield `(name, layer)` for every Linear / Conv layer of `model`, in registration order."""
    for name, module in model.named_modules():
        if isinstance(module, PRUNABLE_LAYER_TYPES):
            yield name, module


def apply_powerprop(model: nn.Module, *, alpha: float, exclude: Iterable[str] = ()) -> nn.Module:
    """Reparameterise the weights of all Linear / Conv layers of `model` in place; return it.

    `exclude` names layers (as in `model.named_modules()`) to leave plain. Each θ is set from
    the layer's current weight so that the effective weight is unchanged.
    """
    alpha = check_alpha(alpha)
    excluded = set(exclude)
    known = {name for name, _ in prunable_layers(model)}
    unknown = excluded - known
    if unknown:
        raise ValueError(
            f"exclude names layers that are not Linear/Conv layers of the model: "
            f"{sorted(unknown)}; choose from {sorted(known)}"
        )
    for name, layer in prunable_layers(model):
        if name in excluded:
            continue
        if parametrize.is_parametrized(layer, "weight"):
            raise ValueError(
                f"layer {name!r} already has a parametrization on its weight; "
                f"call remove_powerprop(model) first"
            )
        parametrize.register_parametrization(layer, "weight", PowerPropagation(alpha=alpha))
    return model


def _powerprop_of(layer: nn.Module) -> PowerPropagation | None:
    if not parametrize.is_parametrized(layer, "weight"):
        return None
    for parametrization in layer.parametrizations.weight:
        if isinstance(parametrization, PowerPropagation):
            return parametrization
    return None


def powerprop_alpha(layer: nn.Module) -> float:
    """The α of `layer`'s weight: 1.0 when it carries no Powerprop parametrization."""
    parametrization = _powerprop_of(layer)
    return 1.0 if parametrization is None else parametrization.alpha


def remove_powerprop(model: nn.Module) -> nn.Module:
    """Bake the effective weights back into plain parameters, in place; return the model."""
    for _, layer in prunable_layers(model):
        if _powerprop_of(layer) is not None:
            parametrize.remove_parametrizations(layer, "weight", leave_parametrized=True)
    return model


def stored_weight(layer: nn.Module) -> nn.Parameter:
    """The parameter that training updates for `layer`'s weight: θ when parametrized."""
    if parametrize.is_parametrized(layer, "weight"):
        return layer.parametrizations.weight.original
    return layer.weight


@torch.no_grad()
def reinitialise_(
    layer: nn.Module,
    where: Tensor,
    generator: torch.Generator | None = None,
    *,
    scale: float = 1.0,
) -> None:
    """Draw fresh initial weights where `where` is True (Powerprop init when parametrized).

    The draw is PyTorch's default for Linear and Conv layers, kaiming_uniform(a=√5), times
    `scale`, and θ = sign(u)·|u|^(1/α) so that the effective weight has that distribution.
    Freed weights must be redrawn, not zeroed: under Powerprop a weight at 0 never moves again.
    """
    if not scale > 0:
        raise ValueError(f"the init scale must be positive, got {scale!r}")
    theta = stored_weight(layer)
    fresh = torch.empty(theta.shape, dtype=theta.dtype)
    nn.init.kaiming_uniform_(fresh, a=math.sqrt(5), generator=generator)
    fresh *= scale
    alpha = powerprop_alpha(layer)
    if alpha != 1.0:
        fresh = fresh.sign() * fresh.abs().pow(1.0 / alpha)
    theta[where] = fresh.to(theta.device)[where]


@torch.no_grad()
def effective_weights(model: nn.Module) -> dict[str, Tensor]:
    """Detached effective weights of every Linear / Conv layer, keyed by layer name."""
    return {name: layer.weight.detach().clone() for name, layer in prunable_layers(model)}
