import pytest

from clearn.budget import EpochAction, TaskBudget


def run(budget: TaskBudget, scores: list[float], *, steps: int = 100) -> list[EpochAction]:
    """Feed scores until the budget stops the task; return the actions taken."""
    actions = []
    for score in scores:
        actions.append(budget.after_epoch(score, steps=steps))
        if actions[-1] is EpochAction.STOP:
            break
    return actions


def test_stops_once_the_score_has_not_improved_for_patience_epochs():
    budget = TaskBudget(max_epochs=50, patience=3, min_steps=0)
    actions = run(budget, [-1.0, -0.5, -0.4, -0.45, -0.41, -0.4, -0.3])
    assert actions[-1] is EpochAction.STOP and len(actions) == 6
    assert budget.plateaued and budget.packed_after == 6 and not budget.under_trained


def test_a_plateau_must_also_span_the_minimum_number_of_steps():
    budget = TaskBudget(max_epochs=50, patience=2, min_steps=300)
    actions = run(budget, [-1.0] + [-2.0] * 10, steps=100)
    assert len(actions) == 4  # two stale epochs are 200 steps: the third reaches 300


def test_the_cap_packs_and_a_still_improving_task_is_under_trained():
    budget = TaskBudget(max_epochs=4, patience=3, min_steps=0)
    actions = run(budget, [-1.0, -0.8, -0.6, -0.4, -0.2])
    assert actions == [EpochAction.CONTINUE] * 3 + [EpochAction.STOP]
    assert budget.under_trained and not budget.plateaued


def test_a_task_that_stopped_improving_before_the_cap_is_not_under_trained():
    budget = TaskBudget(max_epochs=4, patience=3, min_steps=0)
    run(budget, [-1.0, -0.5, -0.6, -0.7])
    assert budget.packed_after == 4 and not budget.under_trained


def test_retraining_epochs_follow_the_pack_within_the_cap():
    budget = TaskBudget(max_epochs=6, retrain_epochs=2, patience=None)
    actions = run(budget, [-1.0, -0.9, -0.8, -0.7, -0.6, -0.5])
    assert actions == [EpochAction.CONTINUE] * 3 + [
        EpochAction.PACK,
        EpochAction.CONTINUE,
        EpochAction.STOP,
    ]
    assert budget.packed_after == 4 and budget.scores == [-1.0, -0.9, -0.8, -0.7]


def test_a_cap_below_the_retraining_epochs_still_trains_one_epoch_first():
    budget = TaskBudget(max_epochs=1, retrain_epochs=1)
    assert budget.retrain_epochs == 0
    assert budget.after_epoch(-1.0) is EpochAction.STOP and budget.packed_after == 1
    assert budget.under_trained  # one epoch shows no plateau


def test_without_scores_the_schedule_is_fixed():
    budget = TaskBudget(max_epochs=3, patience=1)
    assert [budget.after_epoch(None) for _ in range(3)][-1] is EpochAction.STOP
    assert budget.packed_after == 3 and not budget.under_trained


@pytest.mark.parametrize(
    "options",
    [{"max_epochs": 0}, {"max_epochs": 3, "patience": 0}, {"max_epochs": 3, "retrain_epochs": -1}],
)
def test_bad_settings_raise_a_sentence(options):
    with pytest.raises(ValueError, match="must"):
        TaskBudget(**options)


def test_a_nan_score_counts_as_no_improvement():
    budget = TaskBudget(max_epochs=50, patience=2, min_steps=0)
    actions = run(budget, [-1.0, float("nan"), float("nan")])
    assert actions[-1] is EpochAction.STOP and budget.plateaued
