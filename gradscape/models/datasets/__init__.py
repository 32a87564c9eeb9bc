"""Real datasets for the model core: S-MNIST, PS-MNIST, QTDB ECG and SHD.

``load_task(name, ...)`` returns a :class:`TaskData` with seeded train/val/test :class:`Split` s whose
``indices`` name the samples used; :func:`batches` yields time-major ``(T, B, I)`` float32 mini-batches.

==========  =====  ====  ========  ================================================================
task        T      I     classes   source and split
==========  =====  ====  ========  ================================================================
smnist      784    1     10        MNIST pixels row-major in [0, 1]; 54,000/6,000/10,000 from the IDX
                                   files in ``data_dir``, else a seeded 8,000/1,000/1,000 split of the
                                   bundled 10,000 test images (``info["bundled_split"]``)
psmnist     784    1     10        as smnist, step t reads pixel ``permutation[t]``
ecg         1300   4     6/step    bundled QTDB; 557/61 seeded from QTDB_train, 141 QTDB_test
shd         250    700   20        shd_train.h5 / shd_test.h5; 7,341/815 seeded, 2,264 test; 4 ms bins
==========  =====  ====  ========  ================================================================
"""

from __future__ import annotations

from pathlib import Path

from gradscape.errors import UserError
from gradscape.models.datasets.core import Split, TaskData, batches
from gradscape.models.datasets.splits import split_indices

__all__ = ["TASKS", "SHD_BINNINGS", "Split", "TaskData", "batches", "load_task", "split_indices"]

TASKS = ("smnist", "psmnist", "ecg", "shd")
SHD_BINNINGS = ("standard", "reference")


def load_task(
    name: str,
    *,
    data_dir: str | Path | None = None,
    seed: int = 0,
    permutation: str | Path | int | None = None,
    download: bool = False,
    ecg_exclude_unlabelled: bool = False,
    shd_binning: str = "standard",
) -> TaskData:
    """Load task ``name`` (one of :data:`TASKS`) with its seeded train/val/test splits.

    ``seed`` fixes the train/val split. ``permutation`` (psmnist): a file holding a 1-D index tensor
    (torch-saved, ``.npy`` or whitespace separated text) or an integer seed for ``randperm(784)``; None
    means seed 0, so runs with different ``seed`` s share one fixed permutation (one task).
    ``download`` fetches missing MNIST/SHD files into ``data_dir`` (default ``~/.cache/gradscape/<task>``
    or ``$GRADSCAPE_DATA/<task>``). ``ecg_exclude_unlabelled`` marks ECG steps without a label -1
    (skipped) instead of class 0. ``shd_binning`` is ``"standard"`` or ``"reference"`` (see :mod:`.shd`).
    Missing or malformed data raises :class:`~gradscape.errors.UserError` saying how to get it.
    """
    task = str(name).lower().replace("-", "").replace("_", "")
    if task not in TASKS:
        raise UserError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}")
    if permutation is not None and task != "psmnist":
        raise UserError(f"--permutation applies to psmnist only, not {task}")
    if task == "ecg":
        from gradscape.models.datasets.ecg import load_ecg

        return load_ecg(data_dir=data_dir, seed=seed, exclude_unlabelled=ecg_exclude_unlabelled)
    if task in ("smnist", "psmnist"):
        from gradscape.models.datasets.mnist import load_mnist

        return load_mnist(
            permuted=task == "psmnist",
            data_dir=data_dir,
            seed=seed,
            permutation=permutation,
            download=download,
        )
    if shd_binning not in SHD_BINNINGS:
        raise UserError(f"unknown SHD binning {shd_binning!r}; choose one of {', '.join(SHD_BINNINGS)}")
    from gradscape.models.datasets.shd import load_shd

    return load_shd(data_dir=data_dir, seed=seed, download=download, binning=shd_binning)
