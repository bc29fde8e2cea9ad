import pytest
import torch

from clearn.app import experiment
from clearn.app import run as run_module
from clearn.app.cli import main
from clearn.app.config import RunConfig


@pytest.fixture
def cli(capsys):
    """The command line in this process (fast): returns (exit code, stdout, stderr)."""

    def call(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()  # what this call prints, not what came before it
        try:
            code = main(list(args))
        except SystemExit as stop:  # argparse's own errors
            code = stop.code
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return call


OPTIMIZER_CLASSES = (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW, torch.optim.RMSprop)
"""The optimizers a run may build (its own or a strategy's paper's): their steps are counted."""


def count_optimizer_steps(patcher, before_step) -> None:
    """Call `before_step()` ahead of every optimizer step, whatever the optimizer class."""
    for kind in OPTIMIZER_CLASSES:

        def step(self, *args, _original=kind.step, **kwargs):
            before_step()
            return _original(self, *args, **kwargs)

        patcher.setattr(kind, "step", step)


@pytest.fixture
def run_counting_steps(monkeypatch):
    """Runs a config straight through in this process; returns its results (as in
    results.json) and the optimizer steps each task (each checkpoint) took."""

    def run(config: RunConfig, out) -> tuple[dict, list[int]]:
        steps, ends = [0], []
        original_save = run_module.save_checkpoint

        def count() -> None:
            steps[0] += 1

        def save(path, state):
            if not state.get("finished"):
                ends.append(steps[0])
            return original_save(path, state)

        with monkeypatch.context() as patched:
            count_optimizer_steps(patched, count)
            patched.setattr(run_module, "save_checkpoint", save)
            results = experiment.run_experiment(config, out).to_dict()
        return results, [end - begin for begin, end in zip([0, *ends], ends, strict=False)]

    return run
