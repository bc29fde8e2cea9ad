"""Where a sweep's runs execute: worker processes on this machine, or Ray tasks.

Every run gets one torch thread, whichever executor runs it: CPU matmuls sum in another order
with another number of threads, so a run's figures would otherwise depend on where it ran.
The local executor is `concurrent.futures`' process pool (spawned workers); Ray does the
scheduling, the placement and the transport (a run is one Ray task asking for one CPU).
clearn only hands them the runs and reads back their results. Ray is an optional extra
(`pip install 'clearn[ray]'`).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import multiprocessing
import os
import socket
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import torch

from clearn.app.config import RunConfig
from clearn.app.experiment import run_or_reuse
from clearn.app.results import RunResult

__all__ = ["EXECUTORS", "RunFailure", "RunJob", "check_ray_address", "run_jobs"]

EXECUTORS = ("local", "ray")
"""The executors `clearn sweep --executor` offers; local is the default."""

THREADS_PER_RUN = 1
"""Torch threads of every run (and the CPUs each Ray task asks for)."""

RAY_CONNECT_TIMEOUT_S = 5.0
"""Seconds to wait for a Ray cluster's address to answer (Ray itself retries for minutes)."""


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
    diverged: bool = False
    """Whether the run's loss went NaN or infinite (FloatingPointError)."""


Outcome = RunResult | RunFailure


def _run(job: RunJob) -> Outcome:
    try:
        return run_or_reuse(job.config, job.folder)
    except Exception as error:  # one run's failure is reported; the other runs go on
        return RunFailure(
            f"{type(error).__name__}: {error}", diverged=isinstance(error, FloatingPointError)
        )


def _run_with_one_thread(job: RunJob) -> Outcome:
    """One run with THREADS_PER_RUN torch threads (two torch processes with default threads
    on shared cores also slow each other by orders of magnitude)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS_PER_RUN)
    try:
        return _run(job)
    finally:
        torch.set_num_threads(threads)


@contextlib.contextmanager
def _worker_environment() -> Iterator[None]:
    """Environment spawned workers inherit: one thread each, no progress bars (tqdm reads
    its settings at import, so they must be in the environment before the spawn)."""
    saved = dict(os.environ)
    os.environ.update(OMP_NUM_THREADS=str(THREADS_PER_RUN), TQDM_DISABLE="1")
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _local(jobs: Sequence[RunJob], workers: int) -> Iterator[tuple[int, Outcome]]:
    if workers == 1:  # no pool to start: the runs one after another in this process
        for index, job in enumerate(jobs):
            yield index, _run_with_one_thread(job)
        return
    with (
        _worker_environment(),
        ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool,
    ):
        futures = {pool.submit(_run_with_one_thread, job): index for index, job in enumerate(jobs)}
        try:
            for future in as_completed(futures):
                try:
                    yield futures[future], future.result()
                except BrokenProcessPool as error:  # a worker was killed (out of memory...)
                    yield futures[future], RunFailure(f"BrokenProcessPool: {error}")
        finally:
            for future in futures:
                future.cancel()


def _ray() -> ModuleType | None:
    """Ray, imported when a sweep asks for it (importing it adds 0.6 s to the start of every
    clearn command); None when the optional extra is not installed."""
    if importlib.util.find_spec("ray") is None:
        return None
    return importlib.import_module("ray")


def _on_ray(
    ray: ModuleType, jobs: Sequence[RunJob], address: str | None
) -> Iterator[tuple[int, Outcome]]:
    # address None: Ray's own RAY_ADDRESS if set, else a local Ray instance on this machine.
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    task = ray.remote(num_cpus=THREADS_PER_RUN, max_retries=0)(_run_with_one_thread)
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


def check_ray_address(address: str | None) -> None:
    """Raise ValueError naming --ray-address (or RAY_ADDRESS) when the cluster's host:port
    does not accept a connection within RAY_CONNECT_TIMEOUT_S; no address (a local Ray
    instance), "auto" and "local" are Ray's to resolve."""
    option = "--ray-address"
    if address is None:
        address, option = os.environ.get("RAY_ADDRESS"), "RAY_ADDRESS"
    if address is None or address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{option} must be HOST:PORT, got {address!r}")
    try:
        with socket.create_connection((host, int(port)), timeout=RAY_CONNECT_TIMEOUT_S):
            pass
    except OSError as error:
        reason = "no answer" if isinstance(error, TimeoutError) else error.strerror or error
        raise ValueError(
            f"{option} {address}: cannot reach a Ray cluster there within "
            f"{RAY_CONNECT_TIMEOUT_S:g} s ({reason}); check the address, or leave it out "
            f"for a local Ray instance"
        ) from None


def run_jobs(
    jobs: Sequence[RunJob],
    *,
    executor: str = "local",
    workers: int | None = None,
    ray_address: str | None = None,
) -> Iterator[tuple[int, Outcome]]:
    """Run every job, each with one torch thread; yield (its index in `jobs`, its result or
    failure) as each finishes. "local": `workers` processes (default: one per CPU; 1 runs
    them one after another in this process); "ray": Ray tasks."""
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if executor == "local":
        return _local(jobs, min(workers or os.cpu_count() or 1, max(len(jobs), 1)))
    ray = _ray()
    if ray is None:
        raise ValueError("--executor ray needs Ray: pip install 'clearn[ray]'")
    if not ray.is_initialized():
        check_ray_address(ray_address)  # now, not when the first result is awaited
    return _on_ray(ray, jobs, ray_address)
