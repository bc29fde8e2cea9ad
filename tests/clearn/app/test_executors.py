import json

import pytest
import ray

from clearn.app import executors
from clearn.app.cli import main
from clearn.app.config import RunConfig
from clearn.app.executors import RunJob, run_jobs
from clearn.app.sweep import run_sweep
from scenarios.datasets import DEBIAN_FASHION_MNIST

BASE = RunConfig(scenario="split-digits", tasks=2, epochs=1, hidden=[16])
GRID = {"alpha": [1.0, 2.0], "gamma": [0.9, 0.95]}


@pytest.fixture
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _sweep_without_timings(folder) -> dict:
    content = json.loads((folder / "sweep.json").read_text())
    for point in content["points"]:
        del point["train_seconds"]
        point["folder"] = point["folder"].removeprefix(str(folder))
    return content


def test_a_sweep_on_ray_writes_what_the_local_executor_writes(tmp_path, local_ray):
    local_points, _ = run_sweep(BASE, GRID, tmp_path / "local", workers=2)  # a process pool
    ray_points, failed = run_sweep(BASE, GRID, tmp_path / "ray", executor="ray")
    assert failed == [] and len(ray_points) == 4
    assert _sweep_without_timings(tmp_path / "ray") == _sweep_without_timings(tmp_path / "local")
    # The runs ran in Ray's workers, each writing its own folder; a second sweep reuses them.
    stamp = (tmp_path / "ray" / "alpha-2_gamma-0.95" / "results.json").stat().st_mtime_ns
    again, _ = run_sweep(BASE, GRID, tmp_path / "ray", executor="ray")
    assert [p["acc"] for p in again] == [p["acc"] for p in ray_points]
    assert (tmp_path / "ray" / "alpha-2_gamma-0.95" / "results.json").stat().st_mtime_ns == stamp


@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(), reason="dataset-fashion-mnist not installed")
def test_a_run_gives_the_same_figures_here_and_on_ray_where_threads_would_round_apart(
    tmp_path, local_ray
):
    # Large enough that two torch threads sum matmuls in another order than one (measured:
    # ACC 0.7431 with two threads, 0.7433 with one), so both executors must use one.
    base = RunConfig(
        scenario="permuted-fmnist",
        train_per_class=500,
        tasks=2,
        epochs=3,
        patience=0,
        hidden=[300, 100],
    )
    grid = {"alpha": [1.5], "gamma": [0.95]}
    here, _ = run_sweep(base, grid, tmp_path / "local", workers=1)
    on_ray, _ = run_sweep(base, grid, tmp_path / "ray", executor="ray")
    assert _sweep_without_timings(tmp_path / "ray") == _sweep_without_timings(tmp_path / "local")
    assert here[0]["acc"] == on_ray[0]["acc"]


def test_a_failed_run_on_ray_is_reported_and_the_others_finish(tmp_path, local_ray):
    grid = {"alpha": [1.0], "lr": [0.1, 1e30], "gamma": [0.9]}  # lr 1e30 diverges
    points, failed = run_sweep(BASE, grid, tmp_path, executor="ray")
    assert [p["lr"] for p in points] == [0.1]
    assert [f["lr"] for f in failed] == [1e30]
    assert "loss became nan" in failed[0]["error"]
    assert json.loads((tmp_path / "sweep.json").read_text())["failed"] == failed


def test_the_command_line_lists_failed_runs_and_exits_1(tmp_path, capsys):
    code = main(
        [
            "sweep",
            "--scenario",
            "split-digits",
            "--tasks",
            "2",
            "--epochs",
            "1",
            "--hidden",
            "16",
            "--alphas",
            "1",
            "--gammas",
            "0.9",
            "--lrs",
            "0.1",
            "1e30",
            "--workers",
            "1",
            "--out",
            str(tmp_path),
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert "failed: " in captured.out and "lr-1e+30" in captured.out
    assert "1 of 2 runs failed" in captured.err
    assert len(json.loads((tmp_path / "sweep.json").read_text())["points"]) == 1


def test_the_ray_executor_without_ray_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setattr(executors, "_ray", lambda: None)
    with pytest.raises(ValueError, match=r"pip install 'clearn\[ray\]'"):
        run_jobs([RunJob(BASE, tmp_path / "run")], executor="ray")
    assert not (tmp_path / "run").exists()
