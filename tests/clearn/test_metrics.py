import pytest

from clearn.metrics import average_accuracy, backward_transfer, forgetting

# Task 0 peaks after task 1 and then drops; task 1 only drops.
MATRIX = [
    [0.80, None, None],
    [0.90, 0.70, None],
    [0.60, 0.65, 0.75],
]


def test_average_accuracy_is_the_mean_of_the_last_row():
    assert average_accuracy(MATRIX) == pytest.approx((0.60 + 0.65 + 0.75) / 3)


def test_backward_transfer_compares_with_accuracy_right_after_training():
    assert backward_transfer(MATRIX) == pytest.approx(((0.60 - 0.80) + (0.65 - 0.70)) / 2)


def test_forgetting_uses_the_best_earlier_accuracy():
    assert forgetting(MATRIX) == pytest.approx(((0.90 - 0.60) + (0.70 - 0.65)) / 2)
    assert forgetting(MATRIX) >= -backward_transfer(MATRIX)


def test_single_task_has_no_transfer_or_forgetting():
    single = [[0.9]]
    assert average_accuracy(single) == 0.9
    assert backward_transfer(single) is None and forgetting(single) is None


def test_empty_matrix_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        average_accuracy([])
