"""One landscape job: checkpoints on a task → directions → surfaces → measures → curvature → files.

:func:`run_landscape` is what ``gradscape landscape``, ``gradscape demo`` and the Fig. 5 pipeline
call. For every model of a :class:`LandscapeJob` it

1. opens the checkpoint (:func:`_open`, the one place a checkpoint is loaded here) and puts the
   network on the job's device and dtype;
2. builds the directions (:class:`DirectionSpec`: seeded filter-normalised random ones, the top
   Hessian eigenvectors, the line/plane through checkpoints, or the PCA plane of a trajectory) over
   the selected parameters;
3. evaluates f(θ* + α d [+ β e]) on the grid on a seeded subset of a task split with the task's
   objective (:func:`~gradscape.models.evaluation.task_objective`, batch mean), resumable and
   sharded over ``torchrun`` ranks (:func:`~gradscape.landscape.evaluate.evaluate_grid`);
4. optionally the curvature (:class:`CurvatureSpec`): Li et al.'s |λ_min/λ_max| at every grid point,
   and/or the Hessian extremes at θ* only;
5. the measures (:func:`~gradscape.landscape.measures.surface_measures`), written to
   ``measures.json`` beside the result, and the figures of all models side by side.

Files (rank 0 writes): ``OUT/LABEL/landscape.npz`` (or the model's own ``result`` path),
``OUT/LABEL/measures.json``, ``OUT/landscape.png/.pdf/.html`` (and ``curvature.png/.pdf``). Names
never encode settings: everything is inside the files.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gradscape.errors import UserError
from gradscape.io import output_folder
from gradscape.landscape.api import recurrent_forward, recurrent_objective, split_batches
from gradscape.landscape.directions import Directions, random_directions
from gradscape.landscape.evaluate import Metric, RunOptions, evaluate_grid
from gradscape.landscape.grid import Grid, parse_grid
from gradscape.landscape.hessian import output_loss
from gradscape.landscape.jobspec import (
    DIRECTION_KINDS,
    DataSpec,
    LandscapeJob,
    LandscapeResult,
    ModelEntry,
    ModelLandscape,
)
from gradscape.landscape.memory import grid_bytes
from gradscape.landscape.outputs import measures_of, write_measures
from gradscape.landscape.parameters import parameter_point, select_parameters
from gradscape.landscape.surface import Surface, load_surface
from gradscape.memory import memory_bound, require_memory

__all__ = ["run_landscape"]


# ----------------------------------------------------------------------------- set-up
def _open(spec: str | Path, model: str | None = None, trust_neuron_file: bool = False) -> Any:
    """The one place this job opens a checkpoint (a :class:`~gradscape.models.checkpoints.Checkpoint`)."""
    from gradscape.models.checkpoints import open_checkpoint

    return open_checkpoint(spec, model, trust_neuron_file=trust_neuron_file)


def _labels(entries: tuple[ModelEntry, ...], defaults: list[str]) -> list[str]:
    """Folder names: ``--label`` or the checkpoint's label (bundled name or neuron), numbered if repeated."""
    labels, seen = [], {}
    for e, default in zip(entries, defaults, strict=True):
        base = e.label or default
        if any(c in base for c in "/\\") or base in ("", ".", ".."):
            raise UserError(f"label {base!r} cannot name a folder; give --label NAME")
        n = seen.get(base, 0) + 1
        seen[base] = n
        labels.append(base if n == 1 else f"{base}-{n}")
    return labels


