"""Other planes to look at a landscape in: through checkpoints, and the PCA plane of a trajectory.

* :func:`checkpoint_directions`: the line through θ_0 and θ_1 (d = θ_1 − θ_0) or the plane through
  θ_0, θ_1, θ_2 (d = θ_1 − θ_0, e = θ_2 − θ_0), centred at θ_0: the checkpoints sit at (0), (1) or
  (0, 0), (1, 0), (0, 1). No normalisation: the coordinates are fractions of the way between them.
* :func:`pca_directions`: with M the matrix whose rows are θ_i − θ* for the saved checkpoints θ_i of a
  training run and θ* its final (or best) weights, the top principal directions u_1, u_2 of M (rows
  centred, as Li et al. 2018 did with scikit-learn's PCA), computed by SVD; explained variance ratio
  σ_k² / Σ σ². The path's coordinates are (⟨θ_i − θ*, u_1⟩, ⟨θ_i − θ*, u_2⟩): the trajectory drawn on
  the contour plot (store them as the result's ``path`` extra). The u_k are unit vectors over the
  selected parameters, not filter-normalised.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gradscape.errors import UserError
from gradscape.landscape.directions import Directions

__all__ = ["checkpoint_point", "checkpoint_params", "checkpoint_directions", "pca_directions"]


def checkpoint_point(checkpoint: Any, names: Sequence[str]) -> dict[str, Tensor]:
    """The parameters ``names`` of an opened :class:`~gradscape.models.checkpoints.Checkpoint` (copies)."""
    params = dict(checkpoint.model.named_parameters())
    missing = [n for n in names if n not in params]
    if missing:
        raise UserError(f"{checkpoint.path} has no parameter(s) {', '.join(missing)}")
    return {n: params[n].detach().clone() for n in names}


def checkpoint_params(
    paths: Sequence[str | Path], names: Sequence[str], model: str | None = None
) -> list[dict]:
    """The parameters ``names`` of each checkpoint (gradscape or reference), as ``{name: tensor}``."""
    from gradscape.models.checkpoints import open_checkpoint

    return [checkpoint_point(open_checkpoint(p, model), names) for p in paths]


def _check_same(points: Sequence[Mapping[str, Tensor]]) -> list[str]:
    names = list(points[0])
    for p in points[1:]:
        if list(p) != names or any(p[n].shape != points[0][n].shape for n in names):
            raise UserError("all checkpoints must hold the same parameters with the same shapes")
    return names


def checkpoint_directions(centre: Mapping[str, Tensor], *others: Mapping[str, Tensor]) -> Directions:
    """Directions of the line (one other point) or plane (two) through checkpoints, centred at ``centre``."""
    if len(others) not in (1, 2):
        raise UserError(f"a line needs 2 checkpoints and a plane 3; got {1 + len(others)}")
    names = _check_same([centre, *others])
    vecs = [{n: (o[n] - centre[n]).detach() for n in names} for o in others]
    coords = [[0.0] * len(others)] + [
        [1.0 if j == i else 0.0 for j in range(len(others))] for i in range(len(others))
    ]
    info = {
        "kind": "checkpoints",
        "params": names,
        "dims": len(others),
        "checkpoint_coordinates": coords,
        "note": "d_k = θ_k − θ_0, not normalised: coordinate 1 reaches checkpoint k",
    }
    return Directions(vecs, info)


def pca_directions(
    trajectory: Sequence[Mapping[str, Tensor]],
    centre: Mapping[str, Tensor],
    *,
    dims: int = 2,
    centred: bool = True,
) -> tuple[Directions, np.ndarray]:
    """Top ``dims`` principal directions of the trajectory around ``centre`` and the path's coordinates.

    Returns (directions, path) with path of shape (len(trajectory), dims); ``info`` records the
    explained variance ratio of each direction. Signs are fixed so that the largest-magnitude entry
    of each direction is positive (the same trajectory always gives the same plane).
    """
    if dims not in (1, 2):
        raise UserError(f"dims must be 1 or 2, not {dims}")
    if len(trajectory) < dims + 1:
        raise UserError(f"a {dims}-D PCA plane needs at least {dims + 1} checkpoints; got {len(trajectory)}")
    names = _check_same([centre, *trajectory])
    flat_c = torch.cat([centre[n].detach().reshape(-1).to(torch.float64) for n in names])
    m = torch.stack(
        [torch.cat([t[n].detach().reshape(-1).to(torch.float64) for n in names]) - flat_c for t in trajectory]
    )
    x = m - m.mean(0, keepdim=True) if centred else m
    _, s, vh = torch.linalg.svd(x, full_matrices=False)
    var = s**2
    ratio = (var / var.sum()).tolist() if var.sum() > 0 else [0.0] * len(var)
    comps = vh[:dims]
    signs = torch.sign(comps.gather(1, comps.abs().argmax(1, keepdim=True)))
    comps = comps * signs
    path = (m @ comps.T).numpy()
    vecs = []
    for u in comps:
        parts, off = {}, 0
        for n in names:
            k = centre[n].numel()
            parts[n] = u[off : off + k].reshape(centre[n].shape).to(centre[n].dtype)
            off += k
        vecs.append(parts)
    info: dict[str, Any] = {
        "kind": "pca",
        "params": names,
        "dims": dims,
        "centred": centred,
        "checkpoints": len(trajectory),
        "explained_variance_ratio": ratio[:dims],
        "note": "unit-norm principal directions of θ_i − θ* (not filter-normalised)",
    }
    return Directions(vecs, info), path
