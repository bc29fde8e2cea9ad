"""The CIFAR reader takes pixels and labels only: a batch of other values is refused, never
cast silently."""

import pickle

import numpy as np
import pytest

from scenarios.datasets import load_dataset
from scenarios.idx import DataFileError


def write_batch(path, data, labels) -> None:
    with open(path, "wb") as handle:
        pickle.dump({b"data": data, b"labels": labels}, handle, protocol=2)


@pytest.mark.parametrize(
    ("data", "labels", "message"),
    [
        (np.full((10, 3072), 0.5, dtype=np.float32), list(range(10)), "uint8 pixels"),
        (np.full((10, 3072), 300, dtype=np.int64), list(range(10)), "uint8 pixels"),
        (np.zeros((10, 3072), dtype=np.uint8), [0.5] * 10, "whole numbers"),
        (np.zeros((10, 3072), dtype=np.uint8), [-1] * 10, "whole numbers"),
    ],
)
def test_a_batch_of_other_values_is_refused_naming_the_file(data, labels, message, cifar10_root):
    write_batch(cifar10_root / "cifar-10-batches-py" / "test_batch", data, labels)
    with pytest.raises(DataFileError, match=message) as refused:
        load_dataset("cifar10", root=cifar10_root)
    assert "test_batch" in str(refused.value) and "\n" not in str(refused.value)
