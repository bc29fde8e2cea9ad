import json
import os

from benchmarks.common import run_all
from clearn.app.config import RunConfig


def test_run_all_trains_each_config_in_worker_processes_and_restores_the_environment(tmp_path):
    before = dict(os.environ)
    runs = {
        alpha: (
            RunConfig(scenario="split-digits", alpha=alpha, tasks=2, epochs=1, hidden=[16]),
            tmp_path / f"alpha{alpha:g}",
        )
        for alpha in (1.0, 2.0)
    }
    results = run_all(runs, jobs=2)
    assert set(results) == {1.0, 2.0}
    for alpha, (_, folder) in runs.items():
        saved = json.loads((folder / "results.json").read_text())
        assert saved["alpha"] == alpha and saved["acc"] == results[alpha].acc
        assert 0.5 < saved["acc"] <= 1.0  # two-class tasks, learnt
    assert dict(os.environ) == before
