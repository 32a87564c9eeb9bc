"""How many grid points go through one batched forward: memory and CPU-cache heuristics."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

__all__ = ["CPU_STEP_BYTES", "output_bytes", "available_bytes", "auto_chunk_size"]

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
