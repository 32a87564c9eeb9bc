"""Curvature of a model's loss: extreme Hessian eigenvalues, trace, Li et al.'s ratio map, directions.

All quantities are of the (surrogate) Hessian H̃ of :class:`~gradscape.landscape.hessian.HVPOperator`
over a named parameter subset θ, on a fixed data subset:

* :func:`hessian_extremes`: λ_max (top, ``"LA"``) and λ_min (bottom, ``"SA"``) with residuals
  ‖H̃ v − λ v‖, and |λ_min / λ_max|.
* :func:`hessian_trace`: Hutchinson's estimate of tr H̃ = Σ λᵢ.
* :func:`curvature_ratio_map` / :func:`curvature_ratio_grid`: λ_min, λ_max and |λ_min / λ_max| at
  every point of a landscape grid θ* + α d + β e (Li et al. 2018, Fig. 6; expensive: two Lanczos
  runs per point). Li et al. read a small ratio where λ_min < 0 as "nearly convex": the raw λ_min,
  λ_max are returned too, so λ_min ≥ 0 (locally convex) can be told apart from a small negative one.
* :func:`hessian_directions`: the top-k eigenvectors as ``{name: tensor}`` dicts, for use as
  landscape directions (unit norm over the whole subset; no filter normalisation applied).

``loss_fn(f, batch)`` gets ``f``, the module's forward at the parameters being evaluated; with
``data=None`` it is called as ``loss_fn(f)`` and closes over its own data. A grid-evaluator style
``loss_fn(outputs, y)`` is adapted by :func:`~gradscape.landscape.hessian.output_loss`; several
batches (``batches=True``) combine as Σ w_k ℓ_k / Σ w_k with ``weights`` (e.g. the batch sizes).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from gradscape.errors import UserError
from gradscape.landscape.eigen import EigenPairs, TraceResult, hutchinson_trace, lanczos, power_iteration
from gradscape.landscape.hessian import HVPOperator, LossFn
from gradscape.landscape.parameters import parameter_point, perturbed_params

__all__ = [
    "EIGEN_METHODS",
    "Extremes",
    "hessian_operator",
    "hessian_extremes",
    "hessian_trace",
    "curvature_ratio_map",
    "curvature_ratio_grid",
    "hessian_directions",
]

EIGEN_METHODS = ("lanczos", "power")

Params = Mapping[str, Tensor] | Iterable[str] | None


@dataclass
class Extremes:
    """Top (λ_max) and bottom (λ_min) eigenpairs of H̃ and Li et al.'s |λ_min / λ_max|."""

    top: EigenPairs
    bottom: EigenPairs

    @property
    def lambda_max(self) -> float:
        return float(self.top.values[0])

    @property
    def lambda_min(self) -> float:
        return float(self.bottom.values[0])

    @property
    def ratio(self) -> float:
        return abs(self.lambda_min / self.lambda_max) if self.lambda_max != 0 else math.inf

    def to_dict(self) -> dict[str, Any]:
        ratio = self.ratio
        return {
            "lambda_max": self.lambda_max,
            "lambda_min": self.lambda_min,
            "abs_min_over_max": ratio if math.isfinite(ratio) else str(ratio),
            "top": self.top.to_dict(),
            "bottom": self.bottom.to_dict(),
        }


def _eig(
    op: HVPOperator, k: int, which: str, method: str, tol: float, maxiter: int | None, seed: int
) -> EigenPairs:
    if method == "lanczos":
        return lanczos(op, k, which=which, tol=tol, maxiter=maxiter, seed=seed)
    if method == "power":
        return power_iteration(op, k, which=which, tol=tol or 1e-8, n_iter=maxiter or 500, seed=seed)
    raise UserError(f"unknown eigenvalue method {method!r}; choose one of: {', '.join(EIGEN_METHODS)}")


def hessian_operator(
    model: nn.Module,
    loss_fn: LossFn,
    params: Params = None,
    *,
    data: Any = None,
    batches: bool = False,
    weights: Sequence[float] | None = None,
    hvp: str = "double-backward",
) -> HVPOperator:
    """H̃ of ``loss_fn`` at ``params`` as an operator (:class:`HVPOperator`, whose docstring says what
    ``data``, ``batches``, ``weights`` and the ``hvp`` method mean). The functions below take the
    same keywords (``**operator_args``) and build their operator here."""
    return HVPOperator(model, loss_fn, data, params, batches=batches, weights=weights, method=hvp)


def hessian_extremes(
    model: nn.Module,
    loss_fn: LossFn,
    params: Params = None,
    *,
    k: int = 1,
    method: str = "lanczos",
    tol: float = 1e-6,
    maxiter: int | None = None,
    seed: int = 0,
    **operator_args: Any,
) -> Extremes:
    """The k largest and k smallest eigenpairs of H̃ at ``params`` (see :func:`hessian_operator`)."""
    op = hessian_operator(model, loss_fn, params, **operator_args)
    top = _eig(op, k, "LA", method, tol, maxiter, seed)
    bottom = _eig(op, k, "SA", method, tol, maxiter, seed)
    return Extremes(top, bottom)


