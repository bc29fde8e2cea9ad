"""Which task an input belongs to when no task label comes with it: one function per method.

`METHODS` maps each method's name to its function, `infer_task(network, inputs, method=...)`
looks it up. Entropy methods ask every trained task's view: the task whose head is most
certain — the lowest entropy of its softmax, divided by log(classes) so that heads of
different widths compare — is taken (SupSup, Wortsman et al. 2020, use the same signal).
Input methods score the input under each task's recorded model of its inputs
(`record_inputs`, probabilistic PCA: `clearn.task_density`) and need no pass per task.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from clearn.network import PackedNetwork, UnknownTaskError

__all__ = [
    "METHODS",
    "Method",
    "TaskGuess",
    "default_method",
    "infer_task",
    "predict_task_agnostic",
    "task_agnostic_logits",
]

Method = Literal["example", "batch", "one-shot", "inputs", "inputs-batch"]

@dataclass(frozen=True)
class TaskGuess:
    """Inferred task of each example, with its confidence and every task's logits."""

    tasks: Tensor
    """Task of each example (the same for all with the per-batch methods)."""
    confidence: Tensor
    """In [0, 1], 1 when one task was trained. Entropy methods: the normalised-entropy margin
    between the best and the second-best task; input methods: the found task's posterior
    probability under equal priors."""
    logits: list[Tensor | None]
    """Logits of each trained task's view and head, by task (one-shot and input methods:
    only the inferred tasks'; None for the others)."""


def _normalised_entropy(logits: Tensor) -> Tensor:
    log_p = torch.log_softmax(logits, dim=1)
    entropy = -(log_p.exp() * log_p).sum(1)
    return entropy / math.log(logits.shape[1]) if logits.shape[1] > 1 else entropy


def _by_entropy(network: PackedNetwork, inputs: Tensor, *, per_batch: bool) -> TaskGuess:
    logits = [network.forward_task(inputs, t) for t in range(network.trained_tasks)]
    entropy = torch.stack([_normalised_entropy(task_logits) for task_logits in logits], 1)
    if per_batch:
        entropy = entropy.mean(0, keepdim=True).expand_as(entropy)
    ranked = entropy.sort(dim=1).values
    margin = ranked[:, 1] - ranked[:, 0] if ranked.shape[1] > 1 else torch.ones(len(inputs))
    return TaskGuess(tasks=entropy.argmin(1), confidence=margin.clamp(0, 1), logits=logits)


def by_entropy_per_example(network: PackedNetwork, inputs: Tensor) -> TaskGuess:
    """"example": each example's most certain task; one forward pass per trained task."""
    return _by_entropy(network, inputs, per_batch=False)


def by_entropy_per_batch(network: PackedNetwork, inputs: Tensor) -> TaskGuess:
    """"batch": the task most certain on average over a batch known to come from one task."""
    return _by_entropy(network, inputs, per_batch=True)


def one_shot(network: PackedNetwork, inputs: Tensor) -> TaskGuess:
    """"one-shot" (a batch from one task), SupSup's inference (Wortsman et al. 2020): the
    backbone runs once with every trained task's view mixed by coefficients α, each head reads
    the features, and the task whose coefficient most lowers the entropy of the α-mixed
    output, −∂H/∂α_t largest, is taken: one forward and one backward pass, then the found
    task's pass (confidence 1: the gradient gives no margin)."""
    tasks = network.trained_tasks
    heads = [network.heads[t] for t in range(tasks)]
    width = max(head.out_features for head in heads)
    with torch.enable_grad():
        alpha = torch.full((tasks,), 1.0 / tasks, requires_grad=True)
        with network.viewing(None), network.superposed(alpha):
            features = network.backbone(inputs)
            mixed = sum(
                alpha[t].to(inputs.device)
                * nn.functional.pad(torch.softmax(head(features), 1),
                                    (0, width - head.out_features))  # fmt: skip
                for t, head in enumerate(heads)
            )
            entropy = -(mixed * mixed.clamp_min(1e-12).log()).sum(1).mean()
            (gradient,) = torch.autograd.grad(entropy, alpha)
    found = int(gradient.argmin())
    logits: list[Tensor | None] = [None] * tasks
    logits[found] = network.forward_task(inputs, found)
    chosen = torch.full((len(inputs),), found, dtype=torch.long)
    return TaskGuess(tasks=chosen, confidence=torch.ones(len(inputs)), logits=logits)