def _check(job: LandscapeJob) -> Grid:
    if not job.models:
        raise UserError("give at least one --checkpoint")
    d = job.data
    if (d.samples is not None and d.samples < 1) or d.batch_size < 1:
        raise UserError("--samples and --batch-size must be at least 1")
    if d.steps is not None and d.steps < 1:
        raise UserError("--steps must be at least 1")
    if job.chunk_size is not None and job.chunk_size < 1:
        raise UserError("--chunk-size must be at least 1")
    if job.directions.kind not in DIRECTION_KINDS:
        raise UserError(
            f"unknown --directions {job.directions.kind!r}; choose one of {', '.join(DIRECTION_KINDS)}"
        )
    if job.seed < 0 or d.data_seed < 0:
        raise UserError(f"--seed and --data-seed must be integers >= 0, got {job.seed} and {d.data_seed}")
    if job.vmax is not None and not math.isfinite(job.vmax):
        raise UserError(f"--vmax must be a finite number, got {job.vmax!r}")
    grid = parse_grid(job.grid, job.dims)
    if any(a.num < 3 for a in grid.axes):
        raise UserError(f"--grid {job.grid}: the measures need at least 3 points per axis")
    per_point = grid_bytes(1, grid.dims, job.render)
    fit = memory_bound()[0] // per_point
    per_axis = math.isqrt(fit) if grid.dims == 2 else fit
    require_memory(
        grid_bytes(grid.size, grid.dims, job.render),
        f"--grid {grid.spec} ({grid.size:,} points, {per_point:,} bytes each for the results and plots)",
        f"use fewer points per axis (num in start:stop:num; about {per_axis:,} per axis fit here)",
    )
    # before any computing: an unwritable --out must not fail at the first write after the first chunk
    output_folder(job.out)
    return grid


def _check_chunk(
    job: LandscapeJob, net: nn.Module, names: list[str], grid: Grid, device: torch.device
) -> None:
    """A given --chunk-size holds about three copies of the perturbed parameters per point (θ_p, the
    direction terms, the stacked batch for vmap): refused when that exceeds the memory bound (the
    automatic chunk size is sized to fit)."""
    if job.chunk_size is None or job.sequential:
        return
    itemsize = 8 if job.dtype == "float64" else 4
    params = dict(net.named_parameters())
    per_point = 3 * itemsize * sum(params[n].numel() for n in names)
    require_memory(
        min(job.chunk_size, grid.size) * per_point,
        f"--chunk-size {job.chunk_size} (points per forward, {per_point:,} bytes of parameters each)",
        "give a smaller --chunk-size or leave it out (sized from free memory)",
        device,
    )


# ----------------------------------------------------------------------------- directions
def _directions(
    job: LandscapeJob, net: nn.Module, names: list[str], kind: str, data: list, loss: Any, dims: int
) -> tuple[Directions, dict[str, Any], list[str]]:
    """(directions, extras such as the PCA path, sha256 of the subspace checkpoints)."""
    spec = job.directions
    if spec.kind == "random":
        dirs = random_directions(
            net,
            names,
            normalization=spec.normalization,
            seed=job.seed,
            dims=dims,
            orthogonalize=spec.orthogonalize,
        )
        return dirs, {}, []
    if spec.kind == "hessian":
        from gradscape.landscape.curvature import hessian_directions

        vecs = hessian_directions(net, loss, names, k=dims, seed=job.seed, data=data, batches=True)
        info = {
            "kind": "hessian",
            "params": names,
            "seed": job.seed,
            "dims": dims,
            "note": "top Hessian (surrogate) eigenvectors, unit norm over the selected parameters; "
            "not filter-normalised",
        }
        return Directions(vecs, info), {}, []
    return _subspace(job, net, names, kind, dims)


def _subspace(
    job: LandscapeJob, net: nn.Module, names: list[str], kind: str, dims: int
) -> tuple[Directions, dict[str, Any], list[str]]:
    """Checkpoint line/plane or PCA plane around ``net`` (the single model of the job)."""
    from gradscape.landscape.subspaces import checkpoint_directions, checkpoint_point, pca_directions

    spec = job.directions
    if len(job.models) != 1:
        raise UserError(f"--directions {spec.kind} takes exactly one --checkpoint (the centre)")
    centre = parameter_point(net, names)
    p0 = next(net.parameters())
    paths = spec.through if spec.kind == "checkpoints" else spec.trajectory
    if spec.kind == "checkpoints" and len(paths) != dims:
        raise UserError(
            f"--directions checkpoints with --dims {dims} needs --through with {dims} checkpoint(s)"
        )
    if spec.kind == "pca" and not paths:
        raise UserError("--directions pca needs --trajectory CHECKPOINT… (saved along the run)")
    points, hashes = [], []
    for p in paths:
        ck = _open(p, kind, job.trust_neuron_file)
        points.append(
            {n: t.to(device=p0.device, dtype=p0.dtype) for n, t in checkpoint_point(ck, names).items()}
        )
        hashes.append(ck.sha256)
    if spec.kind == "checkpoints":
        return checkpoint_directions(centre, *points), {}, hashes
    dirs, path = pca_directions(points, centre, dims=dims)
    return dirs, {"path": path}, hashes


