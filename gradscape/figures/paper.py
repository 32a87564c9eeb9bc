"""The BRF paper's published numbers (Tables 1 and 2), as shipped in ``gradscape/bundled/paper``.

The transcription and its cross-checks are in ``gradscape/bundled/paper/SOURCE.md``
(:func:`paper_source_note`).
"""

from __future__ import annotations

import csv
import io
import math
from importlib import resources
from typing import Any

from gradscape.figures.convergence import FRACTIONS

__all__ = [
    "PAPER_TASK",
    "PAPER_MODEL",
    "paper_table",
    "paper_source_note",
    "paper_numbers",
    "published_epochs",
]

PAPER_TASK = {"smnist": "S-MNIST", "psmnist": "PS-MNIST", "ecg": "ECG", "shd": "SHD"}
PAPER_MODEL = {"brf": "BRF", "rf": "RF", "alif": "ALIF", "lstm": "LSTM"}


def _read_csv(name: str) -> list[dict[str, str]]:
    text = resources.files("gradscape.bundled").joinpath("paper", name).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def paper_table(name: str) -> list[dict[str, str]]:
    """The BRF paper's ``table1`` or ``table2`` as shipped in ``gradscape/bundled/paper``."""
    return _read_csv(f"{name}.csv")


def paper_source_note() -> str:
    return resources.files("gradscape.bundled").joinpath("paper", "SOURCE.md").read_text(encoding="utf-8")


def paper_numbers(task: str, model: str) -> dict[str, Any]:
    """Published numbers for (task, model): Table 2 epochs and Table 1 accuracy/params/SOPs.

    Table 1's ALIF rows for S-MNIST, PS-MNIST and ECG are Yin et al.'s larger SRNN (``ALIF*``); they
    are given, marked, because the paper gives nothing else.
    """
    t, m = PAPER_TASK.get(task, task), PAPER_MODEL.get(model, model.upper())
    epochs = published_epochs(task, model) or {}
    out: dict[str, Any] = {f"paper_epochs_to_{x}": n for x, n in epochs.items()}
    for row in paper_table("table1"):
        if row["task"] == t and row["model"] in (m, m + "*"):
            out["paper_model"] = row["model"]
            for k in ("test_acc_mean", "test_acc_std", "params", "sops_per_sample", "sops_per_step"):
                out[f"paper_{k}"] = float(row[k]) if row[k] else math.nan
    return out


def published_epochs(task: str, model: str) -> dict[int, float] | None:
    """Table 2's published epochs {X: n_X} for (task, model); None when the paper has no such row."""
    t, m = PAPER_TASK.get(task, task), PAPER_MODEL.get(model, model.upper())
    for row in paper_table("table2"):
        if row["task"] == t and row["model"] == m:
            return {x: float(row[f"epochs_to_{x}pct"]) for x in FRACTIONS}
    return None