def _input_log_likelihood(network: PackedNetwork, inputs: Tensor) -> Tensor:
    """(examples, trained tasks): each example's log-likelihood under each trained task's
    model of its inputs."""
    density = network.input_density
    missing = density.missing(network.trained_tasks)
    if missing:
        raise ValueError(
            f"tasks {missing} have no model of their inputs: record them with "
            f"network.record_inputs(task, batches) (EfficientPackNet does after each task)"
        )
    return density.score(inputs)[:, : network.trained_tasks]


def _by_inputs(network: PackedNetwork, inputs: Tensor, *, per_batch: bool) -> TaskGuess:
    likelihood = _input_log_likelihood(network, inputs)
    if per_batch:
        likelihood = likelihood.sum(0, keepdim=True).expand_as(likelihood)
    posterior = torch.softmax(likelihood.double(), 1)
    confidence, tasks = posterior.max(1)
    logits: list[Tensor | None] = [None] * network.trained_tasks
    for task in tasks.unique().tolist():
        logits[task] = network.forward_task(inputs, task)
    return TaskGuess(tasks=tasks, confidence=confidence.float(), logits=logits)


def by_inputs_per_example(network: PackedNetwork, inputs: Tensor) -> TaskGuess:
    """"inputs": each example's task is the one under whose model of its training inputs the
    example is most likely; then one pass per task found."""
    return _by_inputs(network, inputs, per_batch=False)


def by_inputs_per_batch(network: PackedNetwork, inputs: Tensor) -> TaskGuess:
    """"inputs-batch" (a batch from one task): the task under which the batch's summed input
    log-likelihood is highest; then that task's pass."""
    return _by_inputs(network, inputs, per_batch=True)


METHODS: dict[str, Callable[[PackedNetwork, Tensor], TaskGuess]] = {
    "example": by_entropy_per_example,
    "batch": by_entropy_per_batch,
    "one-shot": one_shot,
    "inputs": by_inputs_per_example,
    "inputs-batch": by_inputs_per_batch,
}
"""Every task-inference method, by name."""


@torch.no_grad()
def infer_task(
    network: PackedNetwork, inputs: Tensor, *, method: Method | str | None = None
) -> TaskGuess:
    """Guess the task of each example among the network's trained tasks, with a confidence.

    `method` (a name in `METHODS`) None: `default_method(network)`.
    """
    if method is None:
        method = default_method(network)
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if network.trained_tasks == 0:
        raise UnknownTaskError("no task is trained yet: there is no task to infer")
    return METHODS[method](network, inputs)


def default_method(network: PackedNetwork) -> str:
    """"inputs" where every trained task's inputs are recorded (EfficientPackNet records
    them), else "example": per example, "inputs" found the task on every permuted stream
    measured and most often on split ones, with no pass per task
    (docs/results/task_inference.md)."""
    recorded = not network.input_density.missing(network.trained_tasks)
    return "inputs" if recorded else "example"


def task_agnostic_logits(guess: TaskGuess) -> Tensor:
    """Each example's logits from its inferred task's head, zero-padded to the widest head."""
    present = [(task, logits) for task, logits in enumerate(guess.logits) if logits is not None]
    width = max(logits.shape[1] for _, logits in present)
    out = present[0][1].new_zeros(len(guess.tasks), width)
    for task, task_logits in present:
        rows = guess.tasks == task
        out[rows, : task_logits.shape[1]] = task_logits[rows]
    return out


def predict_task_agnostic(
    network: PackedNetwork, inputs: Tensor, *, method: Method | str | None = None
) -> Tensor:
    """Logits without task labels: each example answered by the head of the task inferred
    for it (`infer_task`), zero-padded to the widest head."""
    return task_agnostic_logits(infer_task(network, inputs, method=method))
