"""Spiking Heidelberg Digits (SHD; Cramer et al. 2020): 700 input channels, 20 classes, 250 steps of 4 ms.

The official files ``shd_train.h5`` / ``shd_test.h5`` hold, per sample n, ``/spikes/times[n]`` (spike
times in seconds), ``/spikes/units[n]`` (channel of each spike, 0…699) and ``/labels[n]``. Each sample
becomes a binary raster ``x[n, t, c] ∈ {0, 1}`` of T = 250 steps × 700 channels (Δ = 4 ms):

- ``binning="standard"``: a spike at time s on unit u sets ``x[n, ⌊s/Δ⌋, u]`` (computed as ⌊250 s⌋, exact for
  float16/float32 times); spikes at s ≥ 1 s are dropped.
- ``binning="reference"`` (the preprocessing of Yin et al. 2021, used by the BRF reference code):
  bin i covers (e_{i-1}, e_i] with e_i = i·Δ rounded to the file's time dtype, so bin 0 holds only spikes
  at exactly s = 0 and spikes after e_249 = 0.996 s are dropped; unit 0 is dropped and unit u ≥ 1 sets
  channel 700 − u (channel order reversed, channel 0 always silent).

Train/val = a seeded 7,341/815 split of shd_train's 8,156 samples; test = shd_test's 2,264 samples.
Rasters are stored as uint8 (dense float32 would need 5.7 GB); :func:`~.core.batches` yields float32.
"""

from __future__ import annotations

import functools
import gzip
import shutil
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from gradscape.errors import UserError
from gradscape.models.datasets.core import Split, TaskData
from gradscape.models.datasets.splits import (
    default_data_dir,
    download_file,
    file_key,
    file_record,
    split_indices,
    train_val_sizes,
)

__all__ = ["load_shd", "bin_spikes", "read_shd", "SHD_MIRRORS", "SHD_STEPS", "SHD_CHANNELS", "SHD_DT"]

SHD_DT = 4e-3  # s, bin width
SHD_STEPS = 250  # = int(1 s / Δ)
SHD_CHANNELS = 700
SHD_CLASSES = 20
SHD_MIRRORS = ("https://zenkelab.org/datasets/", "https://compneuro.net/datasets/")
_SUBDIRS = ("", "shd", "SHD", "hdspikes")


def bin_spikes(
    times: np.ndarray, units: np.ndarray, binning: str = "standard"
) -> tuple[np.ndarray, np.ndarray]:
    """``(steps, channels)`` of the spikes of one sample that fall in the raster (see module docstring)."""
    units = np.asarray(units).astype(np.int64)
    times = np.asarray(times)
    if binning == "standard":
        t = times.astype(np.float64)
        keep = (t >= 0) & (t < SHD_STEPS * SHD_DT)
        # Multiply by 1/Δ = 250 (an exact integer) rather than divide by Δ = 0.004 (inexact), so a spike
        # on a bin edge, e.g. s = 0.5 s, lands in the bin it starts (125), not the one before.
        steps = np.floor(t[keep] * round(1 / SHD_DT)).astype(np.int64)
        return np.minimum(steps, SHD_STEPS - 1), units[keep]
    if binning == "reference":
        # Bin edges e_i = i·Δ compared in the times' own dtype (float16 in the official files), as the
        # reference's `times <= i * dt` does; bin = the smallest i with s <= e_i.
        dtype = times.dtype if np.issubdtype(times.dtype, np.floating) else np.float64
        edges = np.array([i * SHD_DT for i in range(SHD_STEPS)]).astype(dtype)
        steps = np.searchsorted(edges, times.astype(dtype), side="left")
        keep = (steps < SHD_STEPS) & (units > 0)
        return steps[keep].astype(np.int64), SHD_CHANNELS - units[keep]
    raise UserError(f"unknown SHD binning {binning!r}; choose standard or reference")


@functools.lru_cache(maxsize=2)
def _raster(key: tuple[str, int, int], binning: str) -> tuple[Tensor, Tensor]:
    """``(x (N, 250, 700) uint8, labels (N,) int64)`` of one SHD file."""
    import h5py

    path = key[0]
    try:
        with h5py.File(path, "r") as f:
            times, units, labels = f["spikes/times"][:], f["spikes/units"][:], f["labels"][:]
    except (OSError, KeyError) as exc:
        raise UserError(
            f"cannot read {path} as an SHD file (needs /spikes/times, /spikes/units, /labels): {exc}"
        ) from exc
    n = len(labels)
    if len(times) != n or len(units) != n:
        raise UserError(f"{path}: {len(times)} spike-time and {len(units)} unit lists for {n} labels")
    labels = np.asarray(labels).astype(np.int64)
    if n and (labels.min() < 0 or labels.max() >= SHD_CLASSES):
        raise UserError(f"{path}: labels outside 0..{SHD_CLASSES - 1}")
    x = torch.zeros(n, SHD_STEPS, SHD_CHANNELS, dtype=torch.uint8)
    xv = x.numpy()
    # A full SHD file takes seconds to bin: show progress on a terminal.
    bar = tqdm(
        range(n),
        desc=f"binning {Path(path).name}",
        unit="sample",
        leave=False,
        disable=None if n > 1000 else True,
    )
    for i in bar:
        if len(times[i]) != len(units[i]):
            raise UserError(f"{path}: sample {i} has {len(times[i])} spike times but {len(units[i])} units")
        u = np.asarray(units[i])
        if u.size and (u.min() < 0 or u.max() >= SHD_CHANNELS):
            raise UserError(f"{path}: sample {i} has units outside 0..{SHD_CHANNELS - 1}")
        steps, channels = bin_spikes(times[i], u, binning)
        xv[i, steps, channels] = 1
    return x, torch.from_numpy(labels)


