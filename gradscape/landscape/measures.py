"""Numbers that say how smooth and how convex an evaluated loss surface is.

A surface is f[i, j] = L(θ* + αᵢ d + βⱼ e) on a uniform grid (step h_α, h_β), or f[i] = L(θ* + αᵢ d)
for a 1-D slice. NaN/inf entries are diverged points: they are counted and masked, never raised.
With the second differences

    Δ_αα f[i, j] = f[i+1, j] − 2 f[i, j] + f[i−1, j]          (likewise Δ_ββ)
    Δ_αβ f[i, j] = (f[i+1, j+1] − f[i+1, j−1] − f[i−1, j+1] + f[i−1, j−1]) / 4

:func:`surface_measures` reports

* centre loss f(0, 0) (or at the grid point nearest to it), min, max, range R = max − min;
* roughness = mean |Δ| over all second differences along both axes, divided by R (per-axis values
  too). It is dimensionless but scales with h²: compare surfaces on the same grid;
* strict local minima in the interior: f[i, j] below all 8 neighbours (2 in 1-D), all of which
  must be finite;
* the discrete Hessian Ĥ = [[Δ_αα/h_α², Δ_αβ/(h_α h_β)], [·, Δ_ββ/h_β²]] at every interior point
  whose 3 × 3 stencil is finite; the fraction of those points where Ĥ is positive semi-definite
  (κ_min ≥ −ε, ε = ``psd_rtol`` × max |κ| over the surface, a tolerance for rounding only);
* principal curvatures κ_min ≤ κ_max (eigenvalues of Ĥ) at the centre and their distribution
  over the surface, and |κ_min / κ_max| (Li et al.'s Hessian ratio in grid coordinates);
* basin width along each axis, per direction ±: the distance from the centre, along the grid
  line through the centre, at which f first reaches f(centre) + ``rise`` × R (linear interpolation
  between grid points). ``status`` says whether the loss crossed there, the line left the grid
  first (``beyond_grid``; ``lower_bound`` = distance to the edge) or hit a diverged point
  (``diverged``; the value is that point's distance, an upper bound); ``centre_diverged`` when
  the centre itself is not finite.

For a bowl a α² + b β²: Δ_αα = 2 a h_α², Ĥ = diag(2a, 2b) everywhere (PSD fraction 1), one local
minimum at the centre, basin half-widths sqrt(rise R / a) and sqrt(rise R / b).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["surface_measures", "curvature_maps", "MEASURES_VERSION"]

MEASURES_VERSION = 1

ArrayLike = Sequence[float] | np.ndarray


def _axis(values: ArrayLike, name: str) -> tuple[np.ndarray, float]:
    a = np.asarray(values, dtype=float)
    if a.ndim != 1 or len(a) < 3:
        raise ValueError(f"{name} must be a 1-D grid of at least 3 points; got shape {a.shape}")
    steps = np.diff(a)
    if not (steps > 0).all() or not np.allclose(steps, steps[0], rtol=1e-6, atol=0):
        raise ValueError(f"{name} must be increasing with a uniform step (second differences need it)")
    return a, float(steps.mean())


def _stats(x: np.ndarray) -> dict[str, Any]:
    x = x[np.isfinite(x)]
    if x.size == 0:
        return {"n": 0}
    q = np.percentile(x, [5, 25, 50, 75, 95])
    return {
        "n": int(x.size),
        "mean": float(x.mean()),
        "min": float(x.min()),
        "p05": float(q[0]),
        "p25": float(q[1]),
        "median": float(q[2]),
        "p75": float(q[3]),
        "p95": float(q[4]),
        "max": float(x.max()),
    }


def _clean(obj: Any) -> Any:
    """JSON-able: numpy scalars to Python, NaN to None, ±inf to "inf"/"-inf"."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        v = float(obj)
        if math.isnan(v):
            return None
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return v
    return obj


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.abs(num / den)


def curvature_maps(alphas: ArrayLike, betas: ArrayLike | None, loss: np.ndarray) -> dict[str, np.ndarray]:
    """Per-point discrete curvature (module docstring) on the loss's grid, NaN where undefined
    (border, non-finite stencil): ``kappa_min``, ``kappa_max`` and ``ratio`` = |κ_min / κ_max|;
    in 1-D ``kappa`` = Δ f / h² only."""
    f = np.asarray(loss, dtype=float)
    a, ha = _axis(alphas, "alphas")
    f = np.where(np.isfinite(f), f, np.nan)
    if betas is None:
        if f.shape != (len(a),):
            raise ValueError(f"loss must have shape ({len(a)},) for a 1-D surface; got {f.shape}")
        k = np.full_like(f, np.nan)
        k[1:-1] = (f[2:] - 2 * f[1:-1] + f[:-2]) / ha**2
        return {"kappa": k}
    b, hb = _axis(betas, "betas")
    if f.shape != (len(a), len(b)):
        raise ValueError(f"loss must have shape ({len(a)}, {len(b)}); got {f.shape}")
    c = f[1:-1, 1:-1]
    faa = (f[2:, 1:-1] - 2 * c + f[:-2, 1:-1]) / ha**2
    fbb = (f[1:-1, 2:] - 2 * c + f[1:-1, :-2]) / hb**2
    fab = (f[2:, 2:] - f[2:, :-2] - f[:-2, 2:] + f[:-2, :-2]) / (4 * ha * hb)
    mean, half = (faa + fbb) / 2, np.hypot((faa - fbb) / 2, fab)
    kmin, kmax = np.full_like(f, np.nan), np.full_like(f, np.nan)
    kmin[1:-1, 1:-1], kmax[1:-1, 1:-1] = mean - half, mean + half
    return {"kappa_min": kmin, "kappa_max": kmax, "ratio": _ratio(kmin, kmax)}


