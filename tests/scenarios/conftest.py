import pytest


@pytest.fixture
def mnist_root(tmp_path, mnist_layout):
    mnist_layout(tmp_path, "MNIST", train=50, test=20, compress=True)
    return tmp_path


