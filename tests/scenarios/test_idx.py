import numpy as np
import pytest
import torch

from scenarios.idx import DataFileError, read_idx


@pytest.mark.parametrize("compress", [False, True])
def test_round_trip(tmp_path, idx_writer, compress):
    array = np.random.default_rng(1).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    path = idx_writer(tmp_path / "images-idx3-ubyte", array, compress=compress)
    tensor = read_idx(path)
    assert tensor.dtype == torch.uint8
    assert torch.equal(tensor, torch.from_numpy(array))


def test_truncated_file_names_the_file(tmp_path, idx_writer):
    path = idx_writer(tmp_path / "labels-idx1-ubyte", np.arange(100, dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataFileError, match="labels-idx1-ubyte.*truncated"):
        read_idx(path)


def test_truncated_gzip_is_an_error(tmp_path, idx_writer):
    path = idx_writer(tmp_path / "x-idx1-ubyte", np.arange(5000, dtype=np.uint8) % 7, compress=True)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(DataFileError, match="x-idx1-ubyte.gz"):
        read_idx(path)


def test_wrong_magic_is_an_error(tmp_path):
    path = tmp_path / "not-idx"
    path.write_bytes(b"PK\x03\x04" + bytes(20))
    with pytest.raises(DataFileError, match="magic"):
        read_idx(path)


def test_non_byte_type_is_an_error(tmp_path):
    path = tmp_path / "floats"
    path.write_bytes(bytes([0, 0, 0x0D, 1]) + (2).to_bytes(4, "big") + bytes(8))
    with pytest.raises(DataFileError, match="not unsigned bytes"):
        read_idx(path)
