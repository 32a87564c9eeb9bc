"""``gradscape train``: train a network on a task with the paper's defaults (overridable).

Precedence: flags > ``--config file.toml`` > the per-task defaults of
:func:`gradscape.models.training.default_config`.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from gradscape.commands.argtypes import finite_float, int_at_least, threads
from gradscape.errors import UserError
from gradscape.models.training import default_config, load_toml, parse_seeds, train, train_seeds
from gradscape.threads import apply_threads

#: flag destination → TrainConfig field
_FIELDS = {
    "epochs": "epochs",
    "lr": "lr",
    "batch_size": "batch_size",
    "hidden": "hidden_size",
    "clip": "clip",
    "loss_mode": "loss_mode",
    "sub_seq_length": "sub_seq_length",
    "loss_reduction": "reduction",
    "tbptt": "tbptt",
    "tbptt_mode": "tbptt_mode",
    "stop_at_val_acc": "stop_at_val_acc",
    "device": "device",
    "data_dir": "data_dir",
    "permutation": "permutation",
    "tau_out": "tau_out",
    "surrogate": "surrogate",
    "data_seed": "data_seed",
    "eval_batch_size": "eval_batch_size",
    "max_batches": "max_batches",
    "train_samples": "train_samples",
    "eval_samples": "eval_samples",
    "seed": "seed",
}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train",
        help="train a network on S-MNIST, PS-MNIST, ECG or SHD",
        description=(
            "Train a recurrent network with the paper's per-task defaults (Adam, LR decaying linearly "
            "to 0, Xavier-uniform weights). The run folder --out gets config.json, metrics.csv "
            "(epoch 0 = before training), iterations.csv, status.json, init.pt, best.pt and last.pt. "
            "Flags override --config, which overrides the defaults."
        ),
    )
    p.add_argument("--model", help="brf, rf, rf+sr+db …, alif, lif, lstm or path/file.py:Name")
    p.add_argument("--task", help="smnist, psmnist, ecg or shd")
    p.add_argument("--out", required=True, help="run folder (with --seeds: one seed-<s> folder per seed)")
    p.add_argument("--config", help="TOML file with settings named as the flags (underscores or dashes)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out exactly")
    p.add_argument("--epochs", type=int_at_least(1))
    p.add_argument("--seed", type=int_at_least(0), help="initialisation and shuffling seed (default 0)")
    p.add_argument("--seeds", help="several seeds one after another (or one per torchrun rank): 0-4 or 0,2,3")
    p.add_argument("--device", help="auto (default: CUDA when present), cpu, cuda, cuda:N")
    p.add_argument("--lr", type=float)
    p.add_argument("--batch-size", type=int_at_least(1))
    p.add_argument("--hidden", type=int_at_least(1), help="hidden layer size")
    p.add_argument("--clip", type=finite_float(), help="gradient-norm clip (0: none)")
    p.add_argument("--loss-mode", choices=("last", "per_step"))
    p.add_argument("--sub-seq-length", type=int_at_least(0), help="first scored time step")
    p.add_argument(
        "--loss-reduction", choices=("sum", "mean"), help="over time (default sum, as the reference)"
    )
    p.add_argument("--tbptt", type=int_at_least(0), help="truncated BPTT length K (0: full BPTT)")
    p.add_argument("--tbptt-mode", choices=("reference", "standard"))
    p.add_argument(
        "--stop-at-val-acc",
        type=finite_float(0, 100),
        help="stop once val accuracy ≥ X %%",
    )
    p.add_argument("--init", action="append", metavar="PARAM=DIST", help="e.g. omega=U(3,5); repeatable")
    p.add_argument("--tau-out", help="readout τ_out distribution, e.g. N(20,1)")
    p.add_argument("--surrogate", help="surrogate gradient (default double-gaussian)")
    p.add_argument("--data-dir", help="folder with the task's data files")
    p.add_argument("--download", action="store_true", default=None, help="download missing MNIST/SHD files")
    p.add_argument("--permutation", help="PS-MNIST permutation file (1-D index tensor) or integer seed")
    p.add_argument("--data-seed", type=int_at_least(0), help="seed of the train/val split (default 0)")
    p.add_argument(
        "--exclude-unlabelled", action="store_true", default=None, help="ECG: skip unlabelled steps"
    )
    p.add_argument("--eval-batch-size", type=int_at_least(1))
    p.add_argument("--max-batches", type=int_at_least(1), help="at most N batches per epoch")
    p.add_argument("--train-samples", type=int_at_least(1), help="train on a seeded subset of N samples")
    p.add_argument("--eval-samples", type=int_at_least(1), help="val/test on seeded subsets of N")
    p.add_argument("--compile", action="store_true", default=None, help="use the compiled fast-path step")
    p.add_argument(
        "--threads",
        type=threads,
        help="torch CPU threads (default: the cores no other process is running on at start)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def _parse_init(items: list[str] | None) -> dict[str, str] | None:
    if not items:
        return None
    out = {}
    for item in items:
        name, sep, dist = item.partition("=")
        if not sep or not name or not dist:
            raise UserError(f"--init {item!r} must look like PARAM=DIST, e.g. omega=U(3,5)")
        out[name.strip()] = dist.strip()
    return out


def _number(value: Any) -> float | None:
    """``value`` when it is a number (so that ``<= 0`` means "off"), else None: TrainConfig then
    rejects a wrong type with the setting's name."""
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def resolve_config(args: argparse.Namespace) -> Any:
    """The TrainConfig from defaults, the TOML file and the flags (in rising precedence)."""
    settings: dict[str, Any] = load_toml(args.config) if args.config else {}
    if "hidden" in settings:
        settings["hidden_size"] = settings.pop("hidden")
    if "loss_reduction" in settings:
        settings["reduction"] = settings.pop("loss_reduction")
    if "exclude_unlabelled" in settings:
        settings["ecg_exclude_unlabelled"] = settings.pop("exclude_unlabelled")
    seeds_text = settings.pop("seeds", None)
    for dest, field in _FIELDS.items():
        value = getattr(args, dest, None)
        if value is not None:
            settings[field] = value
    for dest, field in (("download", "download"), ("exclude_unlabelled", "ecg_exclude_unlabelled"),
                        ("compile", "compile")):  # fmt: skip
        if getattr(args, dest):
            settings[field] = True
    init = _parse_init(args.init)
    if init:
        settings["init"] = {**settings.get("init", {}), **init}
    model = args.model or settings.pop("model", None)
    task = args.task or settings.pop("task", None)
    settings.pop("model", None)
    settings.pop("task", None)
    if not model or not task:
        raise UserError("say which --model and --task to train (as flags or in the --config file)")
    clip_off = _number(settings.get("clip")) is not None and settings["clip"] <= 0
    tbptt_off = _number(settings.get("tbptt")) is not None and settings["tbptt"] <= 0
    if clip_off:
        settings.pop("clip")
    if tbptt_off:
        settings.pop("tbptt")
    cfg = default_config(str(model), str(task).lower(), **settings)
    if clip_off:
        cfg = cfg.replace(clip=None)
    if tbptt_off:
        cfg = cfg.replace(tbptt=None)
    return cfg, args.seeds or seeds_text


def run(args: argparse.Namespace) -> int:
    apply_threads(args.threads)
    cfg, seeds_text = resolve_config(args)
    progress = not args.no_progress
    if seeds_text is not None:
        results = train_seeds(
            cfg, parse_seeds(str(seeds_text)), args.out, resume=args.resume, progress=progress
        )
    else:
        results = [train(cfg, args.out, resume=args.resume, progress=progress)]
    for r in results:
        m = r.get("metrics") or {}
        summary = {
            "out": r["out"],
            "status": r["status"],
            "epoch": r.get("epoch"),
            "best_epoch": r.get("best_epoch"),
            "test_accuracy": m.get("test_accuracy"),
            "val_accuracy": m.get("val_accuracy"),
        }
        print(json.dumps(summary))
    return 0
