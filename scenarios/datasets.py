"""Image datasets as uint8 tensors in memory, found offline first.

Sources, in order: a data root in torchvision's on-disk layout (Avalanche's default data
location when none is given), the Debian Fashion-MNIST directory, and torchvision's downloader
when the caller asks for it. scikit-learn's bundled 8×8 digits need nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchvision.datasets
from avalanche.benchmarks.datasets.dataset_utils import default_dataset_location
from sklearn.datasets import load_digits
from torch import Tensor

from scenarios.cifar import read_cifar_batches
from scenarios.idx import DataFileError, read_idx

__all__ = [
    "DEBIAN_FASHION_MNIST",
    "DATASET_NAMES",
    "DataFileError",
    "DatasetNotFoundError",
    "ImageData",
    "load_dataset",
    "subsample_per_class",
]

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
"""Where Debian's `dataset-fashion-mnist` package puts the IDX files."""

DIGITS_TEST_FRACTION = 0.2
"""Share of scikit-learn's 1,797 digits held out as the fixed test set."""


class DatasetNotFoundError(FileNotFoundError):
    """No copy of a dataset was found; the message lists where we looked and how to get it."""


@dataclass(frozen=True)
class ImageData:
    """A labelled image dataset held as tensors: images N×C×H×W uint8, labels N int64."""

    name: str
    train_images: Tensor
    train_labels: Tensor
    test_images: Tensor
    test_labels: Tensor
    pixel_max: float
    """Largest pixel value (255, or 16 for the digits); inputs are divided by it."""

    @property
    def num_classes(self) -> int:
        """Number of distinct labels."""
        return int(self.train_labels.max()) + 1

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one image, C×H×W."""
        return tuple(self.train_images.shape[1:])


def subsample_per_class(data: ImageData, per_class: int, *, seed: int) -> ImageData:
    """`data` with at most `per_class` training images of each class, drawn by `seed`.

    The test set is kept whole; a class with fewer images keeps them all. The draw depends
    only on `seed` and the data, so every strategy of one seed sees the same images.
    """
    if per_class < 1:
        raise ValueError(f"training images per class must be at least 1, got {per_class}")
    generator = torch.Generator().manual_seed(seed)
    kept = []
    for label in range(data.num_classes):
        rows = (data.train_labels == label).nonzero().squeeze(1)
        order = torch.randperm(len(rows), generator=generator)
        kept.append(rows[order[:per_class]])
    rows = torch.cat(kept).sort().values
    return dataclasses.replace(
        data, train_images=data.train_images[rows], train_labels=data.train_labels[rows]
    )


_IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def _default_root(avalanche_name: str) -> Path:
    return default_dataset_location(avalanche_name)


def _download(name: str, torchvision_class: str, base: Path) -> None:
    """Fetch dataset `name` into `base` with torchvision's downloader; a failure (offline, a
    server down, a damaged archive) is a DatasetNotFoundError saying so, not the downloader's
    error (torchvision reports an unreachable MNIST mirror as a RuntimeError)."""
    try:
        getattr(torchvision.datasets, torchvision_class)(str(base), download=True)
    except (OSError, RuntimeError) as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        raise DatasetNotFoundError(
            f"{name}: downloading into {base} failed (needs internet; or put the files there "
            f"yourself): {reason}"
        ) from error


def _idx_folder_complete(folder: Path) -> bool:
    return all(
        (folder / stem).is_file() or (folder / f"{stem}.gz").is_file()
        for stem in _IDX_FILES.values()
    )


def _read_idx_folder(folder: Path) -> dict[str, Tensor]:
    arrays = {}
    for key, stem in _IDX_FILES.items():
        path = folder / stem
        arrays[key] = read_idx(path if path.is_file() else folder / f"{stem}.gz")
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise DataFileError(
                f"{folder}: {split} images {tuple(images.shape)} do not match "
                f"{tuple(labels.shape)} labels"
            )
    return arrays


def _mnist_family(
    name: str, torchvision_class: str, avalanche_name: str, debian: Path | None
) -> Callable[[Path | None, bool], ImageData]:
    def load(root: Path | None, download: bool) -> ImageData:
        base = Path(root) if root is not None else _default_root(avalanche_name)
        folders = [base / torchvision_class / "raw", base]
        if debian is not None:
            folders.append(debian)
        found = next((f for f in folders if _idx_folder_complete(f)), None)
        if found is None and download:
            _download(name, torchvision_class, base)
            found = base / torchvision_class / "raw"
        if found is None:
            hint = (
                "apt-get install dataset-fashion-mnist"
                if debian is not None
                else f"clearn ... --data-root {base} --download (needs internet)"
            )
            raise DatasetNotFoundError(
                f"{name}: no IDX files ({', '.join(_IDX_FILES.values())}, raw or .gz) in "
                f"{', '.join(str(f) for f in folders)}. Get them with: {hint}"
            )
        arrays = _read_idx_folder(found)
        return ImageData(
            name=name,
            train_images=arrays["train_images"].unsqueeze(1),
            train_labels=arrays["train_labels"].long(),
            test_images=arrays["test_images"].unsqueeze(1),
            test_labels=arrays["test_labels"].long(),
            pixel_max=255.0,
        )

    return load


def _cifar(
    name: str,
    torchvision_class: str,
    folder_name: str,
    train: list[str],
    test: list[str],
    label_key: bytes,
) -> Callable[[Path | None, bool], ImageData]:
    def load(root: Path | None, download: bool) -> ImageData:
        base = Path(root) if root is not None else _default_root(name)
        folder = base / folder_name
        files = [folder / f for f in train + test]
        if not all(f.is_file() for f in files) and download:
            _download(name, torchvision_class, base)
        missing = [f for f in files if not f.is_file()]
        if missing:
            raise DatasetNotFoundError(
                f"{name}: missing {', '.join(str(f) for f in missing)}. Get them with: "
                f"clearn ... --data-root {base} --download (needs internet), or unpack the "
                f"python version of {name} there"
            )
        train_x, train_y = read_cifar_batches(files[: len(train)], label_key=label_key)
        test_x, test_y = read_cifar_batches(files[len(train) :], label_key=label_key)
        return ImageData(name, train_x, train_y, test_x, test_y, pixel_max=255.0)

    return load


def _digits(root: Path | None, download: bool) -> ImageData:
    bunch = load_digits()
    images = torch.from_numpy(bunch.images.astype(np.uint8)).unsqueeze(1)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    # A fixed split, independent of any experiment seed, so that test sets are comparable.
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    test_count = round(DIGITS_TEST_FRACTION * len(labels))
    test, train = order[:test_count], order[test_count:]
    return ImageData("digits", images[train], labels[train], images[test], labels[test], 16.0)


_LOADERS: dict[str, Callable[[Path | None, bool], ImageData]] = {
    "digits": _digits,
    "mnist": _mnist_family("mnist", "MNIST", "mnist", None),
    "fmnist": _mnist_family("fmnist", "FashionMNIST", "fashionmnist", DEBIAN_FASHION_MNIST),
    "cifar10": _cifar(
        "cifar10",
        "CIFAR10",
        "cifar-10-batches-py",
        [f"data_batch_{i}" for i in range(1, 6)],
        ["test_batch"],
        b"labels",
    ),
    "cifar100": _cifar(
        "cifar100", "CIFAR100", "cifar-100-python", ["train"], ["test"], b"fine_labels"
    ),
}

DATASET_NAMES: tuple[str, ...] = tuple(_LOADERS)
CLASSES = {"mnist": 10, "fmnist": 10, "digits": 10, "cifar10": 10, "cifar100": 100}
"""Number of classes of each dataset: a label outside is damaged data."""


def load_dataset(name: str, *, root: str | Path | None = None, download: bool = False) -> ImageData:
    """Load dataset `name` (one of DATASET_NAMES) into memory.

    `root` is a folder in torchvision's layout (Avalanche's default location when None);
    `download=True` lets torchvision fetch what is missing there.
    """
    if name not in _LOADERS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASET_NAMES)}")
    data = _LOADERS[name](Path(root) if root is not None else None, download)
    _check(data, classes=CLASSES[name])
    return data


def _check(data: ImageData, *, classes: int) -> None:
    """Data checked once on load: non-empty splits, one image shape, labels in range."""
    for split in ("train", "test"):
        images, labels = getattr(data, f"{split}_images"), getattr(data, f"{split}_labels")
        if len(labels) == 0:
            raise DataFileError(f"{data.name}: the {split} split is empty")
        if len(images) != len(labels):
            raise DataFileError(
                f"{data.name}: {len(images)} {split} images but {len(labels)} labels"
            )
        if int(labels.min()) < 0 or int(labels.max()) >= classes:
            raise DataFileError(
                f"{data.name}: {split} labels must be 0 to {classes - 1}, found "
                f"{int(labels.min())} to {int(labels.max())}: the label file is damaged "
                f"or belongs to another dataset"
            )
    if data.train_images.shape[1:] != data.test_images.shape[1:]:
        raise DataFileError(
            f"{data.name}: train images are {tuple(data.train_images.shape[1:])}, test images "
            f"{tuple(data.test_images.shape[1:])}: both splits must come from one dataset"
        )