def read_shd(path: str | Path, binning: str = "standard") -> tuple[Tensor, Tensor]:
    """The binned rasters and labels of one SHD file (cached in-process on path, mtime and size)."""
    return _raster(file_key(Path(path)), binning)


def _gunzip(gz: Path) -> Path:
    from gradscape.io import atomic_write

    def write(tmp: Path) -> None:
        with gzip.open(gz, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst)

    try:
        return atomic_write(gz.with_suffix(""), write)
    except (OSError, EOFError) as exc:
        raise UserError(f"cannot decompress {gz}: {exc}; delete it and download it again") from exc


def _find(folder: Path, name: str) -> Path | None:
    """``name`` (.h5) in ``folder`` or a known sub-folder, decompressing a lone ``name.gz``."""
    for sub in _SUBDIRS:
        d = folder / sub if sub else folder
        if (d / name).is_file():
            return d / name
    for sub in _SUBDIRS:
        d = folder / sub if sub else folder
        if (d / (name + ".gz")).is_file():
            return _gunzip(d / (name + ".gz"))
    return None


def _files(data_dir: str | Path | None, download: bool) -> dict[str, Path]:
    folder = Path(data_dir).expanduser() if data_dir is not None else default_data_dir("shd")
    how = (
        f"SHD needs shd_train.h5 and shd_test.h5: download them (.h5.gz) from {SHD_MIRRORS[0]} into "
        f"{folder if data_dir is not None else 'DIR'} and pass --data-dir "
        f"{folder if data_dir is not None else 'DIR'}, or pass --download"
    )
    if data_dir is None and not download:
        raise UserError(how)
    files = {}
    for split in ("train", "test"):
        name = f"shd_{split}.h5"
        path = _find(folder, name)
        if path is None:
            if not download:
                raise UserError(f"{name} not found in {folder}. {how}")
            gz = download_file([m + name + ".gz" for m in SHD_MIRRORS], folder / (name + ".gz"), what="SHD")
            path = _gunzip(gz)
        files[split] = path
    return files


def load_shd(
    *,
    data_dir: str | Path | None = None,
    seed: int = 0,
    download: bool = False,
    binning: str = "standard",
) -> TaskData:
    """SHD with a seeded ⌊9/10⌋ / ⌊1/10⌋ train/val split of shd_train and all of shd_test."""
    if binning not in ("standard", "reference"):
        raise UserError(f"unknown SHD binning {binning!r}; choose standard or reference")
    files = _files(data_dir, download)
    x_tr, y_tr = read_shd(files["train"], binning)
    x_te, y_te = read_shd(files["test"], binning)
    tr_idx, va_idx = split_indices(len(y_tr), train_val_sizes(len(y_tr)), seed)
    te_idx = torch.arange(len(y_te))
    train = Split(x_tr[tr_idx], y_tr[tr_idx], tr_idx, "shd-train")
    val = Split(x_tr[va_idx], y_tr[va_idx], va_idx, "shd-train")
    test = Split(x_te.clone(), y_te.clone(), te_idx, "shd-test")
    binning_note = (
        "4 ms bins, bin = floor(t / 4 ms), t < 1 s, channel = unit"
        if binning == "standard"
        else "reference binning (Yin et al. 2021): bin i covers ((i-1)·4, i·4] ms, spikes after 0.996 s "
        "dropped, unit 0 dropped, channel = 700 - unit"
    )
    info = {
        "task": "shd",
        "files": {k: file_record(p) for k, p in files.items()},
        "bundled_split": False,
        "seed": int(seed),
        "binning": binning,
        "split_sizes": {"train": len(train), "val": len(val), "test": len(test)},
        "split_sources": {"train": train.source, "val": val.source, "test": test.source},
        "input_dtype": "uint8",
        "note": (
            f"SHD: train/val a seeded {len(train)}/{len(val)} split of shd_train, test shd_test "
            f"({len(test)}); {binning_note}; 250 steps × 700 channels"
        ),
    }
    return TaskData(
        name="shd",
        train=train,
        val=val,
        test=test,
        input_size=SHD_CHANNELS,
        num_classes=SHD_CLASSES,
        seq_len=SHD_STEPS,
        per_step_targets=False,
        permutation=None,
        info=info,
    )
