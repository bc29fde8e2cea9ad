import os
import subprocess
import sys

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
