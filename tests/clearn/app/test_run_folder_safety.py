"""Nothing a run writes lands outside its folder: no write through a planted link, no run
folder outside a sweep's --out, one winner when two runs race for a new folder, no stray
lock in a refused folder, no earlier results overwritten."""

import fcntl
import threading

import pytest

from clearn.app import run
from clearn.app.config import RunConfig
from clearn.app.experiment import CHECKPOINT, draw_plots, run_experiment
from clearn.app.io import open_for_append, write_text_atomic
from clearn.app.prune_curve import PruneCurveConfig, run_prune_curve
from clearn.app.results import RunResult
from clearn.app.run_folder import LOCK_FILE, ResultsExistError, claim_run_folder
from clearn.app.sweep import run_sweep

TINY = dict(scenario="permuted-digits", tasks=2, epochs=2, hidden=[8], patience=0, seed=0)


@pytest.fixture
def victim(tmp_path):
    """A user's file that a planted link points to."""
    path = tmp_path / "precious.txt"
    path.write_text("mine")
    return path


def test_an_atomic_write_replaces_a_link_and_never_writes_through_it(tmp_path, victim):
    link = tmp_path / "run" / "accuracy_matrix.csv"
    link.parent.mkdir()
    link.symlink_to(victim)
    write_text_atomic(link, "results")
    assert victim.read_text() == "mine"
    assert not link.is_symlink() and link.read_text() == "results"


def test_an_appended_log_refuses_a_link(tmp_path, victim):
    link = tmp_path / "avalanche_log.txt"
    link.symlink_to(victim)
    with pytest.raises(PermissionError, match="symbolic link"):
        open_for_append(link)
    assert victim.read_text() == "mine"


@pytest.mark.parametrize(
    "planted", ["avalanche_log.txt", "accuracy_matrix.csv", "config.toml", LOCK_FILE]
)
def test_a_resumed_run_with_a_planted_link_writes_nothing_through_it(
    planted, tmp_path, victim, monkeypatch
):
    out = tmp_path / "run"
    original = run.save_checkpoint

    class Stop(BaseException):
        pass

    def save_then_stop(path, state):
        original(path, state)
        raise Stop

    monkeypatch.setattr(run, "save_checkpoint", save_then_stop)
    with pytest.raises(Stop):
        run_experiment(RunConfig(**TINY), out)
    monkeypatch.undo()
    (out / planted).unlink(missing_ok=True)
    (out / planted).symlink_to(victim)
    with pytest.raises(ResultsExistError, match="symbolic link"):
        run_experiment(RunConfig(**TINY), out, resume=True)
    assert victim.read_text() == "mine"
    assert (out / CHECKPOINT).exists()


def test_plot_writes_no_figure_through_a_link(tmp_path, victim):
    results = RunResult(
        scenario="s", strategy="naive", alpha=1.0, tasks=2,
        accuracy_matrix=[[0.5, None], [0.4, 0.6]], acc=0.5, bwt=-0.1, forgetting=0.1,
        capacity=None, free_fraction=None, train_seconds=1.0, train_seconds_per_task=[1, 1],
        config={},
    )  # fmt: skip
    (tmp_path / "accuracy_matrix.png").symlink_to(victim)
    draw_plots(results, tmp_path)
    assert victim.read_text() == "mine"


@pytest.mark.parametrize("value", ["../../../escaped", "/tmp/elsewhere", "a/b"])
def test_a_sweep_value_never_puts_a_run_folder_outside_out(value, tmp_path, monkeypatch):
    folders = []

    class Planned(Exception):
        """Raised in place of running the planned jobs."""

    def plan(jobs, **kwargs):
        folders.extend(job.folder for job in jobs)
        raise Planned

    monkeypatch.setattr("clearn.app.sweep.run_jobs", plan)
    out = tmp_path / "deep" / "sweep"
    with pytest.raises(Planned):
        run_sweep(RunConfig(**TINY), {"data_root": [value, "other"]}, out)
    assert len(set(folders)) == 2
    for folder in folders:
        assert folder.resolve().parent == out.resolve()


def test_a_sweep_refuses_duplicate_grid_points_before_its_first_run(tmp_path, monkeypatch):
    monkeypatch.setattr("clearn.app.sweep.run_jobs", lambda *a, **k: pytest.fail("ran"))
    with pytest.raises(ValueError, match="same run twice"):
        run_sweep(RunConfig(**TINY), {"alpha": [1.0, 1.0]}, tmp_path / "sweep")
    with pytest.raises(ValueError, match="same run twice"):
        run_sweep(RunConfig(**TINY), {"alpha": [2, 2.0]}, tmp_path / "sweep")


def test_two_runs_racing_for_a_new_folder_leave_one_winner_and_its_folder(tmp_path):
    out = tmp_path / "new"
    inside, release, outcomes = threading.Event(), threading.Event(), []

    def winner():
        with claim_run_folder(out, resume=False):
            (out / "config.toml").write_text("x = 1\n")
            inside.set()
            release.wait(10)
        outcomes.append("won")

    thread = threading.Thread(target=winner)
    thread.start()
    inside.wait(10)
    with pytest.raises(ResultsExistError):
        with claim_run_folder(out, resume=False):
            pass
    release.set()
    thread.join()
    assert outcomes == ["won"] and (out / "config.toml").read_text() == "x = 1\n"


def test_a_loser_that_created_the_folder_removes_nothing_of_the_winner(tmp_path, monkeypatch):
    """The race of the issue: run A makes the new folder, run B takes its lock first."""
    out = tmp_path / "new"
    real_flock, calls = fcntl.flock, [0]
    holds, release, wrote = threading.Event(), threading.Event(), []

    def winner():
        with claim_run_folder(out, resume=False):
            holds.set()
            release.wait(10)
            (out / "config.toml").write_text("x = 1\n")
            wrote.append(True)

    thread = threading.Thread(target=winner)

    def flock(descriptor, operation):
        calls[0] += 1
        if calls[0] == 1:  # A, about to lock the folder it has just made: B gets there first
            thread.start()
            holds.wait(10)
        return real_flock(descriptor, operation)

    monkeypatch.setattr(fcntl, "flock", flock)
    with pytest.raises(ResultsExistError, match="in use"):
        with claim_run_folder(out, resume=False):
            pass
    release.set()
    thread.join()
    assert wrote and (out / "config.toml").read_text() == "x = 1\n"


def test_a_refused_folder_is_left_without_a_lock(tmp_path):
    out = tmp_path / "papers"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ResultsExistError, match="other files"):
        run_experiment(RunConfig(**TINY), out)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_prune_curve_refuses_a_folder_holding_earlier_results(tmp_path):
    out = tmp_path / "curve"
    out.mkdir()
    (out / "prune_curve.json").write_text('{"earlier": true}')
    with pytest.raises(ResultsExistError, match="other files"):
        run_prune_curve(PruneCurveConfig(dataset="digits", epochs=1, alphas=(1.0,)), out)
    assert (out / "prune_curve.json").read_text() == '{"earlier": true}'
