"""``gradscape landscape``: loss landscapes of trained models, and ``gradscape landscape plot`` to re-render.

Flags become a :class:`~gradscape.landscape.jobspec.LandscapeJob` for
:func:`~gradscape.landscape.job.run_landscape`, which writes, per model (label = the model kind, or
``--label``), ``LABEL/landscape.npz`` (grid, directions, loss, accuracy, computed mask, full config)
and ``LABEL/measures.json``, and ``landscape.png``/``.pdf``/``.html`` with all models side by side.
Under ``torchrun`` the grid is sharded over the ranks (gloo on CPU, NCCL on GPU) and rank 0 writes.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from gradscape.commands.argtypes import finite_float, int_at_least, threads
from gradscape.errors import UserError
from gradscape.threads import INFERENCE_THREADS, apply_threads

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
    arg = p.add_argument
    arg("action", nargs="*", metavar="plot RESULT", help="'plot' followed by result files or folders")
    p.set_defaults(models=[])
    # Grid specs such as -1:1:51 start with a minus: let argparse take them as values, not options.
    p._negative_number_matcher = re.compile(r"^-[\d.][\d.:,eE+-]*$")
    entry = {"action": _CheckpointAction}
    arg("--checkpoint", **entry, metavar="PATH", help="checkpoint file, run folder or bundled:NAME (repeat)")
    arg("--model", **entry, metavar="KIND", help="neuron of the preceding --checkpoint (reference BRF/RF)")
    arg(
        "--label", **entry, metavar="NAME", help="name of the preceding --checkpoint's model (folders, plots)"
    )
    arg(
        "--trust-neuron-file",
        action="store_true",
        help="open checkpoints of neuron files without naming the file",
    )
    arg("--task", help="smnist, psmnist, ecg or shd")
    arg("--data-dir", help="folder with the task's data files (default: bundled data)")
    arg(
        "--split",
        choices=("train", "val", "test"),
        default="train",
        help="split the loss is on (default train)",
    )
    arg("--samples", type=int, default=1000, help="size of the seeded data subset (default 1000)")
    arg("--batch-size", type=int, default=256, help="samples per forward (default 256)")
    arg("--steps", type=int, help="use only the first N time steps (quick looks; recorded)")
    arg("--params", nargs="+", metavar="GLOB", help="parameters to perturb (globs; default hidden.weight)")
    arg("--grid", default="-1:1:51", help="start:stop:num [,start:stop:num for β] (default -1:1:51)")
    arg("--dims", type=int, choices=(1, 2), default=2, help="1-D curve or 2-D surface (default 2)")
    arg(
        "--directions",
        choices=("random", "hessian", "checkpoints", "pca"),
        default="random",
        help="random filter-normalised (default), top Hessian eigenvectors, the line/plane through "
        "--through checkpoints, or the PCA plane of --trajectory checkpoints",
    )
    arg("--through", nargs="+", metavar="PATH", help="for --directions checkpoints: 1 or 2 more")
    arg("--trajectory", nargs="+", metavar="PATH", help="for --directions pca: checkpoints along the run")
    arg("--normalization", default="filter", choices=("filter", "filter-blocks", "layer", "none"))
    arg("--orthogonalize", action="store_true", help="orthogonalise e against d after normalising")
    seed = int_at_least(0)
    arg("--seed", type=seed, default=0, help="seed of the directions and the data subset (default 0)")
    arg("--data-seed", type=seed, default=0, help="seed of the task's train/val split (default 0)")
    arg("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    arg("--dtype", choices=("float32", "float64"), default="float32")
    arg("--out", help="output folder")
    arg("--resume", action="store_true", help="continue the results in --out, computing only what is missing")
    arg("--chunk-size", type=int, help="grid points per batched forward (default: from free memory)")
    arg("--sequential", action="store_true", help="evaluate one grid point at a time")
    arg("--curvature", action="store_true", help="also Li et al.'s |λmin/λmax| at every point (slow)")
    arg("--vmax", type=finite_float(), help="clip the plotted loss at this value")
    arg("--no-progress", action="store_true", help="no progress bar (none when stderr is not a terminal)")
    arg(
        "--threads",
        type=threads,
        help="torch CPU threads (default 1: the sparse inference path gained nothing from a second)",
    )
    return p


def job_from_args(args: argparse.Namespace) -> Any:
    """The :class:`~gradscape.landscape.jobspec.LandscapeJob` that the flags describe."""
    from gradscape.landscape.jobspec import CurvatureSpec, DataSpec, DirectionSpec, LandscapeJob, ModelEntry

    if not args.models:
        raise UserError("give at least one --checkpoint")
    if not args.task:
        raise UserError("give --task (smnist, psmnist, ecg or shd)")
    if not args.out:
        raise UserError("give --out DIR")
    return LandscapeJob(
        models=tuple(ModelEntry(e["checkpoint"], e["model"], e["label"]) for e in args.models),
        data=DataSpec(
            task=args.task,
            split=args.split,
            samples=args.samples,
            batch_size=args.batch_size,
            steps=args.steps,
            data_dir=args.data_dir,
            data_seed=args.data_seed,
        ),
        out=Path(args.out),
        directions=DirectionSpec(
            kind=args.directions,
            params=tuple(args.params) if args.params else None,
            normalization=args.normalization,
            orthogonalize=args.orthogonalize,
            through=tuple(args.through or ()),
            trajectory=tuple(args.trajectory or ()),
        ),
        grid=args.grid,
        dims=args.dims,
        seed=args.seed,
        curvature=CurvatureSpec(ratio_map=args.curvature),
        device=args.device,
        dtype=args.dtype,
        chunk_size=args.chunk_size,
        sequential=args.sequential,
        resume="yes" if args.resume else "no",
        vmax=args.vmax,
        progress=not args.no_progress and sys.stderr.isatty(),
        trust_neuron_file=args.trust_neuron_file,
    )


def run(args: argparse.Namespace) -> int:
    apply_threads(args.threads, prefer=INFERENCE_THREADS)
    if args.action:
        if args.action[0] != "plot":
            raise UserError(f"unknown landscape action {args.action[0]!r}; the only one is 'plot RESULT…'")
        from gradscape.landscape.outputs import replot

        for w in replot(args.action[1:], args.out, args.vmax):
            print(w)
        return 0
    from gradscape.landscape.job import run_landscape

    result = run_landscape(job_from_args(args))
    for w in result.figures:
        print(w)
    return 0
