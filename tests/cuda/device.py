"""The device the CUDA tests run on, and their mark: `pytest -m cuda` selects them; without a
GPU they are skipped, saying why. CLEARN_CUDA_TESTS_DEVICE=cpu runs them on the CPU instead,
to check the tests themselves on a machine without a GPU."""

import os

import pytest
import torch

DEVICE = os.environ.get("CLEARN_CUDA_TESTS_DEVICE", "cuda")

ON_DEVICE = [
    pytest.mark.cuda,
    pytest.mark.skipif(
        DEVICE.startswith("cuda") and not torch.cuda.is_available(),
        reason="needs a CUDA GPU (torch.cuda.is_available() is False); "
        "CLEARN_CUDA_TESTS_DEVICE=cpu runs these tests on the CPU",
    ),
]
"""`pytestmark` of every module here."""
