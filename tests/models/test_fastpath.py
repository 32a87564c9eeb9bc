"""The fast path: make_step's update equals the eager loop; compiled functions are cached.

The Inductor (C++ code generation) compile is exercised by benchmarks/bench_sim.py and, for the
spike alone, by tests/models/test_surrogates.py; here the ``aot_eager`` backend traces the same Dynamo graph
and differentiates it with AOT autograd, which is what can break, at a fraction of the time.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from gradscape.models import RecurrentNetwork, get_neuron
from gradscape.models.fastpath import eager_step, make_step
from gradscape.models.neurons import LIF, lif_step

F64 = torch.float64


def _run(net: RecurrentNetwork, x: torch.Tensor, **kw):
    net.zero_grad(set_to_none=True)
    out = net(x, **kw)
    (out.outputs[-1].logsumexp(-1).sum() + out.outputs.square().mean()).backward()
    return out, [p.grad.clone() for p in net.parameters()]


INIT = {"brf": {"omega": "U(5,20)", "b_offset": "U(0.1,1)"}}


@pytest.mark.parametrize("kind", ["brf", "alif", "lstm"])
def test_traced_step_equals_eager_loop(kind: str, tiny_net) -> None:
    net = tiny_net(kind, 2, 5, 3, seed=2, dtype=F64, init=INIT.get(kind, {}))
    x = torch.rand(15, 4, 2, generator=torch.Generator().manual_seed(0), dtype=F64) * 300
    ref, g_ref = _run(net, x, fast=False)
    for step_fn in (make_step(net.neuron, compile=False), make_step(net.neuron, backend="aot_eager")):
        with warnings.catch_warnings():
            # a fullgraph failure would warn and fall back: make that fail the test
            warnings.filterwarnings("error", message="neuron .*: step")
            out, g = _run(net, x, fast=True, step_fn=step_fn)
        torch.testing.assert_close(out.outputs, ref.outputs, rtol=0, atol=1e-12)
        torch.testing.assert_close(out.spikes, ref.spikes, rtol=0, atol=1e-12)
        for a, b in zip(g_ref, g, strict=True):
            torch.testing.assert_close(b, a, rtol=0, atol=1e-12)
    if net.neuron.spiking:
        assert 0 < ref.spikes.mean() < 1


def test_make_step_is_cached_per_neuron_and_constants() -> None:
    brf = get_neuron("brf")
    assert make_step(brf, compile=False) is eager_step
    a = make_step(brf, backend="aot_eager")
    assert make_step(get_neuron("rf+sr+db+rp"), backend="aot_eager") is a
    assert make_step(get_neuron("rf"), backend="aot_eager") is not a
    assert make_step(brf.replace(constants={**brf.constants, "dt": 0.005}), backend="aot_eager") is not a
    assert make_step(brf, backend="eager") is not a
    # built through networks: same neuron and constants -> same function
    n1 = RecurrentNetwork("lif", 1, 3, 2, seed=0)
    n2 = RecurrentNetwork("lif", 1, 4, 2, seed=1)
    assert make_step(n1.neuron, backend="aot_eager") is make_step(n2.neuron, backend="aot_eager")


def test_graph_break_falls_back_with_a_warning() -> None:
    def breaking_step(ops, x, state, p):
        torch._dynamo.graph_break()  # something Dynamo cannot put in one graph
        return lif_step(ops, x, state, p)

    neuron = LIF.replace(name="lif-with-break", step=breaking_step)
    net = RecurrentNetwork(neuron, 2, 4, 2, seed=0).double()
    x = torch.rand(6, 3, 2, dtype=F64) * 5
    ref, g_ref = _run(net, x, fast=False)
    step_fn = make_step(neuron, backend="aot_eager")
    with pytest.warns(UserWarning, match="graph breaks"):
        out, g = _run(net, x, fast=True, step_fn=step_fn)
    torch.testing.assert_close(out.outputs, ref.outputs, rtol=0, atol=1e-12)
    for a, b in zip(g_ref, g, strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-12)
