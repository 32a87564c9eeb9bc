"""Resonate-and-fire neurons: vanilla RF, BRF, and every combination of BRF's three additions.

Symbols: δ time step, θ threshold, γ_q refractory decay, ω = |ω_param| angular frequency,
b' = |b'_param| offset. One step (u, v from the *old* state on the right-hand side):

    p(ω) = (−1 + sqrt(1 − (δω)²)) / δ                 divergence boundary (DB)
    b_t  = [p(ω) if DB] − b' − [q_{t−1} if SR]          smooth reset (SR)
    u_t  = u_{t−1} + δ (b_t u_{t−1} − ω v_{t−1} + x_t)
    v_t  = v_{t−1} + δ (ω u_{t−1} + b_t v_{t−1})
    z_t  = Θ(u_t − θ − [q_{t−1} if RP])                refractory period (RP)
    q_t  = γ_q q_{t−1} + z_t   (if RP or SR, else 0)

All three on is BRF; all off is vanilla RF. ``rf-posb`` is vanilla RF with b_t = +b' (a growing
oscillation, no sustain term): the RF the BRF authors released for PS-MNIST, which diverged.
On the boundary (b' = q = 0) the membrane eigenvalues 1 + δ(b ± iω) have modulus exactly 1; below
it (b' > 0) the modulus is < 1.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import combinations
from typing import Any, NamedTuple

import torch

from gradscape.errors import UserError
from gradscape.models.neurons.base import Neuron, Uniform

__all__ = ["RFState", "RFParams", "rf_step", "divergence_boundary", "RF_VARIANTS", "rf_variant"]


class RFState(NamedTuple):
    u: Any
    v: Any
    q: Any


@dataclass(frozen=True)
class RFParams:
    omega: Any
    b_offset: Any
    dt: float = 0.01
    theta: float = 1.0
    gamma: float = 0.9
    refractory: bool = True
    smooth_reset: bool = True
    boundary: bool = True
    positive_b: bool = False


def divergence_boundary(ops: Any, omega: Any, dt: Any) -> Any:
    """p(ω) = (−1 + sqrt(1 − (δω)²)) / δ."""
    return (-1 + ops.sqrt(1 - (dt * omega) ** 2)) / dt


def rf_step(ops: Any, x: Any, state: RFState, p: RFParams) -> tuple[Any, RFState]:
    """One RF/BRF update (module docstring)."""
    omega = ops.abs(p.omega)
    b = ops.abs(p.b_offset) if p.positive_b else -ops.abs(p.b_offset)
    if p.boundary:
        b = divergence_boundary(ops, omega, p.dt) + b
    if p.smooth_reset:
        b = b - state.q
    u = state.u + p.dt * (b * state.u - omega * state.v + x)
    v = state.v + p.dt * (omega * state.u + b * state.v)
    threshold = p.theta + state.q if p.refractory else p.theta
    z = ops.spike(u - threshold)
    q = p.gamma * state.q + z if (p.refractory or p.smooth_reset) else ops.zeros_like(state.q)
    return z, RFState(u, v, q)


def _validate(p: RFParams) -> None:
    if not p.boundary:
        return
    omega = p.omega
    if isinstance(omega, torch.Tensor):
        bad = int((omega.abs() * p.dt >= 1).sum())
        if bad:
            raise UserError(
                f"{bad} neuron(s) have δω ≥ 1 (δ = {p.dt}); the divergence boundary needs "
                f"|ω| < {1 / p.dt:g}: lower the ω initialisation or turn the boundary off"
            )


def _project(p: RFParams) -> torch.Tensor:
    """Clamp |ω| to at most (1 − 1e-6)/δ in place (sign kept); returns the number clamped.

    Without this an optimiser step could push δω past 1, where p(ω) is NaN.
    """
    if not p.boundary:
        return torch.zeros((), dtype=torch.long)
    limit = (1 - 1e-6) / p.dt
    with torch.no_grad():
        over = p.omega.abs() > limit
        p.omega.copy_(torch.where(over, torch.sign(p.omega) * limit, p.omega))
    return over.sum()


_SWITCHES = (("rp", "refractory"), ("sr", "smooth_reset"), ("db", "boundary"))


def _variant_name(on: tuple[str, ...]) -> str:
    if len(on) == 3:
        return "brf"
    return "+".join(("rf", *on))


def rf_variant(rp: bool, sr: bool, db: bool, init: dict | None = None) -> Neuron:
    """The RF neuron with the given switches (``rf_variant(True, True, True)`` is BRF)."""
    flags = dict(zip(("rp", "sr", "db"), (rp, sr, db), strict=True))
    on = tuple(k for k, _ in _SWITCHES if flags[k])
    constants = {attr: flags[k] for k, attr in _SWITCHES}
    return Neuron(
        name=_variant_name(on),
        step=rf_step,
        state=RFState,
        params=RFParams,
        init=init or {"omega": Uniform(15.0, 50.0), "b_offset": Uniform(0.1, 1.0)},
        constants=constants,
        membrane=("u", "v"),
        validate=_validate,
        project=_project,
        description="resonate-and-fire" + ("" if not on else " with " + ", ".join(k.upper() for k in on)),
    )


RF_VARIANTS: dict[str, Neuron] = {}
for _n in range(4):
    for _on in combinations(("rp", "sr", "db"), _n):
        _neuron = rf_variant(*(k in _on for k in ("rp", "sr", "db")))
        RF_VARIANTS[_neuron.name] = _neuron

RF_VARIANTS["rf-posb"] = replace(
    RF_VARIANTS["rf"],
    name="rf-posb",
    constants={**RF_VARIANTS["rf"].constants, "positive_b": True},
    description="resonate-and-fire with b = +|b'| (growing oscillation; the released PS-MNIST RF)",
)
