import pickle
from pathlib import Path

import numpy as np
import pytest


def write_cifar_batch(path: Path, count: int, *, label_key: bytes, classes: int) -> None:
    """A CIFAR python batch: a dict with bytes keys, N×3072 uint8 data and a label list."""
    rng = np.random.default_rng(len(path.name))
    batch = {
        b"batch_label": b"fixture",
        b"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
        label_key: [int(i % classes) for i in range(count)],
    }
    with open(path, "wb") as handle:
        pickle.dump(batch, handle, protocol=2)


@pytest.fixture
def mnist_root(tmp_path, mnist_layout):
    mnist_layout(tmp_path, "MNIST", train=50, test=20, compress=True)
    return tmp_path


@pytest.fixture
def cifar10_root(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for i in range(1, 6):
        write_cifar_batch(folder / f"data_batch_{i}", 12, label_key=b"labels", classes=10)
    write_cifar_batch(folder / "test_batch", 10, label_key=b"labels", classes=10)
    return tmp_path


@pytest.fixture
def cifar100_root(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    write_cifar_batch(folder / "train", 300, label_key=b"fine_labels", classes=100)
    write_cifar_batch(folder / "test", 100, label_key=b"fine_labels", classes=100)
    return tmp_path
