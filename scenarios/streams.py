"""Task-incremental streams (permuted and split) as Avalanche benchmarks with train/valid/test.

Every experience carries its task label; validation data comes out of the training data,
never out of the test set. Tasks are views on one copy of the images (TaskSplit), so a stream
of a thousand permuted tasks holds the data once.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
from avalanche.benchmarks.scenarios.generic_scenario import CLScenario
from avalanche.benchmarks.scenarios.supervised import with_classes_timeline
from avalanche.benchmarks.scenarios.task_aware import with_task_labels
from avalanche.benchmarks.utils.classification_dataset import (
    TaskAwareSupervisedClassificationDataset,
)
from avalanche.benchmarks.utils.data_attribute import DataAttribute, TaskLabels
from avalanche.benchmarks.utils.flat_data import ConstantSequence
from torch import Tensor

from scenarios.datasets import ImageData, load_dataset, subsample_per_class
from scenarios.holdout import held_out_mask
from scenarios.tasks import TaskSplit, TaskSplitDataset

__all__ = [
    "DEFAULT_CLASSES_PER_TASK",
    "STREAM_NAMES",
    "TaskStream",
    "build_stream",
    "split_of",
]

STREAM_NAMES: tuple[str, ...] = (
    "permuted-mnist", "permuted-fmnist", "permuted-digits",
    "split-mnist", "split-fmnist", "split-cifar10", "split-cifar100", "split-digits",
)  # fmt: skip

DEFAULT_CLASSES_PER_TASK = {"cifar100": 10}
"""Split streams use 2 classes per task (5×2) except CIFAR-100 (10×10; 20×5 with 5)."""

DEFAULT_PERMUTED_TASKS = 10


@dataclass(frozen=True)
class TaskStream:
    """A built stream: the Avalanche benchmark and the tensor view of each of its tasks."""

    name: str
    benchmark: CLScenario
    """Has `train_stream`, `valid_stream` and `test_stream`; experience i has task label i."""
    train: list[TaskSplit]
    valid: list[TaskSplit]
    test: list[TaskSplit]
    input_shape: tuple[int, ...]

    @property
    def n_tasks(self) -> int:
        """Number of tasks (experiences per stream)."""
        return len(self.train)

    @property
    def classes_per_task(self) -> list[int]:
        """Number of classes of each task, for per-task output heads."""
        return [split.classes for split in self.train]


def _avalanche_dataset(split: TaskSplit) -> TaskAwareSupervisedClassificationDataset:
    # Task-aware: Avalanche's LwF reads the experience's `task_set`.
    dataset = TaskAwareSupervisedClassificationDataset(
        [TaskSplitDataset(split)],
        data_attributes=[
            DataAttribute(split.labels, "targets"),
            TaskLabels(ConstantSequence(split.task_label, len(split))),
        ],
    )
    # Lets the tensor batch loader find the task's tensors from `experience.dataset`.
    dataset.clearn_split = split
    return dataset


def split_of(dataset: object) -> TaskSplit | None:
    """The TaskSplit behind an experience's dataset built here, or None for other datasets."""
    return getattr(dataset, "clearn_split", None)


def _parse_name(name: str) -> tuple[str, str]:
    match = re.fullmatch(r"(permuted|split)-(\w+)", name)
    if name not in STREAM_NAMES or match is None:
        raise ValueError(f"unknown scenario {name!r}; choose one of {', '.join(STREAM_NAMES)}")
    return match.group(1), match.group(2)


