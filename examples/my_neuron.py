"""A user-defined neuron for gradscape: an adaptive quadratic integrate-and-fire unit."""

from dataclasses import dataclass
from typing import Any, NamedTuple

from gradscape.models import Neuron, Normal


class QIFState(NamedTuple):
    u: Any  # membrane potential
    w: Any  # adaptation current


@dataclass(frozen=True)
class QIFParams:
    tau_mem: Any  # trainable, one per neuron (used through |.|)
    tau_adp: Any  # trainable, one per neuron
    theta: float = 1.0  # constant
    kappa: float = 0.1  # adaptation strength


def qif_step(ops, x, s, p):
    """u' = α u + (1−α)(x + u²/4 − w); z = Θ(u' − θ); u = u' − z θ; w = ρ w + κ z."""
    alpha = ops.exp(-1 / ops.abs(p.tau_mem))
    rho = ops.exp(-1 / ops.abs(p.tau_adp))
    u = alpha * s.u + (1 - alpha) * (x + s.u * s.u / 4 - s.w)
    z = ops.spike(u - p.theta)
    return z, QIFState(u - z * p.theta, rho * s.w + p.kappa * z)


QIF = Neuron(
    name="qif",
    step=qif_step,
    state=QIFState,
    params=QIFParams,
    init={"tau_mem": Normal(20.0, 5.0), "tau_adp": Normal(100.0, 10.0)},
    membrane=("u",),
)
