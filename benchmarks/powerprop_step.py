"""Training-step time of the paper's MLP with Powerprop vs plain weights, in one process,
at the paper's α = 3 and at clearn's default (α = 1.5, step normalised: a κ ≠ 1).

The reference is a straightforward parametrization whose forward is sign(θ)·|θ|^α and whose
backward autograd derives: the cost clearn's hand-written gradient is meant to cut.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from benchmarks.common import main, median_seconds, save_result
from clearn.app.tables import markdown_table
from clearn.epn import DEFAULT_ALPHA, DEFAULT_NORMALISE_STEP
from clearn.models import mlp
from clearn.powerprop import apply_powerprop, prunable_layers

TARGET_RATIO = 1.10


class _AutogradPowerprop(nn.Module):
    def __init__(self, alpha: float) -> None:
        super().__init__()
        self.alpha = alpha

    def forward(self, theta: Tensor) -> Tensor:
        return theta.sign() * theta.abs().pow(self.alpha)


def _models(alpha: float, normalise_step: bool) -> dict[str, nn.Module]:
    torch.manual_seed(0)
    plain = mlp(input_size=784)
    powerprop = apply_powerprop(mlp(input_size=784), alpha=alpha, normalise_step=normalise_step)
    reference = mlp(input_size=784)
    for _, layer in prunable_layers(reference):
        parametrize.register_parametrization(layer, "weight", _AutogradPowerprop(alpha))
    return {"plain": plain, "autograd parametrization": reference, "clearn powerprop": powerprop}


def _step_function(model: nn.Module, inputs: Tensor, labels: Tensor):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = nn.CrossEntropyLoss()
    batches = len(labels) // 60
    position = [0]

    def step() -> None:
        index = position[0] % batches
        position[0] += 1
        batch = slice(60 * index, 60 * index + 60)
        loss = loss_fn(model(inputs[batch]), labels[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def run(*, quick: bool = False) -> dict:
    """Measure and print seconds per step at the paper's α and at the default; return both."""
    settings = {"paper": (3.0, False), "default": (DEFAULT_ALPHA, DEFAULT_NORMALISE_STEP)}
    result = {
        name: _measure(alpha, normalise_step, quick=quick)
        for name, (alpha, normalise_step) in settings.items()
    }
    save_result("powerprop_step", result)
    return result


def _measure(alpha: float, normalise_step: bool, *, quick: bool) -> dict:
    generator = torch.Generator().manual_seed(0)
    inputs = torch.rand(6000, 784, generator=generator)
    labels = torch.randint(0, 10, (6000,), generator=generator)
    models = _models(alpha, normalise_step)
    steps = {name: _step_function(m, inputs, labels) for name, m in models.items()}
    calls, rounds = (100, 3) if quick else (300, 7)
    for step in steps.values():
        median_seconds(step, repeats=1, calls=calls)  # warm-up
    samples: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):  # interleaved, so drift of the machine hits all variants alike
        for name, step in steps.items():
            samples[name].append(median_seconds(step, repeats=1, calls=calls))
    seconds = {name: sorted(values)[len(values) // 2] for name, values in samples.items()}
    ratio = seconds["clearn powerprop"] / seconds["plain"]
    reference_ratio = seconds["autograd parametrization"] / seconds["plain"]
    print(
        f"Powerprop training step, MLP 784-300-100-10, batch 60, SGD, alpha={alpha:g}"
        + (", step normalised" if normalise_step else "")
    )
    # The spread: the ratio to plain within each round, lowest and highest.
    spread = {
        name: [a / b for a, b in zip(values, samples["plain"], strict=True)]
        for name, values in samples.items()
    }
    rows = [
        [name, f"{1000 * value:.3f}", f"{value / seconds['plain']:.3f}",
         f"{min(spread[name]):.3f}–{max(spread[name]):.3f}"]
        for name, value in seconds.items()
    ]
    print(markdown_table(["variant", "ms/step", "vs plain", f"spread, {rounds} rounds"], rows))
    verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
    print(f"target: clearn/plain <= {TARGET_RATIO:.2f}: {ratio:.3f} ({verdict})")
    return {
        "alpha": alpha,
        "normalise_step": normalise_step,
        "seconds_per_step": seconds,
        "ratio_vs_plain": ratio,
        "reference_ratio_vs_plain": reference_ratio,
        "ratio_spread": [min(spread["clearn powerprop"]), max(spread["clearn powerprop"])],
        "target_ratio": TARGET_RATIO,
    }


if __name__ == "__main__":
    main(run, __doc__)
