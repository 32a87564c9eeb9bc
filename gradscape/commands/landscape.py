"""``gradscape landscape``: loss landscapes of trained models, and ``gradscape landscape plot`` to re-render.

Per model (label = the model kind, or ``--label``) the output folder holds ``LABEL/landscape.npz`` (the
result: grid, directions, loss, accuracy, computed mask, full config), ``LABEL/measures.json`` and
``LABEL/surface.html``; ``landscape.png``/``.pdf``/``.html`` show all models side by side. File names
never encode settings: everything is inside the files. Under ``torchrun`` the grid is sharded over
the ranks (gloo on CPU, NCCL on GPU) and rank 0 writes.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
from pathlib import Path
from typing import Any

from gradscape.errors import UserError

HELP = "loss landscapes around trained weights (surfaces, contours, measures)"

EPILOG = """examples:
  gradscape landscape --checkpoint runs/brf --checkpoint runs/alif --task smnist --out out/land
  gradscape landscape --checkpoint ref.pt --model brf --task ecg --grid -1:1:21 --out out/ecg
  torchrun --standalone --nproc-per-node 2 -m gradscape landscape --checkpoint runs/brf --task smnist --out o
  gradscape landscape plot out/land/brf/landscape.npz out/land/alif/landscape.npz --out out/fig
"""


class _CheckpointAction(argparse.Action):
    """``--checkpoint`` starts a model entry; ``--model``/``--label`` set the latest entry's fields."""

    def __call__(self, parser: Any, ns: Any, values: Any, option: str | None = None) -> None:
        entries = getattr(ns, "models", None) or []
        if self.dest == "checkpoint":
            entries.append({"checkpoint": values, "model": None, "label": None})
        else:
            if not entries:
                parser.error(f"{option} must follow the --checkpoint it refers to")
            if entries[-1][self.dest] is not None:
                parser.error(f"{option} given twice for --checkpoint {entries[-1]['checkpoint']}")
            entries[-1][self.dest] = values
        ns.models = entries


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "landscape",
        help=HELP,
        description=HELP + ". Use 'gradscape landscape plot RESULT…' to re-render saved results.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "action", nargs="*", metavar="plot RESULT", help="'plot' followed by result files or folders"
    )
    p.set_defaults(models=[])
    # Grid specs such as -1:1:51 start with a minus: let argparse take them as values, not options.
    p._negative_number_matcher = re.compile(r"^-[\d.][\d.:,eE+-]*$")
    p.add_argument(
        "--checkpoint",
        action=_CheckpointAction,
        metavar="PATH",
        help="checkpoint file or run folder (repeat for several models)",
    )
    p.add_argument(
        "--model",
        action=_CheckpointAction,
        metavar="KIND",
        help="neuron of the preceding --checkpoint (needed for reference BRF/RF files)",
    )
    p.add_argument(
        "--label",
        action=_CheckpointAction,
        metavar="NAME",
        help="name of the preceding --checkpoint's model in file names and plots",
    )
    p.add_argument("--task", help="smnist, psmnist, ecg or shd")
    p.add_argument("--data-dir", help="folder with the task's data files (default: bundled data)")
    p.add_argument(
        "--split",
        choices=("train", "val", "test"),
        default="train",
        help="data split the loss is measured on (default train)",
    )
    p.add_argument("--samples", type=int, default=1000, help="size of the seeded data subset (default 1000)")
    p.add_argument("--batch-size", type=int, default=256, help="samples per forward (default 256)")
    p.add_argument("--steps", type=int, help="use only the first N time steps (quick looks; recorded)")
    p.add_argument(
        "--params",
        nargs="+",
        metavar="GLOB",
        help="parameters to perturb (fnmatch globs; 1-D ones by exact name); default hidden.weight",
    )
    p.add_argument(
        "--grid", default="-1:1:51", help="start:stop:num [,start:stop:num for β] (default -1:1:51)"
    )
    p.add_argument("--dims", type=int, choices=(1, 2), default=2, help="1-D curve or 2-D surface (default 2)")
    p.add_argument(
        "--directions",
        choices=("random", "hessian", "checkpoints", "pca"),
        default="random",
        help="random filter-normalised (default), top Hessian eigenvectors, the line/plane through "
        "--through checkpoints, or the PCA plane of --trajectory checkpoints",
    )
    p.add_argument(
        "--through",
        nargs="+",
        metavar="PATH",
        help="--directions checkpoints: 1 (line) or 2 (plane) more checkpoints",
    )
    p.add_argument(
        "--trajectory",
        nargs="+",
        metavar="PATH",
        help="--directions pca: checkpoints saved along the training run",
    )
    p.add_argument("--normalization", default="filter", choices=("filter", "filter-blocks", "layer", "none"))
    p.add_argument("--orthogonalize", action="store_true", help="orthogonalise e against d after normalising")
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the directions and the data subset (default 0)"
    )
    p.add_argument("--data-seed", type=int, default=0, help="seed of the task's train/val split (default 0)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--out", help="output folder")
    p.add_argument(
        "--resume", action="store_true", help="continue the results in --out, computing only what is missing"
    )
    p.add_argument(
        "--chunk-size", type=int, help="grid points per batched forward (default: from free memory)"
    )
    p.add_argument("--sequential", action="store_true", help="evaluate one grid point at a time")
    p.add_argument(
        "--curvature",
        action="store_true",
        help="also compute Li et al.'s |λmin/λmax| map at every grid point (expensive)",
    )
    p.add_argument("--vmax", type=float, help="clip the plotted loss at this value")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


