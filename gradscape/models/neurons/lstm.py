"""A hand-written LSTM cell, the non-spiking baseline (written as a step so torch.func works).

The network's bias-free linear map delivers four gate currents per unit,
x = [x_i, x_f, x_g, x_o] (shape (..., 4, H) flattened as (..., 4H)); with per-unit biases b_*:

    i = σ(x_i + b_i),  f = σ(x_f + b_f),  g = tanh(x_g + b_g),  o = σ(x_o + b_o)
    c_t = f c_{t−1} + i g,   h_t = o tanh(c_t),   output z_t = h_t

Defaults (ours, not from the paper): biases start at 0 except the forget bias at 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from gradscape.models.neurons.base import Constant, Neuron

__all__ = ["LSTMState", "LSTMParams", "lstm_step", "LSTM"]


class LSTMState(NamedTuple):
    h: Any
    c: Any


@dataclass(frozen=True)
class LSTMParams:
    bias_i: Any
    bias_f: Any
    bias_g: Any
    bias_o: Any


def lstm_step(ops: Any, x: Any, state: LSTMState, p: LSTMParams) -> tuple[Any, LSTMState]:
    """One LSTM update (module docstring); ``x`` holds the four gate currents, gate-major."""
    xi, xf, xg, xo = x.unflatten(-1, (4, -1)).unbind(-2)
    i = ops.sigmoid(xi + p.bias_i)
    f = ops.sigmoid(xf + p.bias_f)
    g = ops.tanh(xg + p.bias_g)
    o = ops.sigmoid(xo + p.bias_o)
    c = f * state.c + i * g
    h = o * ops.tanh(c)
    return h, LSTMState(h, c)


LSTM = Neuron(
    name="lstm",
    step=lstm_step,
    state=LSTMState,
    params=LSTMParams,
    init={
        "bias_i": Constant(0.0),
        "bias_f": Constant(1.0),
        "bias_g": Constant(0.0),
        "bias_o": Constant(0.0),
    },
    spiking=False,
    gates=4,
    membrane=("c",),
    description="long short-term memory (non-spiking baseline)",
)
