"""``gradscape curves`` as a library call: Table 2 statistics and a convergence plot of any curves.

:func:`run_curves` reads every source of a :class:`CurvesJob` (the authors' bundled curves, gradscape
run folders, curve CSV files), groups the runs by (source, task, model) so that a user's runs stay
next to, not mixed into, the authors', and writes into ``job.out``: ``table2.csv`` / ``table2.md``
(n₉₅ / n₉₈ / n₁₀₀ under one rule, mean ± std over runs, the published row beside it), ``curves.png``
/ ``.pdf``, ``table2_rules.md`` (every candidate rule, per source) and ``result.json`` (the resolved
job, every input run, the rows, :func:`gradscape.io.provenance`).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gradscape.errors import UserError
from gradscape.figures.convergence import TABLE2_RULE, Table2Rule

__all__ = ["CurvesJob", "CurvesResult", "run_curves"]


@dataclass(frozen=True)
class CurvesJob:
    """What to compare: ``paths`` (run folders and/or curve files), ``bundled`` tasks of the authors'
    curves, the Table 2 ``rule``, the output folder."""

    out: Path
    paths: Sequence[str] = ()
    bundled: Sequence[str] = ()
    rule: Table2Rule = TABLE2_RULE

    def config(self) -> dict[str, Any]:
        return {"paths": list(self.paths), "bundled": list(self.bundled), "rule": self.rule.name,
                "out": str(self.out)}  # fmt: skip


@dataclass
class CurvesResult:
    """The Table 2 rows (one per source, task and model), the files written (in ``out``)."""

    out: Path
    rows: list[dict[str, Any]]
    files: list[str] = field(default_factory=list)


def _sources(job: CurvesJob) -> dict[str, Any]:
    from gradscape.figures.curves import bundled_curves, read_curves

    by_source: dict[str, Any] = {}
    if job.bundled:
        by_source["authors (bundled)"] = bundled_curves(list(job.bundled))
    dirs = [p for p in job.paths if Path(p).is_dir()]
    files = [p for p in job.paths if not Path(p).is_dir()]
    if dirs:
        by_source["run folders"] = read_curves(dirs)
    if files:
        by_source["curve files"] = read_curves(files)
    return by_source


def _csv(rows: list[dict[str, Any]]) -> str:
    from gradscape.figures.stats import TABLE2_COLUMNS

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["source", *TABLE2_COLUMNS], lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()})
    return buf.getvalue()


def run_curves(job: CurvesJob) -> CurvesResult:
    """Read, tabulate, plot and write (module docstring); a job with no input is a UserError."""
    from gradscape.figures.curves import BUNDLED_CAPTION, plot_comparison
    from gradscape.figures.stats import (
        table2_markdown,
        table2_rows,
        table2_rule_comparison,
        table2_rule_markdown,
    )
    from gradscape.io import atomic_write_json, atomic_write_text, output_folder, provenance

    if not job.paths and not job.bundled:
        raise UserError("nothing to read: give run folders / curve CSVs and/or --bundled ecg,shd,psmnist")
    out = output_folder(job.out)  # checked before reading: a file in the way is one line, not a traceback
    by_source = _sources(job)
    rows: list[dict[str, Any]] = []
    for source, groups in by_source.items():
        rows += [{"source": source, **r} for r in table2_rows(groups, job.rule)]
    written = [atomic_write_text(out / "table2.csv", _csv(rows))]
    caption = (BUNDLED_CAPTION + " " if job.bundled else "") + f"Sources: {', '.join(by_source)}."
    written.append(atomic_write_text(out / "table2.md", table2_markdown(rows, caption)))
    written += plot_comparison(out, by_source, rule=job.rule, caption=caption)
    # Rules are scored per source: mixing your runs into the authors' would blur which one fits.
    sections = []
    for source, groups in by_source.items():
        comparison = table2_rule_comparison(groups)
        if comparison:
            sections.append(f"Source: **{source}**\n\n" + table2_rule_markdown(comparison, job.rule))
    if sections:
        written.append(atomic_write_text(out / "table2_rules.md", "\n\n".join(sections)))
    runs = [
        {"source": source, "task": c.task, "model": c.model, "run": c.seed, "from": c.run_dir,
         "epochs": int(c.epochs.max()) if len(c.epochs) else None, "status": c.status}
        for source, groups in by_source.items()
        for cs in groups.values()
        for c in cs
    ]  # fmt: skip
    files = [p.name for p in written]
    atomic_write_json(
        out / "result.json",
        {
            "config": job.config(),
            "rule": {"name": job.rule.name, "description": job.rule.describe()},
            "inputs": runs,
            "table2": rows,
            "files": files,
            "provenance": provenance(),
        },
    )
    return CurvesResult(out, rows, [*files, "result.json"])
