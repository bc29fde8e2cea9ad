import pytest
import torch
from avalanche.benchmarks import nc_benchmark
from torch.utils.data import TensorDataset

from scenarios.datasets import load_dataset


class LabelledTensors(TensorDataset):
    """A plain PyTorch dataset with `targets`, as Avalanche's generators take."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        super().__init__(images, labels)
        self.targets = labels


@pytest.fixture(scope="session")
def stock_benchmark():
    """Split digits built by Avalanche's own generator: 5 tasks, no validation stream."""
    digits = load_dataset("digits")
    train = LabelledTensors(digits.train_images.float() / 16, digits.train_labels)
    test = LabelledTensors(digits.test_images.float() / 16, digits.test_labels)
    return nc_benchmark(
        train, test, n_experiences=5, task_labels=True, seed=0,
        class_ids_from_zero_in_each_exp=True,
    )
