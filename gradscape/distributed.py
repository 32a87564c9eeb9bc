"""torch.distributed set-up under ``torchrun``, in one place for every command.

``torchrun`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; without them a job is one process
(rank 0 of 1) and nothing is initialised. The backend follows the device the work runs on: NCCL for
CUDA (collectives carry device tensors; each rank takes GPU ``LOCAL_RANK`` modulo the GPUs it sees),
gloo for the CPU. A process group this module started is destroyed when the :func:`world` context
ends; one the caller started is left alone.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import torch

from gradscape.models.device import resolve_device

__all__ = ["World", "world", "share"]

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    """This process's place in the job: ``rank`` of ``size``, computing on ``device``."""

    rank: int
    size: int
    device: torch.device

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every rank (no-op in a one-process job)."""
        if self.distributed:
            torch.distributed.barrier()


@contextmanager
def world(device: str | torch.device = "auto") -> Iterator[World]:
    """The job's :class:`World`, with the process group initialised for its duration under torchrun."""
    dev = resolve_device(device) if isinstance(device, str) else device
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        yield World(0, 1, dev)
        return
    import torch.distributed as dist

    if dev.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        dev = torch.device("cuda", local % max(torch.cuda.device_count(), 1))
        torch.cuda.set_device(dev)
    started = not dist.is_initialized()
    if started:
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    try:
        yield World(dist.get_rank(), dist.get_world_size(), dev)
    finally:
        if started and dist.is_initialized():
            dist.destroy_process_group()


def share(items: Sequence[T], w: World) -> list[T]:
    """This rank's share of ``items``: every ``size``-th one from position ``rank`` (round-robin)."""
    return list(items[w.rank :: w.size])