def hessian_trace(
    model: nn.Module,
    loss_fn: LossFn,
    params: Params = None,
    *,
    n_samples: int = 100,
    seed: int = 0,
    progress: bool = False,
    **operator_args: Any,
) -> TraceResult:
    """Hutchinson estimate of tr H̃ with ``n_samples`` seeded Rademacher probes."""
    op = hessian_operator(model, loss_fn, params, **operator_args)
    return hutchinson_trace(op, n_samples, seed=seed, progress=progress)


def curvature_ratio_map(
    model: nn.Module,
    loss_fn: LossFn,
    points: Sequence[Mapping[str, Tensor]],
    *,
    method: str = "lanczos",
    tol: float = 1e-4,
    maxiter: int | None = None,
    seed: int = 0,
    progress: bool = True,
    **operator_args: Any,
) -> dict[str, Any]:
    """λ_min, λ_max and |λ_min / λ_max| of H̃ at each point (a ``{name: tensor}`` dict, e.g. a
    perturbed θ* + α d + β e); the Hessian is over the names of each point.

    Returns numpy arrays of length len(points): ``loss``, ``lambda_min``, ``lambda_max``,
    ``ratio``, ``residual_min``, ``residual_max`` (float, NaN where the loss is not finite: a
    diverged point is recorded, never raised) and ``converged`` (bool), plus ``settings``.
    """
    n = len(points)
    out = {
        key: np.full(n, np.nan)
        for key in ("loss", "lambda_min", "lambda_max", "ratio", "residual_min", "residual_max")
    }
    out["converged"] = np.zeros(n, dtype=bool)
    for i, point in enumerate(tqdm(points, desc="Hessian eigenvalues", unit="point", disable=not progress)):
        op = hessian_operator(model, loss_fn, point, **operator_args)
        with torch.no_grad():
            loss = float(op.loss())
        out["loss"][i] = loss
        if not math.isfinite(loss):
            continue
        try:
            top = _eig(op, 1, "LA", method, tol, maxiter, seed)
            bottom = _eig(op, 1, "SA", method, tol, maxiter, seed)
        except (UserError, ValueError, RuntimeError):  # ARPACK/HVP failure at a diverging point
            continue
        lmax, lmin = float(top.values[0]), float(bottom.values[0])
        out["lambda_max"][i], out["lambda_min"][i] = lmax, lmin
        out["ratio"][i] = abs(lmin / lmax) if lmax != 0 else np.inf
        out["residual_max"][i], out["residual_min"][i] = float(top.residuals[0]), float(bottom.residuals[0])
        out["converged"][i] = top.converged and bottom.converged
    hvp = operator_args.get("hvp", "double-backward")
    out["settings"] = {"method": method, "tol": tol, "maxiter": maxiter, "seed": seed, "hvp": hvp}
    return out


def curvature_ratio_grid(
    model: nn.Module,
    loss_fn: LossFn,
    centre: Mapping[str, Tensor] | Iterable[str] | None,
    directions: Sequence[Mapping[str, Tensor]],
    alphas: Sequence[float] | np.ndarray,
    betas: Sequence[float] | np.ndarray | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """:func:`curvature_ratio_map` on the grid θ* + α d (+ β e): arrays of shape (len(alphas),) or
    (len(alphas), len(betas)), ``[i, j]`` at (alphas[i], betas[j]). ``centre`` is θ* (a dict, names
    or ``None`` = all trainable parameters of ``model``); ``directions`` = [d] or [d, e] over the
    same names (missing names are not perturbed)."""
    theta = parameter_point(model, centre)
    want = 1 if betas is None else 2
    if len(directions) != want:
        raise UserError(f"a {want}-D grid needs {want} direction(s); got {len(directions)}")
    for d in directions:
        extra = set(d) - set(theta)
        if extra:
            raise UserError(f"direction names {sorted(extra)} are not in the centre's parameters")
    a = np.asarray(alphas, dtype=float)
    b = None if betas is None else np.asarray(betas, dtype=float)
    coords = [(x,) for x in a] if b is None else [(x, y) for x in a for y in b]
    points = []
    for c in coords:
        stacked = perturbed_params(theta, directions, torch.tensor([c], dtype=torch.float64))
        points.append({n: t[0] for n, t in stacked.items()})
    out = curvature_ratio_map(model, loss_fn, points, **kwargs)
    shape = (len(a),) if b is None else (len(a), len(b))
    for key, value in list(out.items()):
        if isinstance(value, np.ndarray):
            out[key] = value.reshape(shape)
    out["alphas"], out["betas"] = a, b
    return out


def hessian_directions(
    model: nn.Module,
    loss_fn: LossFn,
    params: Params = None,
    k: int = 2,
    seed: int = 0,
    *,
    which: str = "LA",
    method: str = "lanczos",
    tol: float = 1e-6,
    maxiter: int | None = None,
    **operator_args: Any,
) -> list[dict[str, Tensor]]:
    """The k eigenvectors of H̃ with the largest (``which="LA"``) eigenvalues, as ``{name: tensor}``
    with the shapes of ``params`` and unit norm over all of them; signs fixed (largest entry
    positive) so that the same seed gives the same directions. ``seed`` draws Lanczos' start vector.
    """
    op = hessian_operator(model, loss_fn, params, **operator_args)
    res = _eig(op, k, which, method, tol, maxiter, seed)
    return [{n: t.clone() for n, t in op.unflatten(v).items()} for v in res.vectors]
