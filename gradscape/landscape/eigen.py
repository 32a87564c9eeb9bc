"""Algorithms on a symmetric :class:`~gradscape.landscape.operators.Operator`: eigenpairs and trace.

They see only ``op.size`` and ``op.apply(v) = A v``, so they work the same on a model's Hessian, an
explicit matrix or any other symmetric map.

* :func:`lanczos`: extreme eigenpairs by implicitly restarted Lanczos. Nothing of Lanczos is written
  here: it is ARPACK through :func:`scipy.sparse.linalg.eigsh` on
  :func:`~gradscape.landscape.operators.as_linear_operator` (float64, one host round trip per
  product), with a seeded Gaussian start vector ``v0`` and ARPACK's relative tolerance ``tol``;
  ``which = "LA"`` (largest algebraic), ``"SA"`` (smallest) or ``"LM"`` (largest |λ|).
* :func:`power_iteration`: v ← A v / ‖A v‖ with projection deflation for the next pairs; for
  ``"LA"``/``"SA"`` it iterates the shifted map A ∓ ρ I, ρ = |λ|_max, whose dominant eigenvalue is
  λ_max + ρ or λ_min − ρ. SciPy has no power iteration; it stays on the operator's device and
  dtype (no host round trips), which is why hessian-eigenthings uses it too.
* :func:`hutchinson_trace`: tr A ≈ (1/m) Σ_i zᵢᵀ A zᵢ with Rademacher zᵢ ∈ {−1, 1}ⁿ (unbiased, variance
  2 Σ_{i≠j} A_ij² per sample).

Every result carries the residual ‖A v − λ v‖ of each returned pair (‖v‖ = 1), computed with one
more product, so a caller can judge how far to trust λ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy.sparse.linalg import ArpackError, ArpackNoConvergence, eigsh
from torch import Tensor
from tqdm.auto import tqdm

from gradscape.errors import UserError
from gradscape.landscape.operators import Operator, as_linear_operator

__all__ = ["EigenPairs", "TraceResult", "lanczos", "power_iteration", "hutchinson_trace", "WHICH"]

WHICH = ("LA", "SA", "LM")


@dataclass
class EigenPairs:
    """k eigenpairs: ``values`` (k,), unit ``vectors`` (k, n) (row i pairs with values[i]),
    ``residuals`` ‖A vᵢ − λᵢ vᵢ‖ (k,), and how they were found."""

    values: Tensor
    vectors: Tensor
    residuals: Tensor
    which: str
    method: str
    converged: bool
    n_applies: int
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (vectors left out)."""
        scale = self.values.abs().clamp_min(torch.finfo(self.values.dtype).tiny)
        return {
            "method": self.method,
            "which": self.which,
            "values": self.values.tolist(),
            "residuals": self.residuals.tolist(),
            "relative_residuals": (self.residuals / scale).tolist(),
            "converged": self.converged,
            "n_applies": self.n_applies,
            "settings": dict(self.settings),
        }


@dataclass
class TraceResult:
    """Hutchinson estimate of tr A with its standard error over ``n_samples`` probes."""

    estimate: float
    stderr: float
    n_samples: int
    samples: Tensor
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimate": self.estimate,
            "stderr": self.stderr,
            "n_samples": self.n_samples,
            "seed": self.seed,
            "probe": "rademacher",
        }


def _check(op: Operator, k: int, which: str) -> None:
    if which not in WHICH:
        raise UserError(f"unknown eigenvalue selection {which!r}; choose one of: {', '.join(WHICH)}")
    if not 1 <= k <= op.size:
        raise UserError(f"k must be between 1 and the number of parameters ({op.size}); got {k}")


def _fix_sign(vectors: Tensor) -> Tensor:
    """Eigenvectors are defined up to sign: make each one's largest-|·| entry positive (reproducible)."""
    idx = vectors.abs().argmax(dim=1, keepdim=True)
    sign = torch.sign(vectors.gather(1, idx))
    return vectors * torch.where(sign == 0, torch.ones_like(sign), sign)


def _order(values: Tensor, which: str) -> Tensor:
    if which == "LA":
        return torch.argsort(values, descending=True)
    if which == "SA":
        return torch.argsort(values)
    return torch.argsort(values.abs(), descending=True)


