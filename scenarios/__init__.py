"""Task-incremental streams over MNIST, Fashion-MNIST, CIFAR and digits, offline first."""

from scenarios.datasets import DATASET_NAMES, DatasetNotFoundError, ImageData, load_dataset
from scenarios.idx import DataFileError
from scenarios.streams import STREAM_NAMES, TaskStream, build_stream
from scenarios.tasks import TaskSplit, TensorBatchLoader

__all__ = [
    "DATASET_NAMES",
    "STREAM_NAMES",
    "DataFileError",
    "DatasetNotFoundError",
    "ImageData",
    "TaskSplit",
    "TaskStream",
    "TensorBatchLoader",
    "build_stream",
    "load_dataset",
]
