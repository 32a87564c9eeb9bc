"""Reading learning curves: gradscape run folders, the BRF authors' curve CSVs, the bundled reduced copy.

Curve files understood by :func:`read_curve_file` (``.csv`` or ``.csv.gz``):

* the authors' TensorBoard export, long format ``,metric,value,step`` with ``{accuracy,loss}/{val,test}``
  per epoch (any capitalisation; ``*/train`` rows are ignored), one run per file, task/model/run from a
  ``{task}_{model}_run_{r}.csv`` name (else task ``unknown``, model = the file's stem);
* the reduced wide format ``task,model,run,epoch,val_loss,val_accuracy,test_loss,test_accuracy`` (the
  bundled ``gradscape/bundled/paper/curves.csv.gz``, see its SOURCE.md), any number of runs.

Values are read as float32 (TensorBoard's precision) and widened, so both formats give identical
numbers.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from gradscape.errors import UserError
from gradscape.figures.stats import Curve

__all__ = [
    "BUNDLED_CURVES",
    "BUNDLED_CAPTION",
    "CurveGroups",
    "bundled_curves",
    "read_curve_file",
    "read_run_folder",
    "read_curves",
]

CurveGroups = dict[tuple[str, str], list[Curve]]

#: the bundled reduced copy of the authors' curves (package resource path inside gradscape.bundled)
BUNDLED_CURVES = ("paper", "curves.csv.gz")
BUNDLED_CAPTION = (
    "Data: the BRF authors' released learning curves (AdaptiveAILab/brf-neurons, MIT, "
    "experiments/*/csv_files; 5 runs per model), bundled per epoch as gradscape/bundled/paper/curves.csv.gz."
)
#: (task, model) whose released runs diverged: the curves stop after the epoch-0 row
BUNDLED_DIVERGED = frozenset({("psmnist", "rf")})
WIDE = ("task", "model", "run", "epoch", "val_loss", "val_accuracy", "test_loss", "test_accuracy")
_NAME = re.compile(r"^(?P<task>[A-Za-z0-9-]+)_(?P<model>[A-Za-z0-9+-]+)_run_(?P<run>\d+)$")


def _f32(values: Iterable[str]) -> np.ndarray:
    return np.array([float(v) if v not in ("", None) else math.nan for v in values], np.float32).astype(float)


def _curve(task: str, model: str, run: int, rows: Sequence[Mapping[str, str]], source: str) -> Curve:
    rows = sorted(rows, key=lambda r: int(r["epoch"]))
    epochs = np.array([int(r["epoch"]) for r in rows], dtype=int)
    if len(set(epochs.tolist())) != len(epochs):
        raise UserError(f"{source}: run {task}/{model}/{run} has two rows for one epoch; one row per epoch")
    test = _f32(r["test_accuracy"] for r in rows)
    # The authors' diverged runs simply stop logging (PS-MNIST RF: only the epoch-0 row).
    stopped_at_init = (task, model) in BUNDLED_DIVERGED and int(epochs.max()) == 0
    diverged = stopped_at_init or bool(len(test) and not np.isfinite(test[-1]))
    return Curve(
        model=model,
        task=task,
        seed=run,
        epochs=epochs,
        test_acc=test,
        status="diverged" if diverged else "finished",
        diverged_epoch=int(epochs[np.isfinite(test)].max()) + 1
        if diverged and np.isfinite(test).any()
        else None,
        run_dir=f"{source}:{task}_{model}_run_{run}",
        val_acc=_f32(r["val_accuracy"] for r in rows),
        val_loss=_f32(r["val_loss"] for r in rows),
        test_loss=_f32(r["test_loss"] for r in rows),
    )


def _group(curves: Iterable[Curve]) -> CurveGroups:
    out: CurveGroups = {}
    for c in curves:
        out.setdefault((c.task, c.model), []).append(c)
    for cs in out.values():
        cs.sort(key=lambda c: c.seed)
    return out


def _parse_wide(rows: list[dict[str, str]], source: str) -> list[Curve]:
    runs: dict[tuple[str, str, int], list[dict[str, str]]] = {}
    for r in rows:
        runs.setdefault((r["task"], r["model"], int(r["run"])), []).append(r)
    return [_curve(t, m, k, rs, source) for (t, m, k), rs in runs.items()]


def _parse_long(rows: list[dict[str, str]], name: str, source: str) -> list[Curve]:
    m = _NAME.match(name)
    task, model, run = (m["task"].lower(), m["model"].lower(), int(m["run"])) if m else ("unknown", name, 0)
    by_epoch: dict[int, dict[str, str]] = {}
    for r in rows:
        parts = r["metric"].lower().split("/")
        if len(parts) != 2 or parts[1] not in ("val", "test") or parts[0] not in ("accuracy", "loss"):
            continue  # */train: one row per iteration
        by_epoch.setdefault(int(float(r["step"])), {})[f"{parts[1]}_{parts[0]}"] = r["value"]
    if not by_epoch:
        raise UserError(
            f"{source}: no accuracy/test or loss/val rows; expected the ,metric,value,step export"
        )
    table = [{"epoch": str(e), **{k: v.get(k, "") for k in WIDE[4:]}} for e, v in sorted(by_epoch.items())]
    return [_curve(task, model, run, table, source)]


def _parse_text(text: str, name: str, source: str) -> list[Curve]:
    rows = list(csv.DictReader(io.StringIO(text)))
    header = set(rows[0]) if rows else set()
    if set(WIDE) <= header:
        return _parse_wide(rows, source)
    if {"metric", "value", "step"} <= header:
        return _parse_long(rows, name, source)
    raise UserError(
        f"{source}: not a curve file: expected the columns {','.join(WIDE)} or ',metric,value,step'"
    )


def read_curve_file(path: str | Path) -> CurveGroups:
    """Curves of one ``.csv``/``.csv.gz`` file in either format (module doc), grouped by (task, model)."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: no such curve file or run folder")
    try:
        raw = p.read_bytes()
        text = (gzip.decompress(raw) if p.name.endswith(".gz") else raw).decode("utf-8")
    except (OSError, UnicodeDecodeError, EOFError) as e:
        raise UserError(f"{p}: cannot read it as a (gzipped) UTF-8 CSV ({e})") from None
    stem = p.name.removesuffix(".gz").removesuffix(".csv")
    try:
        return _group(_parse_text(text, stem, str(p)))
    except (KeyError, ValueError) as e:
        raise UserError(
            f"{p}: malformed curve file ({e}); see `gradscape curves --help` for the formats"
        ) from None


