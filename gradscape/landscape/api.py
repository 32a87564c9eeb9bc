"""The Python API: landscapes of any ``nn.Module``, and a one-call helper for gradscape's networks.

Any model and loss::

    from gradscape import landscape
    dirs = landscape.random_directions(mlp, params=["0.weight", "2.weight"], normalization="filter", seed=0)
    surf = landscape.evaluate_surface(mlp, torch.nn.functional.cross_entropy, dirs, "-1:1:21", data=(x, y))
    surf.loss            # (21, 21) array; surf.centre["loss"] is f(θ*)

A recurrent spiking network on a task split (:func:`recurrent_landscape`) uses the sequence objectives
of :mod:`gradscape.models.objectives` and the forward chosen by :func:`recurrent_forward`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from gradscape.landscape.directions import Directions, random_directions
from gradscape.landscape.evaluate import Metric, RunOptions, evaluate_grid
from gradscape.landscape.grid import Grid, parse_grid
from gradscape.landscape.surface import Surface

__all__ = ["recurrent_objective", "recurrent_forward", "split_batches", "recurrent_landscape"]


def recurrent_forward(
    model: nn.Module, device: torch.device | str | None = None, batch: int | None = None
) -> dict[str, Any]:
    """Forward keyword arguments for evaluating a gradscape recurrent network at many points.

    The path is chosen by :func:`gradscape.models.plan.plan_forward` (no gradients, spikes not
    kept: only the readout enters the loss, sparse allowed): on a CPU, for a spiking neuron whose
    per-step state is large (``batch`` · H values of at least
    :data:`~gradscape.models.plan.SPARSE_MIN_STEP_BYTES`, also the size at which the landscape
    evaluates points one at a time, :data:`~gradscape.landscape.memory.CPU_STEP_BYTES`), the
    spike-sparse path (recurrent and readout products from the nonzero outputs only, compiled neuron
    update; at the S-MNIST shape 2.4x (2 threads) and 2.9x (1 thread) faster than the plain loop in
    ``benchmarks/bench_landscape.py``); on a GPU and for wide inputs (≥ 32 channels) the fast path
    (W_in i_t for all t in one GEMM, readout after the loop); otherwise the plain step loop. All give
    the same values up to floating-point summation order. The plan is returned as the forward's
    keyword arguments, which every result records in its config.
    """
    from gradscape.models.plan import plan_forward

    first = next(model.parameters())
    dev = torch.device(device) if device is not None else first.device
    wide = int(getattr(model, "input_size", 0)) >= 32
    plan = plan_forward(
        model,
        grad=False,
        batch=batch,
        device=dev,
        fast=dev.type == "cuda" or wide,
        sparse=True,
        keep_spikes=False,
    )
    if plan.path == "sparse":
        return {"keep_spikes": False, "sparse": True}
    return {"keep_spikes": False, "fast": plan.path == "fast"}


def recurrent_objective(
    mode: str = "last", sub_seq_length: int = 0, reduction: str = "mean"
) -> tuple[Callable[[Any, Tensor], Tensor], Callable[[Any, Tensor], Tensor]]:
    """(loss_fn, accuracy_fn) on a :class:`~gradscape.models.network.RunOutput` for the objective
    ``sequence_loss(o, y, mode, sub_seq_length, reduction)`` and ``accuracy`` (percent)."""
    from gradscape.models.objectives import accuracy, sequence_loss

    def loss_fn(out: Any, y: Tensor) -> Tensor:
        return sequence_loss(out.outputs, y, mode=mode, sub_seq_length=sub_seq_length, reduction=reduction)

    def accuracy_fn(out: Any, y: Tensor) -> Tensor:
        return accuracy(out.outputs, y, mode=mode, sub_seq_length=sub_seq_length)

    return loss_fn, accuracy_fn


def split_batches(
    split: Any,
    batch_size: int,
    *,
    device: torch.device | str = "cpu",
    steps: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> list[tuple[Tensor, Tensor, int]]:
    """A task split as fixed, time-major ``(x (T,B,I), y, n)`` batches (optionally the first ``steps``)."""
    from gradscape.models.datasets import batches

    out = []
    for x, y in batches(split, batch_size, device=device):
        if steps is not None:
            x = x[:steps]
            y = y[:steps] if y.dim() == 2 else y
        out.append((x.to(dtype), y, int(x.shape[1])))
    return out


def recurrent_landscape(
    model: nn.Module,
    split: Any,
    *,
    mode: str = "last",
    sub_seq_length: int = 0,
    reduction: str = "mean",
    params: Sequence[str] | None = None,
    normalization: str = "filter",
    seed: int = 0,
    grid: Grid | str = "-1:1:51",
    dims: int = 2,
    orthogonalize: bool = False,
    directions: Directions | Sequence[Mapping[str, Tensor]] | None = None,
    batch_size: int = 256,
    steps: int | None = None,
    **options: Any,
) -> Surface:
    """Landscape of a gradscape recurrent network on ``split`` (a datasets ``Split``).

    The objective is ``sequence_loss(o, y, mode, sub_seq_length, reduction)``; ``directions``
    default to seeded :func:`random_directions` over ``params``; ``options`` are
    :class:`~gradscape.landscape.evaluate.RunOptions` fields (``out``, ``resume``, ``config`` …).
    """
    if isinstance(grid, str):
        grid = parse_grid(grid, dims if directions is None else len(directions))
    if directions is None:
        directions = random_directions(
            model, params, normalization=normalization, seed=seed, dims=grid.dims, orthogonalize=orthogonalize
        )
    p0 = next(model.parameters())
    loss_fn, acc_fn = recurrent_objective(mode, sub_seq_length, reduction)
    data = split_batches(split, batch_size, device=p0.device, steps=steps, dtype=p0.dtype)
    metric = Metric(loss_fn, acc_fn, recurrent_forward(model, batch=max(n for *_, n in data)))
    options["config"] = {
        "objective": {"mode": mode, "sub_seq_length": sub_seq_length, "reduction": reduction},
        "steps": steps,
        **dict(options.get("config") or {}),
    }
    options = {k: v for k, v in options.items() if not (k in ("meta", "extras") and v is None)}
    return evaluate_grid(model, directions, grid, data, metric, RunOptions(**options))
