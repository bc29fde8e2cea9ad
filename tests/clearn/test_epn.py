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


@pytest.mark.parametrize(("true_kept", "cap"), [(0.33, 0.02), (0.0012, 0.5), (0.05, 0.05)])
def test_a_capped_search_keeps_at_most_the_cap_and_says_when_it_binds(true_kept, cap):
    result = search_kept_fraction(step_score(true_kept), reference=0.9, gamma=0.95, at_most=cap)
    allowed = [k for k in KEPT_CANDIDATES if k < cap] + [cap]
    passing = [k for k in allowed if k >= true_kept]
    assert result.kept == (min(passing) if passing else cap)
    assert all(kept <= cap for kept in result.evaluations)
    assert result.budget_bound == (not passing)
    assert result.budget_bound == (result.score < result.threshold)


@pytest.mark.parametrize("cap", [0.0, -0.1, 1.5])
def test_a_cap_outside_the_unit_interval_is_refused(cap):
    with pytest.raises(ValueError, match="cap"):
        search_kept_fraction(step_score(0.1), reference=0.9, gamma=0.95, at_most=cap)
