"""TaskDensity: per-task probabilistic PCA of the inputs, scored against every task at once."""

from __future__ import annotations

import io

import pytest
import torch
from torch.distributions import MultivariateNormal
from torch.utils.flop_counter import FlopCounterMode

from clearn.task_density import VARIANCE_FLOOR, TaskDensity


def _subspace_task(seed: int, *, examples: int = 400, features: int = 20) -> torch.Tensor:
    """Inputs with mean 0 and unit variance per feature, their variance in a task's own
    3-dimensional subspace: the diagonal Gaussians of two such tasks are alike."""
    generator = torch.Generator().manual_seed(seed)
    basis = torch.linalg.qr(torch.randn(features, 3, generator=generator)).Q
    inputs = torch.randn(examples, 3, generator=generator) @ basis.T * 4
    inputs = inputs + 0.3 * torch.randn(examples, features, generator=generator)
    return (inputs - inputs.mean(0)) / inputs.std(0)


def _fitted(tasks: int = 3, **options) -> tuple[TaskDensity, list[torch.Tensor]]:
    density = TaskDensity(**options)
    data = [_subspace_task(seed) for seed in range(tasks)]
    for task, inputs in enumerate(data):
        density.fit(task, inputs[:300])
    return density, [inputs[300:] for inputs in data]


def test_finds_the_task_of_single_examples_where_the_features_marginals_agree() -> None:
    density, held_out = _fitted(rank=3)
    for task, inputs in enumerate(held_out):
        scores = density.score(inputs)
        assert scores.shape == (len(inputs), 3)
        assert float((scores.argmax(1) == task).float().mean()) > 0.95


def _exact_log_density(inputs: torch.Tensor, fitted: torch.Tensor, rank: int) -> torch.Tensor:
    """The PPCA density written out: covariance U diag(λ) Uᵀ + σ² (I − U Uᵀ), floors added."""
    flat = fitted.double()
    mean = flat.mean(0)
    covariance = torch.cov(flat.T, correction=0)
    values, vectors = torch.linalg.eigh(covariance)
    values, vectors = values.flip(0).clamp_min(0), vectors.flip(1)
    floor = VARIANCE_FLOOR * values.mean()
    kept = vectors[:, :rank]
    residual = (values[rank:].mean() if rank < len(values) else 0) + floor
    model = kept @ torch.diag(values[:rank] + floor) @ kept.T
    model = model + residual * (torch.eye(len(mean), dtype=torch.float64) - kept @ kept.T)
    return MultivariateNormal(mean, covariance_matrix=model).log_prob(inputs.double())


@pytest.mark.parametrize("rank", [3, 20])
def test_score_is_the_gaussian_log_density_of_the_fitted_model(rank: int) -> None:
    fitted, queries = _subspace_task(0)[:300], _subspace_task(1)[:50]
    density = TaskDensity(rank=rank)
    density.fit(0, fitted)
    expected = _exact_log_density(queries, fitted, rank)
    torch.testing.assert_close(
        density.score(queries)[:, 0].double(), expected, rtol=1e-4, atol=1e-2
    )


def test_per_class_is_the_mixture_of_each_class_weighted_by_its_share() -> None:
    inputs = torch.cat([_subspace_task(0)[:120], _subspace_task(1)[:80]])
    labels = torch.cat([torch.zeros(120, dtype=torch.long), torch.ones(80, dtype=torch.long)])
    mixture = TaskDensity(rank=3, per_class=True)
    mixture.fit(0, inputs, labels)
    single = TaskDensity(rank=3)
    single.fit(0, inputs[:120])
    single.fit(1, inputs[120:])
    queries = _subspace_task(2)[:30]
    weights = torch.tensor([120 / 200, 80 / 200]).log()
    expected = torch.logsumexp(single.score(queries) + weights, dim=1)
    torch.testing.assert_close(mixture.score(queries)[:, 0], expected, rtol=1e-5, atol=1e-3)


def test_fitting_from_batches_equals_fitting_at_once() -> None:
    inputs = _subspace_task(0)
    whole, batched = TaskDensity(rank=4), TaskDensity(rank=4)
    whole.fit(0, inputs)
    batched.fit_batches(0, inputs.split(64))
    queries = _subspace_task(1)[:20]
    torch.testing.assert_close(batched.score(queries), whole.score(queries), rtol=1e-5, atol=1e-3)


def test_fits_from_batches_and_says_which_tasks_are_missing() -> None:
    density = TaskDensity(rank=3)
    assert density.missing(2) == [0, 1]
    density.fit_batches(0, (batch for batch in _subspace_task(0).split(50)))
    assert density.missing(2) == [1]
    assert density.missing(1) == []


