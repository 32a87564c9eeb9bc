"""``gradscape evaluate``: loss, accuracy, SOPs and spike rates of a checkpoint on a task's test set."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from gradscape.commands.argtypes import int_at_least, threads
from gradscape.models.bundled import bundled_names
from gradscape.models.evaluation import evaluate_checkpoint
from gradscape.threads import INFERENCE_THREADS, apply_threads


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "evaluate",
        help="score a checkpoint (gradscape run or BRF reference) on a task's test set",
        description=(
            "Loss, accuracy, SOPs and spike rates of a checkpoint on the task's test set "
            "(S-/PS-MNIST: all 10,000 MNIST test images, unless the checkpoint's run trained on the "
            "bundled split, then its held-out part). --json prints one JSON object as the last line."
        ),
    )
    p.add_argument(
        "--checkpoint",
        required=True,
        help="a .pt file, a run folder (best.pt, else last.pt) or a released model: "
        + ", ".join(bundled_names()),
    )
    p.add_argument("--task", required=True, help="smnist, psmnist, ecg or shd")
    p.add_argument("--model", help="neuron kind; needed for reference BRF/RF checkpoints (same key names)")
    p.add_argument(
        "--trust-neuron-file",
        action="store_true",
        help="run the neuron file a checkpoint records (default: refuse; pass --model FILE.py:NAME instead)",
    )
    p.add_argument("--permutation", help="PS-MNIST permutation file or integer seed")
    p.add_argument("--data-dir", help="folder with the task's data files")
    p.add_argument(
        "--exclude-unlabelled", action="store_true", default=None, help="ECG: skip unlabelled steps"
    )
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    p.add_argument("--batch-size", type=int_at_least(1), default=256)
    p.add_argument("--samples", type=int_at_least(1), help="score a seeded subset of N test sequences")
    p.add_argument("--seed", type=int_at_least(0), default=0, help="seed of the --samples subset (default 0)")
    p.add_argument(
        "--threads",
        type=threads,
        help="torch CPU threads (default 1: the sparse inference path gained nothing from a second)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")
    return p


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}" if math.isfinite(v) else str(v)
    return str(v)


def run(args: argparse.Namespace) -> int:
    apply_threads(args.threads, prefer=INFERENCE_THREADS)
    res = evaluate_checkpoint(
        args.checkpoint,
        args.task,
        model=args.model,
        permutation=args.permutation,
        data_dir=args.data_dir,
        device=args.device,
        batch_size=args.batch_size,
        exclude_unlabelled=args.exclude_unlabelled,
        progress=not (args.json or args.no_progress) and sys.stderr.isatty(),
        samples=args.samples,
        trust_neuron_file=args.trust_neuron_file,
        seed=args.seed,
    )
    if args.json:
        print(json.dumps(res))
        return 0
    print(f"{res['model']} on {res['task']} ({res['samples']} test samples; {res['note']})")
    for key in ("accuracy", "loss", "sops_per_sample", "sops_per_step", "spikes_per_neuron_step"):
        unit = " %" if key == "accuracy" else ""
        print(f"  {key:24s} {_fmt(res[key])}{unit}")
    return 0
