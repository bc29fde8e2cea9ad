"""The core's CPU tests of packing, run on the GPU: earlier tasks bit for bit under every
optimizer, mixed-task batches equal to per-task calls, export, checkpoints."""

import pytest

from tests.clearn import test_packing as on_cpu
from tests.cuda.device import DEVICE, ON_DEVICE

pytestmark = ON_DEVICE


@pytest.mark.parametrize("optimizer_name", on_cpu.OPTIMIZERS)
@pytest.mark.parametrize("alpha", [1.0, 3.0])
@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("kept", [0.05, 0.4])  # restored by index, then by bitwise passes
def test_earlier_tasks_are_bit_for_bit_unchanged_under_any_optimizer(
    optimizer_name, alpha, batch_norm, kept
):
    on_cpu.test_earlier_tasks_are_bit_for_bit_unchanged_under_any_optimizer(
        optimizer_name, alpha, batch_norm, kept, device=DEVICE
    )


@pytest.mark.parametrize("alpha", [1.0, 3.0])
@pytest.mark.parametrize("batch_norm", [False, True])
def test_under_plain_sgd_zeroed_gradients_keep_earlier_tasks_bit_for_bit(alpha, batch_norm):
    on_cpu.test_under_plain_sgd_zeroed_gradients_keep_earlier_tasks_bit_for_bit(
        alpha, batch_norm, 0.4, device=DEVICE
    )


def test_mixed_task_batch_equals_per_task_batches():
    on_cpu.test_mixed_task_batch_equals_per_task_batches(device=DEVICE)


def test_exported_subnetwork_computes_the_same_logits():
    on_cpu.test_exported_subnetwork_computes_the_same_logits(device=DEVICE)


def test_checkpoint_reloads_into_identical_behaviour():
    on_cpu.test_checkpoint_reloads_into_identical_behaviour(device=DEVICE)