def _finish(
    op: Operator,
    values: Tensor,
    vectors: Tensor,
    which: str,
    method: str,
    converged: bool,
    applies: int,
    settings: dict[str, Any],
) -> EigenPairs:
    order = _order(values, which)
    vectors = _fix_sign(vectors[order])
    vectors = vectors / vectors.norm(dim=1, keepdim=True)
    av = torch.stack([op.apply(v) for v in vectors])
    lam = (vectors * av).sum(dim=1)  # Rayleigh quotients: at least as accurate as the solver's values
    residuals = (av - lam[:, None] * vectors).norm(dim=1)
    return EigenPairs(lam, vectors, residuals, which, method, converged, applies + len(vectors), settings)


def _invariant_krylov(op: Operator, v0: np.ndarray, m: int) -> tuple[Tensor, Tensor]:
    """Ritz pairs of ``op`` on span{v0, op v0, …} (at most m vectors; stops when it closes)."""
    q = torch.from_numpy(v0).to(dtype=op.dtype, device=op.device)
    basis = [q / q.norm()]
    for _ in range(m - 1):
        w = op.apply(basis[-1])
        for b in basis:  # twice: classical Gram–Schmidt loses orthogonality in one pass
            w = w - (b @ w) * b
        for b in basis:
            w = w - (b @ w) * b
        if float(w.norm()) <= 1e-10 * max(1.0, float(op.apply(basis[0]).norm())):
            break
        basis.append(w / w.norm())
    Q = torch.stack(basis)  # (j, n)
    T = Q @ torch.stack([op.apply(b) for b in basis]).T
    vals, vecs = torch.linalg.eigh((T + T.T) / 2)
    return vals, vecs.T @ Q


def lanczos(
    op: Operator,
    k: int = 1,
    *,
    which: str = "LA",
    tol: float = 0.0,
    maxiter: int | None = None,
    ncv: int | None = None,
    seed: int = 0,
) -> EigenPairs:
    """The k extreme eigenpairs of ``op`` by ARPACK's implicitly restarted Lanczos.

    ``tol`` is ARPACK's relative accuracy (0 = machine precision); ``ncv`` the Krylov dimension
    (default min(n, max(2k + 1, 20))); ``seed`` draws the Gaussian start vector. When k ≥ n
    (ARPACK needs k < n) the dense matrix is built with n products and diagonalised instead.
    If ARPACK stops before convergence the pairs it has are returned with ``converged=False``.
    """
    _check(op, k, which)
    settings = {"k": k, "tol": tol, "maxiter": maxiter, "ncv": ncv, "seed": seed}
    n = op.size
    if k >= n:
        dense = op.dense()
        vals, vecs = torch.linalg.eigh((dense + dense.T) / 2)
        order = _order(vals, which)[:k]
        return _finish(op, vals[order], vecs.T[order], which, "dense", True, n, settings)
    linop = as_linear_operator(op)
    v0 = np.random.default_rng(seed).standard_normal(n)
    probe = op.apply(torch.from_numpy(v0).to(dtype=op.dtype, device=op.device))
    if not bool(torch.isfinite(probe).all()):
        # A diverging objective (e.g. a gradient that overflows through time) has no curvature to
        # report: NaN pairs, marked, rather than an ARPACK failure.
        nan = torch.full((k,), math.nan, dtype=op.dtype, device=op.device)
        vecs = torch.full((k, n), math.nan, dtype=op.dtype, device=op.device)
        return EigenPairs(nan, vecs, nan.clone(), which, "non-finite", False, 1, settings)
    if ncv is None:
        ncv = min(n, max(2 * k + 1, 20))
    converged = True
    try:
        vals, vecs = eigsh(linop, k=k, which=which, tol=tol, maxiter=maxiter, ncv=ncv, v0=v0)
    except ArpackError:
        # ARPACK gives up when the Krylov space stops growing (info −9 / −9999): an operator of rank
        # below ncv, such as the Hessian of a loss on a handful of samples. That space is then
        # invariant, so Rayleigh–Ritz on it is exact: do it with full reorthogonalisation.
        values, vectors = _invariant_krylov(op, v0, ncv)
        order = _order(values, which)[:k]
        return _finish(op, values[order], vectors[order], which, "krylov-breakdown", True, ncv, settings)
    except ArpackNoConvergence as err:
        converged = False
        vals, vecs = err.eigenvalues, err.eigenvectors
        if len(vals) == 0:
            raise UserError(
                f"Lanczos found no eigenpair within maxiter={maxiter}: raise --maxiter or the tolerance"
            ) from None
    values = torch.from_numpy(np.asarray(vals)).to(dtype=op.dtype, device=op.device)
    vectors = torch.from_numpy(np.asarray(vecs).T.copy()).to(dtype=op.dtype, device=op.device)
    return _finish(op, values, vectors, which, "lanczos", converged, linop.applies, settings)


