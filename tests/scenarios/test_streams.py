import pytest
import torch

from scenarios.datasets import load_dataset
from scenarios.streams import STREAM_NAMES, build_stream, split_of
from scenarios.tasks import TensorBatchLoader


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.mark.parametrize("name", ["permuted-digits", "split-digits"])
def test_digit_streams_build_and_iterate_with_task_labels(name, digits):
    stream = build_stream(name, n_tasks=3, data=digits)
    benchmark = stream.benchmark
    for key in ("train_stream", "valid_stream", "test_stream"):
        experiences = list(getattr(benchmark, key))
        assert len(experiences) == 3
        for index, experience in enumerate(experiences):
            assert experience.task_label == index
            inputs, label, task = experience.dataset[0]
            assert inputs.shape == (1, 8, 8) and inputs.dtype == torch.float32
            assert 0.0 <= float(inputs.min()) and float(inputs.max()) <= 1.0
            assert task == index and 0 <= label < stream.classes_per_task[index]


@pytest.mark.parametrize("name", [n for n in STREAM_NAMES if n.endswith("digits")])
def test_validation_comes_from_training_data_and_is_disjoint(name, digits):
    stream = build_stream(name, data=digits)
    for train, valid, test in zip(stream.train, stream.valid, stream.test, strict=True):
        assert train.images is valid.images is digits.train_images
        assert test.images is digits.test_images
        assert not set(train.rows.tolist()) & set(valid.rows.tolist())


def test_split_streams_have_disjoint_classes_and_remapped_labels(digits):
    stream = build_stream("split-digits", data=digits, seed=3)
    seen: set[int] = set()
    for split in stream.train:
        original = set(digits.train_labels[split.rows].tolist())
        assert len(original) == 2 and not original & seen
        seen |= original
        assert set(split.labels.tolist()) == {0, 1}
    assert seen == set(range(10))
    other = build_stream("split-digits", data=digits, seed=4)
    orders = [
        [set(digits.train_labels[s.rows].tolist()) for s in st.train] for st in (stream, other)
    ]
    assert orders[0] != orders[1]


