import pytest
import torch
from avalanche.training.plugins import EvaluationPlugin

from clearn.models import backbone
from clearn.network import PackedNetwork
from scenarios.streams import build_stream
from strategies.efficient_packnet import EfficientPackNet
from strategies.task_model import TaskNetwork
from strategies.tensor_loader import TensorLoaderPlugin


@pytest.fixture
def cifar_packnet(cifar10_root):
    """(strategy, stream): EfficientPackNet on a conv backbone over split CIFAR-10 files."""

    def build(model: str, *, optimizer=None, per_task_norm: bool = False):
        stream = build_stream("split-cifar10", n_tasks=2, seed=0, data_root=cifar10_root)
        torch.manual_seed(0)
        features, _ = backbone(model, input_shape=stream.input_shape)
        network = TaskNetwork(backbone=features, per_task_norm=per_task_norm)
        make = optimizer or (
            lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-3)
        )
        strategy = EfficientPackNet(
            model=network,
            optimizer=make(network.parameters()),
            train_mb_size=8,
            train_epochs=2,
            eval_mb_size=16,
            valid_stream=stream.benchmark.valid_stream,
            plugins=[TensorLoaderPlugin()],
            evaluator=EvaluationPlugin(loggers=[]),
        )
        return strategy, stream

    return build


@pytest.fixture
def tiny_network():
    """A factory of two-task PackedNetworks over 4 inputs (Flatten, Linear 4→3, ReLU), both
    tasks marked trained: the network of the routing and task-inference tests."""

    def build(**options) -> PackedNetwork:
        torch.manual_seed(0)
        layers = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3), torch.nn.ReLU())
        options = {"feature_size": 3, "classes_per_task": [2, 2], **options}
        network = PackedNetwork(backbone=layers, **options)
        network.trained_tasks = 2
        return network

    return build
