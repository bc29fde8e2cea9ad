import json

from clearn.config import RunConfig
from clearn.sweep import run_sweep


def test_sweep_runs_the_grid_draws_the_frontier_and_reuses_finished_runs(tmp_path):
    base = RunConfig(scenario="split-digits", tasks=2, epochs=1, hidden=[32])
    points = run_sweep(base, {"alpha": [1.0], "gamma": [0.9, 1.0]}, tmp_path)
    assert [(p["alpha"], p["gamma"]) for p in points] == [(1.0, 0.9), (1.0, 1.0)]
    assert all(0 < p["capacity_used"] <= 1 for p in points)
    # On the same trained first task, bisection for a higher threshold never stops lower.
    first_kept = [
        json.loads((tmp_path / f"alpha-1_gamma-{g}" / "results.json").read_text())["task_reports"][
            0
        ]["kept_of_trained"]
        for g in ("0.9", "1")
    ]
    assert first_kept[1] >= first_kept[0]
    for name in ("sweep.json", "sweep.md", "frontier.png"):
        assert (tmp_path / name).is_file()
    results = tmp_path / "alpha-1_gamma-0.9" / "results.json"
    stamp = results.stat().st_mtime_ns
    again = run_sweep(base, {"alpha": [1.0], "gamma": [0.9, 1.0]}, tmp_path)
    assert results.stat().st_mtime_ns == stamp
    assert [p["acc"] for p in again] == [p["acc"] for p in points]
    assert len(json.loads((tmp_path / "sweep.json").read_text())["points"]) == 2
