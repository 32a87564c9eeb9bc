"""Broken on purpose (step_arity): step(x, s, p) without ops."""

from dataclasses import dataclass
from typing import Any, NamedTuple

from gradscape.models import Neuron, Normal


class State(NamedTuple):
    u: Any  # membrane
    w: Any  # adaptation


@dataclass(frozen=True)
class Params:
    tau: Any  # trainable
    theta: float = 1.0


def step(x, s, p):
    a = 0.9
    u = a * s.u + (1 - a) * (x - s.w)
    z = (u > p.theta) * 1.0
    return z, State(u - z * p.theta, 0.9 * s.w + 0.1 * z)


Broken = Neuron(
    name="broken",
    step=step,
    state=State,
    params=Params,
    init={"tau": Normal(20.0, 5.0)},
    membrane=("u",),
)
