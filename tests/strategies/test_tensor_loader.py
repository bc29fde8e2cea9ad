import pytest
import torch
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin

from clearn.models import mlp
from scenarios.streams import build_stream
from strategies.tensor_loader import TensorLoaderPlugin


def naive(plugins: list) -> Naive:
    torch.manual_seed(0)
    model = mlp(input_size=64, hidden=(32,))
    return Naive(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        train_mb_size=32,
        train_epochs=3,
        eval_mb_size=128,
        plugins=plugins,
        evaluator=EvaluationPlugin(accuracy_metrics(experience=True)),
    )


@pytest.fixture(scope="module")
def stream():
    return build_stream("permuted-digits", n_tasks=2)


def test_evaluation_matches_avalanches_own_loader(stream):
    ours, theirs = naive([TensorLoaderPlugin()]), naive([])
    theirs.model.load_state_dict(ours.model.state_dict())
    ours_metrics = ours.eval(stream.benchmark.test_stream)
    theirs_metrics = theirs.eval(stream.benchmark.test_stream)
    assert ours_metrics == theirs_metrics


def test_training_through_the_plugin_learns(stream):
    strategy = naive([TensorLoaderPlugin()])
    strategy.train(stream.benchmark.train_stream[0], eval_streams=[])
    metrics = strategy.eval(stream.benchmark.test_stream[:1])
    accuracy = metrics["Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp000"]
    assert accuracy > 0.5  # chance is 0.1
