"""Scale: peak memory and time per task over 100 and 300 tasks (permuted digits, 10 epochs:
about 250 steps per task, enough for the default Powerprop setting to learn).

Time per task must stay flat as tasks accumulate; evaluation of earlier tasks runs only every
50 tasks. Each stream runs in its own process so that its peak RSS is its own.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks.common import main, save_result
from benchmarks.report import write_results_page
from clearn.app.config import RunConfig
from clearn.app.results import RunResult
from clearn.app.tables import markdown_table

_CHILD = (
    "import resource, sys; from clearn.app.cli import main; code = main(sys.argv[1:]); "
    "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(code)"
)


def _measure(tasks: int, folder: str) -> tuple[dict, dict]:
    """Run one stream in a child process that prints its own peak RSS (KiB) last; its figures
    and the run's options."""
    out = f"{folder}/scale-{tasks}"
    arguments = [
        "run",
        "--scenario",
        "permuted-digits",
        "--strategy",
        "epn",
        "--allow-frozen-features",
        "--tasks",
        str(tasks),
        "--epochs",
        "10",
        "--eval-every-tasks",
        "50",
        "--out",
        out,
    ]
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, *arguments], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"scale run of {tasks} tasks failed:\n{done.stderr[-2000:]}")
    peak_kib = int(done.stdout.strip().splitlines()[-1])
    results = RunResult.read(out)
    seconds = results.train_seconds_per_task
    tenth = max(1, tasks // 10)
    figures = {
        "tasks": tasks,
        "peak_rss_mib": peak_kib / 1024,
        "first_tenth_s_per_task": statistics.fmean(seconds[:tenth]),
        "last_tenth_s_per_task": statistics.fmean(seconds[-tenth:]),
        "acc": results.acc,
        "free_fraction": results.free_fraction,
    }
    return figures, results.config


def run(*, quick: bool = False) -> dict:
    """Measure both stream lengths; print peak RSS and the time-per-task drift."""
    began = time.perf_counter()
    lengths = (30, 60) if quick else (100, 300)
    with tempfile.TemporaryDirectory() as folder:
        measured = [_measure(tasks, folder) for tasks in lengths]
    figures = [f for f, _ in measured]
    summary = (
        "Scale: permuted-digits, epn defaults, 10 epochs per task, earlier tasks evaluated every "
        "50 (a task with no free weight left trains its head on frozen features)"
    )
    rows = [
        [f["tasks"], f"{f['peak_rss_mib']:.0f}", f"{f['first_tenth_s_per_task']:.3f}",
         f"{f['last_tenth_s_per_task']:.3f}",
         f"{f['last_tenth_s_per_task'] / f['first_tenth_s_per_task']:.2f}"]
        for f in figures
    ]
    header = ["tasks", "peak RSS MiB", "s/task first 10%", "s/task last 10%", "drift"]
    table = markdown_table(header, rows)
    print(summary, table, sep="\n")
    save_result("scale", {"streams": figures})
    write_results_page(
        "scale-quick" if quick else "scale",
        title="Scale: memory and time per task over long streams "
              "(`python -m benchmarks --only scale`)",
        body=f"{summary}.\n\n{table}\n",
        command="python -m benchmarks --only scale" + (" --quick" if quick else ""),
        seconds=time.perf_counter() - began,
        configs={f"{f['tasks']} tasks": config for f, config in measured},
        defaults=RunConfig().to_dict(),
    )  # fmt: skip
    return {"streams": figures}


if __name__ == "__main__":
    main(run, __doc__)
