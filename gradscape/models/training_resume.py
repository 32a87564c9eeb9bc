"""Resuming a training run: what ``last.pt`` holds for ``--resume`` and what a resumption must match.

:func:`save_last` writes ``last.pt`` after every epoch (model, optimiser, scheduler and RNG state, the
metrics so far, the best epoch, the wall time); :func:`restore_last` puts a fresh model, optimiser and
scheduler back into that state, so that the resumed run continues exactly. A run is resumed only with
the settings it was trained with (:func:`check_same_settings`; device, download, data_dir and compile
may differ, :data:`RESUMABLE_DIFFERENCES`), on the same data (split fingerprints) and, for a user's
neuron file, the recorded file (same sha256, checked before the file runs: :func:`neuron_for`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gradscape.errors import UserError
from gradscape.io import to_jsonable
from gradscape.models.checkpoints import save_checkpoint
from gradscape.models.network import RecurrentNetwork
from gradscape.models.neurons import NeuronFileSpec, is_neuron_file_spec, load_neuron_file
from gradscape.models.run_folder import (
    ITERATION_COLUMNS,
    METRIC_COLUMNS,
    read_resume_checkpoint,
    truncate_csv,
    write_csv,
)
from gradscape.models.training_config import TrainConfig

__all__ = [
    "RESUMABLE_DIFFERENCES",
    "comparable",
    "check_same_settings",
    "recorded_config",
    "neuron_for",
    "Resumed",
    "restore_last",
    "save_last",
]

#: settings that may differ between an interrupted run and its resumption (they do not change results).
RESUMABLE_DIFFERENCES = {"device", "download", "data_dir", "compile"}


def neuron_for(model: str, last_path: Path | None) -> Any:
    """The neuron ``model`` names; a neuron file resumed from ``last_path`` must be the recorded one
    (same sha256), checked before the file runs."""
    if not is_neuron_file_spec(model):
        return model
    recorded = None
    if last_path is not None and last_path.is_file():
        ckpt = read_resume_checkpoint(last_path)
        record = ckpt.get("model", {}).get("neuron_file")
        recorded = NeuronFileSpec.from_dict(record).sha256 if record is not None else None
    return load_neuron_file(model, expected_sha256=recorded)


def comparable(cfg_dict: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in cfg_dict.items() if k not in RESUMABLE_DIFFERENCES}


def check_same_settings(out: Path, recorded: dict[str, Any], cfg_dict: dict[str, Any]) -> None:
    """Refuse to resume ``out`` when its recorded config differs from ``cfg_dict`` (one line listing the
    differing keys; device, download, data_dir and compile may differ)."""
    # compared as JSON values, so a config read back from config.json (lists for tuples) compares equal
    recorded, cfg_dict = (json.loads(json.dumps(to_jsonable(comparable(d)))) for d in (recorded, cfg_dict))
    if recorded == cfg_dict:
        return
    keys = set(cfg_dict) | set(recorded)
    diff = sorted(k for k in keys if recorded.get(k) != cfg_dict.get(k))
    raise UserError(f"{out} holds a run with other settings ({', '.join(diff)}); cannot resume it")


def recorded_config(out: Path, last_path: Path) -> dict[str, Any] | None:
    """The config a run folder was trained with: ``last.pt``'s, else ``config.json``'s (None if neither)."""
    if last_path.exists():
        config = read_resume_checkpoint(last_path).get("config", {})
        return config if isinstance(config, dict) else {}
    try:
        config = json.loads((out / "config.json").read_text(encoding="utf-8")).get("config")
    except (OSError, ValueError, AttributeError):
        return None
    return config if isinstance(config, dict) else None


@dataclass
class Resumed:
    """Where a restored run stands: its metrics rows, iteration count, best validation loss and epoch,
    the wall time already spent and the first epoch still to train."""

    rows: list[dict[str, Any]]
    iteration: int
    best_val: float
    best_epoch: int
    wall_s: float
    start_epoch: int


def restore_last(
    out: Path,
    last_path: Path,
    model: RecurrentNetwork,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    cfg_dict: dict[str, Any],
    info: dict[str, Any],
) -> Resumed:
    """Check that ``last_path`` was trained with ``cfg_dict`` on the data ``info`` describes, load its
    model, optimiser, scheduler and RNG state, and cut ``metrics.csv``/``iterations.csv`` back to it."""
    ckpt = read_resume_checkpoint(last_path)
    check_same_settings(out, ckpt.get("config", {}), cfg_dict)
    recorded = ckpt.get("data", {}).get("fingerprints")
    if recorded is not None and recorded != info["fingerprints"]:
        changed = sorted(k for k in info["fingerprints"] if recorded.get(k) != info["fingerprints"][k])
        raise UserError(
            f"{out} was trained on other data than this resume would use (the {', '.join(changed)} "
            f"split(s) differ; recorded sources {ckpt['data'].get('used_sources')}, now "
            f"{info['used_sources']}): resume with the run's data, or start a new run in another --out"
        )
    model.load_state_dict(ckpt["state_dict"])
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    torch.set_rng_state(ckpt["rng"]["torch"])
    if torch.cuda.is_available() and ckpt["rng"].get("cuda") is not None:
        torch.cuda.set_rng_state_all(ckpt["rng"]["cuda"])
    rows = list(ckpt["metrics"])
    iteration = int(ckpt["iteration"])
    best_val, best_epoch = float(ckpt["best_val_loss"]), int(ckpt["best_epoch"])
    wall0 = float(ckpt["wall_time_s"])
    start_epoch = int(ckpt["epoch"]) + 1
    write_csv(out / "metrics.csv", METRIC_COLUMNS, rows)
    truncate_csv(out / "iterations.csv", ITERATION_COLUMNS, iteration)
    return Resumed(rows, iteration, best_val, best_epoch, wall0, start_epoch)


def save_last(
    out: Path,
    model: RecurrentNetwork,
    cfg: TrainConfig,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    rows: list[dict[str, Any]],
    epoch: int,
    iteration: int,
    best_val: float,
    best_epoch: int,
    wall_s: float,
    meta: dict[str, Any],
) -> None:
    """``last.pt``: the model with everything :func:`restore_last` needs to continue exactly."""
    rng: dict[str, Any] = {"torch": torch.get_rng_state()}
    rng["cuda"] = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    save_checkpoint(
        out / "last.pt",
        model,
        cfg.model,
        epoch=epoch,
        optimizer=optimizer.state_dict(),
        scheduler=scheduler.state_dict(),
        rng=rng,
        metrics=rows,
        iteration=iteration,
        best_val_loss=best_val,
        best_epoch=best_epoch,
        wall_time_s=wall_s,
        **meta,
    )
