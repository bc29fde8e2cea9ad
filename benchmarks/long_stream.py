"""A long stream: permuted Fashion-MNIST, 100 tasks, α = 1 vs α > 1 with the same MLP.

Average accuracy and free capacity vs tasks seen; how many tasks fit before free capacity
falls under 5%. Target: α > 1 holds at least twice as many tasks (or ACC 10 points higher).
"""

from __future__ import annotations

from benchmarks.common import RESULTS_DIR, main, run_all, save_result
from clearn.app.config import RunConfig
from clearn.app.plots import plot_average_accuracy, plot_free_capacity
from clearn.app.tables import markdown_table, percent
from scenarios.datasets import DEBIAN_FASHION_MNIST

FREE_FLOOR = 0.05


def _tasks_before_floor(free: list[float]) -> int:
    below = [task for task, value in enumerate(free) if value < FREE_FLOOR]
    return below[0] if below else len(free)


def run(*, quick: bool = False, alphas: tuple[float, ...] = (1.0, RunConfig.alpha)) -> dict:
    """Run both streams side by side (resuming finished ones), print and plot; return figures.

    Every other option is `clearn run`'s default (the shipped `epn` setting); a task that
    finds no free weight left trains its head on frozen features instead of stopping.
    """
    dataset = "fmnist" if DEBIAN_FASHION_MNIST.is_dir() and not quick else "digits"
    tasks = 10 if quick else 100
    folder = RESULTS_DIR / "runs" / f"long-{dataset}-{tasks}"
    configs = {
        alpha: (
            RunConfig(
                scenario=f"permuted-{dataset}",
                strategy="epn",
                alpha=alpha,
                tasks=tasks,
                epochs=1,
                eval_every_tasks=10,
                allow_frozen_features=True,
            ),
            folder / f"alpha{alpha:g}",
        )
        for alpha in alphas
    }
    finished = run_all(configs, jobs=len(configs))
    runs = {alpha: finished[alpha] for alpha in alphas}
    free = {a: [r["free_fraction"] for r in results.task_reports] for a, results in runs.items()}
    defaults = RunConfig().resolved()
    print(
        f"Long stream: permuted-{dataset}, {tasks} tasks x 1 epoch, epn, gamma "
        f"{defaults.gamma:g}, lr {defaults.lr:g} (one thread per run, both at once)"
    )
    rows = [
        [f"{alpha:g}", percent(results.acc), percent(results.free_fraction),
         _tasks_before_floor(free[alpha]), f"{results.train_seconds:.0f}"]
        for alpha, results in runs.items()
    ]
    header = ["alpha", "ACC %", "free % at end", "tasks before free < 5%", "train s"]
    print(markdown_table(header, rows))
    plot_average_accuracy(
        {f"α={a:g}": r.accuracy_matrix for a, r in runs.items()},
        RESULTS_DIR / f"long_stream_{dataset}_accuracy.png",
    )
    plot_free_capacity(
        {f"α={a:g}": f for a, f in free.items()}, RESULTS_DIR / f"long_stream_{dataset}_free.png"
    )
    result = {
        a: {
            "acc": r.acc,
            "free": free[a],
            "tasks_before_floor": _tasks_before_floor(free[a]),
            "train_seconds": r.train_seconds,
        }
        for a, r in runs.items()
    }
    save_result(f"long_stream_{dataset}", {f"{a:g}": v for a, v in result.items()})
    return result


if __name__ == "__main__":
    main(run, __doc__)
