import math

import pytest

from clearn.defaults import KEPT_CANDIDATES
from clearn.epn import check_gamma, search_kept_fraction


def step_score(threshold_kept: float):
    return lambda kept: 0.9 if kept >= threshold_kept else 0.5


@pytest.mark.parametrize("true_kept", [0.0012, 0.05, 0.33, 0.999])
def test_search_finds_the_smallest_passing_candidate_with_few_evaluations(true_kept):
    result = search_kept_fraction(step_score(true_kept), reference=0.9, gamma=0.95)
    expected = min(k for k in KEPT_CANDIDATES if k >= true_kept)
    assert result.kept == expected
    assert result.score >= result.threshold
    assert len(result.evaluations) <= 10


def test_search_rule_holds_on_a_noisy_curve():
    def noisy(kept: float) -> float:
        return min(1.0, 0.5 + 0.2 * math.log10(kept * 1000) / 3 + 0.03 * math.sin(kept * 400))

    result = search_kept_fraction(noisy, reference=0.72, gamma=0.95)
    index = KEPT_CANDIDATES.index(result.kept)
    assert result.score >= 0.95 * 0.72
    assert index == 0 or result.evaluations[KEPT_CANDIDATES[index - 1]] < 0.95 * 0.72


@pytest.mark.parametrize("gamma", [0, -0.5, 1.01, float("nan")])
def test_gamma_outside_the_unit_interval_is_refused(gamma):
    with pytest.raises(ValueError, match="gamma"):
        check_gamma(gamma)
