"""How many grid points go through one batched forward (memory and CPU-cache heuristics), and the
memory bound that refuses a grid before it is evaluated (:func:`require_memory`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from gradscape.errors import UserError

__all__ = [
    "CPU_STEP_BYTES",
    "MEMORY_FRACTION",
    "output_bytes",
    "available_bytes",
    "auto_chunk_size",
    "format_bytes",
    "require_memory",
    "RENDER_BYTES_PER_POINT",
    "grid_bytes",
    "memory_bound",
]

#: A job may plan to hold at most this fraction of the free memory (the rest: the OS, other processes,
#: and the estimate's own slack).
MEMORY_FRACTION = 0.5

#: Peak bytes per point of drawing a 2-D surface: matplotlib's 3-D surface at stride 1 (a polygon per
#: grid cell) with the filled contours, measured at about 770–850 B per point on 200² and 400² grids,
#: plus plotly's HTML (about 100–200 B per point); rounded up.
RENDER_BYTES_PER_POINT = 1024

#: On a CPU, points whose per-step state (e.g. B·H floats of a recurrent network) is at least this
#: large are evaluated one at a time, not in vmap chunks (see :func:`auto_chunk_size`).
CPU_STEP_BYTES = 256 << 10


def output_bytes(obj: Any) -> int:
    """Bytes held by the tensors of a model's output (tensors, tuples, lists, mappings)."""
    if isinstance(obj, Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, tuple | list):
        return sum(output_bytes(o) for o in obj)
    if isinstance(obj, Mapping):
        return sum(output_bytes(o) for o in obj.values())
    return 0


def available_bytes(device: torch.device) -> int:
    """Free memory of ``device`` (GPU: free CUDA memory; CPU: available physical pages)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 4 << 30


def auto_chunk_size(
    per_point_bytes: int, n_points: int, device: torch.device, step_bytes: int | None = None
) -> int:
    """Points per batched forward.

    GPU: a quarter of the free memory over the per-point footprint, at most 256 (more points per
    kernel is what pays there). CPU: also at most 16, and — when the per-step state of one point
    (``step_bytes``, e.g. B·H floats of a recurrent network) is known — few enough points that one
    state tensor of the chunk stays within 256 KiB: on a shared 2-core EPYC at the S-MNIST shape
    (B = H = 256, 256 KiB per point) chunks of 2–6 points ran no faster per point than one at a
    time (``benchmarks/bench_landscape.py``), while small networks (ECG, H = 36) gain from batching.
    """
    if device.type == "cuda":
        cap = 256
    else:
        cap = 16
        if step_bytes:
            cap = max(1, min(cap, CPU_STEP_BYTES // step_bytes))
    fit = available_bytes(device) // (4 * max(per_point_bytes, 1))
    return int(max(1, min(cap, fit, n_points)))


def format_bytes(n: float) -> str:
    """``1536`` → ``'1.5 KiB'`` (binary units, 3 significant digits)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def grid_bytes(points: int, dims: int, render: bool = True) -> int:
    """Estimated peak bytes of what a landscape holds for the whole grid (chunks aside): float64 loss
    and accuracy, the bool computed mask, the (points, dims) float64 coefficient table and its
    meshgrid, about four float64 copies of the loss in the measures and plots, and, for a rendered
    2-D surface, :data:`RENDER_BYTES_PER_POINT`."""
    per_point = 2 * 8 + 1 + 2 * 8 * dims + 4 * 8
    if render and dims == 2:
        per_point += RENDER_BYTES_PER_POINT
    return points * per_point


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
