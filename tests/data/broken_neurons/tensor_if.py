"""Broken on purpose (tensor_if): Python if on a tensor's value."""

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


def step(ops, x, s, p):
    a = ops.exp(-1 / ops.abs(p.tau))
    u = a * s.u + (1 - a) * (x - s.w)
    if u > p.theta:
        u = u - p.theta
    z = ops.spike(u - p.theta)
    return z, State(u - z * p.theta, 0.9 * s.w + 0.1 * z)


Broken = Neuron(
    name="broken",
    step=step,
    state=State,
    params=Params,
    init={"tau": Normal(20.0, 5.0)},
    membrane=("u",),
)
