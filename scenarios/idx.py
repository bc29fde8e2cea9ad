"""Reader for the IDX files of the MNIST family (raw or gzip-compressed) into uint8 tensors."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

__all__ = ["DataFileError", "read_idx"]

_UNSIGNED_BYTE = 0x08


class DataFileError(ValueError):
    """A data file exists but cannot be read as the format it should have."""


def read_idx(path: str | Path) -> Tensor:
    """Read an IDX file of unsigned bytes (MNIST, Fashion-MNIST) into a uint8 tensor.

    Written by hand (torchvision's reader is private API): it checks the magic number and that
    the payload has exactly the length the header declares, so a truncated or foreign file
    fails with an error that names it instead of yielding a partial dataset.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            content = handle.read()
    except (OSError, EOFError) as error:
        raise DataFileError(f"{path}: cannot read IDX file ({error})") from error
    if len(content) < 4 or content[0] != 0 or content[1] != 0:
        raise DataFileError(f"{path}: not an IDX file (bad magic number)")
    if content[2] != _UNSIGNED_BYTE:
        raise DataFileError(f"{path}: IDX type code {content[2]:#04x} is not unsigned bytes")
    ndim = content[3]
    header_end = 4 + 4 * ndim
    if len(content) < header_end:
        raise DataFileError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(content[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape, dtype=np.int64))
    payload = len(content) - header_end
    if payload != expected:
        raise DataFileError(
            f"{path}: IDX header declares {shape} = {expected} bytes but the file holds "
            f"{payload}; the file is truncated or corrupt, delete it and fetch it again"
        )
    array = np.frombuffer(content, dtype=np.uint8, offset=header_end).reshape(shape)
    return torch.from_numpy(array.copy())
