import pytest
import torch
from avalanche.benchmarks import nc_benchmark
from avalanche.core import SupervisedPlugin
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin
from torch.utils.data import TensorDataset

from clearn.models import mlp
from scenarios.datasets import load_dataset
from scenarios.streams import build_stream
from strategies.avalanche_compat import stored_examples
from strategies.tensor_loader import TensorLoaderPlugin, gathered_split


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


class LabelledTensors(TensorDataset):
    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        super().__init__(images, labels)
        self.targets = labels


def permuted_benchmark(**options):
    """Avalanche's PermutedMNIST shape, from tensors: one permuted copy of the data per
    experience, each its own task, through Avalanche's own generator."""
    digits = load_dataset("digits")
    train, test = digits.train_images.float() / 16, digits.test_images.float() / 16
    orders = [torch.arange(64), torch.randperm(64, generator=torch.Generator().manual_seed(0))]

    def permuted(images, labels):
        return [LabelledTensors(images.flatten(1)[:, o], labels) for o in orders]

    return nc_benchmark(
        permuted(train, digits.train_labels), permuted(test, digits.test_labels),
        n_experiences=2, task_labels=True, one_dataset_per_exp=True, seed=0,
        class_ids_from_zero_in_each_exp=True, **options,
    )  # fmt: skip


class LoaderProbe(SupervisedPlugin):
    """Records the type of the dataloader each experience ran on."""

    def __init__(self) -> None:
        super().__init__()
        self.loaders: list[str] = []

    def before_training_epoch(self, strategy, **kwargs) -> None:
        self.loaders.append(type(strategy.dataloader).__name__)

    def after_eval_exp(self, strategy, **kwargs) -> None:
        self.loaders.append(type(strategy.dataloader).__name__)


def test_an_avalanche_benchmark_of_tensors_is_served_as_avalanche_serves_it():
    benchmark = permuted_benchmark()
    probe = LoaderProbe()
    ours, theirs = naive([TensorLoaderPlugin(), probe]), naive([])
    theirs.model.load_state_dict(ours.model.state_dict())
    assert ours.eval(benchmark.test_stream) == theirs.eval(benchmark.test_stream)
    assert probe.loaders == ["TensorBatchLoader"] * 2
    experience = benchmark.train_stream[1]
    split = gathered_split(experience.dataset)
    x, y, t = experience.dataset[5]
    assert torch.equal(split.inputs(torch.tensor([5]))[0], x) and int(split.labels[5]) == y
    assert split.task_label == t == 1


def test_training_on_an_avalanche_benchmark_of_tensors_learns():
    benchmark = permuted_benchmark()
    probe = LoaderProbe()
    strategy = naive([TensorLoaderPlugin(), probe])
    strategy.train(benchmark.train_stream[0], eval_streams=[])
    metrics = strategy.eval(benchmark.test_stream[:1])
    assert metrics["Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp000"] > 0.5
    assert probe.loaders[:3] == ["TensorBatchLoader"] * 3, probe.loaders


def test_a_benchmark_with_transforms_keeps_avalanches_loader():
    benchmark = permuted_benchmark(train_transform=lambda x: x * 2)
    probe = LoaderProbe()
    strategy = naive([TensorLoaderPlugin(), probe])
    assert gathered_split(benchmark.train_stream[0].dataset) is None
    strategy.train(benchmark.train_stream[0], eval_streams=[])
    assert "TensorBatchLoader" not in probe.loaders[:3]


def _through_avalanche(dataset) -> list[torch.Tensor]:
    """Every example of an Avalanche dataset, read one by one and collated by Avalanche."""
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=len(dataset), collate_fn=dataset.collate_fn
    )
    return next(iter(loader))


def test_stored_examples_read_at_once_are_what_avalanche_serves(stock_benchmark):
    datasets = [
        stock_benchmark.train_stream[3].dataset,  # remapped classes of a class split
        stock_benchmark.test_stream[1].dataset.eval(),
        stock_benchmark.train_stream[2].dataset.subset([40, 3, 17, 3, 0]),  # reordered
        stock_benchmark.train_stream[0].dataset.concat(stock_benchmark.train_stream[4].dataset),
        permuted_benchmark().train_stream[1].dataset,
    ]
    for dataset in datasets:
        stored = stored_examples(dataset)
        assert stored is not None
        for ours, theirs in zip(stored, _through_avalanche(dataset)[:3], strict=True):
            assert torch.equal(ours, theirs)


class Doubled(TensorDataset):
    """A tensor dataset that serves its examples otherwise than as stored."""

    def __getitem__(self, index):
        x, y = super().__getitem__(index)
        return 2 * x, y


def test_stored_examples_refuse_a_leaf_that_serves_its_own_way():
    images, labels = torch.randn(20, 4), torch.arange(20) % 2
    doubled = Doubled(images, labels)
    doubled.targets = labels
    dataset = nc_benchmark(
        doubled, doubled, n_experiences=1, task_labels=True, seed=0
    ).train_stream[0].dataset  # fmt: skip
    assert stored_examples(dataset) is None
    split = gathered_split(dataset)  # read one by one instead: what Avalanche serves
    x, y, _ = dataset[7]
    assert torch.equal(split.inputs(torch.tensor([7]))[0], x) and int(split.labels[7]) == y
