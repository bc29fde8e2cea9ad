"""What made a benchmark's figures, and where they are shown: the header stamped into its
results file (commit, date, machine, command, a hash of its configuration), its results page
`docs/results/<name>.md`, and the README's tables generated from the results files.

`python -m benchmarks.report` rewrites the README's generated tables from the results files;
tests/test_figures.py fails when they, or a results file's configuration hash, are out of date.
"""

from __future__ import annotations

import ast
import datetime
import hashlib
import json
import os
import platform
import re
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import RESULTS_DIR
from clearn.app.config import RunConfig
from clearn.app.io import write_json_atomic, write_text_atomic
from clearn.app.tables import markdown_table, percent

__all__ = [
    "BENCHMARKS_DIR",
    "DOCS_RESULTS",
    "README",
    "config_hash",
    "generated_blocks",
    "machine",
    "peers_headline",
    "readme_blocks",
    "results_header",
    "update_readme",
    "with_blocks",
    "write_results_page",
]

BENCHMARKS_DIR = Path(__file__).resolve().parent
ROOT = BENCHMARKS_DIR.parent
DOCS_RESULTS = ROOT / "docs" / "results"
README = ROOT / "README.md"
HEADER = "header"
"""The key of a results file's header (what made it); the figures are under the other keys."""

_BLOCK = re.compile(
    r"(?P<open><!-- generated: (?P<name>[\w-]+)[^>]*-->\n)(?P<body>.*?)"
    r"(?P<close><!-- end: (?P=name) -->)",
    re.S,
)


OUTPUTS = ("benchmarks/results", "docs/results")
"""Where benchmarks write (repository paths): their own changes there are not "uncommitted
changes" of the code that made a results file."""


def _commit(folder: Path = BENCHMARKS_DIR) -> str:
    """The checkout's commit, and whether code outside OUTPUTS differs from it."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10,
            cwd=folder, check=True,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    outside = [f":(top,exclude){path}" for path in OUTPUTS]
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no", "--", ":(top)", *outside],
        capture_output=True, text=True, timeout=10, cwd=folder,
    ).stdout.strip()  # fmt: skip
    return done.stdout.strip() + (" with uncommitted changes" if dirty else "")


def machine() -> str:
    """CPU model and cores, and the GPU if any."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]  # fmt: skip
        model = names[0] if names else model
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{model}, {os.cpu_count()} cores, {gpu}; torch {torch.__version__}"