def power_iteration(
    op: Operator,
    k: int = 1,
    *,
    which: str = "LM",
    n_iter: int = 500,
    tol: float = 1e-8,
    seed: int = 0,
) -> EigenPairs:
    """The k eigenpairs of ``op`` by power iteration with deflation (module docstring).

    Stops each pair when the Rayleigh quotient changes by at most ``tol`` (relative) between two
    iterations, or after ``n_iter`` iterations (then ``converged=False``). Convergence is linear
    with rate |λ_{i+1}/λ_i| of the (shifted) spectrum: use :func:`lanczos` for clustered spectra.
    """
    _check(op, k, which)
    settings = {"k": k, "n_iter": n_iter, "tol": tol, "seed": seed}
    g = torch.Generator().manual_seed(seed)
    applies = 0

    def run(shift: float, found: list[Tensor], start: Tensor) -> tuple[Tensor, bool, int]:
        nonlocal applies
        v = start
        for basis in found:
            v = v - (basis @ v) * basis
        v = v / v.norm()
        mu_prev = math.inf
        for it in range(1, n_iter + 1):
            w = op.apply(v) - shift * v
            applies += 1
            for basis in found:
                w = w - (basis @ w) * basis
            mu = float(v @ w)
            norm = w.norm()
            if norm == 0:
                return v, True, it
            v = w / norm
            if abs(mu - mu_prev) <= tol * max(abs(mu), 1e-300):
                return v, True, it
            mu_prev = mu
        return v, False, n_iter

    def start() -> Tensor:
        return torch.randn(op.size, generator=g, dtype=torch.float64).to(dtype=op.dtype, device=op.device)

    shift = 0.0
    converged = True
    if which != "LM":
        v, ok, _ = run(0.0, [], start())
        rho = float((v @ op.apply(v)).abs())
        applies += 1
        converged &= ok
        shift = rho if which == "SA" else -rho
    found: list[Tensor] = []
    iters = []
    for _ in range(k):
        v, ok, it = run(shift, found, start())
        converged &= ok
        iters.append(it)
        found.append(v)
    settings["iterations"] = iters
    vectors = torch.stack(found)
    values = torch.stack([v @ op.apply(v) for v in vectors])
    applies += k
    return _finish(op, values, vectors, which, "power", converged, applies, settings)


def hutchinson_trace(
    op: Operator, n_samples: int = 100, *, seed: int = 0, progress: bool = False
) -> TraceResult:
    """tr A ≈ mean of zᵀ A z over ``n_samples`` seeded Rademacher probes z (module docstring);
    ``stderr`` is the sample standard deviation / √m."""
    if n_samples < 1:
        raise UserError(f"the trace needs at least one probe; got n_samples={n_samples}")
    g = torch.Generator().manual_seed(seed)
    samples = []
    for _ in tqdm(range(n_samples), desc="Hutchinson trace", unit="probe", disable=not progress):
        z = (torch.randint(0, 2, (op.size,), generator=g) * 2 - 1).to(dtype=op.dtype, device=op.device)
        samples.append(z @ op.apply(z))
    s = torch.stack(samples).double().cpu()
    stderr = float(s.std(unbiased=True) / math.sqrt(n_samples)) if n_samples > 1 else math.nan
    return TraceResult(float(s.mean()), stderr, n_samples, s, seed)