def _basin(coords: np.ndarray, line: np.ndarray, centre: int, threshold: float, step: int) -> dict[str, Any]:
    """Distance from line[centre] along ``step`` (±1) to the first crossing of ``threshold``."""
    d_prev, v_prev = 0.0, line[centre]
    k = centre + step
    while 0 <= k < len(line):
        d, v = abs(coords[k] - coords[centre]), line[k]
        if not np.isfinite(v):
            return {"width": d, "status": "diverged"}
        if v >= threshold:
            frac = 1.0 if v == v_prev else (threshold - v_prev) / (v - v_prev)
            return {"width": d_prev + min(max(frac, 0.0), 1.0) * (d - d_prev), "status": "crossed"}
        d_prev, v_prev = d, v
        k += step
    edge = abs(coords[0 if step < 0 else -1] - coords[centre])
    return {"width": None, "status": "beyond_grid", "lower_bound": edge}


def _basin_axis(coords: np.ndarray, line: np.ndarray, centre: int, threshold: float) -> dict[str, Any]:
    if not np.isfinite(line[centre]):
        none = {"width": None, "status": "centre_diverged"}
        return {"plus": none, "minus": dict(none), "mean": None}
    plus, minus = _basin(coords, line, centre, threshold, +1), _basin(coords, line, centre, threshold, -1)
    both = [w for w in (plus["width"], minus["width"]) if w is not None]
    return {"plus": plus, "minus": minus, "mean": float(np.mean(both)) if len(both) == 2 else None}


def _summary_axis(a: np.ndarray, h: float) -> dict[str, Any]:
    return {"start": float(a[0]), "stop": float(a[-1]), "num": len(a), "step": h}


def _roughness(f: np.ndarray, two_d: bool, rng: float) -> dict[str, Any]:
    """Mean |second difference| over both axes (and per axis) divided by the range R."""
    # Unscaled second differences, NaN wherever a stencil point diverged.
    d_aa = np.abs(f[2:] - 2 * f[1:-1] + f[:-2])
    parts = {"alpha": d_aa[np.isfinite(d_aa)]}
    if two_d:
        d_bb = np.abs(f[:, 2:] - 2 * f[:, 1:-1] + f[:, :-2])
        parts["beta"] = d_bb[np.isfinite(d_bb)]
    all_d = np.concatenate(list(parts.values()))
    out: dict[str, Any] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        out["roughness"] = all_d.mean() / rng if all_d.size else np.nan
        for axis, vals in parts.items():
            out[f"roughness_{axis}"] = vals.mean() / rng if vals.size else np.nan
    return out


def _local_minima(
    f: np.ndarray, a: np.ndarray, b: np.ndarray | None, centre_idx: tuple[int, ...], max_listed: int
) -> dict[str, Any]:
    """Strict interior local minima: below every neighbour, all neighbours finite (lowest listed)."""
    two_d = b is not None
    centre_vals = f[1:-1, 1:-1] if two_d else f[1:-1]
    shifts = (
        [(di, dj) for di in (-1, 0, 1) for dj in (-1, 0, 1) if (di, dj) != (0, 0)] if two_d else [(-1,), (1,)]
    )
    is_min = np.isfinite(centre_vals)
    for s in shifts:
        sl = tuple(slice(1 + d, f.shape[ax] - 1 + d) for ax, d in enumerate(s))
        nb = f[sl]
        is_min &= np.isfinite(nb) & (centre_vals < nb)
    where = np.argwhere(is_min) + 1
    order = np.argsort(f[tuple(where.T)]) if len(where) else np.array([], dtype=int)
    listed = []
    for idx in where[order][:max_listed]:
        entry = {"alpha": a[idx[0]], "loss": f[tuple(idx)]}
        if two_d:
            entry["beta"] = b[idx[1]]
        listed.append(entry)
    return {
        "local_minima": len(where),
        "local_minima_points": listed,
        "centre_is_local_minimum": bool(any(tuple(idx) == centre_idx for idx in where)),
    }


