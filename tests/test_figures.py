"""Every figure in the README and the docs is the one its results file holds, and every
results file was made by today's benchmark code and defaults (its header's configuration hash),
or is listed below as waiting to be rerun."""

import json
import re
from pathlib import Path

import pytest

from benchmarks.avalanche_example import stated_figures
from benchmarks.report import (
    HEADER,
    config_hash,
    generated_blocks,
    peers_headline,
    readme_blocks,
    with_blocks,
)
from clearn.app.tables import percent

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"
HAND_WRITTEN_PAGES = [README, *(ROOT / "docs" / n for n in ("index.md", "design.md", "cli.md"))]

EXPECTED_STALE: dict[str, tuple[str, str | None]] = {
    # results file: (the benchmark that reruns it, the configuration hash that benchmark had
    # when the file was listed; None for a file with no header), for a results file made
    # before its benchmark's code or `clearn run`'s defaults changed. A listed file fails
    # again once the hash moves on from the listed one: look again at what changed.
    # Made before the 1,000-task Fashion-MNIST default answered a sample of each test set
    # (TASK_ID_EXAMPLES); these runs' configurations did not change.
    "long_stream_100.json": ("long_stream", "d2184e7b8328ffd5"),
    "long_stream_permuted-digits_default_alpha-1.json": ("long_stream", "d2184e7b8328ffd5"),
}
STALE_ISSUE = "issue 27 (item 2: rerun every benchmark with today's defaults)"


def _rerun(benchmark: str) -> str:
    return f"rerun it: python -m benchmarks --only {benchmark}"


def _header(path: Path) -> dict | None:
    return json.loads(path.read_text()).get(HEADER)


@pytest.mark.parametrize("path", sorted(RESULTS.glob("*.json")), ids=lambda p: p.name)
def test_a_results_file_was_made_by_todays_benchmark_or_is_listed_stale(path):
    header = _header(path)
    if header is None:
        assert path.name in EXPECTED_STALE, (
            f"{path.name} has no header saying what made it; {_rerun('<its benchmark>')}"
        )
        pytest.xfail(f"{path.name}: no header yet; {_rerun(EXPECTED_STALE[path.name][0])} "
                     f"({STALE_ISSUE})")  # fmt: skip
    benchmark, today = header["benchmark"], config_hash(header["benchmark"])
    if path.name in EXPECTED_STALE and header["config_hash"] != today:
        listed = EXPECTED_STALE[path.name][1]
        assert today == listed, (
            f"{path.name} is listed stale at benchmarks/{benchmark}.py's hash {listed}, which "
            f"has changed again ({today}): check what the change does to its runs, then "
            f"rerun it ({header['command']}) or list the new hash"
        )
        pytest.xfail(f"{path.name}: made at {header['commit']}, before benchmarks/{benchmark}"
                     f".py or the defaults changed; rerun {header['command']}")  # fmt: skip
    assert header["config_hash"] == today, (
        f"{path.name} was made by benchmarks/{benchmark}.py at {header['commit']}; its code or "
        f"clearn run's defaults changed since: {_rerun(benchmark)}"
    )
    assert path.name not in EXPECTED_STALE, (
        f"{path.name} is current now: remove it from EXPECTED_STALE"
    )


def test_the_stale_list_names_existing_files_and_benchmarks():
    for name, (benchmark, _) in EXPECTED_STALE.items():
        assert (RESULTS / name).is_file(), f"{name} is gone: remove it from EXPECTED_STALE"
        assert (ROOT / "benchmarks" / f"{benchmark}.py").is_file(), benchmark


def test_the_configuration_hash_follows_the_code_not_its_docstrings(tmp_path):
    code = '"""A benchmark."""\nSTEPS = 3\n"""How long."""\n\n\ndef run():\n    return STEPS\n'
    (tmp_path / "toy.py").write_text(code)
    before = config_hash("toy", folder=tmp_path)
    (tmp_path / "toy.py").write_text(code.replace("How long", "Steps") + "# a comment\n")
    assert config_hash("toy", folder=tmp_path) == before
    (tmp_path / "toy.py").write_text(code.replace("STEPS = 3", "STEPS = 4"))
    assert config_hash("toy", folder=tmp_path) != before


def test_the_readme_tables_are_generated_from_the_results_files():
    text = README.read_text()
    assert with_blocks(text, readme_blocks()) == text, (
        "the README's generated tables differ from benchmarks/results/: run "
        "python -m benchmarks.report"
    )
    peers = json.loads((RESULTS / "peers.json").read_text())
    assert generated_blocks(text)["peers"].strip() == peers_headline(peers)
    runs = [run for protocols in peers["streams"].values() for runs in protocols.values()
            for run in runs]  # fmt: skip
    if "Every method forgets nothing" in text:
        assert all(run["forgetting"] == 0 for run in runs)


def test_the_readme_avalanche_figures_are_the_measured_ones():
    measured = json.loads((RESULTS / "avalanche_example.json").read_text())
    stated = stated_figures()
    for key in ("acc", "capacity_used"):
        assert f"{100 * stated[key]:.1f}" == f"{100 * measured['measured'][key]:.1f}", key
    assert stated["forgetting"] == measured["measured"]["forgetting"]
    section = README.read_text().split("## Use it from Avalanche", 1)[1]
    assert re.search(rf"in {measured['seconds']:.0f} s\b", section)


def _page_rows(page: Path, columns: int) -> list[list[str]]:
    """The cells of every table row of `page` with `columns` cells, header rows left out."""
    rows = []
    for line in page.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == columns and not set(cells[0]) <= {"-"}:
            rows.append(cells)
    return rows[1:]


def test_the_peers_results_page_holds_the_figures_of_its_results_file():
    streams = json.loads((RESULTS / "peers.json").read_text())["streams"]
    rows = _page_rows(ROOT / "docs" / "results" / "peers.md", columns=9)
    expected = [
        [stream, protocol, run["method"], run["point"], percent(run["acc"]),
         percent(run["cap"]), percent(run["used"]), f"{run['forgetting']:.4f}",
         f"{run['train_seconds']:.0f}"]
        for stream, protocols in streams.items()
        for protocol, runs in protocols.items()
        for run in runs
    ]  # fmt: skip
    assert rows == expected


def _prose(text: str) -> str:
    """`text` without its code blocks, inline code and generated blocks."""
    text = with_blocks(text, dict.fromkeys(generated_blocks(text), ""))
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    return re.sub(r"`[^`]*`", "", text)


@pytest.mark.parametrize("page", HAND_WRITTEN_PAGES, ids=lambda p: p.name)
def test_a_hand_written_page_states_no_measured_figure_of_its_own(page):
    """Measured figures (shares and durations) come from results files, in generated blocks;
    the README's one exception is its Avalanche example's, checked above."""
    prose = _prose(page.read_text())
    if page == README:
        sentence = re.search(r"ACC [\d.]+%,.*?in \d+ s", prose, re.S)
        prose = prose.replace(sentence.group(0), "")
    figures = re.findall(r"\d[\d.,]*\s?(?:%|s\b|min\b|seconds|minutes)", prose)
    assert not figures, f"{page.name} states figures no results file backs: {figures}"