# ----------------------------------------------------------------------------- helpers
def _sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _init_distributed(device_name: str) -> tuple[int, int, Any]:
    """Initialise torch.distributed from RANK/WORLD_SIZE (torchrun); returns (rank, world, device)."""
    import torch
    import torch.distributed as dist

    from gradscape.models.device import resolve_device

    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(device_name)
    if world <= 1:
        return 0, 1, device
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        device = torch.device("cuda", local % max(torch.cuda.device_count(), 1))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size(), device


def _labels(entries: list[dict[str, Any]], kinds: list[str]) -> list[str]:
    labels, seen = [], {}
    for e, kind in zip(entries, kinds, strict=True):
        base = e["label"] or kind
        if any(c in base for c in "/\\") or base in ("", ".", ".."):
            raise UserError(f"label {base!r} cannot name a folder; give --label NAME")
        n = seen.get(base, 0) + 1
        seen[base] = n
        labels.append(base if n == 1 else f"{base}-{n}")
    return labels


def _measures(surface: Any) -> dict[str, Any]:
    """The surface's smoothness and convexity measures (:func:`surface_measures`)."""
    from gradscape.landscape.measures import surface_measures

    return surface_measures(
        surface.alphas, surface.betas, surface.masked_loss(), rise=0.10, centre_loss=surface.center["loss"]
    )


def _write_measures(path: Path, surface: Any, measures: dict[str, Any]) -> None:
    from gradscape.io import atomic_write_json

    atomic_write_json(
        path,
        {
            "label": surface.label,
            "result": "landscape.npz",
            "center": surface.center,
            "points": int(surface.computed.size),
            "computed": int(surface.computed.sum()),
            "diverged": int(surface.diverged.sum()),
            "measures": measures,
            "settings": surface.meta.get("config", {}),
            "directions": surface.meta.get("directions", {}),
            "provenance": surface.meta.get("provenance", {}),
        },
    )


# ----------------------------------------------------------------------------- plot
def _collect_results(items: list[str]) -> list[Path]:
    paths: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(p.glob("*/landscape.npz")) or sorted(p.glob("landscape.npz"))
            if not found:
                raise UserError(f"{p} holds no landscape results (*/landscape.npz)")
            paths.extend(found)
        elif p.is_file():
            paths.append(p)
        else:
            raise UserError(f"landscape result {p} does not exist")
    return paths


def _run_plot(args: argparse.Namespace) -> int:
    from gradscape.landscape.evaluate import load_surface
    from gradscape.landscape.plots import render

    items = args.action[1:]
    if not items:
        raise UserError("landscape plot needs result files or folders: gradscape landscape plot RESULT…")
    paths = _collect_results(items)
    surfaces = [load_surface(p) for p in paths]
    measures = []
    for p, s in zip(paths, surfaces, strict=True):
        m = p.parent / "measures.json"
        if m.is_file():
            import json

            measures.append(json.loads(m.read_text()).get("measures"))
        else:
            measures.append(_measures(s))
    out = Path(args.out) if args.out else paths[0].parent.parent
    written = render(surfaces, out, measures=measures, vmax=args.vmax)
    for w in written:
        print(w)
    return 0


