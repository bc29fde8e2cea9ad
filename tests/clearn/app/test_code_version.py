import json

import pytest
import torch

from clearn.app import experiment
from clearn.app.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from clearn.app.code_version import code_version, fingerprint
from clearn.app.config import RunConfig
from clearn.app.experiment import run_experiment, run_or_reuse
from clearn.app.results import RunResult
from clearn.app.run import CHECKPOINT

TINY = dict(scenario="split-digits", tasks=2, epochs=1, hidden=[16])


def test_the_fingerprint_follows_every_source_byte_and_nothing_else(tmp_path):
    source = tmp_path / "package"
    (source / "sub").mkdir(parents=True)
    (source / "sub" / "module.py").write_text("x = 1\n")
    sources = {"package": source}
    first = fingerprint(sources, ["torch"])
    (source / "notes.txt").write_text("not code")
    assert fingerprint(sources, ["torch"]) == first
    (source / "sub" / "module.py").write_text('x = 1\n"""a docstring"""\n')
    assert fingerprint(sources, ["torch"]) != first
    (source / "sub" / "module.py").write_text("x = 1\n")
    assert fingerprint(sources, ["torch"]) == first
    (source / "sub" / "module.py").rename(source / "module.py")
    assert fingerprint(sources, ["torch"]) != first
    assert fingerprint(sources, ["torch", "a-library-not-installed"]) != fingerprint(
        sources, ["torch"]
    )


def test_a_run_records_the_code_that_made_it_and_only_that_code_reuses_it(
    tmp_path, monkeypatch
):
    config = RunConfig(**TINY)
    out = tmp_path / "run"
    made = run_or_reuse(config, out)
    assert made.code_version == code_version()
    assert RunResult.read(out).code_version == code_version()
    assert load_checkpoint(out / CHECKPOINT)["code_version"] == code_version()
    stamp = (out / "results.json").stat().st_mtime_ns
    assert run_or_reuse(config, out).acc == made.acc  # the same code: reused as it is
    monkeypatch.setattr(experiment, "code_version", lambda: "0123456789abcdef")
    with pytest.raises(CheckpointError, match="written by other code .*delete the folder"):
        run_or_reuse(config, out)
    assert (out / "results.json").stat().st_mtime_ns == stamp


def test_results_of_a_clearn_too_old_to_record_its_code_are_not_reused(tmp_path):
    config = RunConfig(**TINY)
    out = tmp_path / "run"
    run_or_reuse(config, out)
    results = json.loads((out / "results.json").read_text())
    del results["code_version"]
    (out / "results.json").write_text(json.dumps(results))
    with pytest.raises(CheckpointError, match="a clearn that did not record it"):
        run_or_reuse(config, out)


def test_a_run_interrupted_under_other_code_is_not_resumed(tmp_path):
    out = tmp_path / "run"
    run_experiment(RunConfig(**TINY), out)
    # As if killed after its last task's checkpoint: no results yet, the checkpoint unfinished.
    (out / "results.json").unlink()
    state = load_checkpoint(out / CHECKPOINT)
    del state["finished"]
    state["code_version"] = "0123456789abcdef"
    save_checkpoint(out / CHECKPOINT, state)
    before = torch.load(out / CHECKPOINT, weights_only=True)
    with pytest.raises(CheckpointError, match="code version 0123456789abcdef.*resume it"):
        run_experiment(RunConfig(**TINY), out, resume=True)
    after = torch.load(out / CHECKPOINT, weights_only=True)
    assert after.keys() == before.keys() and after["code_version"] == before["code_version"]
