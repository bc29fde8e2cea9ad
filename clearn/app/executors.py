"""Where a sweep's runs execute: one after another in this process, or as Ray tasks.

Ray does the scheduling, the placement and the transport (a run is one Ray task asking for
one CPU); clearn only hands it the runs and reads back their results. Ray is an optional
extra (`pip install 'clearn[ray]'`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from clearn.app.config import RunConfig
from clearn.app.experiment import run_or_reuse
from clearn.app.results import RunResult

try:
    import ray
except ImportError:  # the optional extra is not installed: only the local executor works
    ray = None

__all__ = ["EXECUTORS", "RunFailure", "RunJob", "run_jobs"]

EXECUTORS = ("local", "ray")
"""The executors `clearn sweep --executor` offers; local is the default."""

CPUS_PER_RAY_RUN = 1
"""CPUs each Ray task asks for, and the torch threads its run uses."""


@dataclass(frozen=True)
class RunJob:
    """One run of a sweep: its options and the folder it writes."""

    config: RunConfig
    folder: Path


@dataclass(frozen=True)
class RunFailure:
    """A run that raised instead of finishing; the sweep goes on without it."""

    error: str
    """The error, as one line: its type and message."""


Outcome = RunResult | RunFailure


def _run(job: RunJob) -> Outcome:
    try:
        return run_or_reuse(job.config, job.folder)
    except Exception as error:  # one run's failure is reported; the other runs go on
        return RunFailure(f"{type(error).__name__}: {error}")


def _run_in_ray_worker(job: RunJob) -> Outcome:
    """A Ray task: one run with as many torch threads as CPUs the task was given (two torch
    processes with default threads on shared cores slow each other by orders of magnitude)."""
    torch.set_num_threads(CPUS_PER_RAY_RUN)
    return _run(job)


def _local(jobs: Sequence[RunJob]) -> Iterator[tuple[int, Outcome]]:
    for index, job in enumerate(jobs):
        yield index, _run(job)


def _on_ray(jobs: Sequence[RunJob], address: str | None) -> Iterator[tuple[int, Outcome]]:
    # address None: Ray's own RAY_ADDRESS if set, else a local Ray instance on this machine.
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    task = ray.remote(num_cpus=CPUS_PER_RAY_RUN, max_retries=0)(_run_in_ray_worker)
    pending = {task.remote(job): index for index, job in enumerate(jobs)}
    try:
        while pending:
            (done,), _ = ray.wait(list(pending), num_returns=1)
            index = pending.pop(done)
            try:
                yield index, ray.get(done)
            except ray.exceptions.RayError as error:  # the worker died, or Ray failed it
                yield index, RunFailure(f"{type(error).__name__}: {error}".splitlines()[0])
    finally:
        for reference in pending:
            ray.cancel(reference, force=True)
        if started_here:
            ray.shutdown()


def run_jobs(
    jobs: Sequence[RunJob], *, executor: str = "local", ray_address: str | None = None
) -> Iterator[tuple[int, Outcome]]:
    """Run every job; yield (its index in `jobs`, its result or failure) as each finishes
    (in order with "local", in order of completion with "ray")."""
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if executor == "local":
        return _local(jobs)
    if ray is None:
        raise ValueError("--executor ray needs Ray: pip install 'clearn[ray]'")
    return _on_ray(jobs, ray_address)