def _code_of(source: str) -> str:
    """The module's code as a syntax tree, without its docstrings and comments: what runs."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list):
            kept = [s for s in body if not (isinstance(s, ast.Expr)
                                            and isinstance(s.value, ast.Constant)
                                            and isinstance(s.value.value, str))]  # fmt: skip
            node.body = kept or [ast.Pass()]
    return ast.dump(tree)


def config_hash(benchmark: str, *, folder: Path = BENCHMARKS_DIR) -> str:
    """A hash of what decides a benchmark's figures: the code of `benchmarks/<benchmark>.py`
    (docstrings, comments and layout left out) and the defaults of `clearn run` (an option
    off by default, None, left out: adding one changes no figure that does not set it)."""
    code = _code_of((folder / f"{benchmark}.py").read_text())
    options = {k: v for k, v in RunConfig().to_dict().items() if v is not None}
    defaults = json.dumps(options, sort_keys=True, default=str)
    return hashlib.sha256(f"{code}\n{defaults}".encode()).hexdigest()[:16]


def results_header(benchmark: str, *, command: str, seconds: float) -> dict[str, Any]:
    """The header of a results file: which benchmark made it, with what, where and when."""
    return {
        "benchmark": benchmark,
        "config_hash": config_hash(benchmark),
        "commit": _commit(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "wall_seconds": round(seconds, 1),
        "command": command,
    }


def _stamp(results_file: Path, header: Mapping[str, Any]) -> None:
    """Put `header` at the top of the results file, above its figures."""
    figures = {k: v for k, v in json.loads(results_file.read_text()).items() if k != HEADER}
    write_json_atomic(results_file, {HEADER: dict(header), **figures})


def _configurations(
    configs: Mapping[str, Mapping[str, Any]], defaults: Mapping[str, Any]
) -> list[str]:
    lines = ["", "## Every run's configuration", "", "Options not listed for a run are these:", ""]
    lines.append(", ".join(f"{key}={value!r}" for key, value in defaults.items()))
    lines.append("")
    for label, options in configs.items():
        changed = {k: v for k, v in options.items() if defaults.get(k) != v}
        lines.append(f"- {label}: " + ", ".join(f"{k}={v!r}" for k, v in changed.items()))
    return lines


def write_results_page(
    name: str,
    *,
    title: str,
    body: str,
    command: str,
    seconds: float,
    configs: Mapping[str, Mapping[str, Any]],
    defaults: Mapping[str, Any],
    benchmark: str | None = None,
) -> Path:
    """Write `docs/results/<name>.md`: a header, `body` (tables, plot links), and every run's
    configuration (label → the options where it differs from `defaults`, listed once), so
    that each figure can be regenerated; stamp the same header into the results file,
    `<results>/<name>.json`, when it exists. `benchmark` names the module that made it
    (default: `name`). A reduced run (`--quick`, its results outside benchmarks/results)
    writes its page next to its results, not into the docs."""
    results = name.removesuffix("-quick")
    header = results_header(benchmark or results, command=command, seconds=seconds)
    if (RESULTS_DIR / f"{results}.json").is_file():
        _stamp(RESULTS_DIR / f"{results}.json", header)
    lines = [
        f"# {title}",
        "",
        *(f"- {key.replace('_', ' ')}: {value}" for key, value in header.items()
          if key not in ("benchmark", "wall_seconds", "command")),
        f"- wall time: {seconds / 60:.1f} min",
        f"- command: `{command}`",
        "",
        "Generated by the benchmark; nothing here is written by hand.",
        "",
    ]  # fmt: skip
    folder = DOCS_RESULTS if RESULTS_DIR == BENCHMARKS_DIR / "results" else RESULTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    page = "\n".join([*lines, body, *_configurations(configs, defaults)]) + "\n"
    return write_text_atomic(folder / f"{name}.md", page)


def peers_headline(results: Mapping[str, Any]) -> str:
    """The README's table of the mask methods: ACC % / CAP % of each method at its default
    operating point (the first one the peers benchmark lists), per stream and protocol."""
    header, rows = ["stream, protocol"], []
    for stream, protocols in results["streams"].items():
        for protocol, runs in protocols.items():
            defaults: dict[str, dict[str, Any]] = {}
            for run in runs:
                defaults.setdefault(run["method"], run)
            if len(header) == 1:
                header += [f"{method} ({run['point']})" for method, run in defaults.items()]
            rows.append([f"{stream}, {protocol}", *(
                f"{percent(run['acc'])} / {percent(run['cap'])}" if "acc" in run else "diverged"
                for run in defaults.values())])  # fmt: skip
    return markdown_table(header, rows)


FROZEN = "frozen features (reference)"
"""The long stream's frozen-features reference, by its results name."""
LONG_STREAM_COLUMNS = {
    "default": "default",
    "α = 1": "α = 1",
    "classic PackNet": "classic PackNet",
    FROZEN: "frozen features",
    "one network per task": "one network per task",
}
"""The long-stream methods the README shows (results name → column)."""


LONG_STREAM_1000 = (
    "long_stream_permuted-digits_default_alpha-1.json",
    "long_stream_permuted-fmnist_default_alpha-1.json",
    "long_stream_classic-packnet_frozen-features-reference.json",
)
"""The 1,000-task runs made so far: the default and α = 1 a stream each, classic PackNet and
the frozen-features reference on both streams."""
LONG_STREAM_100 = "long_stream_100.json"
"""The 100-task run of every method on both streams."""


