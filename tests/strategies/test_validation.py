from types import SimpleNamespace

import pytest
import torch
from avalanche.benchmarks import nc_benchmark
from torch.utils.data import DataLoader

from scenarios.streams import build_stream
from scenarios.tasks import TensorBatchLoader
from strategies.validation import ValidationData, dataset_batches, sample_batches
from tests.strategies.conftest import LabelledTensors


def _examples(batches) -> tuple[torch.Tensor, torch.Tensor]:
    """Every batch's inputs (flattened) and labels, concatenated."""
    inputs, labels = zip(*((b[0].flatten(1), b[1]) for b in batches), strict=True)
    return torch.cat(inputs), torch.cat(labels)


def _rows_found(sample: torch.Tensor, whole: torch.Tensor) -> torch.Tensor:
    """For each sampled input, the index of the identical row of `whole` (-1 if none)."""
    same = (sample[:, None, :] == whole[None, :, :]).all(dim=2)
    return torch.where(same.any(dim=1), same.int().argmax(dim=1), -1)


def _check_sample(dataset, examples: int) -> None:
    whole_inputs, whole_labels = _examples(dataset_batches(dataset, 100))
    inputs, labels = _examples(sample_batches(dataset, 64, examples=examples, seed=3))
    again, _ = _examples(sample_batches(dataset, 64, examples=examples, seed=3))
    other, _ = _examples(sample_batches(dataset, 64, examples=examples, seed=4))
    assert len(inputs) == examples
    rows = _rows_found(inputs, whole_inputs)
    assert (rows >= 0).all()  # every sampled example is one of the dataset's, with its label
    assert torch.equal(labels, whole_labels[rows])
    assert (rows.diff() > 0).all()  # distinct, in the dataset's order
    assert torch.equal(inputs, again) and not torch.equal(inputs, other)


def test_a_sample_is_a_fixed_subset_of_a_task_split():
    dataset = build_stream("permuted-digits", n_tasks=1).benchmark.train_stream[0].dataset
    _check_sample(dataset, examples=300)


def test_a_sample_is_a_fixed_subset_of_a_stock_avalanche_dataset(stock_benchmark):
    _check_sample(stock_benchmark.train_stream[0].dataset, examples=100)


def test_a_dataset_no_larger_than_the_sample_is_taken_whole():
    dataset = build_stream("permuted-digits", n_tasks=1).benchmark.train_stream[0].dataset
    whole, _ = _examples(dataset_batches(dataset, 100))
    sample, _ = _examples(sample_batches(dataset, 64, examples=len(dataset), seed=0))
    assert torch.equal(sample, whole)


def _experience_of(images: torch.Tensor, labels: torch.Tensor):
    train = LabelledTensors(images, labels)
    return nc_benchmark(
        train, train, n_experiences=1, task_labels=True, seed=0,
        class_ids_from_zero_in_each_exp=True,
    ).train_stream[0]  # fmt: skip


def _held_out_by(validation: ValidationData, experience) -> tuple[set, set]:
    strategy = SimpleNamespace(experience=experience, adapted_dataset=experience.dataset)
    validation.hold_out(strategy)
    held = validation._dataset(experience.task_label)
    return set(strategy.adapted_dataset.targets), set(held.targets)


def test_a_hold_out_from_few_examples_per_class_leaves_every_class_in_training():
    labels = torch.arange(6).repeat(2)  # two examples of each of six classes
    experience = _experience_of(torch.randn(12, 3), labels)
    for seed in range(10):
        trained, held = _held_out_by(ValidationData(share=0.5, seed=seed), experience)
        assert trained == set(range(6)) and held


def test_a_hold_out_that_cannot_spare_an_example_of_any_class_says_so():
    experience = _experience_of(torch.randn(4, 3), torch.arange(4))
    with pytest.raises(ValueError, match="single training example"):
        _held_out_by(ValidationData(share=0.5), experience)


def test_a_stock_validation_dataset_is_gathered_once_and_served_as_avalanche_serves_it(
    stock_benchmark,
):
    validation = ValidationData(stock_benchmark.test_stream)
    batches = validation.batches(2, 16)
    assert isinstance(batches, TensorBatchLoader)  # tensor batches, not a per-example loader
    assert validation.batches(2, 16) is batches  # gathered once for the task, not per pass
    theirs = DataLoader(stock_benchmark.test_stream[2].dataset.eval(), batch_size=16)
    for ours, avalanche in zip(_examples(batches), _examples(theirs), strict=True):
        assert torch.equal(ours, avalanche)
    assert validation.batches(3, 16) is not batches
