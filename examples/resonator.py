"""A user-defined neuron for gradscape: the exactly discretised resonator (trainable ω and b).

The linear resonator ż = (b + iω) z + x, with z = u + iv, integrated exactly over one step δ
(input held constant, entering the real part with weight δ):

    u'_t = e^{bδ} (cos(ωδ) u_{t−1} − sin(ωδ) v_{t−1}) + δ x_t
    v'_t = e^{bδ} (sin(ωδ) u_{t−1} + cos(ωδ) v_{t−1})
    z_t  = Θ(u'_t − θ)
    u_t  = u'_t − z_t θ,   v_t = v'_t                     (soft reset of u only, not detached)

Below threshold (σ = 0) the state Jacobian is e^{bδ} times the rotation by ωδ, so its eigenvalues are
e^{bδ} e^{±iωδ} and the spectral radius is exactly ρ = e^{bδ}, whatever ω is: b < 0 decays, b = 0 is
the unit circle. (The Euler step 1 + δ(b ± iω) instead has ρ = sqrt((1 + δb)² + (δω)²) > 1 at b = 0.)
``project`` keeps b ≤ 0 during training, so ρ ≤ 1 at every neuron.

    gradscape spectrum --neuron examples/resonator.py:Resonator --param omega=20,b=-5 --out out/res
    # spectral radius e^{−5 · 0.01} = 0.951229…
"""

from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

from gradscape.models import Neuron, Uniform


class ResonatorState(NamedTuple):
    u: Any  # real part: the membrane potential that spikes
    v: Any  # imaginary part


@dataclass(frozen=True)
class ResonatorParams:
    omega: Any  # angular frequency ω (rad/s), trainable, one per neuron
    b: Any  # damping b (1/s), trainable, one per neuron; ρ = e^{bδ}
    dt: float = 0.01  # δ (s)
    theta: float = 1.0  # threshold θ


def resonator_step(ops, x, s, p):
    """One exact step (module docstring)."""
    decay = ops.exp(p.b * p.dt)
    c, sn = ops.cos(p.omega * p.dt), ops.sin(p.omega * p.dt)
    u = decay * (c * s.u - sn * s.v) + p.dt * x
    v = decay * (sn * s.u + c * s.v)
    z = ops.spike(u - p.theta)
    return z, ResonatorState(u - z * p.theta, v)


def keep_damping_nonpositive(p: ResonatorParams) -> torch.Tensor:
    """Clamp b to ≤ 0 in place (ρ = e^{bδ} ≤ 1); returns the number of neurons clamped."""
    with torch.no_grad():
        over = p.b > 0
        p.b.clamp_(max=0.0)
    return over.sum()


Resonator = Neuron(
    name="resonator",
    step=resonator_step,
    state=ResonatorState,
    params=ResonatorParams,
    init={"omega": Uniform(15.0, 50.0), "b": Uniform(-5.0, -0.5)},
    membrane=("u", "v"),
    project=keep_damping_nonpositive,
    description="exactly discretised resonator, ρ = e^{bδ}",
)
