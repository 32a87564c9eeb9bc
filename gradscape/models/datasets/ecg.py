"""QTDB ECG segmentation (Yin et al. 2021 preprocessing), as bundled with gradscape.

Files ``QTDB_train.mat`` / ``QTDB_test.mat`` hold ``x`` (N, 1301, 4) int16 level-crossing spikes of two
leads (up/down per lead) and ``y`` (N, 1301, 6) one-hot labels (P, PQ, QR, RS, ST, TP). The last step is
padding, so T = 1300. The label of step t is ``argmax_c y[n, t, c]``; a row with no class set (about 8 %
of training and 10 % of test steps) becomes class 0 under argmax, the reference's scoring convention and
the default here; ``exclude_unlabelled`` marks those steps -1 instead, which the loss and accuracy skip.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gradscape.errors import UserError
from gradscape.models.datasets.core import Split, TaskData
from gradscape.models.datasets.splits import (
    bundled_file,
    file_key,
    file_record,
    split_indices,
    train_val_sizes,
)

__all__ = ["load_ecg", "ECG_T", "ECG_CLASSES", "ECG_CHANNELS", "ECG_TRAIN", "ECG_VAL"]

ECG_T = 1300
ECG_CLASSES = 6
ECG_CHANNELS = 4
ECG_TRAIN, ECG_VAL = 557, 61  # of QTDB_train's 618 sequences


@functools.lru_cache(maxsize=4)
def _read(key: tuple[str, int, int]) -> tuple[Tensor, Tensor]:
    """``(x (N, 1300, 4) float32, labels (N, 1300) int64)``; unlabelled steps are -1 here."""
    import scipy.io

    path = key[0]
    try:
        mat = scipy.io.loadmat(path, variable_names=["x", "y"])
        x, y = mat["x"], mat["y"]
    except Exception as exc:
        raise UserError(f"cannot read ECG file {path}: {exc}; it should be a QTDB .mat with x and y") from exc
    if (
        x.ndim != 3
        or x.shape[2] != ECG_CHANNELS
        or y.shape != (*x.shape[:2], ECG_CLASSES)
        or x.shape[1] <= ECG_T
    ):
        raise UserError(
            f"ECG file {path} has x {x.shape}, y {y.shape}; expected x (N, 1301, 4) and y (N, 1301, 6)"
        )
    x = x[:, :ECG_T].astype(np.float32)
    y = y[:, :ECG_T]
    labels = np.argmax(y, axis=2).astype(np.int64)
    labels[~y.any(axis=2)] = -1
    return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(labels)


def _files(data_dir: str | Path | None) -> tuple[Path, Path, bool]:
    """The train and test files: from ``data_dir`` (which must hold both), else the bundled copies."""
    if data_dir is not None:
        d = Path(data_dir).expanduser()
        for sub in (d, d / "ecg"):
            train, test = sub / "QTDB_train.mat", sub / "QTDB_test.mat"
            if train.is_file() and test.is_file():
                return train, test, False
        raise UserError(
            f"--data-dir {d} holds no QTDB_train.mat and QTDB_test.mat (nor in {d / 'ecg'}); put both "
            "there, or leave out --data-dir to use the bundled ECG data"
        )
    return bundled_file("ecg", "QTDB_train.mat"), bundled_file("ecg", "QTDB_test.mat"), True


def load_ecg(
    *, data_dir: str | Path | None = None, seed: int = 0, exclude_unlabelled: bool = False
) -> TaskData:
    """QTDB: train/val = a seeded 557/61 split of QTDB_train, test = the 141 sequences of QTDB_test."""
    train_path, test_path, bundled = _files(data_dir)
    x_tr, l_tr = _read(file_key(train_path))
    x_te, l_te = _read(file_key(test_path))

    def targets(labels: Tensor) -> Tensor:
        # The cached labels hold -1 for unlabelled steps; the default scores them as class 0.
        return labels.clone() if exclude_unlabelled else labels.clamp(min=0)

    # 618 training sequences → 557/61, the published split sizes.
    tr_idx, va_idx = split_indices(x_tr.shape[0], train_val_sizes(x_tr.shape[0]), seed)
    te_idx = torch.arange(x_te.shape[0])
    y_tr, y_te = targets(l_tr), targets(l_te)
    train = Split(x_tr[tr_idx], y_tr[tr_idx], tr_idx, "qtdb-train")
    val = Split(x_tr[va_idx], y_tr[va_idx], va_idx, "qtdb-train")
    test = Split(x_te.clone(), y_te, te_idx, "qtdb-test")
    unlabelled = float((l_te < 0).float().mean())
    info = {
        "task": "ecg",
        "files": {"train": file_record(train_path), "test": file_record(test_path)},
        "bundled_data": bundled,
        "bundled_split": False,
        "seed": int(seed),
        "split_sizes": {"train": len(train), "val": len(val), "test": len(test)},
        "split_sources": {"train": train.source, "val": val.source, "test": test.source},
        "exclude_unlabelled": bool(exclude_unlabelled),
        "unlabelled_step_fraction_test": unlabelled,
        "note": (
            f"QTDB ECG, train/val a seeded {len(train)}/{len(val)} split of QTDB_train, "
            f"test the {len(test)} QTDB_test sequences; "
            + (
                "steps with an all-zero target row are excluded from loss and accuracy"
                if exclude_unlabelled
                else "steps with an all-zero target row count as class 0 (the reference convention)"
            )
        ),
    }
    return TaskData(
        name="ecg",
        train=train,
        val=val,
        test=test,
        input_size=ECG_CHANNELS,
        num_classes=ECG_CLASSES,
        seq_len=ECG_T,
        per_step_targets=True,
        permutation=None,
        info=info,
    )
