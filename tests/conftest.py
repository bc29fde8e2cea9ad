"""Fixtures shared by every test folder: data files in their real on-disk formats."""

import gzip
from pathlib import Path

import numpy as np
import pytest


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
