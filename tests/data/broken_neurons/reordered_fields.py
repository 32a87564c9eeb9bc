"""Broken on purpose (reordered_fields): returns another NamedTuple with the fields in another order."""

from dataclasses import dataclass
from typing import Any, NamedTuple

from gradscape.models import Neuron, Normal


class State(NamedTuple):
    u: Any  # membrane
    w: Any  # adaptation


class Swapped(NamedTuple):
    w: Any
    u: Any


@dataclass(frozen=True)
class Params:
    tau: Any  # trainable
    theta: float = 1.0


def step(ops, x, s, p):
    a = ops.exp(-1 / ops.abs(p.tau))
    u = a * s.u + (1 - a) * (x - s.w)
    z = ops.spike(u - p.theta)
    return z, Swapped(0.9 * s.w + 0.1 * z, u - z * p.theta)


Broken = Neuron(
    name="broken",
    step=step,
    state=State,
    params=Params,
    init={"tau": Normal(20.0, 5.0)},
    membrane=("u",),
)