# ----------------------------------------------------------------------------- curvature
def _curvature(
    job: LandscapeJob, net: nn.Module, surface: Surface, data: list, loss: Any, writer: bool, out: Path
) -> dict[str, Any] | None:
    """The curvature the job asks for, stored in the result (computed once, kept on resume)."""
    spec = job.curvature
    if not (spec.ratio_map or spec.centre):
        return None
    from gradscape.landscape.curvature import curvature_ratio_grid, hessian_extremes

    changed = False
    theta = parameter_point(net, surface.directions.names)
    if spec.ratio_map and "curvature_ratio" not in surface.extras:
        dirs = [{n: t.to(theta[n]) for n, t in d.items()} for d in surface.directions]
        res = curvature_ratio_grid(
            net, loss, theta, dirs, surface.alphas, surface.betas, data=data, batches=True, seed=job.seed,
            progress=job.progress and writer, **spec.kwargs(),
        )  # fmt: skip
        for key in ("ratio", "lambda_min", "lambda_max"):
            surface.extras["curvature_" + key] = res[key]
        surface.meta["curvature"] = res.get("settings", {})
        changed = True
    if spec.centre and "curvature_centre" not in surface.meta:
        ext = hessian_extremes(net, loss, theta, data=data, batches=True, seed=job.seed, **spec.kwargs())
        surface.meta["curvature_centre"] = {**ext.to_dict(), "settings": {**spec.kwargs(), "seed": job.seed}}
        changed = True
    if changed and writer:
        surface.save(out)
    return {
        "ratio_map": surface.meta.get("curvature") if spec.ratio_map else None,
        "centre": surface.meta.get("curvature_centre") if spec.centre else None,
    }


# ----------------------------------------------------------------------------- the job
def _result_files(job: LandscapeJob, entry: ModelEntry, label: str) -> tuple[Path, Path]:
    """(result .npz, measures .json) of one model."""
    result = Path(entry.result) if entry.result is not None else Path(job.out) / label / "landscape.npz"
    measures = (
        result.parent / "measures.json" if entry.result is None else result.with_suffix(".measures.json")
    )
    return result, measures


def _pixel_order(task: Any, split: Any, ck: Any, d: DataSpec) -> tuple[Any, str | None]:
    """PS-MNIST read in the pixel order the network was trained with (unless the job names one).

    The task's split is already permuted by its default π₀ (x[:, t] = pixels[π₀[t]]); the
    checkpoint's π is reached by the index π₀⁻¹[π[t]] into it.
    """
    perm = ck.permutation
    if task.name != "psmnist" or d.permutation is not None or perm is None:
        return split, None
    default = task.permutation.long()
    if torch.equal(perm.long(), default):
        return split, None
    order = torch.argsort(default)[perm.long()]
    inputs = split.inputs[:, order].contiguous()
    return type(split)(inputs, split.targets, split.indices, split.source), "the checkpoint's permutation"


def _cached(job: LandscapeJob, path: Path) -> Surface | None:
    """A complete result to reuse as it is (``resume="cache"``), else None."""
    if job.resume != "cache" or not path.is_file():
        return None
    try:
        surface = load_surface(path)
    except UserError:  # unreadable: computed afresh
        return None
    return surface if surface.complete else None


def _config(
    job: LandscapeJob,
    ck: Any,
    task: Any,
    split: Any,
    objective: dict,
    hashes: list[str],
    pixel_order: str | None,
) -> dict[str, Any]:
    """What defines one model's result besides the grid, directions and data (compared on resume)."""
    d, spec = job.data, job.directions
    return {
        "objective": objective,
        "steps": d.steps,
        "checkpoint_sha256": ck.sha256,
        "model_kind": ck.neuron,
        "model_config": dict(ck.config),
        "task": task.name,
        "split": d.split,
        "data_source": split.source,
        "data_indices": split.indices.tolist(),
        "data_seed": d.data_seed,
        "samples": len(split),
        "batch_size": d.batch_size,
        "seed": job.seed,
        "normalization": spec.normalization if spec.kind == "random" else None,
        "direction_kind": spec.kind,
        "orthogonalize": spec.orthogonalize,
        "subspace_checkpoints_sha256": hashes,
        **({"permutation": str(d.permutation)} if d.permutation is not None else {}),
        **({"pixel_order": pixel_order} if pixel_order else {}),
        **dict(job.config),
    }


