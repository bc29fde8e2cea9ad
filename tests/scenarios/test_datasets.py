import os
import pickle
from urllib.error import URLError

import numpy as np
import pytest
import torch

from scenarios.datasets import (
    DEBIAN_FASHION_MNIST,
    DataFileError,
    DatasetNotFoundError,
    load_dataset,
)


def test_digits_is_bundled_and_split_fixed():
    data = load_dataset("digits")
    assert data.input_shape == (1, 8, 8) and data.num_classes == 10
    assert len(data.train_labels) + len(data.test_labels) == 1797
    assert data.train_images.dtype == torch.uint8 and int(data.train_images.max()) == 16
    assert torch.equal(load_dataset("digits").test_labels, data.test_labels)


def test_mnist_from_torchvision_layout(mnist_root):
    data = load_dataset("mnist", root=mnist_root)
    assert data.train_images.shape == (50, 1, 28, 28) and data.test_images.shape == (20, 1, 28, 28)
    assert data.train_labels.dtype == torch.int64
    assert torch.equal(data.train_labels[:10], torch.arange(10))


def test_missing_data_lists_where_it_looked(tmp_path):
    with pytest.raises(DatasetNotFoundError) as error:
        load_dataset("mnist", root=tmp_path)
    message = str(error.value)
    assert str(tmp_path / "MNIST" / "raw") in message and "--download" in message


def test_truncated_file_in_root_is_an_error_naming_it(mnist_root):
    labels = mnist_root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(labels.read_bytes()[:25])
    with pytest.raises(DataFileError, match="t10k-labels-idx1-ubyte.gz"):
        load_dataset("mnist", root=mnist_root)


def test_cifar10_from_python_pickles(cifar10_root):
    data = load_dataset("cifar10", root=cifar10_root)
    assert data.train_images.shape == (60, 3, 32, 32) and data.test_images.shape == (10, 3, 32, 32)
    assert data.num_classes == 10


def test_cifar100_uses_fine_labels(cifar100_root):
    data = load_dataset("cifar100", root=cifar100_root)
    assert data.train_images.shape == (300, 3, 32, 32) and data.num_classes == 100


def test_bad_pickle_is_an_error_naming_the_file(cifar10_root):
    (cifar10_root / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"\x80\x02garbage")
    with pytest.raises(DataFileError, match="data_batch_3"):
        load_dataset("cifar10", root=cifar10_root)


def test_pickle_that_would_run_code_is_refused(cifar10_root):
    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with open(cifar10_root / "cifar-10-batches-py" / "test_batch", "wb") as handle:
        pickle.dump({b"data": Exploit(), b"labels": []}, handle)
    with pytest.raises(DataFileError, match="not allowed"):
        load_dataset("cifar10", root=cifar10_root)


def test_unknown_dataset_is_refused():
    with pytest.raises(ValueError, match="choose one of"):
        load_dataset("imagenet")


@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(), reason="dataset-fashion-mnist not installed")
def test_debian_fashion_mnist_has_real_counts_and_balanced_labels(tmp_path):
    data = load_dataset("fmnist", root=tmp_path)
    assert data.train_images.shape == (60000, 1, 28, 28)
    assert data.test_images.shape == (10000, 1, 28, 28)
    assert torch.equal(torch.bincount(data.train_labels), torch.full((10,), 6000))
    assert torch.equal(torch.bincount(data.test_labels), torch.full((10,), 1000))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("label", "labels must be 0 to 9, found 0 to 200"),
        ("shape", "train images are (1, 28, 28), test images (1, 20, 20)"),
        ("empty", "the test split is empty"),
    ],
)
def test_damaged_data_is_refused_on_load(tmp_path, mnist_layout, idx_writer, damage, message):
    raw = mnist_layout(tmp_path, "MNIST", train=30, test=10, compress=False)
    if damage == "label":
        labels = np.arange(30, dtype=np.uint8) % 10
        labels[3] = 200
        idx_writer(raw / "train-labels-idx1-ubyte", labels)
    elif damage == "shape":
        idx_writer(raw / "t10k-images-idx3-ubyte", np.zeros((10, 20, 20), dtype=np.uint8))
    else:
        idx_writer(raw / "t10k-images-idx3-ubyte", np.zeros((0, 28, 28), dtype=np.uint8))
        idx_writer(raw / "t10k-labels-idx1-ubyte", np.zeros(0, dtype=np.uint8))
    with pytest.raises(DataFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_dataset("mnist", root=tmp_path)


def _offline(*args, **kwargs):
    raise URLError("[Errno -2] Name or service not known")


@pytest.mark.parametrize("name", ["mnist", "cifar10", "cifar100"])
def test_a_failed_download_is_a_dataset_error_saying_so(name, tmp_path, monkeypatch):
    """torchvision's own downloader, offline (its MNIST wraps the network error in a
    RuntimeError, its CIFAR lets it through): one DatasetNotFoundError either way."""
    monkeypatch.setattr("urllib.request.urlopen", _offline)
    with pytest.raises(DatasetNotFoundError, match="downloading into .* failed") as error:
        load_dataset(name, root=tmp_path, download=True)
    assert "Name or service not known" in str(error.value) and "\n" not in str(error.value)
