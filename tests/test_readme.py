from pathlib import Path

from benchmarks.avalanche_example import (
    figures_of,
    readme_example,
    run_example,
    stated_figures,
)

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_names_the_two_set_up_commands():
    text = README.read_text()
    assert "make demo" in text and "make test" in text


def test_readme_is_read_in_five_minutes_with_the_avalanche_example_near_the_top():
    text = README.read_text()
    assert len(text.split()) <= 1600
    first_lines = "\n".join(text.splitlines()[:60])
    assert "## Use it from Avalanche" in first_lines
    assert readme_example().splitlines()[-1] in first_lines


def test_readme_avalanche_example_is_short_and_states_its_figures():
    code = [line for line in readme_example().splitlines() if line.strip()]
    assert len(code) <= 15
    stated = stated_figures()
    assert 0 < stated["acc"] <= 1 and 0 < stated["capacity_used"] <= 1


def test_readme_avalanche_example_runs_on_a_stock_benchmark_as_written(tmp_path, mnist_layout):
    """The block as a user pastes it, on Avalanche's SplitFMNIST read from its data folder
    (random images in the real file format: torchvision finds them and downloads nothing)."""
    home = tmp_path / "home"
    mnist_layout(
        home / ".avalanche" / "data" / "fashionmnist",
        "FashionMNIST",
        train=400,
        test=100,
        compress=False,
    )
    printed, logged, _ = run_example(home)  # RuntimeError with its stderr if it fails
    assert "no valid_stream given" in logged
    figures = figures_of(printed)
    assert figures["forgetting"] == 0.0
    assert 0 < figures["capacity_used"] <= 1
