"""Seeded, disjoint splits of a file's sample order, and the file fingerprints used for caching."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from gradscape.errors import UserError

__all__ = [
    "split_indices",
    "train_val_sizes",
    "file_key",
    "file_record",
    "bundled_file",
    "default_data_dir",
    "download_file",
]


def split_indices(n: int, sizes: Sequence[int], seed: int) -> list[Tensor]:
    """Cut ``randperm(n)`` (``torch.Generator().manual_seed(seed)``) into consecutive parts of ``sizes``.

    The parts are disjoint; each is returned sorted so a split keeps the file's sample order.
    ``sum(sizes)`` may be smaller than ``n`` (the rest is unused) but not larger.
    """
    sizes = [int(s) for s in sizes]
    if any(s < 0 for s in sizes) or sum(sizes) > n:
        raise UserError(f"cannot split {n} samples into parts of sizes {sizes}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))
    parts, start = [], 0
    for s in sizes:
        parts.append(perm[start : start + s].sort().values)
        start += s
    return parts


def train_val_sizes(n: int) -> tuple[int, int]:
    """Sizes of the train/val split of a training file of ``n`` samples: val = ⌊n/10⌋, train the rest.

    This gives the published splits: MNIST 60,000 → 54,000/6,000; SHD 8,156 → 7,341/815;
    QTDB 618 → 557/61.
    """
    return n - n // 10, n // 10


def file_key(path: Path) -> tuple[str, int, int]:
    """``(resolved path, mtime_ns, size)``: an in-process cache key that notices a replaced file."""
    st = path.stat()
    return (str(path.resolve()), st.st_mtime_ns, st.st_size)


def file_record(path: Path) -> dict[str, object]:
    """What a result records about a source file: its path and size in bytes."""
    return {"path": str(path.resolve()), "bytes": path.stat().st_size}


def bundled_file(*parts: str) -> Path:
    """Path of a file shipped in :mod:`gradscape.bundled` (an installed package is a plain folder)."""
    from importlib.resources import files

    path = Path(str(files("gradscape.bundled").joinpath(*parts)))
    if not path.is_file():
        raise UserError(f"bundled data file {path} is missing: reinstall gradscape (pip install -e .)")
    return path


def default_data_dir(task: str) -> Path:
    """Where ``download`` puts files when no data directory is given: ``$GRADSCAPE_DATA/<task>``,
    else ``~/.cache/gradscape/<task>``."""
    root = os.environ.get("GRADSCAPE_DATA")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "gradscape"
    return base / task


def download_file(urls: Sequence[str], dest: Path, *, what: str, timeout: float = 60.0) -> Path:
    """Fetch ``dest`` from the first of ``urls`` that answers; the file appears atomically or not at all.

    Raises :class:`UserError` naming every URL tried when none works (e.g. no network).
    """
    import shutil
    import urllib.request

    from gradscape.io import atomic_write

    dest.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in urls:
        try:

            def fetch(tmp: Path, url: str = url) -> None:
                with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as f:
                    shutil.copyfileobj(resp, f)

            return atomic_write(dest, fetch)
        except Exception as exc:  # any network or HTTP failure: try the next mirror
            errors.append(f"{url}: {exc}")
    raise UserError(
        f"could not download {what} into {dest.parent} ({'; '.join(errors)}); "
        f"download {dest.name} by hand into that folder and pass --data-dir {dest.parent}"
    )
