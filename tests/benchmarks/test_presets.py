import dataclasses
from pathlib import Path

import pytest

from clearn.app.config import RunConfig, read_config
from clearn.app.experiment import run_experiment

PRESETS = sorted((Path(__file__).resolve().parents[2] / "benchmarks" / "presets").glob("*.toml"))


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
def test_every_preset_is_a_valid_run(preset):
    RunConfig(**read_config(preset)).validate()


CIFAR100 = [p for p in PRESETS if "cifar100" in p.stem]


@pytest.mark.parametrize("preset", CIFAR100, ids=lambda p: p.stem)
def test_cifar100_presets_run_end_to_end_on_cifar_files(preset, cifar100_root, tmp_path):
    config = dataclasses.replace(
        RunConfig(**read_config(preset)), tasks=2, epochs=1, patience=0, retrain_epochs=0,
        data_root=str(cifar100_root),
    )
    results = run_experiment(config.validate(), tmp_path / preset.stem)
    assert results.cap is not None and len(results.accuracy_matrix) == 2
    # Every mask method forgets nothing by design; HAT's gates are never exactly 0 or 1.
    assert results.forgetting == 0.0 or (config.strategy == "hat" and results.forgetting < 0.05)