def long_stream_headline(
    results: Mapping[str, Any], *, frozen_from: Mapping[str, Any] | None = None
) -> str:
    """The README's long-stream table: ACC % per method and stream ("–" where a run left a
    method out), and the default against issue 24's targets (beat frozen features by 5
    points and α = 1 by 2, stay within 3 points of its ACC after 10 tasks).

    `frozen_from`, the results of another length, fills the frozen-features reference where
    a run left it out, marked with that length: its expected ACC does not depend on the
    stream's length (each task's head trains alone on the first task's features)."""
    header = [f"{results['tasks']} permuted tasks", *LONG_STREAM_COLUMNS.values(),
              "default − frozen (≥ +5)", "default − α = 1 (≥ +2)",
              "default − its ACC after 10 tasks (≥ −3)"]  # fmt: skip
    elsewhere = frozen_from["streams"] if frozen_from else {}
    rows = []
    for stream, methods in results["streams"].items():
        accs = {name: methods.get(name, {}).get("acc") for name in LONG_STREAM_COLUMNS}
        cells = {name: percent(acc) for name, acc in accs.items()}
        if accs[FROZEN] is None and FROZEN in elsewhere.get(stream, {}):
            accs[FROZEN] = elsewhere[stream][FROZEN]["acc"]
            cells[FROZEN] = f"{percent(accs[FROZEN])} ({frozen_from['tasks']} tasks)"
        default = accs["default"]
        others = (accs[FROZEN], accs["α = 1"], methods["default"]["acc_after_10"])
        rows.append([
            stream, *cells.values(),
            *("–" if o is None else f"{100 * (default - o):+.1f}" for o in others),
        ])  # fmt: skip
    return markdown_table(header, rows)


def merged_runs(files: Iterable[Path]) -> dict[str, Any]:
    """One long-stream results dict from runs of the same length, on different streams or of
    different methods on one stream; a ValueError naming the files where their lengths
    differ. A method that several runs hold on one stream (the one-network-per-task reference
    every run makes) is taken from the first of them: the run of the default, whose targets
    are measured against it (another machine's run of the same reference can differ in its
    floats, and so in its last digits)."""
    files = list(files)
    runs = [json.loads(path.read_text()) for path in files]
    lengths = {run["tasks"] for run in runs}
    if len(lengths) != 1:
        names = ", ".join(path.name for path in files)
        raise ValueError(f"{names} are runs of {sorted(lengths)} tasks: merge runs of one length")
    streams: dict[str, dict[str, Any]] = {}
    for run in runs:
        for stream, methods in run["streams"].items():
            streams[stream] = {**methods, **streams.get(stream, {})}
    return {"tasks": lengths.pop(), "streams": streams}


def generated_blocks(text: str) -> dict[str, str]:
    """The generated blocks of a page: name → content between `<!-- generated: NAME … -->`
    and `<!-- end: NAME -->`."""
    return {match["name"]: match["body"] for match in _BLOCK.finditer(text)}


def with_blocks(text: str, contents: Mapping[str, str]) -> str:
    """`text` with the generated blocks named in `contents` replaced by those contents."""
    missing = set(contents) - set(generated_blocks(text))
    if missing:
        raise ValueError(f"no generated block named {', '.join(sorted(missing))} in the page")

    def replace(match: re.Match[str]) -> str:
        body = contents.get(match["name"], match["body"])
        return match["open"] + body.rstrip("\n") + "\n" + match["close"]

    return _BLOCK.sub(replace, text)


def readme_blocks(results_dir: Path = BENCHMARKS_DIR / "results") -> dict[str, str]:
    """What the README's generated blocks hold, made from today's results files."""
    peers = json.loads((results_dir / "peers.json").read_text())
    long_stream = json.loads((results_dir / LONG_STREAM_100).read_text())
    thousand = merged_runs([results_dir / name for name in LONG_STREAM_1000])
    return {
        "peers": peers_headline(peers),
        "long_stream": long_stream_headline(long_stream),
        "long_stream_1000": long_stream_headline(thousand, frozen_from=long_stream),
    }


def update_readme(readme: Path = README) -> bool:
    """Rewrite the README's generated blocks from the results files; whether it changed."""
    text = readme.read_text()
    updated = with_blocks(text, readme_blocks())
    if updated != text:
        write_text_atomic(readme, updated)
    return updated != text


if __name__ == "__main__":
    print("README updated" if update_readme() else "README already up to date")
