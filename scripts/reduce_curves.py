"""Reduce the BRF authors' learning curves to the per-epoch rows gradscape bundles.

Input: the per-run TensorBoard exports of AdaptiveAILab/brf-neurons (``experiments/*/csv_files``),
renamed ``{task}_{model}_run_{r}.csv``, long format ``,metric,value,step`` with metric names whose
capitalisation varies (``Loss/val``, ``accuracy/test``, ``Accuracy/test`` …).

Output: one gzip CSV, ``task,model,run,epoch,val_loss,val_accuracy,test_loss,test_accuracy`` — one row
per (task, model, run, epoch); the per-iteration ``*/train`` rows are dropped. Values are the
exported float32 numbers written as the shortest decimal that reads back to the same float32, so the
reduction is lossless for the kept metrics. The gzip header carries no time stamp, so the file is
byte-for-byte reproducible.

    python scripts/reduce_curves.py /work/shared/data/paper/curves gradscape/bundled/paper/curves.csv.gz

This is a maintainer's tool, not package code: gradscape never reads the raw exports at run time.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import re
import sys
from pathlib import Path

import numpy as np

KEPT = ("val_loss", "val_accuracy", "test_loss", "test_accuracy")
COLUMNS = ("task", "model", "run", "epoch", *KEPT)
NAME = re.compile(r"^(?P<task>[a-z]+)_(?P<model>[a-z]+)_run_(?P<run>\d+)\.csv$")


def _f32(x: str) -> str:
    """The shortest decimal that reads back to the same float32 (TensorBoard stores float32)."""
    return np.format_float_positional(np.float32(float(x)), unique=True, trim="-")


def reduce_file(path: Path) -> list[dict[str, str]]:
    """Per-epoch rows of one export: ``{metric}/{split}`` lower-cased to ``{split}_{metric}``."""
    m = NAME.match(path.name)
    if m is None:
        raise SystemExit(f"reduce_curves: {path.name} is not named {{task}}_{{model}}_run_{{r}}.csv")
    by_epoch: dict[int, dict[str, str]] = {}
    with open(path, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            metric, split = row["metric"].lower().split("/")
            key = f"{split}_{metric}"
            if key not in KEPT:
                continue  # */train: one row per iteration
            step = float(row["step"])
            epoch = int(step)
            if epoch != step:
                raise SystemExit(f"reduce_curves: {path.name}: non-integer epoch {step} for {key}")
            slot = by_epoch.setdefault(epoch, {})
            if key in slot:
                raise SystemExit(f"reduce_curves: {path.name}: two {key} rows for epoch {epoch}")
            slot[key] = _f32(row["value"])
    rows = []
    for epoch in sorted(by_epoch):
        slot = by_epoch[epoch]
        missing = [k for k in KEPT if k not in slot]
        if missing:
            raise SystemExit(f"reduce_curves: {path.name}: epoch {epoch} lacks {missing}")
        rows.append({"task": m["task"], "model": m["model"], "run": m["run"], "epoch": str(epoch), **slot})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("src", type=Path, help="folder of {task}_{model}_run_{r}.csv exports")
    p.add_argument("dest", type=Path, help="output .csv.gz")
    a = p.parse_args(argv)
    rows = []
    for path in sorted(a.src.glob("*_run_*.csv"), key=lambda q: NAME.match(q.name).groups()):
        rows += reduce_file(path)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    data = gzip.compress(buf.getvalue().encode("utf-8"), compresslevel=9, mtime=0)
    tmp = a.dest.with_suffix(a.dest.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(a.dest)
    print(f"reduce_curves: {len(rows)} rows from {a.src} -> {a.dest} ({len(data)} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
