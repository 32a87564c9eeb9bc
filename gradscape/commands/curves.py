"""``gradscape curves``: Table 2 statistics and a convergence plot from run folders and curve files.

Inputs (any mix): gradscape run folders (``config.json`` + ``metrics.csv``), curve CSVs in the BRF
authors' long format or the reduced wide format (:mod:`gradscape.figures.curves`), and the authors'
curves bundled with gradscape (``--bundled ecg,shd,psmnist``). Runs are grouped by (source, task,
model); the sources are "authors (bundled)", "run folders" and "curve files", so your runs stay next
to, not mixed into, the authors'.

Outputs in ``--out``: ``table2.csv`` / ``table2.md`` (n₉₅ / n₉₈ / n₁₀₀ under one rule, mean ± std
over runs, the published row beside it), ``curves.png`` / ``.pdf`` (mean ± std per group, the 95 %
dot), ``table2_rules.md`` (every candidate rule on the groups that have a published row) and
``result.json`` (the resolved config, every input run, the rows, :func:`gradscape.io.provenance`).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from gradscape.commands.argtypes import threads
from gradscape.errors import UserError

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
    p.add_argument("--threads", type=threads, help="torch CPU threads (default: torch's choice)")
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
    from gradscape.figures.curves import BUNDLED_CAPTION, bundled_curves, plot_comparison, read_curves
    from gradscape.figures.stats import (
        TABLE2_COLUMNS,
        table2_markdown,
        table2_rows,
        table2_rule_comparison,
        table2_rule_markdown,
    )
    from gradscape.io import atomic_write_json, atomic_write_text, output_folder, provenance

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    rule = _rule(args.rule)
    tasks = _bundled_tasks(args.bundled)
    if not args.paths and not tasks:
        raise UserError("nothing to read: give run folders / curve CSVs and/or --bundled ecg,shd,psmnist")
    out = output_folder(args.out)  # checked before reading: a file in the way is one line, not a traceback
    by_source: dict[str, Any] = {}
    if tasks:
        by_source["authors (bundled)"] = bundled_curves(tasks)
    dirs = [p for p in args.paths if Path(p).is_dir()]
    files = [p for p in args.paths if not Path(p).is_dir()]
    if dirs:
        by_source["run folders"] = read_curves(dirs)
    if files:
        by_source["curve files"] = read_curves(files)

    rows: list[dict[str, Any]] = []
    for source, groups in by_source.items():
        rows += [{"source": source, **r} for r in table2_rows(groups, rule)]

    import csv
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["source", *TABLE2_COLUMNS], lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()})
    written = [atomic_write_text(out / "table2.csv", buf.getvalue())]
    inputs = ", ".join(by_source)
    caption = (BUNDLED_CAPTION + " " if tasks else "") + f"Sources: {inputs}."
    written.append(atomic_write_text(out / "table2.md", table2_markdown(rows, caption)))
    written += plot_comparison(out, by_source, rule=rule, caption=caption)

    # Rules are scored per source: mixing your runs into the authors' would blur which one fits.
    sections = []
    for source, groups in by_source.items():
        comparison = table2_rule_comparison(groups)
        if comparison:
            sections.append(f"Source: **{source}**\n\n" + table2_rule_markdown(comparison, rule))
    if sections:
        written.append(atomic_write_text(out / "table2_rules.md", "\n\n".join(sections)))

    runs = [
        {
            "source": source,
            "task": c.task,
            "model": c.model,
            "run": c.seed,
            "from": c.run_dir,
            "epochs": int(c.epochs.max()) if len(c.epochs) else None,
            "status": c.status,
        }
        for source, groups in by_source.items()
        for cs in groups.values()
        for c in cs
    ]
    config = {"paths": list(args.paths), "bundled": tasks, "rule": rule.name, "out": str(out)}
    result = {
        "config": config,
        "rule": {"name": rule.name, "description": rule.describe()},
        "inputs": runs,
        "table2": rows,
        "files": [p.name for p in written],
        "provenance": provenance(),
    }
    atomic_write_json(out / "result.json", result)

    for r in rows:
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
    print(f"curves: rule {rule.name}; wrote {', '.join(p.name for p in written)} and result.json to {out}")
    return 0
