import dataclasses
import json

import pytest

from clearn.app.cli import main
from clearn.app.config import RunConfig, read_config
from clearn.app.experiment import ResultsExistError
from clearn.app.sweep import run_sweep, seed_means, sweep_table


def test_sweep_runs_the_grid_draws_the_frontier_and_reuses_finished_runs(tmp_path):
    base = RunConfig(scenario="split-digits", tasks=2, epochs=1, hidden=[32])
    points, failed = run_sweep(base, {"alpha": [1.0], "gamma": [0.9, 1.0]}, tmp_path, workers=1)
    assert failed == []
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
    again, _ = run_sweep(base, {"alpha": [1.0], "gamma": [0.9, 1.0]}, tmp_path, workers=1)
    assert results.stat().st_mtime_ns == stamp
    assert [p["acc"] for p in again] == [p["acc"] for p in points]
    assert len(json.loads((tmp_path / "sweep.json").read_text())["points"]) == 2
    # A finished run is only reused for the options it was run with.
    with pytest.raises(ResultsExistError, match="epochs differ"):
        run_sweep(dataclasses.replace(base, epochs=2), {"alpha": [1.0], "gamma": [0.9]}, tmp_path)


def test_seed_means_average_each_setting_over_its_seeds_only():
    points = [
        {
            "alpha": 1.0,
            "gamma": 0.9,
            "seed": s,
            "acc": a,
            "capacity_used": c,
            "free_fraction": 1 - c,
            "train_seconds": 2.0,
            "folder": f"f{s}",
        }
        for s, a, c in ((0, 0.70, 0.40), (1, 0.80, 0.60))
    ] + [
        {
            "alpha": 4.0,
            "gamma": 0.9,
            "seed": 0,
            "acc": 0.75,
            "capacity_used": 0.2,
            "free_fraction": 0.8,
            "train_seconds": 3.0,
            "folder": "g",
        }
    ]
    means = seed_means(points)
    assert [(m["alpha"], m["seeds"]) for m in means] == [(1.0, 2), (4.0, 1)]
    assert means[0]["acc"] == pytest.approx(0.75)
    assert means[0]["capacity_used"] == pytest.approx(0.5)
    assert means[0]["acc_std"] == pytest.approx(0.0707, abs=1e-4)
    assert means[1]["acc_std"] == 0.0
    table = sweep_table(means)
    assert "| 1 | 0.9 | 2 | 75.0 ± 7.1 | 50.0 ± 14.1 |" in table


def test_sweep_over_seeds_and_a_varied_option_writes_seed_means(tmp_path):
    base = RunConfig(scenario="split-digits", tasks=2, epochs=1, hidden=[16])
    grid = {"alpha": [2.0], "free_weights": ["redraw", "keep"], "gamma": [0.9], "seed": [0, 1]}
    points, _ = run_sweep(base, grid, tmp_path, workers=1)
    assert len(points) == 4
    assert (tmp_path / "alpha-2_free_weights-keep_gamma-0.9_seed-1" / "results.json").is_file()
    table = (tmp_path / "sweep.md").read_text()
    assert "| 2 | keep | 0.9 | 2 |" in table
    assert "±" in table


def test_sweep_keeps_the_config_files_options_unless_the_command_line_names_them(tmp_path):
    config = tmp_path / "base.toml"
    config.write_text('scenario = "split-digits"\ntasks = 2\nepochs = 1\nhidden = [16]\nseed = 4\n')
    out = tmp_path / "sweep"
    code = main(
        ["sweep", "--config", str(config), "--alphas", "1", "--gammas", "0.9", "--out", str(out)]
    )
    assert code == 0
    saved = read_config(next(out.glob("*/config.toml")))
    assert (saved["scenario"], saved["tasks"], saved["epochs"], saved["seed"]) == (
        "split-digits",
        2,
        1,
        4,
    )
    assert saved["hidden"] == [16]


def test_config_files_take_hyphenated_keys(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text("batch-size = 10\ninit-scale = 0.25\n")
    assert read_config(config) == {"batch_size": 10, "init_scale": 0.25}
    assert RunConfig(**read_config(config)).validate().batch_size == 10


def test_a_sweep_varies_only_what_it_is_given(tmp_path, cli, monkeypatch):
    grids = []
    monkeypatch.setattr(
        "clearn.app.cli.run_sweep", lambda base, grid, out, **kw: (grids.append(grid), ([], []))[1]
    )
    quick = ["--scenario", "permuted-digits", "--strategy", "naive", "--out", str(tmp_path / "s")]
    code, _, _ = cli("sweep", *quick, "--seeds", "0", "1")
    assert code == 0 and grids == [{"seed": [0, 1]}]
    code, _, error = cli("sweep", *quick)
    assert code == 2 and "the sweep varies nothing" in error and error.count("\n") == 1
