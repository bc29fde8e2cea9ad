import pytest
import torch

from clearn.pruning import apply_masks, kept_fraction, magnitude_masks


def random_weights(seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {
        "a": torch.randn(30, 20, generator=generator),
        "b": 3 * torch.randn(10, 30, generator=generator),
    }


@pytest.mark.parametrize("kept", [0.05, 0.3, 0.77])
def test_layerwise_keeps_the_fraction_of_each_layer_by_magnitude(kept):
    weights = random_weights()
    masks = magnitude_masks(weights, kept, scope="layer")
    for name, weight in weights.items():
        mask = masks[name]
        assert mask.dtype == torch.bool and mask.shape == weight.shape
        assert int(mask.sum()) == round(kept * weight.numel())
        assert weight[mask].abs().min() >= weight[~mask].abs().max()


def test_global_ranks_all_layers_together():
    weights = random_weights()
    masks = magnitude_masks(weights, 0.2, scope="global")
    total = sum(w.numel() for w in weights.values())
    assert sum(int(m.sum()) for m in masks.values()) == round(0.2 * total)
    kept_min = min(weights[n][masks[n]].abs().min() for n in weights)
    pruned_max = max(weights[n][~masks[n]].abs().max() for n in weights)
    assert kept_min >= pruned_max
    # The larger-scaled layer gets a bigger share than a layer-wise cut would give it.
    assert masks["b"].float().mean() > 0.2 > masks["a"].float().mean()


def test_eligible_weights_are_the_only_ones_kept():
    weights = random_weights()
    eligible = {name: torch.rand(w.shape) < 0.5 for name, w in weights.items()}
    for scope in ("layer", "global"):
        masks = magnitude_masks(weights, 0.5, scope=scope, eligible=eligible)
        for name in weights:
            assert not (masks[name] & ~eligible[name]).any()


def test_extremes_and_per_layer_fractions():
    weights = random_weights()
    assert kept_fraction(magnitude_masks(weights, 1.0)) == 1.0
    assert kept_fraction(magnitude_masks(weights, 0.0)) == 0.0
    masks = magnitude_masks(weights, {"a": 0.1, "b": 1.0})
    assert int(masks["a"].sum()) == 60 and bool(masks["b"].all())
    pruned = apply_masks(weights, masks)
    assert torch.equal(pruned["b"], weights["b"])
    assert int((pruned["a"] != 0).sum()) == 60


def test_layerwise_keeps_at_least_one_weight_per_layer():
    masks = magnitude_masks(random_weights(), 0.0001)
    assert all(int(m.sum()) == 1 for m in masks.values())


@pytest.mark.parametrize("kept", [-0.1, 1.5])
def test_bad_fraction_is_refused(kept):
    with pytest.raises(ValueError, match="fraction"):
        magnitude_masks(random_weights(), kept)


def test_bad_scope_is_refused():
    with pytest.raises(ValueError, match="scope"):
        magnitude_masks(random_weights(), 0.5, scope="row")
