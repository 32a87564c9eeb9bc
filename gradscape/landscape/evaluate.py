"""What a landscape evaluates: loss and accuracy at every grid point, batched, resumable, sharded.

For coefficients c = (α) or (α, β) and directions d_k, grid point p has parameters

    θ_p = θ* + Σ_k c_{p,k} d_k           (only the selected parameters move)

and values f(θ_p), sample-weighted means over a fixed list of data batches
(:mod:`gradscape.landscape.forward`). Many points go through one forward by :func:`torch.func.vmap`
over the stacked θ_p of a *chunk* (``chunk_size`` points, :mod:`gradscape.landscape.memory`); the
sequential path evaluates them one at a time. Chunks are fixed by the grid and the chunk size, so a
resumed or sharded (:mod:`gradscape.landscape.sharding`) run computes every chunk exactly as an
uninterrupted single process does.

Results live in one ``.npz`` file (:class:`~gradscape.landscape.surface.Surface`), rewritten
atomically after every chunk, holding the resolved ``config`` (compared on ``resume``). Non-finite
losses are kept as they are (a diverged point is a result); their accuracy is stored as NaN.

:func:`evaluate_grid` takes two small specs, :class:`Metric` (what is measured) and
:class:`RunOptions` (how it is run and stored); :func:`evaluate_surface` is the keyword form.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from gradscape.errors import UserError
from gradscape.io import config_hash, provenance, to_jsonable
from gradscape.landscape import sharding
from gradscape.landscape.directions import Directions, as_directions
from gradscape.landscape.forward import ForwardOps, PointEvaluator, eval_mode, forward_view, spike_flips
from gradscape.landscape.grid import Grid, parse_grid
from gradscape.landscape.memory import CPU_STEP_BYTES, auto_chunk_size
from gradscape.landscape.parameters import parameter_point, perturbed_params
from gradscape.landscape.surface import Surface, load_surface

__all__ = [
    "CPU_STEP_BYTES",
    "ForwardOps",
    "Metric",
    "RunOptions",
    "Surface",
    "load_surface",
    "evaluate_grid",
    "evaluate_surface",
    "perturbed_params",
    "auto_chunk_size",
    "spike_flips",
    "tensor_hash",
]

Batch = tuple[Tensor, Tensor] | tuple[Tensor, Tensor, int]
#: Older name of :func:`~gradscape.landscape.forward.forward_view` (tests and benchmarks use it).
_forward_view = forward_view


@dataclass(frozen=True)
class Metric:
    """What is measured at a point: ``loss_fn(model(x, **model_kwargs), y)`` (a scalar batch mean)
    and optionally ``accuracy_fn`` (percent); ``forward_ops`` runs a model with a ``TorchOps``
    ``ops`` attribute on :class:`ForwardOps`."""

    loss_fn: Callable[[Any, Tensor], Tensor]
    accuracy_fn: Callable[[Any, Tensor], Tensor] | None = None
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)
    forward_ops: bool = True


@dataclass(frozen=True)
class RunOptions:
    """How the grid is evaluated and stored.

    ``chunk_size``: points per batched forward (``None`` = auto from free memory on a new run, the
    stored value on resume); ``sequential``: one point at a time (same chunks, same file updates);
    ``out``: result file, rewritten atomically after every chunk; ``resume``: continue ``out``
    (refused if its config differs, or started over when ``on_mismatch="restart"``); ``config``:
    caller's settings that define the result, recorded and compared on resume; ``meta``: further
    recorded, uncompared information (e.g. a label); ``extras``: further arrays stored in the result.
    """

    chunk_size: int | None = None
    sequential: bool = False
    out: str | Path | None = None
    resume: bool = False
    on_mismatch: Literal["error", "restart"] = "error"
    config: Mapping[str, Any] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)
    extras: Mapping[str, Any] = field(default_factory=dict)
    progress: bool = True


def tensor_hash(tensors: Mapping[str, Tensor] | Sequence[Tensor]) -> str:
    """SHA-256 (16 hex digits) of tensors' bytes, shapes and dtypes (the identity of data/directions)."""
    h = hashlib.sha256()
    items = tensors.items() if isinstance(tensors, Mapping) else enumerate(tensors)
    for k, t in items:
        a = t.detach().cpu().contiguous()
        h.update(f"{k}:{tuple(a.shape)}:{a.dtype}".encode())
        h.update(a.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def _normalise_data(data: Batch | Sequence[Batch], device: torch.device) -> list[tuple[Tensor, Tensor, int]]:
    if isinstance(data, tuple) and len(data) in (2, 3) and isinstance(data[0], Tensor):
        data = [data]  # type: ignore[list-item]
    out = []
    for b in data:  # type: ignore[union-attr]
        x, y = b[0], b[1]
        n = int(b[2]) if len(b) == 3 else int(y.shape[0])
        out.append((x.to(device), y.to(device), n))
    if not out:
        raise UserError("no data to evaluate the landscape on")
    return out


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [k for k in keys if to_jsonable(old.get(k)) != to_jsonable(new.get(k))]


def _resumed(run: RunOptions, resolved: dict[str, Any]) -> tuple[Surface | None, int | None]:
    """The partial result to continue (or None to start afresh) and the chunk size to use."""
    chunk_size = run.chunk_size
    if run.out is None or not run.resume or not Path(run.out).is_file():
        return None, chunk_size
    try:
        surface = load_surface(run.out)
    except UserError:
        if run.on_mismatch == "restart":
            return None, chunk_size
        raise
    old = surface.meta.get("config", {})
    if chunk_size is None:
        chunk_size = old.get("chunk_size")
    trial = {**resolved, "chunk_size": chunk_size}
    if config_hash(old) == config_hash(trial):
        return surface, chunk_size
    if run.on_mismatch == "restart":
        return None, run.chunk_size
    differ = ", ".join(_differences(old, trial))
    raise UserError(
        f"cannot resume {run.out}: it was computed with a different configuration "
        f"({differ} differ); use a new --out folder or drop --resume to start over"
    )


def _chunk_size(given: int | None, ev: PointEvaluator, grid: Grid, world: int) -> int:
    """The given chunk size, or one sized from the centre's forward (the same on every rank)."""
    if given is None:
        theta = ev.theta.values()
        device = next(iter(theta)).device
        per_point = 4 * ev.out_bytes + 3 * sum(t.numel() * t.element_size() for t in theta)
        given = auto_chunk_size(per_point, grid.size, device, ev.step_bytes or None)
        if world > 1:  # every rank must use the same chunks
            given = sharding.broadcast_int(given, device)
    if int(given) < 1:
        raise UserError(f"--chunk-size must be at least 1, not {given}")
    return int(given)


def _started(
    surface: Surface | None, grid: Grid, meta: dict[str, Any], stored: Directions, extras: Mapping[str, Any]
) -> Surface:
    """A new, empty surface, or the resumed one with this session's metadata."""
    if surface is None:
        surface = Surface(
            grid=grid,
            loss=np.full(grid.shape, np.nan),
            accuracy=np.full(grid.shape, np.nan),
            computed=np.zeros(grid.shape, dtype=bool),
            centre={"loss": math.nan, "accuracy": math.nan, "computed": False},
            meta=meta,
            directions=stored,
        )
        surface.extras.update({k: np.asarray(v) for k, v in extras.items()})
    else:
        surface.meta = {**meta, "resumed_from": surface.meta.get("progress", {})}
        surface.directions = stored
    return surface


def _write(surface: Surface, out: str | Path | None, status: str, elapsed: float, writer: bool) -> None:
    surface.meta["progress"] = {
        "status": status,
        "points": int(surface.computed.size),
        "computed": int(surface.computed.sum()),
        "diverged": int(surface.diverged.sum()),
        "seconds_this_session": round(elapsed, 3),
    }
    if writer and out is not None:
        surface.save(out)


def _fill(surface: Surface, ev: PointEvaluator, chunk_size: int, run: RunOptions, write: Callable) -> None:
    """Evaluate every chunk not yet computed, sharded over the ranks, writing after every round."""
    rank, world = sharding.rank_and_world()
    n_points = surface.grid.size
    points = surface.grid.points()
    device = next(iter(ev.theta.values())).device
    flat_loss = surface.loss.reshape(-1)
    flat_acc = surface.accuracy.reshape(-1)
    flat_done = surface.computed.reshape(-1)
    pending = [s for s in range(0, n_points, chunk_size) if not flat_done[s : s + chunk_size].all()]
    bar = None
    if run.progress and rank == 0:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_points, initial=int(flat_done.sum()), unit="pt", desc="landscape")
    try:
        for mine in sharding.rounds(pending, rank, world):
            if mine is not None:
                idx = np.arange(mine, min(mine + chunk_size, n_points))
                vals = ev.chunk(points[idx], run.sequential)
            else:
                idx, vals = np.zeros(0, dtype=np.int64), np.zeros((0, 2))
            results = sharding.gather_chunk(idx, vals, chunk_size, device) if world > 1 else [(idx, vals)]
            done_now = 0
            for ids, v in results:
                flat_loss[ids] = v[:, 0]
                flat_acc[ids] = v[:, 1]
                flat_done[ids] = True
                done_now += len(ids)
            write("running")
            if bar is not None:
                bar.update(done_now)
    finally:
        if bar is not None:
            bar.close()


