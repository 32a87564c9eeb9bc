"""A user-defined neuron living outside the package (loaded as ``custom_neuron.py:Leaky``).

Leaky integrator with a learnable time constant and a soft reset, written only against ``ops``:

    α = exp(−1/|τ|),  u'_t = α u_{t−1} + (1 − α) x_t,  z_t = Θ(u'_t − 1),  u_t = u'_t − z_t
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from gradscape.models import Neuron, Normal


class LeakyState(NamedTuple):
    u: Any


@dataclass(frozen=True)
class LeakyParams:
    tau: Any


def leaky_step(ops: Any, x: Any, state: LeakyState, p: LeakyParams) -> tuple[Any, LeakyState]:
    alpha = ops.exp(-1 / ops.abs(p.tau))
    u = alpha * state.u + (1 - alpha) * x
    z = ops.spike(u - 1.0)
    return z, LeakyState(u - z)


Leaky = Neuron(
    name="leaky",
    step=leaky_step,
    state=LeakyState,
    params=LeakyParams,
    init={"tau": Normal(5.0, 1.0)},
    membrane=("u",),
    description="test-only leaky integrator",
)

NOT_A_NEURON = 42
