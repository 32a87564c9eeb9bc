"""Sequential MNIST (S-MNIST) and permuted sequential MNIST (PS-MNIST).

An image's 28×28 pixels, scaled to [0, 1], are read one per step in row-major order: input
``x[n, t, 0] = image_n[t // 28, t % 28] / 255`` for t = 0…783. PS-MNIST reads them through one fixed
permutation π of {0…783}: ``x[n, t, 0] = flat_n[π[t]] / 255``.

Full MNIST (the four IDX files in ``data_dir``): train/val = a seeded 54,000/6,000 split of the 60,000
training images, test = the 10,000 test images. Without the training files, a seeded, disjoint
8,000/1,000/1,000 split of the bundled 10,000 test images (``info["bundled_split"] = True``).
PS-MNIST's π comes from a file or an integer seed (default :data:`DEFAULT_PERMUTATION_SEED`, whatever
the split seed) and is recorded in ``info["permutation"]``.
"""

from __future__ import annotations

import functools
import gzip
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gradscape.errors import UserError
from gradscape.models.datasets.core import Split, TaskData
from gradscape.models.datasets.splits import (
    bundled_file,
    default_data_dir,
    download_file,
    file_key,
    file_record,
    split_indices,
    train_val_sizes,
)

__all__ = [
    "load_mnist",
    "read_idx",
    "load_permutation",
    "random_permutation",
    "MNIST_FILES",
    "MNIST_MIRRORS",
    "BUNDLED_SPLIT",
    "DEFAULT_PERMUTATION_SEED",
]

PIXELS = 784
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
BUNDLED_SPLIT = (8000, 1000, 1000)
# PS-MNIST is one task: without an explicit permutation every run seed reads the pixels in this order.
DEFAULT_PERMUTATION_SEED = 0
_HOW = (
    "put the four MNIST IDX files ({names}, optionally .gz) into DIR and pass --data-dir DIR, or pass "
    "--download (from {mirror}); or omit --data-dir to train on a seeded 8,000/1,000/1,000 split of the "
    "bundled 10,000 test images"
)


@functools.lru_cache(maxsize=8)
def _read_idx_cached(key: tuple[str, int, int]) -> np.ndarray:
    path = Path(key[0])
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise UserError(f"cannot read IDX file {path}: {exc}") from exc
    # Header: two zero bytes, the type code (0x08 = unsigned byte), the number of dimensions,
    # then each dimension as a big-endian int32.
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or raw[3] < 1:
        raise UserError(f"{path} is not an unsigned-byte IDX file (bad header)")
    ndim = raw[3]
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise UserError(f"{path} holds {data.size} bytes of data, its header says {dims}")
    return data.reshape(dims)


def read_idx(path: str | Path) -> np.ndarray:
    """The uint8 array of an IDX file (gzip-compressed when its name ends in .gz); read-only, cached."""
    return _read_idx_cached(file_key(Path(path)))


@functools.lru_cache(maxsize=4)
def _pixels(key: tuple[str, int, int]) -> Tensor:
    """``(N, 784)`` float32 pixels in [0, 1], row-major, of an images IDX file."""
    images = _read_idx_cached(key)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise UserError(f"{key[0]} holds arrays of shape {images.shape}, not 28×28 MNIST images")
    return torch.from_numpy(images.reshape(len(images), PIXELS).astype(np.float32) / 255.0)


def _labels(path: Path, n: int) -> Tensor:
    labels = read_idx(path)
    if labels.ndim != 1 or labels.shape[0] != n or labels.max(initial=0) > 9:
        raise UserError(f"{path} does not hold {n} labels in 0..9 (found shape {labels.shape})")
    return torch.from_numpy(labels.astype(np.int64))


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _full_files(data_dir: Path) -> dict[str, Path] | None:
    """The four IDX files in ``data_dir`` (or its mnist/, MNIST/raw/ sub-folders), or None."""
    for folder in (data_dir, data_dir / "mnist", data_dir / "MNIST" / "raw", data_dir / "MNIST"):
        found = {k: _find(folder, stem) for k, stem in MNIST_FILES.items()}
        if all(found.values()):
            return found  # type: ignore[return-value]
    return None


def _download(data_dir: Path) -> dict[str, Path]:
    files = {}
    for key, stem in MNIST_FILES.items():
        dest = data_dir / (stem + ".gz")
        if not dest.is_file() and not (data_dir / stem).is_file():
            download_file([m + stem + ".gz" for m in MNIST_MIRRORS], dest, what="MNIST")
        files[key] = _find(data_dir, stem)  # type: ignore[assignment]
    return files


def random_permutation(seed: int) -> Tensor:
    """π = ``randperm(784)`` from ``torch.Generator().manual_seed(seed)``."""
    return torch.randperm(PIXELS, generator=torch.Generator().manual_seed(int(seed)))


def _check_permutation(perm: object, origin: str) -> Tensor:
    try:
        t = torch.as_tensor(np.asarray(perm) if not isinstance(perm, Tensor) else perm).detach().cpu()
    except Exception as exc:
        raise UserError(f"{origin} does not hold a 1-D index tensor ({exc})") from exc
    if t.is_floating_point() and bool((t == t.round()).all()):
        t = t.round()
    elif t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise UserError(f"{origin} holds {t.dtype} values, not pixel indices")
    t = t.to(torch.int64).flatten() if t.dim() == 2 and 1 in t.shape else t.to(torch.int64)
    if t.dim() != 1 or t.numel() != PIXELS:
        raise UserError(
            f"{origin} holds a tensor of shape {tuple(t.shape)}; a permutation of 784 pixels is needed"
        )
    if not torch.equal(t.sort().values, torch.arange(PIXELS)):
        raise UserError(f"{origin} is not a permutation of 0..783 (repeated or out-of-range indices)")
    return t


