"""``gradscape demo``: the main job, on bundled real data (see :mod:`gradscape.demo`)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from gradscape.commands.argtypes import int_at_least, threads
from gradscape.errors import UserError


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "demo",
        help="analyse the bundled ECG models of the BRF paper: accuracy, activity, spectra, landscapes",
        description=(
            "Evaluates the three bundled reference ECG checkpoints (BRF, RF, ALIF) on the bundled QTDB "
            "test set, plots their learning-relevant statistics, gradient-flow spectra and a loss-"
            "landscape comparison, and writes REPORT.md. A few minutes on a laptop CPU."
        ),
    )
    p.add_argument("--out", default="demo-out", help="output folder (default: demo-out)")
    p.add_argument("--device", default="auto", help="auto (default: CUDA when present), cpu, cuda, cuda:N")
    p.add_argument(
        "--sample",
        type=int_at_least(0),
        default=0,
        help="test sequence shown in the prediction panel (0 … 140: the bundled ECG test set)",
    )
    p.add_argument(
        "--threads",
        type=threads,
        default=1,
        help="torch CPU threads (default 1: the 36-neuron models are too small to gain from more, "
        "and extra threads spin-wait badly on a busy machine)",
    )
    p.add_argument("--seed", type=int_at_least(0), default=0, help="seed of the analysed test subsets")
    p.add_argument("--quick", action="store_true", help="smaller landscape grid and fewer samples (tests)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (none off a terminal)")
    return p


def run(args: argparse.Namespace) -> int:
    import torch

    from gradscape.demo import run_demo
    from gradscape.io import output_folder
    from gradscape.models.datasets import load_task
    from gradscape.models.device import resolve_device

    # Everything the flags can get wrong is checked before the minutes of evaluation start.
    output_folder(args.out)
    resolve_device(args.device)
    count = len(load_task("ecg").test)
    if args.sample >= count:
        raise UserError(
            f"--sample {args.sample}: the bundled ECG test set has {count} sequences; give 0 … {count - 1}"
        )
    torch.set_num_threads(args.threads)

    run_demo(
        args.out,
        device=args.device,
        sample=args.sample,
        quick=args.quick,
        seed=args.seed,
        progress=not args.no_progress and sys.stderr.isatty(),
    )
    return 0
