"""Adaptive leaky integrate-and-fire neuron (Yin et al. 2021 form, the BRF paper's baseline).

Symbols: δ = 1, α = exp(−1/τ_m), ρ_a = exp(−1/τ_a), τ = |τ_param|:

    a_t  = ρ_a a_{t−1} + (1 − ρ_a) z_{t−1}
    ϑ_t  = ϑ_0 + β a_t                     (ϑ_0 = 0.01, β = 1.8)
    u'_t = α u_{t−1} + (1 − α) x_t
    z_t  = Θ(u'_t − ϑ_t)
    u_t  = u'_t − z_t ϑ_t                   (reset not detached unless ``detach_reset``)

The previous spike z_{t−1} is part of the state because a_t needs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from gradscape.models.neurons.base import Neuron, Normal

__all__ = ["ALIFState", "ALIFParams", "alif_step", "ALIF"]


class ALIFState(NamedTuple):
    u: Any
    a: Any
    z: Any


@dataclass(frozen=True)
class ALIFParams:
    tau_mem: Any
    tau_adp: Any
    theta0: float = 0.01
    beta: float = 1.8
    detach_reset: bool = False


def alif_step(ops: Any, x: Any, state: ALIFState, p: ALIFParams) -> tuple[Any, ALIFState]:
    """One ALIF update (module docstring)."""
    alpha = ops.exp(-1 / ops.abs(p.tau_mem))
    rho = ops.exp(-1 / ops.abs(p.tau_adp))
    a = rho * state.a + (1 - rho) * state.z
    theta_t = p.theta0 + p.beta * a
    u = alpha * state.u + (1 - alpha) * x
    z = ops.spike(u - theta_t)
    reset = ops.stop_gradient(z) if p.detach_reset else z
    return z, ALIFState(u - reset * theta_t, a, z)


ALIF = Neuron(
    name="alif",
    step=alif_step,
    state=ALIFState,
    params=ALIFParams,
    init={"tau_mem": Normal(20.0, 5.0), "tau_adp": Normal(200.0, 50.0)},
    membrane=("u",),
    description="adaptive leaky integrate-and-fire (Yin et al. 2021)",
)
