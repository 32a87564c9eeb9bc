"""Eigenvalue moduli and singular values of millions of small k × k matrices (k ≤ 3 in closed form).

Why not ``torch.linalg.eigvals`` / ``svdvals`` alone: on the CPU they call LAPACK once per matrix
(≈ 1 µs each for 3 × 3), which for the 6.6 million per-neuron blocks of one ECG test set is most of
a minute per quantity; the closed forms below are a few dozen vectorised elementwise operations.
Matrices with k > 3 go to LAPACK. Everything is evaluated in float64.

Eigenvalues, k = 2: M = [[a, b], [c, d]] has λ = (tr ± √disc)/2 with disc = (a − d)² + 4bc (the
form without the cancellation of tr² − 4 det). disc < 0: a complex pair with |λ|² = λλ̄ = det.
disc ≥ 0: the larger root without cancellation, λ₁ = (tr + sign(tr)√disc)/2, and λ₂ = det/λ₁.

Eigenvalues, k = 3: det(λI − M) = λ³ − tλ² + sλ − d (t = tr M, s = sum of the principal 2 × 2
minors, d = det M). With λ = x + t/3 it is x³ + Px + Q, P = s − t²/3, Q = −2t³/27 + st/3 − d, and
Δ = (Q/2)² + (P/3)³. Δ > 0: one real root by Cardano's formula in its cancellation-free form, then
the remaining quadratic λ² + (r − t)λ + (s + r(r − t)) as for k = 2. Δ ≤ 0: three real roots by
the trigonometric form. Every real root is polished by two Newton steps on the cubic, which restores
full precision wherever the root is simple (a double root is determined only to about √ε, as by
LAPACK).

Singular values: k = 2 exactly, σ₁,₂ = (√((a + d)² + (c − b)²) ± √((a − d)² + (b + c)²))/2.
k = 3: σᵢ² are the eigenvalues of the symmetric G = MᵀM, three real roots by the trigonometric
form (Smith 1961). σ₁ = ‖M‖₂ is accurate to rounding; the smaller ones to about ε‖M‖₂²/σᵢ.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["eigenvalue_moduli", "singular_values"]


def _cbrt(x: Tensor) -> Tensor:
    return x.sign() * x.abs().pow(1.0 / 3.0)


def _quadratic_moduli(tr: Tensor, det: Tensor, disc: Tensor) -> Tensor:
    """|λ| of λ² − tr λ + det (discriminant ``disc`` = tr² − 4 det computed by the caller), (..., 2)."""
    pair = det.clamp_min(0).sqrt()
    sq = disc.clamp_min(0).sqrt()
    big = 0.5 * (tr + torch.where(tr < 0, -sq, sq))
    small = torch.where(big != 0, det / torch.where(big != 0, big, 1.0), torch.zeros_like(big))
    complex_pair = disc < 0
    return torch.stack(
        [torch.where(complex_pair, pair, big.abs()), torch.where(complex_pair, pair, small.abs())], -1
    )


def _newton(lam: Tensor, t: Tensor, s: Tensor, d: Tensor, steps: int = 2) -> Tensor:
    """Polish a real root of λ³ − tλ² + sλ − d (steps that would not be finite are skipped)."""
    for _ in range(steps):
        p = ((lam - t) * lam + s) * lam - d
        dp = (3 * lam - 2 * t) * lam + s
        new = lam - p / torch.where(dp != 0, dp, 1.0)
        lam = torch.where((dp != 0) & torch.isfinite(new), new, lam)
    return lam


def _trig_roots(t: Tensor, P: Tensor, Q: Tensor) -> Tensor:
    """The three real roots λ = x + t/3 of x³ + Px + Q (P ≤ 0, Δ ≤ 0), (..., 3)."""
    neg = (-P).clamp_min(0)
    m = 2 * (neg / 3).sqrt()
    safe = torch.where(neg > 0, neg, 1.0)
    arg = (1.5 * Q / torch.where(neg > 0, -safe, 1.0)) * (3 / safe).sqrt()
    phi = torch.acos(arg.clamp(-1, 1)) / 3
    k = torch.arange(3, dtype=t.dtype, device=t.device) * (2 * math.pi / 3)
    x = m.unsqueeze(-1) * torch.cos(phi.unsqueeze(-1) - k)
    return x + (t / 3).unsqueeze(-1)


def _det3(M: Tensor) -> Tensor:
    # cofactor expansion: batched torch.linalg.det is one LAPACK LU per matrix
    a, b, c = M[..., 0, 0], M[..., 0, 1], M[..., 0, 2]
    e, f, g = M[..., 1, 0], M[..., 1, 1], M[..., 1, 2]
    h, i, j = M[..., 2, 0], M[..., 2, 1], M[..., 2, 2]
    return a * (f * j - g * i) - b * (e * j - g * h) + c * (e * i - f * h)


def _cubic_moduli(M: Tensor) -> Tensor:
    a, b, c = M[..., 0, 0], M[..., 0, 1], M[..., 0, 2]
    e, f, g = M[..., 1, 0], M[..., 1, 1], M[..., 1, 2]
    h, i, j = M[..., 2, 0], M[..., 2, 1], M[..., 2, 2]
    t = a + f + j
    s = (a * f - b * e) + (a * j - c * h) + (f * j - g * i)
    d = _det3(M)
    P = s - t * t / 3
    Q = -2 * t**3 / 27 + s * t / 3 - d
    delta = (Q / 2) ** 2 + (P / 3) ** 3
    # one real root (Cardano without cancellation) and the deflated quadratic: the usual case
    root_delta = delta.clamp_min(0).sqrt()
    A = -torch.where(Q < 0, -1.0, 1.0) * _cbrt(Q.abs() / 2 + root_delta)
    x = torch.where(A != 0, A - P / (3 * torch.where(A != 0, A, 1.0)), 0.0)
    r = _newton(x + t / 3, t, s, d)
    beta = r - t
    gamma = s + r * beta
    out = torch.cat([r.abs().unsqueeze(-1), _quadratic_moduli(-beta, gamma, beta * beta - 4 * gamma)], -1)
    three = delta <= 0
    if bool(three.any()):
        # three real roots (trigonometric form), evaluated only where they occur
        tt, ss, dd = t[three], s[three], d[three]
        roots = _trig_roots(tt, P[three], Q[three])
        out[three] = _newton(roots, tt.unsqueeze(-1), ss.unsqueeze(-1), dd.unsqueeze(-1)).abs()
    return out


def eigenvalue_moduli(M: Tensor) -> Tensor:
    """|λ| of each matrix of a batch (..., k, k), as (..., k) float64, in no particular order."""
    M = M.double()
    k = M.shape[-1]
    if k == 1:
        return M[..., 0].abs()
    if k == 2:
        a, b, c, d = M[..., 0, 0], M[..., 0, 1], M[..., 1, 0], M[..., 1, 1]
        return _quadratic_moduli(a + d, a * d - b * c, (a - d) ** 2 + 4 * b * c)
    if k == 3:
        return _cubic_moduli(M)
    return torch.linalg.eigvals(M).abs()


def singular_values(M: Tensor) -> Tensor:
    """Singular values of each matrix of a batch (..., k, k), descending, (..., k) float64."""
    M = M.double()
    k = M.shape[-1]
    if k == 1:
        return M[..., 0].abs()
    if k == 2:
        a, b, c, d = M[..., 0, 0], M[..., 0, 1], M[..., 1, 0], M[..., 1, 1]
        p = torch.hypot(a + d, c - b)
        q = torch.hypot(a - d, b + c)
        return torch.stack([0.5 * (p + q), 0.5 * (p - q).abs()], -1)
    if k == 3:
        # G = MᵀM entry by entry (a batched 3 × 3 matmul is slower than these products)
        col = [M[..., :, n] for n in range(3)]
        g00, g11, g22 = (col[0] * col[0]).sum(-1), (col[1] * col[1]).sum(-1), (col[2] * col[2]).sum(-1)
        g01, g02, g12 = (col[0] * col[1]).sum(-1), (col[0] * col[2]).sum(-1), (col[1] * col[2]).sum(-1)
        q = (g00 + g11 + g22) / 3
        a0, a1, a2 = g00 - q, g11 - q, g22 - q
        p1 = g01 * g01 + g02 * g02 + g12 * g12
        p = ((a0 * a0 + a1 * a1 + a2 * a2 + 2 * p1) / 6).sqrt()
        # det(G − qI) / (2p³), the cosine of 3φ
        det = a0 * (a1 * a2 - g12 * g12) - g01 * (g01 * a2 - g12 * g02) + g02 * (g01 * g12 - a1 * g02)
        safe = torch.where(p > 0, p, 1.0)
        phi = torch.acos((det / (2 * safe**3)).clamp(-1, 1)) / 3
        k3 = torch.arange(3, dtype=M.dtype, device=M.device) * (2 * math.pi / 3)
        lam = q.unsqueeze(-1) + 2 * p.unsqueeze(-1) * torch.cos(phi.unsqueeze(-1) + k3)
        lam = torch.where((p > 0).unsqueeze(-1), lam, q.unsqueeze(-1).expand_as(lam))
        return lam.clamp_min(0).sqrt().sort(-1, descending=True).values
    return torch.linalg.svdvals(M)
