"""The experiment run matrix: train each needed run once, cache it by its config hash, resume it.

A run is identified by ``gradscape.io.config_hash`` of its resolved
:class:`~gradscape.models.training_config.TrainConfig` (every field except the execution-only
``device``, ``compile`` and ``download``, which do not change what is computed), and lives in
``ROOT/runs/<hash>/`` — never a name built from the settings. A run whose ``status.json`` says
``finished``, ``diverged`` or ``stopped`` is reused by every figure and every later invocation; a run
folder without a final status (an interrupted ``figures``) is resumed with ``train(..., resume=True)``.

Under ``torchrun`` the de-duplicated run list is spread over ranks: rank r trains the runs i with
i mod world = r (:func:`shard`); the caller then waits at a barrier and rank 0 renders.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from gradscape.figures.stats import Curve
from gradscape.io import config_hash
from gradscape.models.run_folder import read_csv, read_status
from gradscape.models.training_config import TrainConfig

__all__ = ["EXECUTION_ONLY", "run_key", "shard", "Runner", "DONE"]

EXECUTION_ONLY = frozenset({"device", "compile", "download"})
DONE = frozenset({"finished", "diverged", "stopped"})


def run_key(config: TrainConfig) -> str:
    """The cache key: ``config_hash`` of the full config minus :data:`EXECUTION_ONLY` fields."""
    return config_hash({k: v for k, v in config.to_dict().items() if k not in EXECUTION_ONLY})


def shard(items: Sequence[Any], rank: int, world: int) -> list[Any]:
    """Items i with i mod world == rank."""
    return [x for i, x in enumerate(items) if i % world == rank]


def _unique(configs: Sequence[TrainConfig]) -> list[TrainConfig]:
    seen: dict[str, TrainConfig] = {}
    for c in configs:
        seen.setdefault(run_key(c), c)
    return list(seen.values())


def _train_one(config: TrainConfig, out: str, resume: bool, threads: int | None) -> dict[str, Any]:
    """One run in a worker process (module level, so that it pickles)."""
    import torch

    from gradscape.models.training import train

    if threads is not None:
        torch.set_num_threads(threads)
    res = train(config, out, resume=resume, progress=False)
    return {"status": res.get("status"), "epoch": res.get("epoch")}


def _float(v: str | None) -> float:
    try:
        return float(v) if v not in (None, "") else math.nan
    except ValueError:
        return math.nan


@dataclass
class Runner:
    """Trains and loads cached runs under ``root / "runs"``."""

    root: Path
    progress: bool = True
    rank: int = 0
    world: int = 1
    log: Callable[[str], None] = print
    #: worker processes training runs side by side (CPU only; each with ``threads`` intra-op threads)
    jobs: int = 1
    threads: int | None = None

    def run_dir(self, config: TrainConfig) -> Path:
        return Path(self.root) / "runs" / run_key(config)

    def status(self, config: TrainConfig) -> str:
        """``done`` (final status), ``partial`` (interrupted: will resume) or ``new``."""
        d = self.run_dir(config)
        st = read_status(d)
        if st and st.get("status") in DONE:
            return "done"
        return "partial" if (d / "last.pt").exists() else "new"

    def run_all(self, configs: Sequence[TrainConfig]) -> dict[str, int]:
        """Train this rank's share of the missing runs; returns counts of reused/resumed/new runs."""
        from gradscape.models.training import train

        unique = _unique(configs)
        mine = shard(unique, self.rank, self.world)
        counts = {"total": len(unique), "mine": len(mine), "reused": 0, "resumed": 0, "new": 0}
        todo = []
        for c in mine:
            s = self.status(c)
            counts["reused" if s == "done" else "resumed" if s == "partial" else "new"] += 1
            if s != "done":
                todo.append((c, s))
        if todo:
            self.log(
                f"figures: rank {self.rank}/{self.world}: {len(todo)} run(s) to train "
                f"({counts['resumed']} resumed), {counts['reused']} reused from {Path(self.root) / 'runs'}"
            )
        for c, s in todo:
            d = self.run_dir(c)
            # A folder with config.json but no last.pt was killed before its first checkpoint: restart it.
            if s == "new" and d.exists():
                for f in d.iterdir():
                    if f.is_file():
                        f.unlink()
        bar = tqdm(total=len(todo), desc="runs", unit="run", disable=not self.progress or len(todo) < 2)
        jobs = max(1, min(self.jobs, len(todo)))
        if jobs == 1:
            for c, s in todo:
                bar.set_postfix_str(f"{c.model} {c.task} seed {c.seed}")
                res = train(
                    c, self.run_dir(c), resume=(s == "partial"), progress=self.progress and len(todo) == 1
                )
                self._done(c, res, bar)
        else:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor, as_completed

            # spawn: a fresh interpreter per worker (fork would copy torch's thread pools).
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(jobs, mp_context=ctx) as pool:
                futures = {
                    pool.submit(_train_one, c, str(self.run_dir(c)), s == "partial", self.threads): c
                    for c, s in todo
                }
                for fut in as_completed(futures):
                    self._done(futures[fut], fut.result(), bar)
        bar.close()
        return counts

    def _done(self, c: TrainConfig, result: dict[str, Any], bar: Any) -> None:
        bar.update(1)
        if result.get("status") == "diverged":
            self.log(
                f"figures: {c.model} on {c.task} (seed {c.seed}) diverged in epoch {result.get('epoch')}"
            )

    def curve(self, config: TrainConfig) -> Curve:
        """The run's learning curve and final metrics from its ``metrics.csv`` and ``status.json``."""
        d = self.run_dir(config)
        rows = read_csv(d / "metrics.csv") if (d / "metrics.csv").exists() else []
        st = read_status(d) or {"status": "missing"}
        epochs = np.array([int(r["epoch"]) for r in rows], dtype=int)
        acc = np.array([_float(r["test_accuracy"]) for r in rows], dtype=float)
        final = {}
        if rows:
            final = {
                k: _float(rows[-1].get(k))
                for k in (
                    "sops_per_sample",
                    "sops_per_step",
                    "spikes_per_neuron_step",
                    "test_loss",
                    "test_accuracy",
                    "val_accuracy",
                )
            }
        diverged_epoch = int(st["epoch"]) if st.get("status") == "diverged" else None
        return Curve(
            model=config.model,
            task=config.task,
            seed=config.seed,
            epochs=epochs,
            test_acc=acc,
            status=str(st.get("status")),
            diverged_epoch=diverged_epoch,
            final=final,
            params=self.param_count(config),
            run_dir=str(d),
            val_acc=np.array([_float(r.get("val_accuracy")) for r in rows], dtype=float),
            val_loss=np.array([_float(r.get("val_loss")) for r in rows], dtype=float),
            test_loss=np.array([_float(r.get("test_loss")) for r in rows], dtype=float),
        )

    def param_count(self, config: TrainConfig) -> int | None:
        path = self.run_dir(config) / "init.pt"
        if not path.exists():
            return None
        import torch

        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        return int(sum(v.numel() for k, v in ckpt["state_dict"].items() if not k.endswith("mask")))

    def checkpoint(self, config: TrainConfig, which: str = "last") -> Path:
        """The run's ``last.pt`` (the model at its final epoch: at the stopping target for a run with
        ``stop_at_val_acc``) or ``best.pt`` (lowest validation loss); falls back to the other, then
        ``init.pt``."""
        d = self.run_dir(config)
        order = ("last.pt", "best.pt") if which == "last" else ("best.pt", "last.pt")
        for name in (*order, "init.pt"):
            if (d / name).exists():
                return d / name
        raise FileNotFoundError(f"run {d} has no checkpoint")