def test_permutations_are_deterministic_by_seed_and_differ_across_tasks(digits):
    first = build_stream("permuted-digits", n_tasks=4, data=digits, seed=7)
    again = build_stream("permuted-digits", n_tasks=4, data=digits, seed=7)
    other = build_stream("permuted-digits", n_tasks=4, data=digits, seed=8)
    assert first.train[0].permutation is None
    permutations = [s.permutation for s in first.train[1:]]
    for a, b in zip(permutations, [s.permutation for s in again.train[1:]], strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(permutations[0], permutations[1])
    assert not torch.equal(permutations[0], other.train[1].permutation)
    assert sorted(permutations[0].tolist()) == list(range(64))
    # The same image appears with its pixels reordered by the task's permutation.
    position = torch.tensor([0])
    plain = first.train[0].inputs(position).flatten()
    assert torch.equal(first.train[1].inputs(position).flatten(), plain[permutations[0]])


def test_a_thousand_permuted_tasks_share_one_copy_of_the_images(digits):
    stream = build_stream("permuted-digits", n_tasks=1000, data=digits)
    assert stream.n_tasks == 1000
    pointers = {s.images.data_ptr() for s in stream.train + stream.valid}
    assert pointers == {digits.train_images.data_ptr()}
    assert {s.labels.data_ptr() for s in stream.train} == {stream.train[0].labels.data_ptr()}


def test_too_many_split_tasks_is_refused(digits):
    with pytest.raises(ValueError, match="forms 1 to 5 tasks"):
        build_stream("split-digits", n_tasks=6, data=digits)
    with pytest.raises(ValueError, match="unknown scenario"):
        build_stream("rotated-mnist")


def test_split_cifar100_defaults_to_ten_tasks_of_ten_and_takes_twenty_of_five(cifar100_root):
    data = load_dataset("cifar100", root=cifar100_root)
    assert build_stream("split-cifar100", data=data).n_tasks == 10
    twenty = build_stream("split-cifar100", data=data, classes_per_task=5)
    assert twenty.n_tasks == 20 and twenty.classes_per_task == [5] * 20


def test_batch_loader_delivers_the_same_examples_as_per_example_access(digits):
    stream = build_stream("permuted-digits", n_tasks=2, data=digits)
    experience = stream.benchmark.train_stream[1]
    split = split_of(experience.dataset)
    assert split is stream.train[1]
    batches = list(TensorBatchLoader(split, batch_size=100, shuffle=False))
    assert len(batches) == -(-len(split) // 100)
    inputs = torch.cat([b[0] for b in batches])
    labels = torch.cat([b[1] for b in batches])
    assert torch.equal(torch.cat([b[2] for b in batches]), torch.ones(len(split), dtype=torch.long))
    for index in (0, 57, len(split) - 1):
        x, y, t = experience.dataset[index]
        assert torch.equal(inputs[index], x) and labels[index] == y and t == 1


def test_shuffled_batches_cover_every_example_once(digits):
    split = build_stream("split-digits", n_tasks=1, data=digits).train[0]
    torch.manual_seed(0)
    labels = torch.cat([b[1] for b in TensorBatchLoader(split, batch_size=32, shuffle=True)])
    assert torch.equal(labels.sort().values, split.labels.sort().values)
    assert not torch.equal(labels, split.labels)


def test_a_sample_of_a_split_is_seeded_in_order_and_the_whole_split_when_small(digits):
    split = build_stream("permuted-digits", n_tasks=2, data=digits).test[1]
    sample = split.sample(50, seed=3)
    assert len(sample) == 50 and sample.permutation is split.permutation
    assert torch.equal(sample.rows, sample.rows.sort().values)  # in the split's order
    positions = torch.searchsorted(split.rows, sample.rows)  # split.rows is sorted too here
    assert torch.equal(split.rows[positions], sample.rows)
    assert torch.equal(split.labels[positions], sample.labels)
    assert torch.equal(sample.inputs(torch.arange(50)), split.inputs(positions))
    assert torch.equal(split.sample(50, seed=3).rows, sample.rows)
    assert not torch.equal(split.sample(50, seed=4).rows, sample.rows)
    assert split.sample(len(split), seed=0) is split
    with pytest.raises(ValueError, match="at least one example"):
        split.sample(0, seed=0)


def test_train_per_class_keeps_that_many_per_class_seeded_and_the_whole_test_set(digits):
    small = build_stream("split-digits", data=digits, train_per_class=20, seed=3)
    again = build_stream("split-digits", data=digits, train_per_class=20, seed=3)
    whole = build_stream("split-digits", data=digits, seed=3)
    for task in range(small.n_tasks):
        seen = torch.cat([small.train[task].labels, small.valid[task].labels])
        assert torch.bincount(seen).tolist() == [20, 20]
        assert torch.equal(small.train[task].rows, again.train[task].rows)
        assert len(small.test[task]) == len(whole.test[task])
    other = build_stream("split-digits", data=digits, train_per_class=20, seed=4)
    assert not torch.equal(
        other.train[0].images[other.train[0].rows], small.train[0].images[small.train[0].rows]
    )


@pytest.mark.parametrize("name", ["permuted-digits", "split-digits"])
@pytest.mark.parametrize(("per_class", "held_out"), [(2, 0.5), (3, 0.5), (5, 0.3), (20, 0.1)])
def test_a_small_per_class_subsample_keeps_every_class_in_training(
    name, per_class, held_out, digits
):
    stream = build_stream(
        name, data=digits, train_per_class=per_class, validation_fraction=held_out, seed=1
    )
    for train, valid in zip(stream.train, stream.valid, strict=True):
        assert len(valid) > 0
        assert set(train.labels.tolist()) == set(torch.cat([train.labels, valid.labels]).tolist())


def test_the_hold_out_draws_the_plain_random_rows_when_no_class_would_be_emptied(digits):
    stream = build_stream("permuted-digits", n_tasks=1, data=digits, seed=5)
    order = torch.randperm(len(digits.train_labels), generator=torch.Generator().manual_seed(5))
    valid_count = len(stream.valid[0])
    assert torch.equal(stream.valid[0].rows, order[:valid_count].sort().values)
    assert torch.equal(stream.train[0].rows, order[valid_count:].sort().values)


def test_train_per_class_must_be_positive(digits):
    with pytest.raises(ValueError, match="at least 1"):
        build_stream("permuted-digits", data=digits, train_per_class=0)


def test_a_stream_too_large_for_memory_is_refused_before_it_is_built(monkeypatch):
    monkeypatch.setattr("scenarios.streams._available_memory", lambda: 2**30)
    with pytest.raises(ValueError, match=r"need about .* GiB of memory, 1.0 GiB are free"):
        build_stream("permuted-digits", n_tasks=30000)
    assert build_stream("permuted-digits", n_tasks=3).n_tasks == 3
