"""Reader for the CIFAR-10/100 python pickles into uint8 tensors."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from scenarios.idx import DataFileError

__all__ = ["read_cifar_batches"]

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 store bytes
}


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickler that builds only dicts, lists, strings, numbers and numpy arrays.

    The CIFAR batches are pickles; refusing every other global keeps a foreign file in the
    data folder from running code when it is read.
    """

    def find_class(self, module: str, name: str) -> type:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")


def _read_batch(path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as handle:
            batch = _ArrayOnlyUnpickler(handle, encoding="bytes").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError) as error:
        raise DataFileError(f"{path}: not a readable CIFAR python batch ({error})") from error
    if not isinstance(batch, dict) or b"data" not in batch or label_key not in batch:
        raise DataFileError(f"{path}: CIFAR batch lacks the keys b'data' and {label_key!r}")
    data, labels = np.asarray(batch[b"data"]), np.asarray(batch[label_key])
    if data.dtype != np.uint8:
        raise DataFileError(f"{path}: CIFAR data must be uint8 pixels, not {data.dtype}")
    if labels.dtype.kind not in "iu" or (labels.size and labels.min() < 0):
        raise DataFileError(
            f"{path}: CIFAR labels must be non-negative whole numbers, not {labels.dtype}"
        )
    labels = labels.astype(np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or data.shape[0] != labels.shape[0]:
        raise DataFileError(
            f"{path}: CIFAR batch has data {data.shape} and {labels.shape[0]} labels; "
            f"expected N×3072 data with N labels"
        )
    return data, labels


def read_cifar_batches(paths: list[Path], *, label_key: bytes) -> tuple[Tensor, Tensor]:
    """Read and concatenate CIFAR batches: images N×3×32×32 uint8, labels N int64."""
    parts = [_read_batch(path, label_key) for path in paths]
    images = np.concatenate([data for data, _ in parts]).reshape(-1, 3, 32, 32)
    labels = np.concatenate([lab for _, lab in parts])
    return torch.from_numpy(images), torch.from_numpy(labels)
