"""Table 2 from the authors' released curves (ECG and SHD × BRF, RF, ALIF), beside the published rows,
and the comparison of the candidate final-accuracy rules on them: ``table2_reference.csv/.md`` and
``table2_rules.csv/.md`` of the reference profile."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gradscape.figures.curve_files import BUNDLED_CAPTION, CurveGroups, bundled_curves
from gradscape.figures.stats import (
    FRACTIONS,
    TABLE2_COLUMNS,
    TABLE2_RULE,
    Table2Rule,
    table2_markdown,
    table2_rows,
    table2_rule_comparison,
    table2_rule_markdown,
)
from gradscape.io import atomic_write_text

__all__ = ["REFERENCE_ROWS", "table2_reference", "table2_rules_reference", "write_table2_reference"]

#: the authors' Table 2 rows that have released curves, in the paper's order
REFERENCE_ROWS = (
    ("ecg", "brf"),
    ("ecg", "rf"),
    ("ecg", "alif"),
    ("shd", "brf"),
    ("shd", "rf"),
    ("shd", "alif"),
)


def _reference_groups() -> CurveGroups:
    g = bundled_curves(("ecg", "shd"))
    return {k: g[k] for k in REFERENCE_ROWS if k in g}


def table2_reference(rule: Table2Rule = TABLE2_RULE) -> list[dict[str, Any]]:
    """Table 2 rows (:func:`gradscape.figures.stats.table2_rows`, with the published numbers beside
    them) for ECG and SHD × BRF, RF, ALIF from the authors' bundled curves, under ``rule``."""
    return table2_rows(_reference_groups(), rule)


def table2_rules_reference() -> list[dict[str, Any]]:
    """Every candidate rule on the authors' ECG/SHD curves
    (:func:`gradscape.figures.stats.table2_rule_comparison`)."""
    return table2_rule_comparison(_reference_groups())


def write_table2_reference(out: str | Path) -> list[Path]:
    """``table2_reference.csv/.md`` (the chosen rule's rows vs the paper) and ``table2_rules.csv/.md``
    (every candidate rule, the residuals and which reproduces what) into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = table2_reference()
    comparison = table2_rules_reference()
    paths = [
        atomic_write_text(out / "table2_reference.csv", _csv_text(rows, TABLE2_COLUMNS)),
        atomic_write_text(
            out / "table2_reference.md",
            table2_markdown(
                rows, f"{BUNDLED_CAPTION} No training: the statistics are read off those curves."
            ),
        ),
    ]
    cols = ["rule", "final", "base", "task", "model", "runs"]
    for x in FRACTIONS:
        cols += [f"n{x}_mean", f"n{x}_paper", f"n{x}_residual", f"n{x}_reproduced", f"n{x}_runs"]
    cols += ["cells_reproduced", "row_reproduced"]
    flat = [
        {**r, **{f"n{x}_runs": " ".join(str(v) for v in r[f"n{x}_runs"]) for x in FRACTIONS}}
        for r in comparison
    ]
    paths.append(atomic_write_text(out / "table2_rules.csv", _csv_text(flat, cols)))
    paths.append(
        atomic_write_text(
            out / "table2_rules.md", table2_rule_markdown(comparison) + f"\n{BUNDLED_CAPTION}\n"
        )
    )
    return paths


def _csv_text(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()})
    return buf.getvalue()
