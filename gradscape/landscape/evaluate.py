"""What a landscape evaluates: loss and accuracy at every grid point, batched, resumable, sharded.

For coefficients c = (α) or (α, β) and directions d_k, grid point p has parameters

    θ_p = θ* + Σ_k c_{p,k} d_k           (only the selected parameters move)

and values f(θ_p) = (1/N) Σ_b n_b L(model_{θ_p}(x_b), y_b) over a fixed list of data batches (x_b, y_b)
with n_b samples each (the same weighting for the accuracy). The model is never written to: every
point is evaluated with :func:`torch.func.functional_call` on a parameter dict. Many points go through
one forward by :func:`torch.func.vmap` over the stacked θ_p of a *chunk* (``chunk_size`` points); the
sequential path evaluates them one at a time. Chunks are fixed by the grid and the chunk size, so a
resumed or sharded run computes every chunk exactly as an uninterrupted single process does.

Results live in one ``.npz`` file (:class:`Surface`), rewritten atomically after every chunk: the grid,
the directions, ``loss``, ``accuracy``, a boolean ``computed`` mask, the centre values f(θ*)
(always evaluated directly) and a JSON ``meta`` string holding the resolved ``config`` (compared on
``resume``) and provenance. Non-finite losses are kept as they are (a diverged point is a result);
their accuracy is stored as NaN.

Recurrent networks are run with a forward-only ``ops`` (:class:`ForwardOps`): the same step function,
but ``ops.spike`` returns Θ(x) directly instead of Θ(x) + (F(x) − stopgrad F(x)), whose value is
identical for finite x; the surrogate primitive F (two ``erf`` per step for the double Gaussian) only
matters for gradients. A non-finite membrane gives a NaN spike, so divergence reaches the loss.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from gradscape.errors import UserError
from gradscape.io import atomic_savez, config_hash, provenance, to_jsonable
from gradscape.landscape.directions import Directions, as_directions
from gradscape.landscape.grid import Grid, parse_grid
from gradscape.models.ops import TorchOps
from gradscape.models.surrogates import heaviside

__all__ = [
    "CPU_STEP_BYTES",
    "ForwardOps",
    "Surface",
    "load_surface",
    "evaluate_surface",
    "perturbed_params",
    "auto_chunk_size",
    "spike_flips",
    "tensor_hash",
]

Batch = tuple[Tensor, Tensor] | tuple[Tensor, Tensor, int]

#: On a CPU, points whose per-step state (e.g. B·H floats of a recurrent network) is at least this
#: large are evaluated one at a time, not in vmap chunks (see :func:`auto_chunk_size`).
CPU_STEP_BYTES = 256 << 10


class ForwardOps(TorchOps):
    """:class:`TorchOps` for evaluation without gradients: ``spike(x) = Θ(x) + (x − x)``.

    (x − x) is 0 for finite x, so the value equals TorchOps' Θ(x) + (F − stopgrad F) exactly, and NaN
    for a non-finite membrane, so a diverged network yields a NaN loss instead of silent zeros.
    """

    def spike(self, x: Tensor) -> Tensor:
        return heaviside(x) + (x - x)


def _forward_view(model: nn.Module) -> nn.Module:
    """A shallow copy of ``model`` sharing its parameters but running :class:`ForwardOps`."""
    ops = getattr(model, "ops", None)
    if isinstance(ops, TorchOps) and not isinstance(ops, ForwardOps):
        view = copy.copy(model)
        object.__setattr__(view, "ops", ForwardOps(ops.surrogate))
        return view
    return model


@contextmanager
def _eval_mode(model: nn.Module):
    was = model.training
    model.train(False)
    try:
        yield
    finally:
        model.train(was)


def tensor_hash(tensors: Mapping[str, Tensor] | Sequence[Tensor]) -> str:
    """SHA-256 (16 hex digits) of tensors' bytes, shapes and dtypes (the identity of data/directions)."""
    h = hashlib.sha256()
    items = tensors.items() if isinstance(tensors, Mapping) else enumerate(tensors)
    for k, t in items:
        a = t.detach().cpu().contiguous()
        h.update(f"{k}:{tuple(a.shape)}:{a.dtype}".encode())
        h.update(a.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


# ----------------------------------------------------------------------------- result file
@dataclass
class Surface:
    """A (partly) evaluated landscape: arrays of the grid's shape plus metadata.

    ``loss``/``accuracy`` are float64 (NaN where not computed); ``computed`` marks evaluated points;
    ``diverged`` = computed and non-finite loss. ``center`` holds f(θ*) evaluated directly.
    ``extras`` are further arrays (e.g. ``curvature_ratio``, ``path``) stored beside them.
    """

    grid: Grid
    loss: np.ndarray
    accuracy: np.ndarray
    computed: np.ndarray
    center: dict[str, float]
    meta: dict[str, Any]
    directions: Directions | None = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def diverged(self) -> np.ndarray:
        return self.computed & ~np.isfinite(self.loss)

    @property
    def complete(self) -> bool:
        return bool(self.computed.all())

    @property
    def alphas(self) -> np.ndarray:
        return self.grid.coords[0]

    @property
    def betas(self) -> np.ndarray | None:
        return self.grid.coords[1] if self.grid.dims == 2 else None

    @property
    def label(self) -> str:
        return str(self.meta.get("label") or self.meta.get("config", {}).get("model_kind") or "model")

    def masked_loss(self) -> np.ndarray:
        """Loss with NaN wherever a point is not computed or diverged (for plots and measures)."""
        return np.where(self.computed & np.isfinite(self.loss), self.loss, np.nan)

    def save(self, path: str | Path) -> Path:
        arrays: dict[str, Any] = {
            "alpha": self.grid.coords[0],
            "loss": self.loss,
            "accuracy": self.accuracy,
            "computed": self.computed,
            "center": np.array([self.center.get("loss", np.nan), self.center.get("accuracy", np.nan)]),
            "center_computed": np.array(bool(self.center.get("computed", False))),
            "meta": np.array(json.dumps(to_jsonable({**self.meta, "grid": self.grid.spec}))),
        }
        if self.grid.dims == 2:
            arrays["beta"] = self.grid.coords[1]
        if self.directions is not None:
            for k, vec in enumerate(self.directions.vectors):
                for name, t in vec.items():
                    arrays[f"dir{k}__{name}"] = t.detach().cpu().numpy()
        for name, a in self.extras.items():
            arrays[f"extra__{name}"] = np.asarray(a)
        return atomic_savez(path, **arrays)


def load_surface(path: str | Path) -> Surface:
    """Read a result file written by :meth:`Surface.save` (:class:`UserError` if it is not one)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"landscape result {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
        meta = json.loads(str(data["meta"]))
        grid = parse_grid(meta["grid"], 2 if "beta" in data else 1)
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"{path} is not a gradscape landscape result ({type(exc).__name__}: {exc})") from None
    dirs: dict[int, dict[str, Tensor]] = {}
    extras = {}
    for key, a in data.items():
        if key.startswith("dir") and "__" in key:
            k, name = key[3:].split("__", 1)
            dirs.setdefault(int(k), {})[name] = torch.from_numpy(np.array(a))
        elif key.startswith("extra__"):
            extras[key[7:]] = a
    directions = Directions([dirs[k] for k in sorted(dirs)], meta.get("directions", {})) if dirs else None
    c = data["center"]
    return Surface(
        grid=grid,
        loss=data["loss"].astype(np.float64),
        accuracy=data["accuracy"].astype(np.float64),
        computed=data["computed"].astype(bool),
        center={"loss": float(c[0]), "accuracy": float(c[1]), "computed": bool(data["center_computed"])},
        meta=meta,
        directions=directions,
        extras=extras,
    )


# ----------------------------------------------------------------------------- evaluation core
def perturbed_params(
    theta: Mapping[str, Tensor], directions: Sequence[Mapping[str, Tensor]], coefs: Tensor
) -> dict[str, Tensor]:
    """Stacked θ_p = θ* + Σ_k c_{p,k} d_k for coefficient rows ``coefs`` (P, dims): each (P, *shape).

    Elementwise only, so a point's parameters are bit-identical whatever chunk it is evaluated in.
    """
    out = {}
    for name, t in theta.items():
        shape = (coefs.shape[0],) + (1,) * t.dim()
        p = t.unsqueeze(0)
        for k, d in enumerate(directions):
            p = p + coefs[:, k].to(t.dtype).reshape(shape) * d[name].unsqueeze(0)
        out[name] = p
    return out


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


def _output_bytes(obj: Any) -> int:
    if isinstance(obj, Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, tuple | list):
        return sum(_output_bytes(o) for o in obj)
    if isinstance(obj, Mapping):
        return sum(_output_bytes(o) for o in obj.values())
    return 0


def _available_bytes(device: torch.device) -> int:
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
    fit = _available_bytes(device) // (4 * max(per_point_bytes, 1))
    return int(max(1, min(cap, fit, n_points)))


class _Evaluator:
    """f(θ_p) for chunks of points, batched (vmap) or one at a time."""

    def __init__(
        self,
        model: nn.Module,
        loss_fn: Callable[[Any, Tensor], Tensor],
        accuracy_fn: Callable[[Any, Tensor], Tensor] | None,
        theta: dict[str, Tensor],
        directions: list[dict[str, Tensor]],
        data: list[tuple[Tensor, Tensor, int]],
        model_kwargs: Mapping[str, Any],
    ) -> None:
        self.model, self.loss_fn, self.accuracy_fn = model, loss_fn, accuracy_fn
        self.theta, self.directions, self.data = theta, directions, data
        self.kwargs = dict(model_kwargs)
        self.total = sum(n for *_, n in data)
        self.recording, self.out_bytes, self.step_bytes = False, 0, 0

    def _metrics(self, params: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
        out = functional_call(self.model, params, (x,), self.kwargs)
        if self.recording:  # the centre's forward tells how much memory one point needs
            # a recurrent network's RunOutput: final state z_T (B, H), or the spikes (T, B, H)
            final = getattr(getattr(out, "final", None), "z", None)
            spikes = getattr(out, "spikes", None)
            per_step = (
                final if isinstance(final, Tensor) else (spikes[0] if isinstance(spikes, Tensor) else None)
            )
            step = per_step.numel() * per_step.element_size() if per_step is not None else 0
            self.out_bytes = max(self.out_bytes, _output_bytes(out))
            self.step_bytes = max(self.step_bytes, step)
        loss = self.loss_fn(out, y).to(torch.float64)
        acc = (
            self.accuracy_fn(out, y).to(torch.float64)
            if self.accuracy_fn is not None
            else torch.full_like(loss, math.nan)
        )
        return torch.stack([loss, acc])

    def centre(self) -> np.ndarray:
        self.recording = True
        try:
            return self._accumulate(lambda x, y: self._metrics(self.theta, x, y)[None])[0]
        finally:
            self.recording = False

    def chunk(self, coefs: np.ndarray, sequential: bool) -> np.ndarray:
        dev = next(iter(self.theta.values())).device
        c = torch.as_tensor(coefs, dtype=torch.float64, device=dev)
        stacked = perturbed_params(self.theta, self.directions, c)
        # A one-point chunk runs unbatched (no vmap overhead); it always does, so results stay
        # reproducible chunk by chunk.
        if sequential or len(c) == 1:

            def run(x: Tensor, y: Tensor) -> Tensor:
                rows = [self._metrics({k: v[p] for k, v in stacked.items()}, x, y) for p in range(len(c))]
                return torch.stack(rows)

        else:
            batched = vmap(self._metrics, in_dims=(0, None, None))

            def run(x: Tensor, y: Tensor) -> Tensor:
                return batched(stacked, x, y)

        return self._accumulate(run)

    def _accumulate(self, run: Callable[[Tensor, Tensor], Tensor]) -> np.ndarray:
        acc = None
        with torch.no_grad():
            for x, y, n in self.data:
                v = run(x, y) * n
                acc = v if acc is None else acc + v
        vals = (acc / self.total).cpu().numpy()  # type: ignore[union-attr]
        vals[~np.isfinite(vals[:, 0]), 1] = np.nan
        return vals


def _dist_info() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _gather_chunk(idx: np.ndarray, vals: np.ndarray, size: int, device: torch.device) -> list[tuple]:
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


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [k for k in keys if to_jsonable(old.get(k)) != to_jsonable(new.get(k))]


def evaluate_surface(
    model: nn.Module,
    loss_fn: Callable[[Any, Tensor], Tensor],
    directions: Directions | Sequence[Mapping[str, Tensor]],
    grid: Grid | str,
    *,
    data: Batch | Sequence[Batch],
    accuracy_fn: Callable[[Any, Tensor], Tensor] | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    chunk_size: int | None = None,
    sequential: bool = False,
    out: str | Path | None = None,
    resume: bool = False,
    config: Mapping[str, Any] | None = None,
    meta: Mapping[str, Any] | None = None,
    progress: bool = True,
    forward_ops: bool = True,
    extras: Mapping[str, Any] | None = None,
) -> Surface:
    """Evaluate f(θ* + α d [+ β e]) on ``grid`` for any ``nn.Module`` (module docstring).

    Args:
        model: the trained model θ* (not modified; evaluated in eval mode).
        loss_fn: ``loss_fn(model(x, **model_kwargs), y)`` → scalar batch-mean loss.
        directions: 1 or 2 direction dicts (e.g. from :func:`random_directions`).
        grid: a :class:`Grid` or a spec such as ``"-1:1:51"`` (dims from the number of directions).
        data: one ``(x, y)`` batch or a list of ``(x, y[, n])`` batches (n samples; default ``len(y)``).
        accuracy_fn: like ``loss_fn``, returning a percentage (optional).
        chunk_size: points per batched forward; ``None`` = auto from free memory on a new run, the
            stored value on resume.
        sequential: evaluate one point at a time (same chunks, same file updates).
        out: result file (``.npz``), rewritten atomically after every chunk.
        resume: continue ``out`` (refused if its config differs); without it ``out`` is overwritten.
        config: caller's settings that define the result (checkpoint hash, data subset …), recorded
            and compared on resume; ``meta``: further recorded, uncompared information (e.g. label).
        forward_ops: run models with a ``TorchOps`` ``ops`` attribute on :class:`ForwardOps`.
        extras: further arrays stored in the result (e.g. a trajectory ``path`` from
            :func:`~gradscape.landscape.subspaces.pca_directions`, drawn on the contour plot).

    Under ``torch.distributed`` (initialised by the caller) chunks are sharded round-robin over the
    ranks and gathered after each round; every rank returns the full surface and rank 0 writes.
    """
    dirs = as_directions(directions)
    if isinstance(grid, str):
        grid = parse_grid(grid, len(dirs))
    if grid.dims != len(dirs):
        raise UserError(f"a {grid.dims}-D grid needs {grid.dims} direction(s), got {len(dirs)}")
    names = dirs.names
    params = dict(model.named_parameters())
    missing = [n for n in names if n not in params]
    if missing:
        raise UserError(f"directions name parameters the model lacks: {', '.join(missing)}")
    theta = {n: params[n].detach() for n in names}
    device = theta[names[0]].device
    vecs = [{n: d[n].to(device=device, dtype=theta[n].dtype) for n in names} for d in dirs]
    batches = _normalise_data(data, device)
    fmodel = _forward_view(model) if forward_ops else model
    ev = _Evaluator(fmodel, loss_fn, accuracy_fn, theta, vecs, batches, model_kwargs or {})
    rank, world = _dist_info()
    n_points = grid.size
    points = grid.points()

    resolved = {
        **dict(config or {}),
        "grid": grid.spec,
        "dims": grid.dims,
        "params": names,
        "directions_hash": tensor_hash([t for d in vecs for t in d.values()]),
        "data_hash": tensor_hash([t for x, y, _ in batches for t in (x, y)]),
        "batch_sizes": [n for *_, n in batches],
        "mode": "sequential" if sequential else "batched",
        "model_kwargs": {k: str(v) for k, v in (model_kwargs or {}).items()},
        "forward_ops": "ForwardOps" if fmodel is not model else "model",
        "device_type": device.type,
        "dtype": str(theta[names[0]].dtype).replace("torch.", ""),
    }
    surface: Surface | None = None
    if out is not None and resume and Path(out).is_file():
        surface = load_surface(out)
        old = surface.meta.get("config", {})
        if chunk_size is None:
            chunk_size = old.get("chunk_size")
        trial = {**resolved, "chunk_size": chunk_size}
        if config_hash(old) != config_hash(trial):
            diff = _differences(old, trial)
            raise UserError(
                f"cannot resume {out}: it was computed with a different configuration "
                f"({', '.join(diff)} differ); use a new --out folder or drop --resume to start over"
            )
    t0 = time.perf_counter()
    centre = None
    if surface is None or not surface.center["computed"]:
        # f(θ*) directly; its forward also sizes the automatic chunk.
        with _eval_mode(model):
            c = ev.centre()
        centre = {"loss": float(c[0]), "accuracy": float(c[1]), "computed": True}
    if chunk_size is None:
        per_point = 4 * ev.out_bytes + 3 * sum(t.numel() * t.element_size() for t in theta.values())
        chunk_size = auto_chunk_size(per_point, n_points, device, ev.step_bytes or None)
        if world > 1:  # every rank must use the same chunks
            t = torch.tensor([chunk_size], device=device if device.type == "cuda" else "cpu")
            torch.distributed.broadcast(t, 0)
            chunk_size = int(t.item())
    if int(chunk_size) < 1:
        raise UserError(f"--chunk-size must be at least 1, not {chunk_size}")
    chunk_size = int(chunk_size)
    resolved["chunk_size"] = chunk_size
    base_meta = {
        **dict(meta or {}),
        "config": resolved,
        "provenance": provenance(),
        "directions": dirs.info,
        "values": "loss and accuracy: sample-weighted means over the data batches; accuracy in percent, "
        "NaN where the loss is not finite (diverged)",
    }
    if surface is None:
        surface = Surface(
            grid=grid,
            loss=np.full(grid.shape, np.nan),
            accuracy=np.full(grid.shape, np.nan),
            computed=np.zeros(grid.shape, dtype=bool),
            center={"loss": math.nan, "accuracy": math.nan, "computed": False},
            meta=base_meta,
            directions=Directions([{n: v.cpu() for n, v in d.items()} for d in vecs], dirs.info),
        )
        surface.extras.update({k: np.asarray(v) for k, v in (extras or {}).items()})
    else:
        surface.meta = {**base_meta, "resumed_from": surface.meta.get("progress", {})}
        surface.directions = Directions([{n: v.cpu() for n, v in d.items()} for d in vecs], dirs.info)
    writer = rank == 0 and out is not None

    def write(status: str, elapsed: float) -> None:
        surface.meta["progress"] = {
            "status": status,
            "points": n_points,
            "computed": int(surface.computed.sum()),
            "diverged": int(surface.diverged.sum()),
            "seconds_this_session": round(elapsed, 3),
        }
        if writer:
            surface.save(out)  # type: ignore[arg-type]

    with _eval_mode(model):
        if centre is not None:
            surface.center = centre
            write("running", time.perf_counter() - t0)
        flat_loss = surface.loss.reshape(-1)
        flat_acc = surface.accuracy.reshape(-1)
        flat_done = surface.computed.reshape(-1)
        starts = list(range(0, n_points, chunk_size))
        pending = [s for s in starts if not flat_done[s : s + chunk_size].all()]
        bar = None
        if progress and rank == 0:
            from tqdm.auto import tqdm

            bar = tqdm(total=n_points, initial=int(flat_done.sum()), unit="pt", desc="landscape")
        try:
            for r in range(0, len(pending), world):
                mine = pending[r + rank] if r + rank < len(pending) else None
                if mine is not None:
                    idx = np.arange(mine, min(mine + chunk_size, n_points))
                    vals = ev.chunk(points[idx], sequential)
                else:
                    idx, vals = np.zeros(0, dtype=np.int64), np.zeros((0, 2))
                results = _gather_chunk(idx, vals, chunk_size, device) if world > 1 else [(idx, vals)]
                done_now = 0
                for ids, v in results:
                    flat_loss[ids] = v[:, 0]
                    flat_acc[ids] = v[:, 1]
                    flat_done[ids] = True
                    done_now += len(ids)
                write("running", time.perf_counter() - t0)
                if bar is not None:
                    bar.update(done_now)
        finally:
            if bar is not None:
                bar.close()
    write("complete", time.perf_counter() - t0)
    return surface


def spike_flips(
    model: nn.Module,
    directions: Directions | Sequence[Mapping[str, Tensor]],
    coefs: np.ndarray,
    inputs: Tensor,
    *,
    model_kwargs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Compare batched (vmap) and sequential forwards of a spiking model at points ``coefs`` (P, dims).

    Returns the number of hidden spikes z_t that differ (``flips``) out of ``total`` and the largest
    absolute readout difference; at short T in float64 both should be 0.
    """
    dirs = as_directions(directions)
    kwargs = {**dict(model_kwargs or {"fast": True}), "keep_spikes": True}
    theta = {n: model.get_parameter(n).detach() for n in dirs.names}
    vecs = [{n: d[n].to(theta[n]) for n in dirs.names} for d in dirs]
    fmodel = _forward_view(model)
    stacked = perturbed_params(theta, vecs, torch.as_tensor(coefs, dtype=torch.float64))

    def run(p: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        o = functional_call(fmodel, p, (inputs,), kwargs)
        return o.spikes, o.outputs

    with torch.no_grad(), _eval_mode(model):
        zb, ob = vmap(run)(stacked)
        seq = [run({k: v[p] for k, v in stacked.items()}) for p in range(len(coefs))]
    zs = torch.stack([s[0] for s in seq])
    os_ = torch.stack([s[1] for s in seq])
    return {
        "flips": int((zb != zs).sum()),
        "total": int(zs.numel()),
        "max_output_diff": float((ob - os_).abs().max()),
    }
