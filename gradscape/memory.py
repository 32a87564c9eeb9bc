"""The one memory bound: a job refuses, before computing, what would not fit (one line saying what to
shrink), instead of failing after an hour or with an allocator traceback.

Used by the landscape grids and the spectrum parameter maps alike (neither imports the other).
"""

from __future__ import annotations

import os

import torch

from gradscape.errors import UserError

__all__ = ["MEMORY_FRACTION", "available_bytes", "format_bytes", "memory_bound", "require_memory"]

#: A job may plan to hold at most this fraction of the free memory (the rest: the OS, other processes,
#: and the estimate's own slack).
MEMORY_FRACTION = 0.5


def available_bytes(device: torch.device) -> int:
    """Free memory of ``device`` (GPU: free CUDA memory; CPU: available physical pages)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 4 << 30


def format_bytes(n: float) -> str:
    """``1536`` → ``'1.5 KiB'`` (binary units, 3 significant digits)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def memory_bound(device: torch.device | None = None) -> tuple[int, int]:
    """(bound, free) bytes on ``device`` (default CPU): the bound is ``MEMORY_FRACTION`` of the free."""
    free = available_bytes(device or torch.device("cpu"))
    return int(free * MEMORY_FRACTION), free


def require_memory(need: int, what: str, shrink: str, device: torch.device | None = None) -> None:
    """Refuse (one :class:`UserError` line) a job whose estimated ``need`` bytes exceed the bound,
    ``MEMORY_FRACTION`` of the free memory of ``device`` (default CPU): checked before computing, so
    an oversized grid fails in a second with what to do (``shrink``) instead of after an hour or with
    an allocator traceback. ``what`` names the job (e.g. the grid spec and its point count)."""
    device = device or torch.device("cpu")
    bound, free = memory_bound(device)
    if need > bound:
        raise UserError(
            f"{what} needs about {format_bytes(need)} of memory, over the bound of {format_bytes(bound)} "
            f"({MEMORY_FRACTION:.0%} of the {format_bytes(free)} free on {device.type}); {shrink}"
        )
