"""How many grid points go through one batched forward (memory and CPU-cache heuristics), and what a
grid holds (:func:`grid_bytes`), checked against the package's one memory bound
(:func:`gradscape.memory.require_memory`, re-exported here) before a grid is evaluated."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from gradscape.memory import MEMORY_FRACTION, available_bytes, format_bytes, memory_bound, require_memory

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


def grid_bytes(points: int, dims: int, render: bool = True) -> int:
    """Estimated peak bytes of what a landscape holds for the whole grid (chunks aside): float64 loss
    and accuracy, the bool computed mask, the (points, dims) float64 coefficient table and its
    meshgrid, about four float64 copies of the loss in the measures and plots, and, for a rendered
    2-D surface, :data:`RENDER_BYTES_PER_POINT`."""
    per_point = 2 * 8 + 1 + 2 * 8 * dims + 4 * 8
    if render and dims == 2:
        per_point += RENDER_BYTES_PER_POINT
    return points * per_point
