"""The recurrent network's wiring, checked by hand: x_t = (W ⊙ M)[i_t ; z_{t−1}] with input columns
first, the leaky readout, and fast=True against fast=False."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import pytest
import torch

from gradscape.errors import UserError
from gradscape.models import Constant, Neuron, RecurrentNetwork

F64 = torch.float64


class ProbeState(NamedTuple):
    x: Any


@dataclass(frozen=True)
class ProbeParams:
    gain: Any


def probe_step(ops: Any, x: Any, state: ProbeState, p: ProbeParams):
    """z_t = gain · x_t and the state records x_t: exposes the network's input current."""
    return p.gain * x, ProbeState(x)


PROBE = Neuron("probe", probe_step, ProbeState, ProbeParams, {"gain": Constant(1.0)}, spiking=False)


def _probe_net(mask: torch.Tensor | None = None) -> RecurrentNetwork:
    net = RecurrentNetwork(PROBE, 2, 2, 1, mask=mask, tau_out=Constant(2.0)).double()
    with torch.no_grad():
        # columns: i1, i2 (inputs first), then z1, z2 (previous hidden outputs)
        net.hidden.weight.copy_(torch.tensor([[1.0, 2.0, 0.5, -1.0], [-3.0, 0.25, 2.0, 0.1]], dtype=F64))
        net.hidden.gain.copy_(torch.tensor([0.5, -1.0]))
        net.out.weight.copy_(torch.tensor([[1.5, -0.5]]))
    return net


I_SEQ = [(1.0, -2.0), (0.5, 3.0), (-1.0, 0.0)]


def _hand_run(w, gain, w_out, alpha):
    """Plain-float simulation of the issue's equations for the probe neuron."""
    z, o = [0.0, 0.0], 0.0
    xs, zs, os = [], [], []
    for i in I_SEQ:
        v = [*i, *z]  # [i_t ; z_{t−1}]
        x = [sum(w[r][c] * v[c] for c in range(4)) for r in range(2)]
        z = [gain[r] * x[r] for r in range(2)]
        o = alpha * o + (1 - alpha) * (w_out[0] * z[0] + w_out[1] * z[1])
        xs.append(x), zs.append(z), os.append(o)
    return xs, zs, os


@pytest.mark.parametrize("fast", [False, True])
def test_input_columns_first_and_readout_by_hand(fast: bool) -> None:
    net = _probe_net()
    inputs = torch.tensor(I_SEQ, dtype=F64).unsqueeze(1)  # (T, B=1, I=2)
    out = net(inputs, record=True, fast=fast)
    w = [[1.0, 2.0, 0.5, -1.0], [-3.0, 0.25, 2.0, 0.1]]
    xs, zs, os = _hand_run(w, [0.5, -1.0], [1.5, -0.5], math.exp(-1 / 2.0))
    torch.testing.assert_close(out.states.x[:, 0], torch.tensor(xs, dtype=F64), rtol=0, atol=1e-14)
    torch.testing.assert_close(out.spikes[:, 0], torch.tensor(zs, dtype=F64), rtol=0, atol=1e-14)
    torch.testing.assert_close(out.outputs[:, 0, 0], torch.tensor(os, dtype=F64), rtol=0, atol=1e-14)
    # the transposed wiring (recurrent columns first) gives different currents: the test can tell
    w_swapped = [[0.5, -1.0, 1.0, 2.0], [2.0, 0.1, -3.0, 0.25]]
    assert _hand_run(w_swapped, [0.5, -1.0], [1.5, -0.5], 0.5)[0] != xs
    assert float(out.final.o[0, 0].detach()) == pytest.approx(os[-1], abs=1e-14)


