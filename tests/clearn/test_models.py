"""The literature's backbones, masked like any other: they train, prune, freeze bit for bit and
export, on CIFAR files in their real on-disk format."""

import pytest
import torch

from clearn.export import export_task
from clearn.models import MODELS, alexnet, backbone, resnet18


def test_published_shapes():
    assert alexnet(in_channels=3, image_size=32)[-1].in_features == 2048
    assert alexnet(in_channels=3, image_size=32)[13].in_features == 256 * 2 * 2
    assert resnet18(in_channels=3)[-1].in_features == 160
    with pytest.raises(ValueError, match="at least 19"):
        alexnet(in_channels=1, image_size=8)


@pytest.mark.parametrize("name", ["alexnet", "resnet18"])
def test_a_conv_backbone_packs_tasks_bit_exactly_and_exports(name, cifar_packnet):
    strategy, stream = cifar_packnet(name)
    model = strategy.model
    inputs = stream.test[0].inputs(torch.arange(len(stream.test[0])))
    strategy.train(stream.benchmark.train_stream[0], eval_streams=[])
    model.eval()
    with torch.no_grad():
        before = model(inputs, 0)
    strategy.train(stream.benchmark.train_stream[1], eval_streams=[])
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(inputs, 0), before)  # frozen bit for bit, BatchNorm included
        exported = export_task(model, 0).eval()
        assert torch.allclose(exported(inputs), before, atol=1e-5)
    assert 0 < sum(model.capacity().owned) <= 1


def test_every_model_is_offered():
    for name in MODELS:
        features, width = backbone(name, input_shape=(3, 32, 32))
        assert features(torch.zeros(2, 3, 32, 32)).shape == (2, width)
