"""One run over several processes: torch.distributed's process group, and the checks that
the processes still agree.

`torchrun` starts the processes and sets their rank; `start_process_group` joins them (gloo
on CPU, NCCL on GPUs); `DistributedDataParallel` (in `EfficientPackNet`) averages gradients;
`TensorLoaderPlugin` gives each process its part of every batch. Nothing here sends data
itself: the checks broadcast rank 0's tensors with torch.distributed and compare.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import torch
import torch.distributed as dist
from torch import Tensor

from clearn.bits import as_bits

__all__ = [
    "RanksDivergedError",
    "broadcast_from_rank_0",
    "check_same_on_every_rank",
    "is_distributed",
    "launched_by_torchrun",
    "process_rank",
    "start_process_group",
    "stop_process_group",
]


class RanksDivergedError(RuntimeError):
    """The processes of one run no longer hold the same network."""


def launched_by_torchrun() -> bool:
    """Whether this process is one of several that torchrun started."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def start_process_group(*, use_cuda: bool) -> str:
    """Join the process group torchrun set up (its environment variables); return the
    backend: NCCL with one GPU per process (LOCAL_RANK's) when `use_cuda`, else gloo."""
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    backend = "nccl" if use_cuda else "gloo"
    dist.init_process_group(backend=backend)
    return backend


def stop_process_group() -> None:
    """Leave the process group (at the end of the run)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def is_distributed() -> bool:
    """Whether a process group of more than one process is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def process_rank() -> tuple[int, int]:
    """This process's rank and the number of processes ((0, 1) when not distributed)."""
    if not is_distributed():
        return 0, 1
    return dist.get_rank(), dist.get_world_size()


def broadcast_from_rank_0(tensors: Sequence[Tensor], *, device: torch.device) -> list[Tensor]:
    """Rank 0's values of `tensors` on every process, each where it was (sent from
    `device`: NCCL sends GPU tensors only)."""
    received = []
    for tensor in tensors:
        sent = tensor.detach().to(device).contiguous()
        dist.broadcast(sent, src=0)
        received.append(sent.to(tensor.device))
    return received


def check_same_on_every_rank(tensors: Mapping[str, Tensor], *, what: str) -> None:
    """Raise RanksDivergedError, on every process at once, unless each tensor equals rank
    0's bit for bit (NaN included)."""
    differing = []
    for name, tensor in tensors.items():
        reference = tensor.detach().clone()
        dist.broadcast(reference, src=0)
        if not torch.equal(as_bits(reference), as_bits(tensor.detach())):
            differing.append(name)
    rank, processes = dist.get_rank(), dist.get_world_size()
    counts = torch.zeros(processes, dtype=torch.long, device=next(iter(tensors.values())).device)
    counts[rank] = len(differing)
    dist.all_reduce(counts)
    diverged = [str(r) for r in range(processes) if counts[r]]
    if diverged:
        who = (
            f"rank {diverged[0]} differs"
            if len(diverged) == 1
            else (f"ranks {', '.join(diverged)} differ")
        )
        where = f" in {', '.join(differing)}" if differing else ""
        raise RanksDivergedError(f"{what} differ between the processes: {who} from rank 0{where}")
