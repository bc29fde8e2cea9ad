import os
import subprocess
import sys

import pytest

from clearn.app import plots
from clearn.app.plots import plot_accuracy_matrix, plot_capacity, plot_robustness

PNG = b"\x89PNG\r\n\x1a\n"


def test_importing_the_plots_leaves_matplotlibs_backend_alone():
    check = (
        "import matplotlib; before = matplotlib.get_backend(); import clearn.app.plots; "
        "assert matplotlib.get_backend() == before, (before, matplotlib.get_backend())"
    )
    done = subprocess.run(
        [sys.executable, "-c", check],
        capture_output=True,
        text=True,
        env={**os.environ, "MPLBACKEND": "svg"},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-1000:]


def test_plots_are_written_as_png_files(tmp_path):
    paths = [
        plot_accuracy_matrix([[0.9, None], [0.9, 0.8]], tmp_path / "matrix.png"),
        plot_capacity([0.2, 0.1], 0.7, tmp_path / "capacity.png"),
        plot_robustness(
            {
                "split-digits @ 100": {"a": {"acc": [0.9], "capacity": [0.1]}},
                "split-digits @ all": {"a": {"acc": [0.95], "capacity": [0.05]}},
            },
            ["a"],
            tmp_path / "robustness.png",
        ),
    ]
    for path in paths:
        assert path.read_bytes()[:8] == PNG


def test_average_accuracy_is_plotted_only_after_tasks_that_evaluated_every_task_seen(
    tmp_path, monkeypatch
):
    figures = []
    monkeypatch.setattr(plots, "_save", lambda figure, path: figures.append(figure) or path)
    # Evaluated every 2 tasks: after tasks 2 and 4 every task seen, in between the current one.
    matrix = [[0.9, None, None, None], [0.9, 0.7, None, None], [None, None, 0.2, None],
              [0.9, 0.7, 0.2, 0.6]]  # fmt: skip
    plots.plot_average_accuracy({"run": matrix}, tmp_path / "mean.png")
    (line,) = figures[0].axes[0].get_lines()
    assert list(line.get_xdata()) == [1, 2, 4]
    assert list(line.get_ydata()) == pytest.approx([0.9, 0.8, 0.6])
