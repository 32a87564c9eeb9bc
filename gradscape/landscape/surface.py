"""The landscape result file: one ``.npz`` holding a (partly) evaluated surface and its metadata.

Arrays: ``alpha`` (and ``beta``), ``loss``, ``accuracy`` (float64, NaN where not computed), the
boolean ``computed`` mask, ``center`` = [f(θ*), accuracy(θ*)] with ``center_computed`` (the centre
θ* is always evaluated directly; the on-disk keys keep the American spelling of the first files),
``dirK__NAME`` for direction K over parameter NAME, ``extra__NAME`` for further arrays (e.g. a
curvature map or a trajectory ``path``), and ``meta``: a JSON string with the resolved ``config``
(compared on resume), provenance and progress. Data never runs code: read with
``allow_pickle=False``; written atomically (:func:`gradscape.io.atomic_savez`).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gradscape.errors import UserError
from gradscape.io import atomic_savez, to_jsonable
from gradscape.landscape.directions import Directions
from gradscape.landscape.grid import Grid, parse_grid

__all__ = ["Surface", "load_surface"]


@dataclass
class Surface:
    """A (partly) evaluated landscape: arrays of the grid's shape plus metadata.

    ``loss``/``accuracy`` are float64 (NaN where not computed); ``computed`` marks evaluated points;
    ``diverged`` = computed and non-finite loss. ``centre`` holds f(θ*) evaluated directly
    (``loss``, ``accuracy``, ``computed``; ``center`` is the same dict under the file's key name).
    ``extras`` are further arrays (e.g. ``curvature_ratio``, ``path``) stored beside them.
    """

    grid: Grid
    loss: np.ndarray
    accuracy: np.ndarray
    computed: np.ndarray
    centre: dict[str, Any]
    meta: dict[str, Any]
    directions: Directions | None = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def center(self) -> dict[str, Any]:
        """:attr:`centre` under the result file's key name (kept for existing callers)."""
        return self.centre

    @center.setter
    def center(self, value: dict[str, Any]) -> None:
        self.centre = value

    @property
    def diverged(self) -> np.ndarray:
        return self.computed & ~np.isfinite(self.loss)

    @property
    def complete(self) -> bool:
        return bool(self.computed.all())

    @property
    def alphas(self) -> np.ndarray:
        return self.grid.coords[0]

    @property
    def betas(self) -> np.ndarray | None:
        return self.grid.coords[1] if self.grid.dims == 2 else None

    @property
    def label(self) -> str:
        return str(self.meta.get("label") or self.meta.get("config", {}).get("model_kind") or "model")

    def masked_loss(self) -> np.ndarray:
        """Loss with NaN wherever a point is not computed or diverged (for plots and measures)."""
        return np.where(self.computed & np.isfinite(self.loss), self.loss, np.nan)

    def save(self, path: str | Path) -> Path:
        arrays: dict[str, Any] = {
            "alpha": self.grid.coords[0],
            "loss": self.loss,
            "accuracy": self.accuracy,
            "computed": self.computed,
            "center": np.array([self.centre.get("loss", np.nan), self.centre.get("accuracy", np.nan)]),
            "center_computed": np.array(bool(self.centre.get("computed", False))),
            "meta": np.array(json.dumps(to_jsonable({**self.meta, "grid": self.grid.spec}))),
        }
        if self.grid.dims == 2:
            arrays["beta"] = self.grid.coords[1]
        if self.directions is not None:
            for k, vec in enumerate(self.directions.vectors):
                for name, t in vec.items():
                    arrays[f"dir{k}__{name}"] = t.detach().cpu().numpy()
        for name, a in self.extras.items():
            arrays[f"extra__{name}"] = np.asarray(a)
        return atomic_savez(path, **arrays)


class _Malformed(ValueError):
    """A result file whose arrays or metadata do not fit together (the message says which)."""


def _checked(data: dict[str, np.ndarray], meta: Any) -> Grid:
    """The grid of a result's ``meta``, with every array checked against it (:class:`_Malformed`)."""
    if not isinstance(meta, dict):
        raise _Malformed(f"its meta is a JSON {type(meta).__name__}, not an object")
    if not isinstance(meta.get("grid"), str):
        raise _Malformed("its meta has no grid spec")
    grid = parse_grid(meta["grid"], 2 if "beta" in data else 1)
    for key in ("loss", "accuracy", "computed"):
        if data[key].shape != grid.shape:
            raise _Malformed(f"{key} has shape {data[key].shape}, but the grid {grid.spec} is {grid.shape}")
    if data["center"].shape != (2,) or data["center_computed"].shape != ():
        raise _Malformed(f"center has shape {data['center'].shape}, expected (2,)")
    return grid


def load_surface(path: str | Path) -> Surface:
    """Read a result file written by :meth:`Surface.save` (:class:`UserError` if it is not one).

    Every array is checked against the grid in ``meta``, so a damaged or hand-edited file is one
    line naming it, never an error from the plots or measures later.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"landscape result {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
        meta = json.loads(str(data["meta"]))
        grid = _checked(data, meta)
        dirs: dict[int, dict[str, Tensor]] = {}
        extras = {}
        for key, a in data.items():
            if key.startswith("dir") and "__" in key:
                k, name = key[3:].split("__", 1)
                dirs.setdefault(int(k), {})[name] = torch.from_numpy(np.array(a))
            elif key.startswith("extra__"):
                extras[key[7:]] = a
    except _Malformed as exc:
        raise UserError(f"{path} is not a whole gradscape landscape result: {exc}") from None
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
        detail = (str(exc).strip().splitlines() or [""])[0]
        raise UserError(
            f"{path} is not a gradscape landscape result ({type(exc).__name__}: {detail}); give a "
            "landscape.npz written by gradscape landscape, or compute it again"
        ) from None
    directions = Directions([dirs[k] for k in sorted(dirs)], meta.get("directions", {})) if dirs else None
    c = data["center"]
    return Surface(
        grid=grid,
        loss=data["loss"].astype(np.float64),
        accuracy=data["accuracy"].astype(np.float64),
        computed=data["computed"].astype(bool),
        centre={"loss": float(c[0]), "accuracy": float(c[1]), "computed": bool(data["center_computed"])},
        meta=meta,
        directions=directions,
        extras=extras,
    )
