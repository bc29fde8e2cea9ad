"""Fixtures shared by every test folder: data files in their real on-disk formats."""

import gzip
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    # One thread per test worker (make test runs one worker per core): several torch processes
    # with default threads on few cores slow each other by orders of magnitude. Subprocesses
    # the tests start (the command line) inherit it.
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


def write_idx(path: Path, array: np.ndarray, *, compress: bool = False) -> Path:
    """Write `array` (uint8) in the IDX format MNIST ships in."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    content = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as handle:
            handle.write(content)
    else:
        path.write_bytes(content)
    return path


def write_mnist_layout(root: Path, folder: str, *, train: int, test: int, compress: bool) -> Path:
    """A torchvision-layout MNIST-family folder with random images and balanced labels."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, count in (("train", train), ("t10k", test)):
        write_idx(
            raw / f"{prefix}-images-idx3-ubyte",
            rng.integers(0, 256, (count, 28, 28), dtype=np.uint8),
            compress=compress,
        )
        write_idx(
            raw / f"{prefix}-labels-idx1-ubyte",
            (np.arange(count) % 10).astype(np.uint8),
            compress=compress,
        )
    return raw


@pytest.fixture
def idx_writer():
    return write_idx


@pytest.fixture
def mnist_layout():
    """Writes a torchvision-layout MNIST-family folder: (root, folder, train=, test=, compress=)."""
    return write_mnist_layout


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
