"""``gradscape figures``: regenerate the convergence paper's figures, Table 2 and a verdict report.

Writes fig1 … fig6 (PNG and PDF; fig5 also HTML), table2.csv / table2.md, REPORT.md and summary.json
into ``--out``; training runs are cached under ``--out/runs/<config hash>/`` and reused or resumed.
Under ``torchrun --nproc-per-node N -m gradscape figures …`` the runs are spread over the ranks.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from gradscape.commands.argtypes import threads
from gradscape.figures.pipeline import FIGURES, generate
from gradscape.figures.profiles import PROFILE_NAMES, PROFILES, REFERENCE_DESCRIPTION


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "figures",
        help="regenerate the BRF paper's convergence figures, Table 2 and REPORT.md",
        description=(
            "Train (or reuse) the runs the figures need and render fig1-fig6, table2.csv/.md and REPORT.md "
            "(paper claims with verdicts reproduced / not reproduced / inconclusive). Profiles: "
            + "; ".join(f"{k}: {v.description}" for k, v in PROFILES.items())
            + f"; reference: {REFERENCE_DESCRIPTION}"
            + ". Runs are cached by config hash under OUT/runs and resumed when interrupted."
        ),
    )
    p.add_argument(
        "--profile", choices=PROFILE_NAMES, default="quick", help="settings profile (default quick)"
    )
    p.add_argument("--only", help=f"comma-separated subset of {','.join(FIGURES)} (default: all)")
    p.add_argument("--out", required=True, help="output folder (figures, tables, report, run cache)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    p.add_argument("--data-dir", help="folder with full MNIST IDX files and/or shd_train.h5/shd_test.h5")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (none off a terminal)")
    p.add_argument(
        "--threads",
        type=threads,
        help="torch CPU threads (default: the profile's choice, 1 for reference and the small profiles)",
    )
    return p


def run(args: argparse.Namespace) -> int:
    generate(
        args.profile,
        args.out,
        only=args.only,
        device=args.device,
        data_dir=args.data_dir,
        progress=not args.no_progress and sys.stderr.isatty(),
        log=lambda line: print(line, file=sys.stderr, flush=True),
        threads=args.threads,
    )
    return 0
