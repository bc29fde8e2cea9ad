import pytest
import torch

from clearn.input_stats import InputStatistics


def test_statistics_are_the_mean_and_variance_over_all_batches():
    statistics = InputStatistics()
    inputs = torch.randn(100, 2, 2, dtype=torch.float64)
    statistics.record(0, inputs.split(30))
    mean, variance = statistics[0]
    assert torch.allclose(mean.double(), inputs.flatten(1).mean(0), atol=1e-6)
    assert torch.allclose(variance.double(), inputs.flatten(1).var(0, unbiased=False), atol=1e-6)
    with pytest.raises(ValueError, match="no inputs given to record for task 0"):
        statistics.record(0, [])


def test_buffers_grow_with_the_tasks_and_load_into_a_fresh_module():
    statistics = InputStatistics()
    statistics.record(2, [torch.randn(10, 3)])  # a task recorded before the ones under it
    assert statistics.mean.shape == (3, 3) and statistics.missing(3) == [0, 1]
    statistics.record(0, [torch.randn(10, 3)])
    state = statistics.state_dict()
    assert set(state) == {"mean", "variance", "recorded"}
    fresh = InputStatistics()
    fresh.load_state_dict(state)
    assert fresh.missing(3) == [1] and 2 in fresh and 1 not in fresh
    for task in (0, 2):
        assert all(torch.equal(a, b) for a, b in zip(fresh[task], statistics[task], strict=True))
    with pytest.raises(ValueError, match="task 1's inputs have 5 features, the tasks recorded "
                                         "before had 3"):  # fmt: skip
        fresh.record(1, [torch.randn(4, 5)])
    with pytest.raises(KeyError, match="task 1 has no input statistics"):
        fresh[1]
