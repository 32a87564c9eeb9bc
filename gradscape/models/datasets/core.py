"""The data containers every task returns, and the time-major batch iterator.

A task's samples live in one tensor per split, sample-major ``(N, T, I)``; :func:`batches` turns a
split into time-major mini-batches ``x`` of shape ``(T, B, I)`` (step ``t`` of sample ``b`` is
``x[t, b]``), the layout the recurrent networks consume.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

__all__ = ["Split", "TaskData", "batches"]


@dataclass
class Split:
    """One split of a task: ``N`` sequences of ``T`` steps with ``I`` channels.

    ``inputs`` is ``(N, T, I)`` float32, except SHD, whose binary spike rasters are kept as uint8
    (a dense float32 copy of SHD's training set would take 5.7 GB); :func:`batches` always yields float32.
    ``targets`` is ``(N,)`` int64 (one label per sequence) or ``(N, T)`` int64 (ECG: one label per step,
    -1 marks a step excluded from scoring). ``indices[n]`` is sample ``n``'s position in ``source``'s
    file order, so any result can name exactly the samples it used.
    """

    inputs: Tensor
    targets: Tensor
    indices: Tensor
    source: str

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def fingerprint(self) -> str:
        """sha256 of the split's inputs, targets and source indices (what a run trained on)."""
        digest = hashlib.sha256(self.source.encode())
        for t in (self.inputs, self.targets, self.indices):
            digest.update(str((t.dtype, tuple(t.shape))).encode())
            digest.update(memoryview(t.detach().cpu().contiguous().numpy()).cast("B"))
        return digest.hexdigest()

    def subset(self, n: int, seed: int) -> Split:
        """A seeded random subset of ``n`` samples (all of them when ``n >= len(self)``).

        The chosen samples keep their order within the split and their source ``indices``.
        """
        if n < 0:
            raise ValueError(f"subset size must be >= 0, got {n}")
        if n >= len(self):
            return self
        g = torch.Generator().manual_seed(int(seed))
        pick = torch.randperm(len(self), generator=g)[:n].sort().values
        return Split(self.inputs[pick], self.targets[pick], self.indices[pick], self.source)


@dataclass
class TaskData:
    """A task's three splits and the facts a model needs to be built for it.

    ``permutation`` (PS-MNIST only): step ``t`` reads pixel ``permutation[t]`` of the row-major image.
    ``info`` is JSON-able: the task, its source files, split sizes, seed, options, ``bundled_split``
    and a ``note`` to quote in every result (e.g. that MNIST training used a split of the test set).
    """

    name: str
    train: Split
    val: Split
    test: Split
    input_size: int
    num_classes: int
    seq_len: int
    per_step_targets: bool
    permutation: Tensor | None = None
    info: dict[str, Any] = field(default_factory=dict)


def batches(
    split: Split,
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int | None = None,
    device: torch.device | str | None = None,
) -> Iterator[tuple[Tensor, Tensor]]:
    """Yield ``(x, y)`` mini-batches: ``x`` (T, B, I) float32, ``y`` (B,) or (T, B) int64, on ``device``.

    With ``shuffle`` the order is ``randperm(N)`` from ``torch.Generator().manual_seed(seed)``
    (``seed`` None means 0, so shuffling is always reproducible); otherwise the split's order.
    The last, partial batch is kept.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = len(split)
    if shuffle:
        g = torch.Generator().manual_seed(0 if seed is None else int(seed))
        order = torch.randperm(n, generator=g)
    else:
        order = None
    for start in range(0, n, batch_size):
        if order is None:
            x = split.inputs[start : start + batch_size]
            y = split.targets[start : start + batch_size]
        else:
            idx = order[start : start + batch_size]
            x, y = split.inputs[idx], split.targets[idx]
        # Cast on the device: SHD's uint8 rasters travel 4x smaller than float32.
        x = x.to(device=device, non_blocking=True).to(torch.float32).transpose(0, 1).contiguous()
        y = y.to(device=device, non_blocking=True)
        if y.dim() == 2:
            y = y.transpose(0, 1).contiguous()
        yield x, y