# ----------------------------------------------------------------------------- compute
def run(args: argparse.Namespace) -> int:
    if args.action:
        if args.action[0] != "plot":
            raise UserError(f"unknown landscape action {args.action[0]!r}; the only one is 'plot RESULT…'")
        return _run_plot(args)
    if not args.models:
        raise UserError("give at least one --checkpoint")
    if not args.task:
        raise UserError("give --task (smnist, psmnist, ecg or shd)")
    if not args.out:
        raise UserError("give --out DIR")
    if args.samples < 1 or args.batch_size < 1:
        raise UserError("--samples and --batch-size must be at least 1")
    if args.steps is not None and args.steps < 1:
        raise UserError("--steps must be at least 1")
    if args.chunk_size is not None and args.chunk_size < 1:
        raise UserError("--chunk-size must be at least 1")

    import torch

    from gradscape.landscape.api import recurrent_landscape, split_batches
    from gradscape.landscape.directions import as_directions, random_directions, select_parameters
    from gradscape.landscape.grid import parse_grid
    from gradscape.landscape.plots import render
    from gradscape.models.checkpoints import load_model, read_checkpoint
    from gradscape.models.datasets import load_task
    from gradscape.models.evaluation import task_objective

    grid = parse_grid(args.grid, args.dims)
    loaded = [load_model(e["checkpoint"], e["model"]) for e in args.models]
    kinds = [ck["model_config"]["neuron"] for _, ck in loaded]
    labels = _labels(args.models, kinds)
    task = load_task(args.task, data_dir=args.data_dir, seed=args.data_seed)
    split = getattr(task, args.split).subset(args.samples, args.seed)
    rank, world, device = _init_distributed(args.device)
    dtype = torch.float64 if args.dtype == "float64" else torch.float32
    out = Path(args.out)
    surfaces, measures = [], []
    try:
        for (net, ckpt), kind, label in zip(loaded, kinds, labels, strict=True):
            if net.input_size != task.input_size:
                raise UserError(
                    f"{ckpt['_path']} takes {net.input_size} input channel(s) but task {task.name} has "
                    f"{task.input_size}"
                )
            net = net.to(device=device, dtype=dtype).eval()
            names = select_parameters(net, args.params)
            objective = {**task_objective(task.name, kind), "reduction": "mean"}
            extras = {}
            if args.directions in ("checkpoints", "pca"):
                dirs, extras = _subspace_dirs(net, names, args, grid.dims, kind, len(args.models))
            elif args.directions == "random":
                dirs = random_directions(
                    net,
                    names,
                    normalization=args.normalization,
                    seed=args.seed,
                    dims=grid.dims,
                    orthogonalize=args.orthogonalize,
                )
            else:
                dirs = _hessian_dirs(net, names, split, objective, args, grid.dims, device, dtype)
            config = {
                "checkpoint_sha256": _sha256(ckpt["_path"]),
                "model_kind": kind,
                "model_config": ckpt["model_config"],
                "task": task.name,
                "split": args.split,
                "data_source": split.source,
                "data_indices": split.indices.tolist(),
                "data_seed": args.data_seed,
                "samples": len(split),
                "batch_size": args.batch_size,
                "seed": args.seed,
                "normalization": args.normalization if args.directions == "random" else None,
                "direction_kind": args.directions,
                "orthogonalize": args.orthogonalize,
                "subspace_checkpoints_sha256": [
                    _sha256(read_checkpoint(p)["_path"])
                    for p in (args.through if args.directions == "checkpoints" else [])
                    + (args.trajectory if args.directions == "pca" else [])
                    if p
                ],
            }
            meta = {"label": label, "checkpoint": ckpt["_path"], "task_info": task.info}
            surface = recurrent_landscape(
                net,
                split,
                **objective,
                directions=as_directions(dirs),
                grid=grid,
                batch_size=args.batch_size,
                steps=args.steps,
                chunk_size=args.chunk_size,
                sequential=args.sequential,
                out=out / label / "landscape.npz",
                resume=args.resume,
                config=config,
                meta=meta,
                progress=not args.no_progress,
                extras=extras,
            )
            if args.curvature:
                data = split_batches(split, args.batch_size, device=device, steps=args.steps, dtype=dtype)
                _add_curvature(
                    net,
                    surface,
                    data,
                    objective,
                    args.seed,
                    out / label / "landscape.npz",
                    rank,
                    progress=not args.no_progress and rank == 0,
                )
            m = _measures(surface)
            if rank == 0:
                _write_measures(out / label / "measures.json", surface, m)
            surfaces.append(surface)
            measures.append(m)
        if rank == 0:
            for w in render(surfaces, out, measures=measures, vmax=args.vmax):
                print(w)
    finally:
        if world > 1 and torch.distributed.is_initialized():
            torch.distributed.barrier()
            torch.distributed.destroy_process_group()
    return 0