def bundled_curves(tasks: Iterable[str] | None = None) -> CurveGroups:
    """The authors' curves bundled with gradscape (ECG and SHD: BRF, RF, ALIF; PS-MNIST: RF), runs 0–4,
    as (task, model) → curves; ``tasks`` keeps only those tasks."""
    raw = resources.files("gradscape.bundled").joinpath(*BUNDLED_CURVES).read_bytes()
    groups = _group(_parse_text(gzip.decompress(raw).decode("utf-8"), "curves", "bundled"))
    keep = None if tasks is None else set(tasks)
    rank = {m: i for i, m in enumerate(("brf", "rf", "alif"))}
    keys = sorted(groups, key=lambda k: (k[0], rank.get(k[1], 9)))
    return {k: groups[k] for k in keys if keep is None or k[0] in keep}


def read_run_folder(path: str | Path) -> Curve:
    """A gradscape run folder (``config.json``, ``metrics.csv``, ``status.json``) as one Curve with its
    validation curve, final test metrics and status."""
    d = Path(path)
    try:
        meta = json.loads((d / "config.json").read_text(encoding="utf-8"))
        cfg = meta["config"]
        with open(d / "metrics.csv", encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
    except FileNotFoundError as e:
        raise UserError(f"{d}: not a gradscape run folder (missing {Path(e.filename).name})") from None
    except (json.JSONDecodeError, KeyError, OSError) as e:
        raise UserError(f"{d}: unreadable run folder ({e!r}); was it written by `gradscape train`?") from None
    if not rows:
        raise UserError(f"{d}: metrics.csv has no epochs yet")
    status_path = d / "status.json"
    st = json.loads(status_path.read_text(encoding="utf-8")) if status_path.is_file() else {}

    def col(k: str) -> np.ndarray:
        return np.array([float(r[k]) if r.get(k) not in (None, "") else math.nan for r in rows])

    final = {
        k: float(col(k)[-1])
        for k in ("sops_per_sample", "sops_per_step", "spikes_per_neuron_step", "test_loss", "test_accuracy")
    }
    diverged = st.get("status") == "diverged"
    return Curve(
        model=str(cfg["model"]),
        task=str(cfg["task"]),
        seed=int(cfg.get("seed", 0)),
        epochs=np.array([int(r["epoch"]) for r in rows], dtype=int),
        test_acc=col("test_accuracy"),
        status=str(st.get("status", "running")),
        diverged_epoch=int(st["epoch"]) if diverged and "epoch" in st else None,
        final=final,
        run_dir=str(d),
        val_acc=col("val_accuracy"),
        val_loss=col("val_loss"),
        test_loss=col("test_loss"),
    )


def read_curves(paths: Iterable[str | Path]) -> CurveGroups:
    """Run folders and curve files together, grouped by (task, model) (runs keep their file order)."""
    out: CurveGroups = {}
    for p in paths:
        groups = (
            {(c.task, c.model): [c] for c in [read_run_folder(p)]} if Path(p).is_dir() else read_curve_file(p)
        )
        for k, cs in groups.items():
            out.setdefault(k, []).extend(cs)
    return out
