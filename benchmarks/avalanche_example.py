"""The README's Avalanche example, run as written on real Fashion-MNIST (SplitFMNIST, five
tasks, no validation stream), its figures printed next to the ones the README states."""

from __future__ import annotations

import ast
import gzip
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import main, save_result
from benchmarks.report import write_results_page
from clearn.app.config import RunConfig
from clearn.app.tables import markdown_table
from scenarios.datasets import DEBIAN_FASHION_MNIST
from strategies.metric_keys import CAPACITY_USED

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SECTION = "## Use it from Avalanche"
SETTINGS = {
    "scenario": "Avalanche's SplitFMNIST(n_experiences=5, return_task_id=True, seed=0)",
    "tasks": 5,
    "hidden": [300],
    "validation": "a share of each training experience (no valid_stream)",
}
"""The example's settings where they differ from `clearn run`'s defaults (its code is on the
page)."""


def readme_example() -> str:
    """The Python block of the README's Avalanche section."""
    section = README.read_text().split(SECTION, 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def stated_figures() -> dict[str, float]:
    """The figures the README states for the example: `ACC a%, forgetting f, capacity c%`."""
    section = README.read_text().split(SECTION, 1)[1]
    found = re.search(
        r"ACC ([\d.]+)%,\s+forgetting\s+([\d.]+),\s+([\d.]+)%\s+of\s+the\s+weights\s+used",
        section,
    )
    acc, forgetting, used = (float(v) for v in found.groups())
    return {"acc": acc / 100, "forgetting": forgetting, "capacity_used": used / 100}


def torchvision_home(home: Path, source: Path = DEBIAN_FASHION_MNIST) -> Path:
    """A HOME whose Avalanche data folder holds Fashion-MNIST as torchvision leaves it after a
    download (unpacked IDX files), so the example runs offline as written."""
    raw = home / ".avalanche" / "data" / "fashionmnist" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for packed in source.glob("*.gz"):
        with gzip.open(packed) as handle, open(raw / packed.stem, "wb") as out:
            shutil.copyfileobj(handle, out)
    return home


def run_example(home: Path) -> tuple[str, str, float]:
    """Run the example in a fresh process with HOME=`home`; what it printed on stdout and on
    stderr (clearn's logged notices), its wall time."""
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", readme_example()],
        env={**os.environ, "HOME": str(home), "TQDM_DISABLE": "1"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"the README example failed:\n{done.stderr[-2000:]}")
    return done.stdout, done.stderr, seconds


def figures_of(printed: str) -> dict[str, float]:
    """ACC (mean over tasks), forgetting and capacity used from the example's last line."""
    results = ast.literal_eval(printed.strip().splitlines()[-1])
    accuracies = [v for k, v in results.items() if k.startswith("Top1_Acc_Stream")]
    return {
        "acc": statistics.fmean(accuracies),
        "forgetting": results["StreamForgetting/eval_phase/test_stream"],
        "capacity_used": results[CAPACITY_USED],
    }


def _ratio(measured: float, stated: float) -> str:
    return "–" if stated == 0 else f"{measured / stated:.3f}"


def run(*, quick: bool = False) -> dict:
    """Run the example once (the same with --quick: it is one run); print measured vs stated."""
    began = time.perf_counter()
    if not DEBIAN_FASHION_MNIST.is_dir():
        print("README example: no Fashion-MNIST here (apt-get install dataset-fashion-mnist)")
        return {}
    with tempfile.TemporaryDirectory() as folder:
        printed, _, seconds = run_example(torchvision_home(Path(folder)))
    measured = figures_of(printed)
    stated = stated_figures()
    rows = [
        [name, f"{measured[key]:.4f}", f"{stated[key]:.4f}", _ratio(measured[key], stated[key])]
        for name, key in (("ACC", "acc"), ("capacity used", "capacity_used"),
                          ("forgetting", "forgetting"))
    ]
    summary = f"README Avalanche example (SplitFMNIST, 5 tasks, offline copy): {seconds:.0f} s"
    table = markdown_table(["figure", "measured", "README states", "ratio"], rows)
    print(summary, table, sep="\n")
    figures = {"measured": measured, "stated": stated, "seconds": seconds}
    save_result("avalanche_example", figures)
    write_results_page(
        "avalanche_example-quick" if quick else "avalanche_example",
        title="The README's Avalanche example, run as written "
              "(`python -m benchmarks --only avalanche_example`)",
        body=f"{summary}.\n\n{table}\n\nThe example:\n\n```python\n{readme_example()}```\n",
        command="python -m benchmarks --only avalanche_example" + (" --quick" if quick else ""),
        seconds=time.perf_counter() - began,
        configs={"README example": SETTINGS},
        defaults=RunConfig().to_dict(),
    )  # fmt: skip
    return figures


if __name__ == "__main__":
    main(run, __doc__)
