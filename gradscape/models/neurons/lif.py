"""Leaky integrate-and-fire neuron.

Symbols: δ = 1, α = exp(−1/τ_m), τ_m = |τ_param|, θ = 1:

    u'_t = α u_{t−1} + (1 − α) x_t
    z_t  = Θ(u'_t − θ)
    u_t  = u'_t − z_t θ                    (reset not detached unless ``detach_reset``)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from gradscape.models.neurons.base import Neuron, Normal

__all__ = ["LIFState", "LIFParams", "lif_step", "LIF"]


class LIFState(NamedTuple):
    u: Any


@dataclass(frozen=True)
class LIFParams:
    tau_mem: Any
    theta: float = 1.0
    detach_reset: bool = False


def lif_step(ops: Any, x: Any, state: LIFState, p: LIFParams) -> tuple[Any, LIFState]:
    """One LIF update (module docstring)."""
    alpha = ops.exp(-1 / ops.abs(p.tau_mem))
    u = alpha * state.u + (1 - alpha) * x
    z = ops.spike(u - p.theta)
    reset = ops.stop_gradient(z) if p.detach_reset else z
    return z, LIFState(u - reset * p.theta)


LIF = Neuron(
    name="lif",
    step=lif_step,
    state=LIFState,
    params=LIFParams,
    init={"tau_mem": Normal(20.0, 5.0)},
    membrane=("u",),
    description="leaky integrate-and-fire",
)