def _one(
    job: LandscapeJob, entry: ModelEntry, ck: Any, label: str, task: Any, split: Any, grid: Grid, w: Any
) -> ModelLandscape:
    """One model's landscape, curvature, measures and files (``w``: the job's ``World``)."""
    from gradscape.models.evaluation import task_objective

    device = w.device
    dtype = torch.float64 if job.dtype == "float64" else torch.float32
    net, kind, d, spec = ck.model, ck.neuron, job.data, job.directions
    if net.input_size != task.input_size:
        raise UserError(
            f"{ck.path} takes {net.input_size} input channel(s) but task {task.name} has {task.input_size}"
        )
    net = net.to(device=device, dtype=dtype).eval()
    split, pixel_order = _pixel_order(task, split, ck, d)
    names = select_parameters(net, spec.params)
    _check_chunk(job, net, names, grid, device)
    objective = {**task_objective(task.name, kind), "reduction": "mean"}
    loss_fn, acc_fn = recurrent_objective(**objective)
    batches = split_batches(split, d.batch_size, device=device, steps=d.steps, dtype=dtype)
    hvp_data = [(x, y) for x, y, _ in batches]
    hvp_loss = output_loss(loss_fn, fast=True)  # the curvature differentiates the fast path twice
    result, measures_file = _result_files(job, entry, label)
    surface = _cached(job, result)
    if surface is None:
        dirs, extras, hashes = _directions(job, net, names, kind, hvp_data, hvp_loss, grid.dims)
        config = _config(job, ck, task, split, objective, hashes, pixel_order)
        meta = {"label": label, "checkpoint": str(ck.path), "task_info": task.info, **dict(job.meta)}
        run = RunOptions(
            chunk_size=job.chunk_size,
            sequential=job.sequential,
            out=result,
            resume=job.resume != "no",
            on_mismatch="restart" if job.resume == "cache" else "error",
            config=config,
            meta=meta,
            extras=extras,
            progress=job.progress,
        )
        metric = Metric(loss_fn, acc_fn, recurrent_forward(net, batch=max(n for *_, n in batches)))
        with torch.no_grad():
            surface = evaluate_grid(net, dirs, grid, batches, metric, run)
    curvature = _curvature(job, net, surface, hvp_data, hvp_loss, w.is_main, result)
    measures = measures_of(surface, job.rise)
    files = [result]
    if w.is_main and job.write_measures:
        files.append(write_measures(measures_file, result, surface, measures))
    return ModelLandscape(label, surface, measures, curvature, tuple(files) if w.is_main else ())


def run_landscape(job: LandscapeJob) -> LandscapeResult:
    """Run ``job`` (module docstring); every rank returns the same surfaces, rank 0 writes the files."""
    from gradscape.distributed import world
    from gradscape.models.datasets import load_task

    grid = _check(job)
    opened = [_open(e.checkpoint, e.model, job.trust_neuron_file) for e in job.models]
    labels = _labels(job.models, [ck.label for ck in opened])
    d = job.data
    task = load_task(d.task, data_dir=d.data_dir, seed=d.data_seed, permutation=d.permutation)
    split = getattr(task, d.split)
    if d.samples is not None:
        split = split.subset(d.samples, job.seed if d.subset_seed is None else d.subset_seed)
    models: list[ModelLandscape] = []
    figures: tuple[Path, ...] = ()
    with world(job.device) as w:
        for entry, ck, label in zip(job.models, opened, labels, strict=True):
            models.append(_one(job, entry, ck, label, task, split, grid, w))
        if w.is_main and job.render:
            from gradscape.landscape.plots import render

            surfaces, measures = [m.surface for m in models], [m.measures for m in models]
            figures = tuple(render(surfaces, job.out, measures=measures, vmax=job.vmax))
        w.barrier()  # no rank leaves (and tears the group down) while rank 0 still writes
    return LandscapeResult(tuple(models), figures)