def _train_valid_rows(
    labels: Tensor, fraction: float, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Training and validation rows: a seeded random `fraction` held out, no class emptied."""
    order = torch.randperm(len(labels), generator=generator)
    held = held_out_mask(order, labels, max(1, round(fraction * len(labels))))
    return order[~held].sort().values, order[held].sort().values


def _permuted(
    data: ImageData,
    n_tasks: int,
    validation_fraction: float,
    seed: int,
    first_task_unpermuted: bool,
) -> tuple[list, list, list]:
    generator = torch.Generator().manual_seed(seed)
    train_rows, valid_rows = _train_valid_rows(
        data.train_labels, validation_fraction, generator
    )
    test_rows = torch.arange(len(data.test_labels))
    pixels = int(torch.tensor(data.input_shape).prod())
    shared = {
        "train": (data.train_images, train_rows, data.train_labels[train_rows]),
        "valid": (data.train_images, valid_rows, data.train_labels[valid_rows]),
        "test": (data.test_images, test_rows, data.test_labels),
    }
    splits: dict[str, list[TaskSplit]] = {key: [] for key in shared}
    for task in range(n_tasks):
        permutation = torch.randperm(pixels, generator=generator)
        if task == 0 and first_task_unpermuted:
            permutation = None
        for key, (images, rows, labels) in shared.items():
            splits[key].append(TaskSplit(images, rows, labels, task, data.pixel_max, permutation))
    return splits["train"], splits["valid"], splits["test"]


def _split(
    data: ImageData, n_tasks: int, classes_per_task: int, validation_fraction: float, seed: int
) -> tuple[list, list, list]:
    generator = torch.Generator().manual_seed(seed)
    class_order = torch.randperm(data.num_classes, generator=generator)
    splits: dict[str, list[TaskSplit]] = {"train": [], "valid": [], "test": []}
    for task in range(n_tasks):
        task_classes = class_order[task * classes_per_task : (task + 1) * classes_per_task]
        local_label = torch.full((data.num_classes,), -1, dtype=torch.long)
        local_label[task_classes] = torch.arange(len(task_classes))
        train_all = torch.isin(data.train_labels, task_classes).nonzero().squeeze(1)
        keep, hold = _train_valid_rows(
            data.train_labels[train_all], validation_fraction, generator
        )
        test_rows = torch.isin(data.test_labels, task_classes).nonzero().squeeze(1)
        for key, images, rows, labels in (
            ("train", data.train_images, train_all[keep], data.train_labels),
            ("valid", data.train_images, train_all[hold], data.train_labels),
            ("test", data.test_images, test_rows, data.test_labels),
        ):
            splits[key].append(
                TaskSplit(images, rows, local_label[labels[rows]], task, data.pixel_max)
            )
    return splits["train"], splits["valid"], splits["test"]


TASK_OVERHEAD_BYTES = 300 * 1024
"""Avalanche's experience and dataset objects of one task, measured on permuted digits."""


def _available_memory() -> int:
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _check_memory(data: ImageData, n_tasks: int) -> None:
    """Refuse a permuted stream that would not fit in memory, before building it.

    Each task holds its labels in Avalanche's data attributes (about 12 bytes an example, all
    splits) and its permutation; measured: 0.8 MiB a task on Fashion-MNIST.
    """
    examples = len(data.train_labels) + len(data.test_labels)
    pixels = int(torch.tensor(data.input_shape).prod())
    needed = n_tasks * (12 * examples + 8 * pixels + TASK_OVERHEAD_BYTES)
    available = _available_memory()
    if needed > 0.8 * available:
        raise ValueError(
            f"{n_tasks} tasks of {data.name} need about {needed / 2**30:.1f} GiB of memory, "
            f"{available / 2**30:.1f} GiB are free: use fewer tasks"
        )


def build_stream(
    name: str,
    *,
    n_tasks: int | None = None,
    classes_per_task: int | None = None,
    seed: int = 0,
    validation_fraction: float = 0.1,
    first_task_unpermuted: bool = True,
    data_root: str | Path | None = None,
    download: bool = False,
    data: ImageData | None = None,
    train_per_class: int | None = None,
) -> TaskStream:
    """Build scenario `name` (one of STREAM_NAMES) as a task-incremental Avalanche benchmark.

    Permuted streams default to 10 tasks; split streams to all the classes in groups of
    `classes_per_task` (2; CIFAR-100 10). Class order, permutations and the validation split
    follow `seed`. `data` overrides loading (for tests and callers that already hold it).
    `train_per_class` keeps that many training images of each class (seeded; validation
    data then comes out of those), to study small data; the test set stays whole.
    """
    kind, dataset_name = _parse_name(name)
    if not 0 < validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    if data is None:
        data = load_dataset(dataset_name, root=data_root, download=download)
    if train_per_class is not None:
        data = subsample_per_class(data, train_per_class, seed=seed)
    if kind == "permuted":
        n_tasks = DEFAULT_PERMUTED_TASKS if n_tasks is None else n_tasks
        if n_tasks < 1:
            raise ValueError(f"tasks must be at least 1, got {n_tasks}")
        _check_memory(data, n_tasks)
        splits = _permuted(data, n_tasks, validation_fraction, seed, first_task_unpermuted)
    else:
        per_task = classes_per_task or DEFAULT_CLASSES_PER_TASK.get(dataset_name, 2)
        most = data.num_classes // per_task
        if not 1 <= per_task <= data.num_classes:
            raise ValueError(f"classes per task must be in 1..{data.num_classes}, got {per_task}")
        n_tasks = most if n_tasks is None else n_tasks
        if not 1 <= n_tasks <= most:
            raise ValueError(
                f"{name} with {per_task} classes per task forms 1 to {most} tasks, got {n_tasks}"
            )
        splits = _split(data, n_tasks, per_task, validation_fraction, seed)
    train, valid, test = splits
    benchmark = benchmark_from_datasets(
        train=[_avalanche_dataset(s) for s in train],
        valid=[_avalanche_dataset(s) for s in valid],
        test=[_avalanche_dataset(s) for s in test],
    )
    benchmark = with_task_labels(with_classes_timeline(benchmark))
    return TaskStream(name, benchmark, train, valid, test, data.input_shape)
