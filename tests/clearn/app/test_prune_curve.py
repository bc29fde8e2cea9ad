import json
import math

import pytest

from clearn.app.prune_curve import PruneCurveConfig, kept_fractions, run_prune_curve
from scenarios.datasets import load_dataset


def test_kept_fractions_are_log_spaced_and_end_at_one():
    kept = kept_fractions(20, 0.01)
    assert len(kept) == 20 and kept[0] == pytest.approx(0.01) and kept[-1] == pytest.approx(1.0)
    ratios = [b / a for a, b in zip(kept, kept[1:], strict=False)]
    assert max(ratios) == pytest.approx(min(ratios))


@pytest.fixture(scope="module")
def digits_curve(tmp_path_factory):
    out = tmp_path_factory.mktemp("curve")
    config = PruneCurveConfig(
        dataset="digits", alphas=(1.0, 3.0), epochs=3, points=6, min_kept=0.05
    )
    return out, run_prune_curve(config, out)


def test_writes_json_with_the_documented_fields_and_a_png(digits_curve):
    out, result = digits_curve
    on_disk = json.loads((out / "prune_curve.json").read_text())
    assert on_disk == result
    images = len(load_dataset("digits").train_labels)
    train_images = images - round(images / 12)
    assert on_disk["dataset"] == "digits"
    assert on_disk["steps"] == 3 * math.ceil(train_images / 60)
    assert set(on_disk["alphas"]) == {"1", "3"}
    for series in on_disk["alphas"].values():
        assert len(series["kept"]) == len(series["test_acc"]) == 6
        assert 0.0 <= series["dense_test_acc"] <= 1.0
    assert (out / "prune_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_keeping_everything_reproduces_the_dense_accuracy(digits_curve):
    _, result = digits_curve
    for series in result["alphas"].values():
        assert series["test_acc"][-1] == series["dense_test_acc"]


def test_trained_network_beats_chance_and_pruning_hurts_at_the_extreme(digits_curve):
    _, result = digits_curve
    plain = result["alphas"]["1"]
    assert plain["dense_test_acc"] > 0.5
    assert plain["test_acc"][0] < plain["dense_test_acc"]


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="alpha"):
        PruneCurveConfig(alphas=(0.5,))
    with pytest.raises(ValueError, match="epochs"):
        PruneCurveConfig(epochs=0)


def test_a_diverging_alpha_is_recorded_and_the_others_kept(tmp_path):
    config = PruneCurveConfig(dataset="digits", alphas=(1.0,), epochs=1, points=3, lr=1e30)
    result = run_prune_curve(config, tmp_path)
    assert "loss became" in result["alphas"]["1"]["diverged"]
    assert (tmp_path / "prune_curve.png").is_file()
