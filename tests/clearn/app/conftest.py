import pytest
import torch

from clearn.app import experiment
from clearn.app.cli import main
from clearn.app.config import RunConfig


@pytest.fixture
def cli(capsys):
    """The command line in this process (fast): returns (exit code, stdout, stderr)."""

    def call(*args: str) -> tuple[int, str, str]:
        try:
            code = main(list(args))
        except SystemExit as stop:  # argparse's own errors
            code = stop.code
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return call


@pytest.fixture
def run_counting_steps(monkeypatch):
    """Runs a config straight through in this process; returns its results (as in
    results.json) and the optimizer steps each task (each checkpoint) took."""

    def run(config: RunConfig, out) -> tuple[dict, list[int]]:
        steps, ends = [0], []
        original_step, original_save = torch.optim.SGD.step, experiment.save_checkpoint

        def step(self, *args, **kwargs):
            steps[0] += 1
            return original_step(self, *args, **kwargs)

        def save(path, state):
            if not state.get("finished"):
                ends.append(steps[0])
            return original_save(path, state)

        with monkeypatch.context() as patched:
            patched.setattr(torch.optim.SGD, "step", step)
            patched.setattr(experiment, "save_checkpoint", save)
            results = experiment.run_experiment(config, out).to_dict()
        return results, [end - begin for begin, end in zip([0, *ends], ends, strict=False)]

    return run
