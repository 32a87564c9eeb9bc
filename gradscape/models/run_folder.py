"""The files of a training run folder, each written so that a crash never leaves a torn file.

* ``config.json``: the resolved :class:`~gradscape.models.training_config.TrainConfig`, the model
  description, the data info (files, seed, split sizes, note, permutation) with the sample
  ``indices`` of every split used, ``config_hash`` and :func:`gradscape.io.provenance`.
* ``metrics.csv``: one row per epoch (:data:`METRIC_COLUMNS`); epoch 0 is evaluated before training.
  ``train_loss``/``train_accuracy`` of epochs ≥ 1 are running averages over that epoch's batches
  (the model changes during the epoch); epoch 0's are a full evaluation of the training split.
  ``val_*``/``test_*`` are full evaluations after the epoch; losses are per-sample means in the
  logging convention (time-mean NLL for per-step tasks, final-step NLL for label-last).
  ``sops_per_sample``, ``sops_per_step`` and ``spikes_per_neuron_step`` are on the test split.
  ``lr`` is the learning rate used during the epoch; ``omega_clamped`` the number of neurons put back
  inside δω < 1 after optimiser steps during the epoch (0 for neurons without that guard);
  ``optimizer_steps`` the steps taken in the epoch; ``wall_time_s`` the run's cumulative wall time.
* ``iterations.csv``: one row per mini-batch (:data:`ITERATION_COLUMNS`), ``loss`` in the logging
  convention.
* ``status.json``: ``{"status": "running"|"finished"|"diverged"|"stopped", "epoch": ...}``.
* ``init.pt``, ``best.pt`` (lowest validation loss), ``last.pt`` (plus optimiser, scheduler and RNG
  state, for ``--resume``): :func:`gradscape.models.checkpoints.save_checkpoint` files.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from gradscape.errors import UserError
from gradscape.io import atomic_write_json, atomic_write_text

__all__ = [
    "METRIC_COLUMNS",
    "ITERATION_COLUMNS",
    "write_csv",
    "append_csv",
    "truncate_csv",
    "read_csv",
    "write_status",
    "read_status",
]

METRIC_COLUMNS = (
    "epoch", "lr",
    "train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy",
    "sops_per_sample", "sops_per_step", "spikes_per_neuron_step",
    "omega_clamped", "optimizer_steps", "wall_time_s",
)  # fmt: skip
ITERATION_COLUMNS = ("iteration", "epoch", "batch", "loss", "optimizer_steps", "lr")


def _render(columns: Sequence[str], rows: Iterable[Mapping[str, Any]], header: bool) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n", extrasaction="ignore")
    if header:
        w.writeheader()
    for r in rows:
        w.writerow({k: repr(v) if isinstance(v, float) else v for k, v in r.items()})
    return buf.getvalue()


def write_csv(path: str | Path, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> None:
    """Write the whole table atomically (floats with full precision, ``repr``)."""
    atomic_write_text(path, _render(columns, rows, header=True))


def append_csv(path: str | Path, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> None:
    """Append rows (header first if the file is new); a torn tail is cut by :func:`truncate_csv`."""
    path = Path(path)
    new = not path.exists()
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(_render(columns, rows, header=new))
        fh.flush()


def read_csv(path: str | Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def truncate_csv(path: str | Path, columns: Sequence[str], n_rows: int) -> None:
    """Keep the header and the first ``n_rows`` complete rows (drop rows written after a checkpoint)."""
    path = Path(path)
    if not path.exists():
        write_csv(path, columns, [])
        return
    lines = path.read_text(encoding="utf-8").split("\n")
    body = [ln for ln in lines[1:] if ln.count(",") == len(columns) - 1][:n_rows]
    atomic_write_text(path, "\n".join([",".join(columns), *body]) + "\n")


def write_status(out: str | Path, status: str, **fields: Any) -> None:
    atomic_write_json(Path(out) / "status.json", {"status": status, **fields})


def read_status(out: str | Path) -> dict[str, Any] | None:
    p = Path(out) / "status.json"
    if not p.is_file():
        return None
    try:
        status = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        status = None
    if not isinstance(status, dict) or not isinstance(status.get("status"), str):
        raise UserError(
            f"{p} is damaged (not the JSON object a run writes); delete {Path(out)} to start the run "
            "over, or train into another --out"
        )
    return status


#: what a resumable checkpoint (``last.pt``) must hold
_RESUME_KEYS = ("state_dict", "optimizer", "scheduler", "rng", "metrics", "iteration", "epoch",
                "best_val_loss", "best_epoch", "wall_time_s")  # fmt: skip


def read_resume_checkpoint(path: str | Path) -> dict[str, Any]:
    """``last.pt`` of a run folder, checked: one line naming the file when it is damaged."""
    import torch

    p = Path(path)
    advice = f"delete {p.parent} to start the run over, or train into another --out"
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(f"{p} is damaged ({type(exc).__name__}); {advice}") from None
    missing = [k for k in _RESUME_KEYS if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise UserError(f"{p} is not a complete training checkpoint (lacks {', '.join(missing)}); {advice}")
    return ckpt
