"""``gradscape demo``: the main job, on bundled real data (see :mod:`gradscape.demo`)."""

from __future__ import annotations

import argparse
from typing import Any

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
    p.add_argument("--sample", type=int, default=0, help="test sequence shown in the prediction panel")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: the 36-neuron models are too small to gain from more, "
        "and extra threads spin-wait badly on a busy machine)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the analysed test subsets")
    p.add_argument("--quick", action="store_true", help="smaller landscape grid and fewer samples (tests)")
    return p


def run(args: argparse.Namespace) -> int:
    import torch

    from gradscape.demo import run_demo

    if args.threads < 1:
        raise UserError(f"--threads must be at least 1, not {args.threads}")
    torch.set_num_threads(args.threads)

    run_demo(args.out, device=args.device, sample=args.sample, quick=args.quick, seed=args.seed)
    return 0