def test_buffers_keep_the_dtype_and_device_the_module_was_moved_to() -> None:
    density = TaskDensity(rank=3).double()
    density.fit(0, _subspace_task(0))
    density.fit(1, _subspace_task(1))
    assert {buffer.dtype for buffer in density.buffers()} == {torch.float64}
    assert density.score(_subspace_task(2)[:5]).dtype == torch.float64


def test_state_dict_round_trip_through_a_file_into_a_fresh_module() -> None:
    density, held_out = _fitted(rank=3, per_class=False)
    buffer = io.BytesIO()
    torch.save(density.state_dict(), buffer)
    buffer.seek(0)
    fresh = TaskDensity(rank=3)
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    assert fresh.tasks == 3
    torch.testing.assert_close(fresh.score(held_out[0]), density.score(held_out[0]), rtol=0, atol=0)


def test_refitting_a_task_changes_only_its_column() -> None:
    density, held_out = _fitted(rank=3)
    before = density.score(held_out[1])
    density.fit(2, _subspace_task(7))
    after = density.score(held_out[1])
    torch.testing.assert_close(after[:, :2], before[:, :2], rtol=0, atol=0)
    assert not torch.equal(after[:, 2], before[:, 2])


def _score_flops(tasks: int) -> int:
    density, held_out = _fitted(tasks, rank=3)
    with FlopCounterMode(display=False) as counter:
        density.score(held_out[0])
    return counter.get_total_flops()


def test_scoring_cost_grows_linearly_in_tasks_with_no_network_pass() -> None:
    # Matrix products only (no forward pass of any network exists here): twice the tasks,
    # twice the work, and the stored numbers per task stay the same.
    four, eight = _score_flops(4), _score_flops(8)
    assert eight == pytest.approx(2 * four, rel=0.01)
    small, _ = _fitted(4, rank=3)
    large, _ = _fitted(8, rank=3)
    stored = [sum(b.numel() for b in m.buffers()) for m in (small, large)]
    assert stored[1] == 2 * stored[0]


def test_mistakes_are_refused_with_a_sentence() -> None:
    density = TaskDensity(rank=2)
    with pytest.raises(ValueError, match="no task is fitted"):
        density.score(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="fit task 0 next"):
        density.fit(1, torch.randn(10, 5))
    density.fit(0, torch.randn(10, 5))
    with pytest.raises(ValueError, match="6 features"):
        density.fit(1, torch.randn(10, 6))
    with pytest.raises(ValueError, match="features"):
        density.score(torch.zeros(2, 6))
    with pytest.raises(ValueError, match="one label per input"):
        TaskDensity(per_class=True).fit(0, torch.randn(10, 5))
    with pytest.raises(ValueError, match="rank"):
        TaskDensity(rank=0)


@pytest.mark.parametrize("per_class", [False, True])
def test_many_small_batches_are_summed_in_chunks_to_the_same_model(per_class: bool) -> None:
    generator = torch.Generator().manual_seed(0)
    inputs = torch.rand(9000, 30, generator=generator)  # more rows than one chunk
    labels = torch.randint(0, 3, (9000,), generator=generator)
    whole, batched = TaskDensity(per_class=per_class), TaskDensity(per_class=per_class)
    whole.fit(0, inputs, labels)
    batched.fit_batches(0, zip(inputs.split(50), labels.split(50), strict=True))
    # The chunks' products are float32 (summed in float64): the same model to float32's
    # precision. Directions of near-equal variance (uniform noise has nothing but) may turn
    # within their span, which changes no likelihood: the scores are compared, not the bases.
    for name in ("means", "variances", "residual", "log_weights"):
        torch.testing.assert_close(getattr(batched, name), getattr(whole, name), rtol=1e-5,
                                   atol=1e-6)  # fmt: skip
    probe = torch.rand(200, 30, generator=generator)
    torch.testing.assert_close(batched.score(probe), whole.score(probe), rtol=1e-5, atol=1e-5)


def test_inputs_far_from_zero_are_fitted_to_float32s_relative_precision() -> None:
    # Raw float32 sums would give E[xxᵀ] − μμᵀ ≈ 10⁶ − 10⁶: the spread lost in the offset.
    generator = torch.Generator().manual_seed(0)
    mixing = torch.randn(20, 20, generator=generator)
    inputs = 1000.0 + torch.randn(20000, 20, generator=generator) @ mixing
    density = TaskDensity(rank=4)
    density.fit_batches(0, inputs.split(64))
    reference = torch.linalg.eigvalsh(torch.cov(inputs.double().T)).flip(0)
    floor = VARIANCE_FLOOR * reference.mean()
    torch.testing.assert_close(density.variances[0, 0].double(), reference[:4] + floor,
                               rtol=1e-4, atol=0)  # fmt: skip
    torch.testing.assert_close(density.means[0, 0].double(), inputs.double().mean(0),
                               rtol=1e-6, atol=0)  # fmt: skip