def _discrete_hessian(
    f: np.ndarray, a: np.ndarray, b: np.ndarray | None, centre_idx: tuple[int, ...], psd_rtol: float
) -> dict[str, Any]:
    """PSD fraction of the discrete Hessian Ĥ and its principal curvatures (centre and distribution)."""
    two_d = b is not None
    maps = curvature_maps(a, b, f)
    if two_d:
        kmin, kmax = maps["kappa_min"], maps["kappa_max"]
    else:
        kmin = kmax = maps["kappa"]
    valid = np.isfinite(kmin) & np.isfinite(kmax)
    scale = float(np.max(np.abs(np.concatenate([kmin[valid], kmax[valid]])))) if valid.any() else 0.0
    eps = psd_rtol * scale
    n_valid = int(valid.sum())
    out: dict[str, Any] = {
        "psd_points": n_valid,
        "psd_fraction": float((kmin[valid] >= -eps).mean()) if n_valid else np.nan,
    }
    if two_d:
        ck = (kmin[centre_idx], kmax[centre_idx])
        out["principal_curvatures"] = {
            "centre": {"kappa_min": ck[0], "kappa_max": ck[1], "abs_min_over_max": _ratio(ck[0], ck[1])},
            "kappa_min": _stats(kmin),
            "kappa_max": _stats(kmax),
            "abs_min_over_max": _stats(maps["ratio"]),
            "negative_kappa_min_fraction": float((kmin[valid] < -eps).mean()) if n_valid else np.nan,
        }
    else:
        out["curvature"] = {"centre": kmin[centre_idx], "distribution": _stats(kmin)}
    return out


def surface_measures(
    alphas: ArrayLike,
    betas: ArrayLike | None,
    loss: np.ndarray,
    *,
    rise: float = 0.10,
    centre_loss: float | None = None,
    psd_rtol: float = 1e-6,
    max_listed_minima: int = 50,
) -> dict[str, Any]:
    """Smoothness and convexity measures of a 2-D (``betas`` given) or 1-D surface (module
    docstring), as a JSON-able dict with the settings recorded under ``"settings"``.

    ``loss[i, j]`` is at (alphas[i], betas[j]); both axes uniform. ``centre_loss`` replaces the
    reported centre value when the centre θ* was evaluated directly (e.g. the grid skips 0); the
    basin widths always start at the grid point nearest to 0. At most ``max_listed_minima`` local
    minima (the lowest) are listed; all are counted.
    """
    if not 0 < rise < 1:
        raise ValueError(f"rise must be a fraction of the range in (0, 1); got {rise}")
    f = np.asarray(loss, dtype=float)
    a, ha = _axis(alphas, "alphas")
    two_d = betas is not None
    if two_d:
        b, hb = _axis(betas, "betas")
        if f.shape != (len(a), len(b)):
            raise ValueError(f"loss must have shape ({len(a)}, {len(b)}); got {f.shape}")
    elif f.shape != (len(a),):
        raise ValueError(f"loss must have shape ({len(a)},) for a 1-D surface; got {f.shape}")
    finite = np.isfinite(f)
    f = np.where(finite, f, np.nan)
    ic = int(np.argmin(np.abs(a)))
    centre_idx: tuple[int, ...] = (ic,)
    centre: dict[str, Any] = {"alpha": a[ic]}
    exact = bool(abs(a[ic]) <= 1e-9 * ha)
    if two_d:
        jc = int(np.argmin(np.abs(b)))
        centre_idx = (ic, jc)
        centre["beta"] = b[jc]
        exact &= bool(abs(b[jc]) <= 1e-9 * hb)
    centre["exact"] = exact
    centre["grid_loss"] = f[centre_idx]
    c0 = f[centre_idx] if centre_loss is None else float(centre_loss)
    lo = np.nanmin(f) if finite.any() else np.nan
    hi = np.nanmax(f) if finite.any() else np.nan
    rng = hi - lo

    out: dict[str, Any] = {
        "dims": 2 if two_d else 1,
        "measures_version": MEASURES_VERSION,
        "settings": {
            "rise": rise,
            "psd_rtol": psd_rtol,
            "neighbourhood": 8 if two_d else 2,
            "alphas": _summary_axis(a, ha),
            "centre_loss_source": "grid" if centre_loss is None else "given",
            "roughness": "mean |second difference| along both axes / range",
        },
        "points": int(f.size),
        "diverged": int((~finite).sum()),
        "diverged_fraction": float((~finite).mean()),
        "centre": centre,
        "centre_loss": c0,
        "min": lo,
        "max": hi,
        "range": rng,
    }
    if finite.any():
        am = np.unravel_index(np.nanargmin(f), f.shape)
        out["argmin"] = {"alpha": a[am[0]], **({"beta": b[am[1]]} if two_d else {})}

    b_or_none = b if two_d else None
    out.update(_roughness(f, two_d, rng))
    out.update(_local_minima(f, a, b_or_none, centre_idx, max_listed_minima))
    out.update(_discrete_hessian(f, a, b_or_none, centre_idx, psd_rtol))

    # Basin width along the grid lines through the centre.
    threshold = f[centre_idx] + rise * rng
    widths = {"alpha": _basin_axis(a, f[:, centre_idx[1]] if two_d else f, ic, threshold)}
    if two_d:
        out["settings"]["betas"] = _summary_axis(b, hb)
        widths["beta"] = _basin_axis(b, f[ic, :], centre_idx[1], threshold)
    out["basin_width"] = {"threshold": threshold, **widths}
    return _clean(out)
