"""``gradscape curves``: Table 2 statistics and a convergence plot from run folders and curve files.

Inputs (any mix): gradscape run folders (``config.json`` + ``metrics.csv``), curve CSVs in the BRF
authors' long format or the reduced wide format (:mod:`gradscape.figures.curves`), and the authors'
curves bundled with gradscape (``--bundled ecg,shd,psmnist``). Runs are grouped by (source, task,
model); the sources are "authors (bundled)", "run folders" and "curve files", so your runs stay next
to, not mixed into, the authors'.

Outputs in ``--out``: those of :func:`gradscape.figures.compare.run_curves`, which does the work;
this module turns the flags into a :class:`~gradscape.figures.compare.CurvesJob` and prints the rows.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from gradscape.commands.argtypes import threads
from gradscape.errors import UserError
from gradscape.threads import apply_threads

BUNDLED_TASKS = ("ecg", "shd", "psmnist")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from gradscape.figures.stats import EPOCH_BASES, FINAL_RULES, TABLE2_RULE

    rules = [f"{f}/{b}" for f in FINAL_RULES for b in EPOCH_BASES]
    p = subparsers.add_parser(
        "curves",
        help="Table 2 statistics and a convergence plot from run folders and curve CSVs",
        description=(
            "Epochs to 95 / 98 / 100 % of the final test accuracy (the BRF paper's Table 2) and a "
            "convergence plot, from gradscape run folders, curve CSVs (the BRF authors' "
            "',metric,value,step' export or the reduced 'task,model,run,epoch,...' table; .csv or .csv.gz) "
            "and the authors' bundled curves, e.g. gradscape curves --bundled ecg runs/my-brf-* --out cmp/"
        ),
    )
    p.add_argument("paths", nargs="*", help="run folders and/or curve files (.csv, .csv.gz)")
    p.add_argument(
        "--bundled",
        action="append",
        default=[],
        metavar="TASKS",
        help=f"add the authors' released curves of these tasks: {', '.join(BUNDLED_TASKS)} or all "
        "(comma-separated or repeated)",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--rule",
        default=f"{TABLE2_RULE.final}/{TABLE2_RULE.base}",
        help=f"final-accuracy rule / epoch base (default {TABLE2_RULE.final}/{TABLE2_RULE.base}, the rule "
        "that reproduces the most published Table 2 cells from the authors' curves): one of "
        + ", ".join(rules),
    )
    # Accepted for uniformity with the other commands: reading curves and drawing one figure takes
    # seconds, with no progress bar and no heavy tensor work to thread.
    p.add_argument(
        "--threads",
        type=threads,
        help="torch CPU threads (default: the cores no other process is running on at start)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars (this command draws none)")
    return p


def _rule(text: str) -> Any:
    from gradscape.figures.stats import EPOCH_BASES, FINAL_RULES, Table2Rule

    final, _, base = text.partition("/")
    base = base.split("-")[0]
    if final not in FINAL_RULES or base not in {str(b) for b in EPOCH_BASES}:
        choices = ", ".join(f"{f}/{b}" for f in FINAL_RULES for b in EPOCH_BASES)
        raise UserError(f"--rule {text!r}: use one of {choices}")
    return Table2Rule(final, int(base))


def _bundled_tasks(specs: list[str]) -> list[str]:
    tasks: list[str] = []
    for spec in specs:
        for t in (x.strip().lower() for x in spec.split(",")):
            if t == "all":
                tasks += list(BUNDLED_TASKS)
            elif t in BUNDLED_TASKS:
                tasks.append(t)
            else:
                raise UserError(
                    f"--bundled {t!r}: the authors released curves for {', '.join(BUNDLED_TASKS)} (or all)"
                )
    return list(dict.fromkeys(tasks))


def run(args: argparse.Namespace) -> int:
    from gradscape.figures.compare import CurvesJob, run_curves

    apply_threads(args.threads)
    job = CurvesJob(out=Path(args.out), paths=tuple(args.paths), bundled=tuple(_bundled_tasks(args.bundled)),
                    rule=_rule(args.rule))  # fmt: skip
    res = run_curves(job)
    for r in res.rows:
        ns = " / ".join(
            "—" if not math.isfinite(r[f"epochs_to_{x}_mean"]) else f"{r[f'epochs_to_{x}_mean']:.1f}"
            for x in (95, 98, 100)
        )
        paper = r.get("paper_epochs_to_95")
        paper_txt = (
            " (paper " + " / ".join(f"{r[f'paper_epochs_to_{x}']:.0f}" for x in (95, 98, 100)) + ")"
            if isinstance(paper, float) and math.isfinite(paper)
            else ""
        )
        print(f"{r['source']}: {r['task']} {r['model']} ({r['runs']} runs): n95/n98/n100 = {ns}{paper_txt}")
    print(f"curves: rule {job.rule.name}; wrote {', '.join(res.files)} to {res.out}")
    return 0
