"""`Run` closes the log, its loggers and the library's log handler on every path."""

import logging

import pytest
import torch

from clearn.app import run as run_module
from clearn.app.config import RunConfig
from clearn.app.factory import run_stream
from clearn.app.run import Run

TINY = dict(scenario="permuted-digits", tasks=2, epochs=1, hidden=[8], patience=0, seed=0)


def _run(tmp_path, **options) -> Run:
    config = RunConfig(**{**TINY, **options})
    return Run(config, run_stream(config), tmp_path, device=torch.device("cpu"), quiet=False)


def _library_handlers() -> list:
    return list(logging.getLogger("strategies").handlers)


def _assert_closed(run: Run, handlers_before: list) -> None:
    assert run.log.closed
    csv = run.loggers[1]
    assert csv.training_file.closed and csv.eval_file.closed and csv.capacity_file.closed
    assert _library_handlers() == handlers_before


def test_a_failing_assembly_closes_what_the_run_opened(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("no such backbone")

    monkeypatch.setattr(run_module, "assemble", broken)
    before = _library_handlers()
    run = _run(tmp_path)
    with pytest.raises(ValueError, match="no such backbone"), run:
        assert not run.log.closed and len(_library_handlers()) == len(before) + 1
        run.assemble()
    _assert_closed(run, before)


@pytest.mark.parametrize("stop", [RuntimeError("mid-run"), KeyboardInterrupt()])
def test_an_exception_or_ctrl_c_mid_run_closes_what_the_run_opened(tmp_path, stop):
    before = _library_handlers()
    run = _run(tmp_path)
    with pytest.raises(type(stop)), run:
        run.assemble()
        train = run.assembled.strategy.train
        calls = []

        def train_then_stop(*args, **kwargs):
            calls.append(1)
            if len(calls) == 2:  # the second task: the first one's checkpoint is written
                raise stop
            return train(*args, **kwargs)

        run.assembled.strategy.train = train_then_stop
        run.train()
    assert len(run.progress.matrix) == 1
    _assert_closed(run, before)
