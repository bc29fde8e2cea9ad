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
    "step_normalising_scale",
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
    """w = κ·sign(θ)·|θ|^α with ∂w/∂θ = κ·α·|θ|^(α−1).

    Written by hand because autograd's own derivative of the product form θ·|θ|^(α−1) is
    0·∞ = NaN at θ = 0 for 1 < α < 2, and to make as few passes over the weights as unfused
    operations allow (each pass reads and writes the whole layer, which outgrows the cache):
    |θ|^(α−1) is computed once (in one pass for α = 2, |θ|, and for an even α−1, θ^(α−1)
    needing no `abs`; else two), the forward pass multiplies it by κ·θ and the backward pass
    by κ·α and the incoming gradient, each in one `addcmul` (0 + c·a·b, the constant folded
    in)."""

    @staticmethod
    def forward(ctx, theta: Tensor, alpha: float, scale: float) -> Tensor:  # noqa: D102
        power = alpha - 1.0
        if power == 1.0:
            slope = theta.abs()
        elif power.is_integer() and power % 2 == 0:  # an even power needs no abs
            slope = theta.pow(power)
        else:
            slope = theta.abs().pow_(power)
        ctx.save_for_backward(slope)
        ctx.factor = scale * alpha
        if scale == 1.0:
            return theta * slope
        return torch.addcmul(theta.new_zeros(()), theta, slope, value=scale)

    @staticmethod
    def backward(ctx, grad_weight: Tensor) -> tuple[Tensor, None, None]:  # noqa: D102
        (slope,) = ctx.saved_tensors
        # In the layout of the gradient, which Linear and Conv hand over in θ's own, so that
        # AccumulateGrad takes the tensor as it is.
        return (
            torch.addcmul(slope.new_zeros(()), grad_weight, slope, value=ctx.factor),
            None,
            None,
        )


def step_normalising_scale(alpha: float, typical: float) -> float:
    """κ for which a weight of magnitude `typical` moves, under plain SGD, as fast as it
    would with α = 1: the step of w is about κ^(2/α)·α²·|w|^(2−2/α) times α = 1's, which
    is 1 at |w| = `typical` for κ = α^(−α)·typical^(1−α). Weights above `typical` still
    move faster, and below it slower, than at α = 1: the rich still get richer."""
    if not typical > 0:
        raise ValueError(f"the typical weight magnitude must be positive, got {typical!r}")
    return float(alpha ** (-alpha) * typical ** (1.0 - alpha))


class PowerPropagation(nn.Module):
    """Parametrization mapping the stored θ to the effective weight κ·sign(θ)·|θ|^α.

    κ (`scale`, 1 in the paper) sets how fast training moves the weights without changing
    which weights the network can express: `step_normalising_scale` gives the κ under which
    a typical weight starts moving as it would with α = 1 (`apply_powerprop(...,
    normalise_step=True)`).
    """

    def __init__(self, *, alpha: float, scale: float = 1.0) -> None:
        super().__init__()
        self.alpha: float = check_alpha(alpha)
        """The exponent α; 1 leaves the weight unchanged."""
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"the Powerprop scale must be a positive number, got {scale!r}")
        self.scale: float = float(scale)
        """κ, the factor on sign(θ)·|θ|^α."""
        self._no_grad_weight: tuple[tuple[int, int], Tensor] | None = None

    def forward(self, theta: Tensor) -> Tensor:
        """Effective weight used by the layer.

        Without gradients (evaluation), the result is reused until θ changes — its storage or
        its version counter, which every in-place update bumps — so that evaluating a
        mixed-task batch, one forward pass per task, computes the power once.
        """
        if self.alpha == 1.0 and self.scale == 1.0:
            return theta
        if torch.is_grad_enabled():
            self._no_grad_weight = None
            return _SignedPower.apply(theta, self.alpha, self.scale)
        key = (theta.data_ptr(), theta._version)
        if self._no_grad_weight is None or self._no_grad_weight[0] != key:
            self._no_grad_weight = (key, _SignedPower.apply(theta, self.alpha, self.scale))
        return self._no_grad_weight[1]

    def get_extra_state(self) -> dict:
        return {"scale": self.scale}

    def set_extra_state(self, state: dict) -> None:
        # κ is drawn from the weights at registration: a rebuilt network takes the saved one,
        # so that loaded θs give the same effective weights.
        self.scale = float(state["scale"])
        self._no_grad_weight = None

    def right_inverse(self, weight: Tensor) -> Tensor:
        """θ = sign(w)·(|w|/κ)^(1/α): the stored value whose effective weight is `weight`.

        `register_parametrization` calls this on the layer's own initial weights, so the
        effective weights start with the layer's usual distribution.
        """
        return weight.sign() * (weight.abs() / self.scale).pow(1.0 / self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}" + (f", scale={self.scale:.4g}" if self.scale != 1.0 else "")


def prunable_layers(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """Yield `(name, layer)` for every Linear / Conv layer of `model`, in registration order."""
    for name, module in model.named_modules():
        if isinstance(module, PRUNABLE_LAYER_TYPES):
            yield name, module


def apply_powerprop(
    model: nn.Module,
    *,
    alpha: float,
    exclude: Iterable[str] = (),
    normalise_step: bool = False,
) -> nn.Module:
    """Reparameterise the weights of all Linear / Conv layers of `model` in place; return it.

    `exclude` names layers (as in `model.named_modules()`) to leave plain. Each θ is set from
    the layer's current weight so that the effective weight is unchanged. With
    `normalise_step`, each layer's κ is `step_normalising_scale(alpha, rms)`, rms being the
    root mean square of the layer's current (initial) weights: a weight of that size then
    trains at α = 1's pace instead of α²·rms^(2−2/α) times it (about 1/60 for α = 4 on a
    784-wide layer), so α > 1 needs no more steps than α = 1.
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
        scale = 1.0
        if normalise_step and alpha != 1.0:
            typical = float(layer.weight.detach().pow(2).mean().sqrt())
            scale = step_normalising_scale(alpha, typical)
        parametrize.register_parametrization(
            layer, "weight", PowerPropagation(alpha=alpha, scale=scale)
        )
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
    `scale`, and θ is the Powerprop inverse of it so that the effective weight has that
    distribution.
    Freed weights must be redrawn, not zeroed: under Powerprop a weight at 0 never moves again.
    """
    if not scale > 0:
        raise ValueError(f"the init scale must be positive, got {scale!r}")
    theta = stored_weight(layer)
    fresh = torch.empty(theta.shape, dtype=theta.dtype)
    nn.init.kaiming_uniform_(fresh, a=math.sqrt(5), generator=generator)
    fresh *= scale
    parametrization = _powerprop_of(layer)
    if parametrization is not None:
        fresh = parametrization.right_inverse(fresh)
    theta[where] = fresh.to(theta.device)[where]


@torch.no_grad()
def effective_weights(model: nn.Module) -> dict[str, Tensor]:
    """Detached effective weights of every Linear / Conv layer, keyed by layer name."""
    return {name: layer.weight.detach().clone() for name, layer in prunable_layers(model)}
