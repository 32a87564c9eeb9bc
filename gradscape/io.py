"""Safe result files: atomic writes and the metadata every result records."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import tempfile
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from gradscape import __version__

__all__ = [
    "atomic_write",
    "output_folder",
    "atomic_write_text",
    "atomic_write_json",
    "atomic_savez",
    "save_figure",
    "config_hash",
    "provenance",
    "to_jsonable",
]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: completed atomic writes of this process (read by the kill hook only)
_WRITES = 0


def _kill_hook() -> None:
    """Test hook: ``GRADSCAPE_KILL_AFTER_WRITES=N`` ends the process right after its N-th write.

    ``os._exit(137)`` (the exit status of a SIGKILL'd process) runs no cleanup, no ``finally`` and no
    buffered-output flush, so a test can stop a job at an exact, reproducible point and check that
    what it left on disk is complete or absent. Unset, empty or not a positive integer: no effect.
    """
    global _WRITES
    limit = os.environ.get("GRADSCAPE_KILL_AFTER_WRITES", "")
    _WRITES += 1
    if limit.isdigit() and _WRITES == int(limit) > 0:
        os._exit(137)


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it over ``path``.

    A crash mid-write leaves the old file (or none), never a truncated one.

    Test hook: with the environment variable ``GRADSCAPE_KILL_AFTER_WRITES=N`` the process exits
    abruptly (``os._exit(137)``, no cleanup) right after its N-th completed atomic write, counted
    per process (:func:`_kill_hook`; ``tests/commands/test_kill_resume.py``). Not for use outside tests.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix + ".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; results should be as readable as any file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _kill_hook()
    return path


def output_folder(path: str | Path, flag: str = "--out") -> Path:
    """Create (if needed) and check the output folder ``path`` before any computing starts.

    One :class:`~gradscape.errors.UserError` line when it is an existing file, cannot be created or
    is not writable, so a long job never fails at its first write.
    """
    from gradscape.errors import UserError

    folder = Path(path).expanduser()
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{flag} {folder} is an existing file, not a folder; give a folder path")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".gradscape-write-test.")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UserError(
            f"{flag} {folder} cannot be written ({exc.strerror or type(exc).__name__}); "
            "choose a writable folder"
        ) from None
    return folder


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def to_jsonable(obj: Any) -> Any:
    """Numbers, strings, lists and dicts from numpy/torch scalars, arrays, paths and dataclasses."""
    import dataclasses

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if hasattr(obj, "detach") and hasattr(obj, "tolist"):  # torch tensor
        return obj.detach().cpu().tolist()
    if isinstance(obj, float) and (obj != obj or obj in (float("inf"), float("-inf"))):
        return str(obj)
    return obj


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2, sort_keys=False) + "\n")


def atomic_savez(path: str | Path, **arrays: Any) -> Path:
    """``np.savez`` atomically (the file name is kept exactly, no ``.npz`` appended)."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    return atomic_write(path, write)


def save_figure(
    fig: Any,
    stem: str | Path,
    *,
    formats: tuple[str, ...] = ("png", "pdf"),
    dpi: int = 150,
    tight: bool = True,
) -> list[Path]:
    """Write a matplotlib figure as ``stem.<fmt>`` for each format, atomically, then close it."""
    import matplotlib.pyplot as plt

    stem = Path(stem)
    extra = {"bbox_inches": "tight"} if tight else {}
    paths = []
    for fmt in formats:
        path = stem.parent / f"{stem.name}.{fmt}"
        atomic_write(path, lambda p, fmt=fmt: fig.savefig(p, format=fmt, dpi=dpi, **extra))
        paths.append(path)
    plt.close(fig)
    return paths


def config_hash(config: Mapping[str, Any]) -> str:
    """A stable SHA-256 (first 16 hex digits) of a JSON-able config: the cache key of a run."""
    blob = json.dumps(to_jsonable(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def provenance() -> dict[str, Any]:
    """Package version, interpreter, torch version and time: recorded in every result file."""
    import torch

    return {
        "gradscape_version": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "platform": platform.platform(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
