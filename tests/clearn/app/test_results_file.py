"""A hand-edited results.json is a one-line error naming the file (exit 2), never a crash."""

import json

import pytest

from clearn.app.results import RESULTS_FILE, RunResult

RESULTS = RunResult(
    scenario="s", strategy="naive", alpha=1.0, tasks=2,
    accuracy_matrix=[[0.5, None], [0.4, 0.6]], acc=0.5, bwt=-0.1, forgetting=0.1,
    capacity=None, free_fraction=None, train_seconds=1.0, train_seconds_per_task=[1.0, 1.0],
    config={},
)  # fmt: skip


@pytest.mark.parametrize(
    "edit",
    [
        {"accuracy_matrix": "high"},
        {"accuracy_matrix": [[0.5, "x"], [0.4, 0.6]]},
        {"accuracy_matrix": [[0.5], [0.4, 0.6]]},
        {"accuracy_matrix": []},
        {"acc": None},
        {"alpha": "2"},
        {"capacity": {"a": 1}},
        {"tasks": True},
    ],
)
def test_plot_of_an_edited_results_file_is_one_line_and_exit_2(edit, tmp_path, cli):
    RESULTS.write(tmp_path)
    content = {**RESULTS.to_dict(), **edit}
    (tmp_path / RESULTS_FILE).write_text(json.dumps(content))
    code, _, err = cli("plot", str(tmp_path))
    assert code == 2, err
    assert str(tmp_path / RESULTS_FILE) in err and err.count("\n") == 1


def test_an_unedited_results_file_reads_back_equal(tmp_path):
    RESULTS.write(tmp_path)
    assert RunResult.read(tmp_path) == RESULTS
