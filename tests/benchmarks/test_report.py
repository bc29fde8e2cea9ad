"""benchmarks/report.py: a results page stamps its results file with what made it."""

import json
import subprocess

import pytest

from benchmarks import report
from benchmarks.report import HEADER, config_hash, generated_blocks, with_blocks


def test_a_results_page_stamps_its_header_into_the_results_file(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "RESULTS_DIR", tmp_path)
    (tmp_path / "peers.json").write_text(json.dumps({"streams": {"s": {}}}))
    page = report.write_results_page(
        "peers-quick", title="T", body="| a |\n|---|\n| 1 |", command="python -m benchmarks",
        seconds=90.0, configs={"run": {"lr": 0.1}}, defaults={"lr": 0.3},
    )  # fmt: skip
    results = json.loads((tmp_path / "peers.json").read_text())
    header = results[HEADER]
    assert list(results) == [HEADER, "streams"] and results["streams"] == {"s": {}}
    assert header["benchmark"] == "peers" and header["config_hash"] == config_hash("peers")
    assert header["command"] == "python -m benchmarks" and header["wall_seconds"] == 90.0
    assert page == tmp_path / "peers-quick.md"  # a reduced run stays out of docs/
    text = page.read_text()
    assert f"- config hash: {header['config_hash']}" in text and "- run: lr=0.1" in text


def test_generated_blocks_are_replaced_and_the_rest_kept():
    text = "a\n<!-- generated: t from x -->\nold\n<!-- end: t -->\nb\n"
    assert generated_blocks(text) == {"t": "old\n"}
    assert with_blocks(text, {"t": "new"}) == text.replace("old", "new")


def test_a_new_option_off_by_default_leaves_every_results_file_current(monkeypatch):
    before = config_hash("peers")
    defaults = report.RunConfig().to_dict()
    monkeypatch.setattr(report.RunConfig, "to_dict", lambda self: {**defaults, "new": None})
    assert config_hash("peers") == before
    monkeypatch.setattr(report.RunConfig, "to_dict", lambda self: {**defaults, "new": 0.5})
    assert config_hash("peers") != before


def test_the_long_stream_headline_measures_the_default_against_each_target():
    accs = {"default": 0.90, "α = 1": 0.91, "classic PackNet": 0.85,
            "frozen features (reference)": 0.80, "one network per task": 0.95}  # fmt: skip
    methods = {name: {"acc": acc} for name, acc in accs.items()}
    methods["default"]["acc_after_10"] = 0.94
    table = report.long_stream_headline({"tasks": 7, "streams": {"toy": methods}})
    header, _, row = table.splitlines()
    assert header.startswith("| 7 permuted tasks | default | α = 1 |")
    assert row == "| toy | 90.0 | 91.0 | 85.0 | 80.0 | 95.0 | +10.0 | -1.0 | -4.0 |"


def test_a_results_file_the_benchmark_just_wrote_is_not_an_uncommitted_change(tmp_path):
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    folder = tmp_path / "benchmarks"
    (folder / "results").mkdir(parents=True)
    (folder / "bench.py").write_text("STEPS = 3\n")
    (folder / "results" / "bench.json").write_text("{}\n")
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "first"], check=True)
    (folder / "results" / "bench.json").write_text('{"acc": 0.9}\n')
    assert "uncommitted" not in report._commit(folder)
    (folder / "bench.py").write_text("STEPS = 4\n")
    assert report._commit(folder).endswith(" with uncommitted changes")


def test_the_long_stream_headline_marks_a_method_a_partial_run_left_out():
    methods = {"default": {"acc": 0.9, "acc_after_10": 0.92}, "α = 1": {"acc": 0.88}}
    row = report.long_stream_headline({"tasks": 9, "streams": {"toy": methods}}).splitlines()[2]
    assert row == "| toy | 90.0 | 88.0 | – | – | – | – | +2.0 | -2.0 |"


def test_the_long_stream_headline_takes_frozen_features_from_another_length_where_left_out():
    methods = {"default": {"acc": 0.9, "acc_after_10": 0.92}, "α = 1": {"acc": 0.88}}
    shorter = {"tasks": 100, "streams": {"toy": {report.FROZEN: {"acc": 0.8}}, "other": {}}}
    table = report.long_stream_headline(
        {"tasks": 9, "streams": {"toy": methods, "other": methods}}, frozen_from=shorter
    )
    toy, other = table.splitlines()[2:]
    assert toy == "| toy | 90.0 | 88.0 | – | 80.0 (100 tasks) | – | +10.0 | +2.0 | -2.0 |"
    assert other == "| other | 90.0 | 88.0 | – | – | – | – | +2.0 | -2.0 |"


def test_long_runs_of_one_length_on_two_streams_make_one_table(tmp_path):
    methods = {"default": {"acc": 0.9, "acc_after_10": 0.92}, "α = 1": {"acc": 0.88}}
    for stream in ("a", "b"):
        (tmp_path / f"{stream}.json").write_text(
            json.dumps({"tasks": 9, "streams": {stream: methods}})
        )
    merged = report.merged_runs([tmp_path / "a.json", tmp_path / "b.json"])
    rows = report.long_stream_headline(merged).splitlines()[2:]
    assert [row.split(" | ")[0] for row in rows] == ["| a", "| b"]
    (tmp_path / "b.json").write_text(json.dumps({"tasks": 10, "streams": {"b": methods}}))
    with pytest.raises(ValueError, match="runs of \\[9, 10\\] tasks"):
        report.merged_runs([tmp_path / "a.json", tmp_path / "b.json"])


def test_long_runs_of_other_methods_on_one_stream_join_its_row(tmp_path):
    ours = {"default": {"acc": 0.9, "acc_after_10": 0.92}, "one network per task": {"acc": 0.95}}
    theirs = {"classic PackNet": {"acc": 0.85}, "one network per task": {"acc": 0.94}}
    for name, methods in (("ours", ours), ("theirs", theirs)):
        (tmp_path / f"{name}.json").write_text(json.dumps({"tasks": 9, "streams": {"a": methods}}))
    merged = report.merged_runs([tmp_path / "ours.json", tmp_path / "theirs.json"])
    (row,) = report.long_stream_headline(merged).splitlines()[2:]
    assert row == "| a | 90.0 | – | 85.0 | – | 95.0 | – | – | -2.0 |"  # the first run's reference