def load_permutation(source: str | Path | int) -> tuple[Tensor, dict[str, object]]:
    """π and a JSON-able record of where it came from.

    ``source``: an integer seed (also a string of digits that names no file), or a file holding a 1-D
    index tensor: ``.npy``, text (``.txt``/``.csv``, whitespace or comma separated), otherwise a torch
    file (such as the reference's ``*_permuted_idx.pt``) read with ``weights_only=True``.
    """
    if isinstance(source, int) or (
        isinstance(source, str) and source.isdigit() and not Path(source).exists()
    ):
        return random_permutation(int(source)), {"seed": int(source)}
    path = Path(source).expanduser()
    if not path.is_file():
        raise UserError(
            f"permutation file {path} not found; pass a file with 784 pixel indices or an integer seed"
        )
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            raw: object = np.load(path, allow_pickle=False)
        elif suffix in (".txt", ".csv"):
            raw = np.array(path.read_text().replace(",", " ").split(), dtype=np.float64)
        else:
            raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(f"cannot read permutation file {path}: {exc}") from exc
    if isinstance(raw, dict):  # e.g. {"perm": tensor}: accept a dict with exactly one tensor
        tensors = [v for v in raw.values() if isinstance(v, Tensor)]
        if len(tensors) != 1:
            raise UserError(f"permutation file {path} holds a dict without a single index tensor")
        raw = tensors[0]
    return _check_permutation(raw, f"permutation file {path}"), {"file": file_record(path)}


def load_mnist(
    *,
    permuted: bool,
    data_dir: str | Path | None = None,
    seed: int = 0,
    permutation: str | Path | int | None = None,
    download: bool = False,
) -> TaskData:
    """S-MNIST (``permuted=False``) or PS-MNIST; see the module docstring for the splits."""
    task = "psmnist" if permuted else "smnist"
    files: dict[str, Path] | None = None
    if data_dir is not None or download:
        folder = Path(data_dir).expanduser() if data_dir is not None else default_data_dir("mnist")
        files = _full_files(folder)
        if files is None:
            if not download:
                names = ", ".join(MNIST_FILES.values())
                raise UserError(
                    f"{task} found no MNIST training files in {folder}: "
                    + _HOW.format(names=names, mirror=MNIST_MIRRORS[0]).replace("DIR", str(folder))
                )
            files = _download(folder)

    if permuted:
        perm, perm_source = load_permutation(DEFAULT_PERMUTATION_SEED if permutation is None else permutation)
    else:
        perm, perm_source = None, None

    def make(pixels: Tensor, labels: Tensor, idx: Tensor, source: str) -> Split:
        x = pixels[idx]
        if perm is not None:
            x = x[:, perm]
        return Split(x.unsqueeze(-1).contiguous(), labels[idx], idx, source)

    if files is not None:
        tr_pix, te_pix = _pixels(file_key(files["train_images"])), _pixels(file_key(files["test_images"]))
        tr_lab = _labels(files["train_labels"], len(tr_pix))
        te_lab = _labels(files["test_labels"], len(te_pix))
        tr_idx, va_idx = split_indices(len(tr_pix), train_val_sizes(len(tr_pix)), seed)
        te_idx = torch.arange(len(te_pix))
        train = make(tr_pix, tr_lab, tr_idx, "mnist-train")
        val = make(tr_pix, tr_lab, va_idx, "mnist-train")
        test = make(te_pix, te_lab, te_idx, "mnist-test")
        bundled = False
        note = (
            f"MNIST: train/val a seeded {len(train)}/{len(val)} split of the {len(tr_pix)} training images, "
            f"test the {len(test)} test images"
        )
        records = {k: file_record(p) for k, p in files.items()}
    else:
        img_path, lab_path = (
            bundled_file("mnist", MNIST_FILES["test_images"] + ".gz"),
            bundled_file("mnist", MNIST_FILES["test_labels"] + ".gz"),
        )
        pix = _pixels(file_key(img_path))
        lab = _labels(lab_path, len(pix))
        tr_idx, va_idx, te_idx = split_indices(len(pix), BUNDLED_SPLIT, seed)
        train = make(pix, lab, tr_idx, "mnist-test")
        val = make(pix, lab, va_idx, "mnist-test")
        test = make(pix, lab, te_idx, "mnist-test")
        bundled = True
        note = (
            "MNIST training files not given: train/val/test are a seeded, disjoint 8000/1000/1000 split of "
            "the 10,000 MNIST test images (bundled); test accuracy is on the 1,000 held-out images, "
            "not the standard 10,000-image test set"
        )
        records = {"images": file_record(img_path), "labels": file_record(lab_path)}
    if perm is not None:
        note += "; pixels read through a fixed permutation (info['permutation'])"

    info: dict[str, object] = {
        "task": task,
        "files": records,
        "bundled_split": bundled,
        "seed": int(seed),
        "split_sizes": {"train": len(train), "val": len(val), "test": len(test)},
        "split_sources": {"train": train.source, "val": val.source, "test": test.source},
        "note": note,
    }
    if perm is not None:
        info["permutation"] = perm.tolist()
        info["permutation_source"] = perm_source
    return TaskData(
        name=task,
        train=train,
        val=val,
        test=test,
        input_size=1,
        num_classes=10,
        seq_len=PIXELS,
        per_step_targets=False,
        permutation=perm,
        info=info,
    )
