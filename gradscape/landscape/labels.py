"""The settings caption every landscape figure and page carries, and the clipped loss both draw."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["caption", "clipped"]


def caption(surface: Any) -> str:
    """One line of settings for a figure title."""
    cfg = surface.meta.get("config", {})
    d = surface.meta.get("directions", {})
    what = "f(α, β) = L(θ* + αd + βe)" if surface.grid.dims == 2 else "f(α) = L(θ* + αd)"
    parts = [
        what,
        f"params {', '.join(cfg.get('params', []))}",
        f"{d.get('kind', 'given')} directions"
        + (f", {d['normalization']}-normalised" if d.get("normalization") else "")
        + (", e ⊥ d" if d.get("orthogonalized") else ""),
        f"seed {cfg.get('seed', d.get('seed', '?'))}",
    ]
    if cfg.get("task"):
        parts.append(f"{cfg['task']} {cfg.get('split', '')} ({cfg.get('samples', '?')} samples)")
    if cfg.get("steps"):
        parts.append(f"first {cfg['steps']} steps")
    parts.append(f"grid {surface.grid.spec}")
    return "; ".join(parts)


def clipped(surface: Any, vmax: float | None) -> np.ndarray:
    """The masked loss f (NaN where not computed or diverged), clipped at ``vmax`` when given."""
    f = surface.masked_loss()
    return np.minimum(f, vmax) if vmax is not None else f
