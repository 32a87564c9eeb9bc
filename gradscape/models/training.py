"""Training a recurrent network on a task: Adam, linear LR decay to 0, (truncated) BPTT, run folders.

One epoch: the training split is shuffled with the seed ``100003·seed + epoch`` (so a resumed run
sees the same order), each mini-batch is run forward, the loss L of
:func:`~gradscape.models.objectives.sequence_loss` is backpropagated, gradients are clipped to norm
``clip`` (if set), Adam steps, and ``model.project_()`` puts parameters back into their valid set
(BRF: δω < 1, counted as ``omega_clamped``). After the epoch the learning rate is multiplied by the
``LinearLR`` factor 1 − e/E (it reaches 0 after E epochs), validation and test splits are
evaluated and the run folder (:mod:`gradscape.models.run_folder`) is updated.

Truncated BPTT (``tbptt``) and one mini-batch's optimiser step(s): :mod:`gradscape.models.bptt`.
Resuming a run exactly from ``last.pt``: :mod:`gradscape.models.training_resume`.

A non-finite loss ends the run with status ``diverged`` (checked once per mini-batch, never inside
the time loop); everything written until then stays.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from gradscape.errors import UserError
from gradscape.io import atomic_write_json, config_hash, output_folder, provenance
from gradscape.models.bptt import train_batch, truncation_chunks
from gradscape.models.checkpoints import model_config, save_checkpoint
from gradscape.models.device import resolve_device
from gradscape.models.evaluation import evaluate
from gradscape.models.network import RecurrentNetwork
from gradscape.models.objectives import correct_counts, sequence_loss
from gradscape.models.plan import plan_forward
from gradscape.models.run_folder import (
    ITERATION_COLUMNS,
    METRIC_COLUMNS,
    append_csv,
    read_status,
    write_csv,
    write_status,
)
from gradscape.models.training_config import TrainConfig, default_config, load_toml, model_family
from gradscape.models.training_resume import (
    check_same_settings,
    comparable,
    neuron_for,
    recorded_config,
    restore_last,
    save_last,
)

__all__ = [
    "TrainConfig",
    "default_config",
    "load_toml",
    "model_family",
    "train",
    "train_batch",
    "train_seeds",
    "truncation_chunks",
    "shuffle_seed",
    "compile_pays",
    "DENSE_COMPILE_MIN_BATCHES",
    "parse_seeds",
]


#: Mini-batches a run must have in all (epochs × batches per epoch) before the dense fast path's
#: step is compiled without ``--compile``. Measured on the 2-core CPU (1 thread, ECG, paper network):
#: BRF B 16 1.25 -> 0.6 s and ALIF B 64 1.3 -> 0.6 s per mini-batch, after a cold start of 8-12 s,
#: so compiling is repaid after about 20 batches; below 64 (tests, smoke runs) it is not worth it.
DENSE_COMPILE_MIN_BATCHES = 64


def compile_pays(cfg: TrainConfig, train_size: int) -> bool:
    """Whether a run of ``cfg`` on ``train_size`` training sequences is long enough to compile the
    dense path's step (:data:`DENSE_COMPILE_MIN_BATCHES`); the spike-sparse path compiles its
    step kernels regardless (:func:`~gradscape.models.plan.plan_forward`)."""
    return cfg.fast and cfg.epochs * batches_per_epoch(cfg, train_size) >= DENSE_COMPILE_MIN_BATCHES


def batches_per_epoch(cfg: TrainConfig, train_size: int) -> int:
    """⌈train_size / batch_size⌉ mini-batches (the last one partial), at most ``max_batches``."""
    n = -(-int(train_size) // cfg.batch_size)
    return n if cfg.max_batches is None else min(n, cfg.max_batches)


def shuffle_seed(seed: int, epoch: int) -> int:
    return 100003 * int(seed) + int(epoch)


def _subset(split: Any, n: int | None, seed: int) -> Any:
    return split if n is None else split.subset(int(n), seed)


def _load_data(cfg: TrainConfig) -> tuple[Any, dict[str, Any]]:
    from gradscape.models.datasets import load_task

    data = load_task(
        cfg.task,
        data_dir=cfg.data_dir,
        seed=cfg.data_seed,
        permutation=cfg.permutation,
        download=cfg.download,
        ecg_exclude_unlabelled=cfg.ecg_exclude_unlabelled,
    )
    splits = {
        "train": _subset(data.train, cfg.train_samples, cfg.data_seed),
        "val": _subset(data.val, cfg.eval_samples, cfg.data_seed),
        "test": _subset(data.test, cfg.eval_samples, cfg.data_seed),
    }
    info = dict(data.info)
    if data.permutation is not None and "permutation" not in info:
        info["permutation"] = [int(v) for v in data.permutation.tolist()]
    info["used_sizes"] = {k: len(v) for k, v in splits.items()}
    info["fingerprints"] = {k: v.fingerprint() for k, v in splits.items()}
    info["used_sources"] = {k: v.source for k, v in splits.items()}
    return (data, splits), info


def train(
    config: TrainConfig, out_dir: str | Path, *, resume: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Train per ``config`` into the run folder ``out_dir`` (see :mod:`gradscape.models.run_folder`).

    With ``resume``, continue from ``last.pt`` exactly (a finished run is left as it is). Returns
    ``{"status", "epoch", "best_epoch", "best_val_loss", "out", "metrics"}`` (last metrics row).
    """
    cfg = config
    out = output_folder(out_dir)
    last_path = out / "last.pt"
    status = read_status(out)
    if resume and status and status.get("status") in ("finished", "diverged", "stopped"):
        # an ended run is left as it is, but only for the settings it ran with: resuming it with other
        # data or seeds must not look like success (exit 0) for a run that never happened
        recorded = recorded_config(out, last_path)
        if recorded is not None:
            check_same_settings(out, recorded, cfg.to_dict())
        return {**status, "out": str(out)}
    if not resume and (last_path.exists() or (out / "metrics.csv").exists()):
        raise UserError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    device = resolve_device(cfg.device)
    (data, splits), info = _load_data(cfg)
    model = RecurrentNetwork(
        neuron_for(cfg.model, last_path if resume else None),
        data.input_size,
        cfg.hidden_size,
        data.num_classes,
        init=cfg.init or None,
        tau_out=cfg.tau_out,
        surrogate=cfg.surrogate,
        seed=cfg.seed,
    ).to(device)
    plan = plan_forward(
        model,
        grad=True,
        batch=cfg.batch_size,
        fast=cfg.fast,
        compile=True if cfg.compile or compile_pays(cfg, len(splits["train"])) else None,
    )
    # Evaluation (no grad, its own batch size) plans for itself: through the training plan's dense
    # step that compile_pays compiled, every other batch size and each no-grad call recompiled it
    # until Dynamo gave up (ALIF on ECG: eval batches of 256 and the splits' remainders).
    eval_plan = plan_forward(
        model, grad=False, batch=cfg.eval_batch_size, fast=cfg.fast, compile=True if cfg.compile else None
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.LinearLR(
        optimizer, start_factor=1.0, end_factor=0.0, total_iters=cfg.epochs
    )
    cfg_dict = cfg.to_dict()
    ckpt_meta = {"config": cfg_dict, "data": info, "task": cfg.task, "forward": plan.describe()}
    eval_kw = dict(
        mode=cfg.loss_mode,
        sub_seq_length=cfg.sub_seq_length,
        batch_size=cfg.eval_batch_size,
        device=device,
        plan=eval_plan,
    )

    rows: list[dict[str, Any]] = []
    iteration = 0
    best_val, best_epoch = math.inf, 0
    wall0 = 0.0
    start_epoch = 1
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    def wall() -> float:
        return wall0 + time.perf_counter() - t0

    if resume and last_path.exists():
        done = restore_last(out, last_path, model, optimizer, scheduler, cfg_dict, info)
        rows, iteration = done.rows, done.iteration
        best_val, best_epoch = done.best_val, done.best_epoch
        wall0, start_epoch = done.wall_s, done.start_epoch
    else:
        atomic_write_json(
            out / "config.json",
            {
                "config": cfg_dict,
                "config_hash": config_hash(comparable(cfg_dict)),
                "model": {**model_config(model, cfg.model), "init": model.init_spec},
                "data": info,
                "indices": {k: v.indices.tolist() for k, v in splits.items()},
                "forward": plan.describe(),
                "provenance": provenance(),
            },
        )
        write_status(out, "running", epoch=0)
        save_checkpoint(out / "init.pt", model, cfg.model, epoch=0, **ckpt_meta)
        train0 = evaluate(model, splits["train"], **eval_kw)
        val0 = evaluate(model, splits["val"], **eval_kw)
        test0 = evaluate(model, splits["test"], **eval_kw)
        rows = [_row(0, optimizer.param_groups[0]["lr"], train0, val0, test0, 0, 0, wall())]
        write_csv(out / "metrics.csv", METRIC_COLUMNS, rows)
        write_csv(out / "iterations.csv", ITERATION_COLUMNS, [])
        best_val, best_epoch = val0["loss"], 0
        save_checkpoint(out / "best.pt", model, cfg.model, epoch=0, val=val0, **ckpt_meta)
        save_last(
            out, model, cfg, optimizer, scheduler, rows, 0, iteration, best_val, best_epoch, wall(), ckpt_meta
        )

    status_name = "finished"
    epoch = start_epoch - 1
    if cfg.stop_at_val_acc is not None and rows and float(rows[-1]["val_accuracy"]) >= cfg.stop_at_val_acc:
        status_name = "stopped"
    else:
        for epoch in range(start_epoch, cfg.epochs + 1):
            lr = optimizer.param_groups[0]["lr"]
            model.train()
            loss_sum = torch.zeros((), dtype=torch.float64)
            n_seen = 0
            correct = torch.zeros((), dtype=torch.long, device=device)
            scored = torch.zeros((), dtype=torch.long, device=device)
            clamped = torch.zeros((), dtype=torch.long, device=device)
            steps = 0
            it_rows: list[dict[str, Any]] = []
            n_batches = batches_per_epoch(cfg, len(splits["train"]))
            from gradscape.models.datasets import batches

            it = batches(
                splits["train"],
                cfg.batch_size,
                shuffle=True,
                seed=shuffle_seed(cfg.seed, epoch),
                device=device,
            )
            bar = tqdm(it, total=n_batches, desc=f"epoch {epoch}/{cfg.epochs}", disable=not progress)
            diverged = False
            for b, (x, y) in enumerate(bar):
                if b >= n_batches:
                    break
                res = train_batch(model, x, y, cfg, optimizer, plan)
                report = sequence_loss(
                    res.outputs, y, mode=cfg.loss_mode, sub_seq_length=cfg.sub_seq_length, reduction="mean"
                )
                check = torch.stack([report.double(), *(v.double() for v in res.losses)])
                # the one host sync per mini-batch: the logged loss and whether every loss was finite
                value, ok = torch.stack([check[0], torch.isfinite(check).all().double()]).tolist()
                finite = ok == 1.0
                it_rows.append(
                    {
                        "iteration": iteration,
                        "epoch": epoch,
                        "batch": b,
                        "loss": value,
                        "optimizer_steps": res.steps,
                        "lr": lr,
                    }
                )
                iteration += 1
                if not finite:
                    diverged = True
                    break
                c, s = correct_counts(res.outputs, y, mode=cfg.loss_mode, sub_seq_length=cfg.sub_seq_length)
                correct += c
                scored += s
                loss_sum += value * x.shape[1]
                n_seen += x.shape[1]
                clamped += res.clamped
                steps += res.steps
                bar.set_postfix(loss=f"{value:.4f}")
            bar.close()
            append_csv(out / "iterations.csv", ITERATION_COLUMNS, it_rows)
            if diverged:
                status_name = "diverged"
                break
            scheduler.step()
            train_m = {
                "loss": float(loss_sum) / max(n_seen, 1),
                "accuracy": 100.0 * int(correct) / max(int(scored), 1),
            }
            val = evaluate(model, splits["val"], **eval_kw)
            test = evaluate(model, splits["test"], **eval_kw)
            rows.append(_row(epoch, lr, train_m, val, test, int(clamped), steps, wall()))
            write_csv(out / "metrics.csv", METRIC_COLUMNS, rows)
            if not math.isfinite(val["loss"]):
                status_name = "diverged"
                break
            if val["loss"] < best_val:
                best_val, best_epoch = val["loss"], epoch
                save_checkpoint(out / "best.pt", model, cfg.model, epoch=epoch, val=val, **ckpt_meta)
            save_last(
                out,
                model,
                cfg,
                optimizer,
                scheduler,
                rows,
                epoch,
                iteration,
                best_val,
                best_epoch,
                wall(),
                ckpt_meta,
            )
            write_status(out, "running", epoch=epoch)
            if cfg.stop_at_val_acc is not None and val["accuracy"] >= cfg.stop_at_val_acc:
                status_name = "stopped"
                break
    final = {"epoch": epoch, "best_epoch": best_epoch, "best_val_loss": best_val}
    if status_name == "diverged":
        final["message"] = (
            f"non-finite loss in epoch {epoch}; metrics and checkpoints up to epoch {epoch - 1} kept"
        )
    write_status(out, status_name, **final)
    return {"status": status_name, **final, "out": str(out), "metrics": rows[-1] if rows else None}


def _row(
    epoch: int,
    lr: float,
    train_m: dict[str, float],
    val: dict[str, float],
    test: dict[str, float],
    clamped: int,
    steps: int,
    wall_s: float,
) -> dict[str, Any]:
    return {
        "epoch": epoch,
        "lr": float(lr),
        "train_loss": train_m["loss"],
        "train_accuracy": train_m["accuracy"],
        "val_loss": val["loss"],
        "val_accuracy": val["accuracy"],
        "test_loss": test["loss"],
        "test_accuracy": test["accuracy"],
        "sops_per_sample": test["sops_per_sample"],
        "sops_per_step": test["sops_per_step"],
        "spikes_per_neuron_step": test["spikes_per_neuron_step"],
        "omega_clamped": int(clamped),
        "optimizer_steps": int(steps),
        "wall_time_s": float(wall_s),
    }


def parse_seeds(text: str) -> list[int]:
    """``"0-4"`` → [0, 1, 2, 3, 4]; ``"0,2,3"`` → [0, 2, 3]; mixed ``"0-2,7"``."""
    seeds: list[int] = []
    try:
        for part in str(text).split(","):
            part = part.strip()
            if "-" in part:
                a, b = (int(v) for v in part.split("-", 1))
                if b < a:
                    raise ValueError
                seeds.extend(range(a, b + 1))
            elif part:
                seeds.append(int(part))
    except ValueError:
        raise UserError(f"cannot read seeds {text!r}: write e.g. 0-4 or 0,2,3") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise UserError(f"seeds {text!r} must name each seed once")
    return seeds


def train_seeds(
    config: TrainConfig,
    seeds: list[int],
    out_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Train one run per seed into ``out_dir/seed-<s>``, one after another.

    Under ``torchrun`` (``RANK``/``WORLD_SIZE`` set) rank r trains seeds[r::world] — a seed-parallel
    run matrix, no gradient synchronisation (:mod:`gradscape.distributed` only to wait for all).
    """
    from gradscape.distributed import share, world

    results = []
    with world(config.device) as w:
        for s in share(seeds, w):
            results.append(
                train(config.replace(seed=s), Path(out_dir) / f"seed-{s}", resume=resume, progress=progress)
            )
        w.barrier()
    return results
