import pytest
import torch

from clearn.bits import as_bits, keep_bits, keep_visible


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_keep_visible_is_where_bit_for_bit_even_for_nan_and_infinity(dtype):
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(40, 30, generator=generator).to(dtype)
    weight[0, :3] = torch.tensor([float("nan"), float("inf"), -float("inf")], dtype=dtype)
    weight[1, 0] = -0.0
    mask = torch.rand(40, 30, generator=generator) < 0.5
    mask[0, :3] = False
    weight.requires_grad_(True)
    kept = keep_visible(weight, keep_bits(mask, weight))
    expected = torch.where(mask, weight, weight.new_zeros(()))
    assert torch.equal(as_bits(kept.detach()), as_bits(expected.detach()))
    grad = torch.randn(40, 30, generator=generator).to(dtype).t().contiguous().t()  # strided
    grad[mask.logical_not()] = float("nan")
    (kept_grad,) = torch.autograd.grad(kept, weight, grad)
    (expected_grad,) = torch.autograd.grad(expected, weight, grad)
    assert torch.equal(as_bits(kept_grad), as_bits(expected_grad))
