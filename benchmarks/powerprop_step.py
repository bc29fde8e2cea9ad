"""Training-step time of the paper's MLP with Powerprop vs plain weights, in one process,
at the paper's α = 3 and at clearn's default (α = 1.5, step normalised: a κ ≠ 1).

The reference is a straightforward parametrization whose forward is sign(θ)·|θ|^α and whose
backward autograd derives: the cost clearn's hand-written gradient is meant to cut.
"""

from __future__ import annotations

import time

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from benchmarks.common import (
    interleaved_step_times,
    main,
    mnist_sized_batches,
    save_result,
    sgd_step,
)
from benchmarks.report import write_results_page
from clearn.app.config import RunConfig
from clearn.app.tables import markdown_table
from clearn.defaults import DEFAULT_ALPHA, DEFAULT_NORMALISE_STEP
from clearn.models import mlp
from clearn.powerprop import apply_powerprop, prunable_layers

TARGET_RATIO = 1.15


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


def run(*, quick: bool = False) -> dict:
    """Measure and print seconds per step at the paper's α and at the default; return both."""
    began = time.perf_counter()
    settings = {"paper": (3.0, False), "default": (DEFAULT_ALPHA, DEFAULT_NORMALISE_STEP)}
    calls, rounds = (100, 3) if quick else (300, 7)
    measured = {
        name: _measure(alpha, normalise_step, calls=calls, rounds=rounds)
        for name, (alpha, normalise_step) in settings.items()
    }
    result = {name: figures for name, (figures, _) in measured.items()}
    save_result("powerprop_step", result)
    timing = {"model": "mlp", "hidden": [300, 100], "batch_size": 60, "optimizer": "sgd",
              "lr": 0.1, "calls": calls, "rounds": rounds}
    write_results_page(
        "powerprop_step-quick" if quick else "powerprop_step",
        title="Powerprop's training step vs plain weights "
              "(`python -m benchmarks --only powerprop_step`)",
        body="\n\n".join(text for _, text in measured.values()) + "\n",
        command="python -m benchmarks --only powerprop_step" + (" --quick" if quick else ""),
        seconds=time.perf_counter() - began,
        configs={f"step timing, {name}": {**timing, "alpha": alpha, "normalise_step": normalise}
                 for name, (alpha, normalise) in settings.items()},
        defaults=RunConfig().to_dict(),
    )  # fmt: skip
    return result


def _measure(alpha: float, normalise_step: bool, *, calls: int, rounds: int) -> tuple[dict, str]:
    """The figures of one setting, and their table as printed."""
    inputs, labels = mnist_sized_batches()
    models = _models(alpha, normalise_step)
    steps = {name: sgd_step(m, m.parameters(), inputs, labels) for name, m in models.items()}
    times = interleaved_step_times(steps, reference="plain", calls=calls, rounds=rounds)
    ratio = times.ratio("clearn powerprop")
    header = ["variant", "ms/step", "vs plain", f"spread, {rounds} rounds"]
    verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
    text = "\n\n".join([
        f"Powerprop training step, MLP 784-300-100-10, batch 60, SGD, alpha={alpha:g}"
        + (", step normalised" if normalise_step else ""),
        markdown_table(header, times.rows()),
        f"target: clearn/plain <= {TARGET_RATIO:.2f}: {ratio:.3f} ({verdict})",
    ])  # fmt: skip
    print(text)
    figures = {
        "alpha": alpha,
        "normalise_step": normalise_step,
        "seconds_per_step": times.seconds,
        "ratio_vs_plain": ratio,
        "reference_ratio_vs_plain": times.ratio("autograd parametrization"),
        "ratio_spread": [min(times.ratios["clearn powerprop"]),
                         max(times.ratios["clearn powerprop"])],
        "target_ratio": TARGET_RATIO,
    }
    return figures, text


if __name__ == "__main__":
    main(run, __doc__)
