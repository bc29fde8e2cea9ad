"""Every CUDA test runs with deterministic algorithms: what is bit for bit on the CPU must be
bit for bit on the GPU, and an operation without a deterministic CUDA kernel fails loudly."""

import os

import pytest
import torch

from tests.clearn.app.conftest import run_counting_steps  # noqa: F401 - the resume tests' fixture

# cuBLAS is deterministic only with a fixed workspace, set before CUDA starts (PyTorch's
# reproducibility notes); setdefault keeps a value the caller chose.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


@pytest.fixture(autouse=True)
def deterministic_algorithms():
    """torch.use_deterministic_algorithms(True) for the test, restored after it."""
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(before)