def evaluate_grid(
    model: nn.Module,
    directions: Directions | Sequence[Mapping[str, Tensor]],
    grid: Grid | str,
    data: Batch | Sequence[Batch],
    metric: Metric,
    run: RunOptions | None = None,
) -> Surface:
    """Evaluate f(θ* + α d [+ β e]) on ``grid`` for any ``nn.Module`` (module docstring).

    ``model`` is θ* (not modified; evaluated in eval mode); ``directions``: 1 or 2 direction dicts
    (e.g. from :func:`~gradscape.landscape.directions.random_directions`); ``grid``: a :class:`Grid`
    or a spec such as ``"-1:1:51"``; ``data``: one ``(x, y)`` batch or a list of ``(x, y[, n])``
    batches (n samples; default ``len(y)``).

    Under ``torch.distributed`` (initialised by the caller) chunks are sharded round-robin over the
    ranks and gathered after each round; every rank returns the full surface and rank 0 writes.
    """
    run = run or RunOptions()
    dirs = as_directions(directions)
    if isinstance(grid, str):
        grid = parse_grid(grid, len(dirs))
    if grid.dims != len(dirs):
        raise UserError(f"a {grid.dims}-D grid needs {grid.dims} direction(s), got {len(dirs)}")
    names = dirs.names
    theta = parameter_point(model, names)
    device = theta[names[0]].device
    vecs = [{n: d[n].to(device=device, dtype=theta[n].dtype) for n in names} for d in dirs]
    batches = _normalise_data(data, device)
    fmodel = forward_view(model) if metric.forward_ops else model
    ev = PointEvaluator(fmodel, metric.loss_fn, metric.accuracy_fn, theta, vecs, batches, metric.model_kwargs)
    rank, world = sharding.rank_and_world()
    resolved = {
        **dict(run.config),
        "grid": grid.spec,
        "dims": grid.dims,
        "params": names,
        "directions_hash": tensor_hash([t for d in vecs for t in d.values()]),
        "data_hash": tensor_hash([t for x, y, _ in batches for t in (x, y)]),
        "batch_sizes": [n for *_, n in batches],
        "mode": "sequential" if run.sequential else "batched",
        "model_kwargs": {k: str(v) for k, v in metric.model_kwargs.items()},
        "forward_ops": "ForwardOps" if fmodel is not model else "model",
        "device_type": device.type,
        "dtype": str(theta[names[0]].dtype).replace("torch.", ""),
    }
    surface, chunk_size = _resumed(run, resolved)
    t0 = time.perf_counter()
    centre = None
    if surface is None or not surface.centre["computed"]:
        # f(θ*) directly; its forward also sizes the automatic chunk.
        with eval_mode(model):
            c = ev.centre()
        centre = {"loss": float(c[0]), "accuracy": float(c[1]), "computed": True}
    resolved["chunk_size"] = chunk_size = _chunk_size(chunk_size, ev, grid, world)
    meta = {
        **dict(run.meta),
        "config": resolved,
        "provenance": provenance(),
        "directions": dirs.info,
        "values": "loss and accuracy: sample-weighted means over the data batches; accuracy in percent, "
        "NaN where the loss is not finite (diverged)",
    }
    stored = Directions([{n: v.cpu() for n, v in d.items()} for d in vecs], dirs.info)
    surface = _started(surface, grid, meta, stored, run.extras)
    writer = rank == 0 and run.out is not None

    def write(status: str) -> None:
        _write(surface, run.out, status, time.perf_counter() - t0, writer)

    with eval_mode(model):
        if centre is not None:
            surface.centre = centre
            write("running")
        _fill(surface, ev, chunk_size, run, write)
    write("complete")
    return surface


def evaluate_surface(
    model: nn.Module,
    loss_fn: Callable[[Any, Tensor], Tensor],
    directions: Directions | Sequence[Mapping[str, Tensor]],
    grid: Grid | str,
    *,
    data: Batch | Sequence[Batch],
    accuracy_fn: Callable[[Any, Tensor], Tensor] | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    forward_ops: bool = True,
    **options: Any,
) -> Surface:
    """Keyword form of :func:`evaluate_grid`: ``loss_fn``, ``accuracy_fn``, ``model_kwargs`` and
    ``forward_ops`` make the :class:`Metric`; ``options`` are :class:`RunOptions` fields
    (``chunk_size``, ``sequential``, ``out``, ``resume``, ``config``, ``meta``, ``extras``,
    ``progress``; ``None`` for a mapping means empty)."""
    metric = Metric(loss_fn, accuracy_fn, dict(model_kwargs or {}), forward_ops)
    for key in ("config", "meta", "extras"):
        if options.get(key) is None:
            options.pop(key, None)
    return evaluate_grid(model, directions, grid, data, metric, RunOptions(**options))