@pytest.mark.parametrize("fast", [False, True])
def test_mask_multiplies_w(fast: bool) -> None:
    mask = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 1.0]], dtype=F64)
    net = _probe_net(mask)
    inputs = torch.tensor(I_SEQ, dtype=F64).unsqueeze(1)
    out = net(inputs, record=True, fast=fast)
    w = [[1.0, 0.0, 0.5, -1.0], [0.0, 0.25, 0.0, 0.1]]
    xs, _, os = _hand_run(w, [0.5, -1.0], [1.5, -0.5], math.exp(-1 / 2.0))
    torch.testing.assert_close(out.states.x[:, 0], torch.tensor(xs, dtype=F64), rtol=0, atol=1e-14)
    torch.testing.assert_close(out.outputs[:, 0, 0], torch.tensor(os, dtype=F64), rtol=0, atol=1e-14)
    # masked synapses get zero gradient
    out.outputs.sum().backward()
    assert (net.hidden.weight.grad[mask == 0] == 0).all()
    assert (net.hidden.weight.grad[mask == 1] != 0).any()
    with pytest.raises(UserError, match="mask shape"):
        RecurrentNetwork(PROBE, 2, 2, 1, mask=torch.ones(2, 3))


def _grads(net: RecurrentNetwork, x: torch.Tensor, y: torch.Tensor, **kw):
    net.zero_grad(set_to_none=True)
    out = net(x, record=True, **kw)
    loss = torch.nn.functional.cross_entropy(out.outputs[-1], y) + out.outputs.square().mean()
    loss.backward()
    return out, [p.grad.clone() for p in net.parameters()]


@pytest.mark.parametrize(
    ("kind", "init"),
    [
        ("brf", {"omega": "U(5,20)", "b_offset": "U(0.1,1)"}),
        ("rf", {"omega": "U(5,20)"}),
        ("alif", {}),
        ("lif", {"tau_mem": "N(5,1)"}),
        ("lstm", {}),
    ],
)
def test_fast_equals_eager_float64(kind: str, init: dict) -> None:
    net = RecurrentNetwork(kind, 3, 6, 4, init=init, seed=3).double()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(25, 5, 3, generator=g, dtype=F64) * 60
    y = torch.randint(4, (5,), generator=g)
    o0, g0 = _grads(net, x, y, fast=False)
    o1, g1 = _grads(net, x, y, fast=True)
    if net.neuron.spiking:
        assert 0 < o0.spikes.mean() < 1  # both spike outcomes occur, so the check has teeth
    torch.testing.assert_close(o1.outputs, o0.outputs, rtol=0, atol=1e-12)
    if net.neuron.spiking:
        assert torch.equal(o1.spikes, o0.spikes)
    torch.testing.assert_close(o1.spikes, o0.spikes, rtol=0, atol=1e-12)
    for a, b in zip(o0.states, o1.states, strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-12)
    for a, b in zip(g0, g1, strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-12)
    # continuing from a state (truncated BPTT) gives the same as one run
    with torch.no_grad():
        first = net(x[:10], fast=True)
        rest = net(x[10:], fast=True, state=first.final)
        whole = net(x, fast=False)
    torch.testing.assert_close(torch.cat([first.outputs, rest.outputs]), whole.outputs, rtol=0, atol=1e-12)


def test_bad_input_shape() -> None:
    net = RecurrentNetwork("lif", 3, 4, 2)
    with pytest.raises(UserError, match="inputs must be"):
        net(torch.zeros(5, 2, 4))


def test_readout_without_autograd_equals_the_differentiable_loop() -> None:
    # inference takes an in-place loop; its values must be the loop's bit for bit (same roundings)
    from gradscape.models.network import _readout_continue

    gen = torch.Generator().manual_seed(3)
    for dtype in (torch.float32, torch.float64):
        d = torch.randn(40, 6, 10, generator=gen).to(dtype)
        alpha = (torch.rand(10, generator=gen) * 0.9 + 0.05).to(dtype)
        o0 = torch.randn(6, 10, generator=gen).to(dtype)
        o, by_hand = o0, []
        for d_t in d:
            o = alpha * o + (1 - alpha) * d_t
            by_hand.append(o)
        with torch.no_grad():
            fast = _readout_continue(d, alpha, o0)
        assert torch.equal(fast, torch.stack(by_hand))
        with torch.enable_grad():  # and the differentiable loop is still what autograd sees
            a = alpha.clone().requires_grad_(True)
            _readout_continue(d, a, o0).sum().backward()
            assert a.grad is not None and torch.isfinite(a.grad).all()