def _subspace_dirs(net: Any, names: list[str], args: Any, dims: int, kind: str, n_models: int) -> Any:
    """Checkpoint line/plane or PCA plane around ``net`` (a single --checkpoint)."""
    from gradscape.landscape.subspaces import checkpoint_directions, checkpoint_params, pca_directions

    if n_models != 1:
        raise UserError(f"--directions {args.directions} takes exactly one --checkpoint (the centre)")
    p0 = next(net.parameters())
    centre = {n: net.get_parameter(n).detach() for n in names}

    def load(paths: list[str]) -> list[dict]:
        pts = checkpoint_params(paths, names, kind)
        return [{n: t.to(device=p0.device, dtype=p0.dtype) for n, t in p.items()} for p in pts]

    if args.directions == "checkpoints":
        if not args.through or len(args.through) != dims:
            raise UserError(
                f"--directions checkpoints with --dims {dims} needs --through with {dims} checkpoint(s)"
            )
        return checkpoint_directions(centre, *load(args.through)), {}
    if not args.trajectory:
        raise UserError("--directions pca needs --trajectory CHECKPOINT… (saved along the run)")
    dirs, path = pca_directions(load(args.trajectory), centre, dims=dims)
    return dirs, {"path": path}


def _curvature_loss(objective: dict[str, Any]) -> Any:
    from gradscape.models.objectives import sequence_loss

    def loss_fn(f: Any, batch: Any) -> Any:
        x, y = batch[0], batch[1]
        return sequence_loss(
            f(x, fast=True).outputs,
            y,
            mode=objective["mode"],
            sub_seq_length=objective["sub_seq_length"],
            reduction=objective["reduction"],
        )

    return loss_fn


def _hessian_dirs(
    net: Any,
    names: list[str],
    split: Any,
    objective: dict[str, Any],
    args: Any,
    dims: int,
    device: Any,
    dtype: Any,
) -> Any:
    from gradscape.landscape.api import split_batches
    from gradscape.landscape.curvature import hessian_directions
    from gradscape.landscape.directions import Directions

    data = split_batches(split, args.batch_size, device=device, steps=args.steps, dtype=dtype)
    vecs = hessian_directions(
        net,
        _curvature_loss(objective),
        names,
        k=dims,
        seed=args.seed,
        data=[(x, y) for x, y, _ in data],
        batches=True,
    )
    info = {
        "kind": "hessian",
        "params": names,
        "seed": args.seed,
        "dims": dims,
        "note": "top Hessian (surrogate) eigenvectors, unit norm over the selected parameters; "
        "not filter-normalised",
    }
    return Directions(vecs, info)


def _add_curvature(
    net: Any,
    surface: Any,
    data: Any,
    objective: dict[str, Any],
    seed: int,
    path: Path,
    rank: int,
    progress: bool = True,
) -> None:
    """Li et al.'s |λmin/λmax| at every grid point, stored as extras (computed once, kept on resume)."""
    if "curvature_ratio" in surface.extras:
        return
    from gradscape.landscape.curvature import curvature_ratio_grid

    theta = {n: net.get_parameter(n).detach() for n in surface.directions.names}
    dirs = [{n: t.to(theta[n]) for n, t in d.items()} for d in surface.directions]
    res = curvature_ratio_grid(
        net,
        _curvature_loss(objective),
        theta,
        dirs,
        surface.alphas,
        surface.betas,
        data=[(x, y) for x, y, _ in data],
        batches=True,
        seed=seed,
        progress=progress,
    )
    for key in ("ratio", "lambda_min", "lambda_max"):
        surface.extras["curvature_" + key] = res[key]
    surface.meta["curvature"] = res.get("settings", {})
    if rank == 0:
        surface.save(path)
