"""Grid points over ``torch.distributed`` ranks: round-robin chunks, gathered after every round.

Chunk ``r·W + k`` of the pending chunks goes to rank k in round r (W ranks); after each round every
rank holds every rank's results, so all ranks return the same surface and rank 0 alone writes.
The process group is set up by the caller (:func:`gradscape.landscape.job.run_landscape` under
``torchrun``, or the figures pipeline); without one everything runs on one rank.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

__all__ = ["rank_and_world", "broadcast_int", "rounds", "gather_chunk"]


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) of the initialised process group, else (0, 1)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def broadcast_int(value: int, device: torch.device) -> int:
    """Rank 0's ``value`` on every rank (e.g. the automatic chunk size, which all must share)."""
    t = torch.tensor([value], device=device if device.type == "cuda" else "cpu")
    torch.distributed.broadcast(t, 0)
    return int(t.item())


def rounds(pending: list[int], rank: int, world: int) -> Iterator[int | None]:
    """This rank's chunk start in every round (None where the round has no chunk left for it)."""
    for r in range(0, len(pending), world):
        yield pending[r + rank] if r + rank < len(pending) else None


def gather_chunk(idx: np.ndarray, vals: np.ndarray, size: int, device: torch.device) -> list[tuple]:
    """All ranks' (point indices, values) of this round; rows padded to ``size`` with index −1."""
    import torch.distributed as dist

    buf = torch.full((size, 3), -1.0, dtype=torch.float64)
    buf[: len(idx), 0] = torch.as_tensor(idx, dtype=torch.float64)
    buf[: len(idx), 1:] = torch.as_tensor(vals)
    comm_dev = device if dist.get_backend() == "nccl" else torch.device("cpu")
    buf = buf.to(comm_dev)
    parts = [torch.empty_like(buf) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, buf)
    out = []
    for p in parts:
        p = p.cpu()
        keep = p[:, 0] >= 0
        out.append((p[keep, 0].long().numpy(), p[keep, 1:].numpy()))
    return out
