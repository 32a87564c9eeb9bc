"""A neuron defined only in a user file, loaded by ``file.py:Name``, trains through the network;
malformed files give a UserError."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from gradscape.errors import UserError
from gradscape.models import RecurrentNetwork, SympyOps, TorchOps, get_neuron

FILE = Path(__file__).parent / "data" / "custom_neuron.py"


def test_user_neuron_loads_steps_and_trains() -> None:
    neuron = get_neuron(f"{FILE}:Leaky")
    assert neuron.name == "leaky" and neuron.trainable == ("tau",)
    # its step by hand: τ = 4, u = 0.2, x = 5 → u' = α·0.2 + (1−α)·5, spike, soft reset
    p = neuron.make_params({"tau": torch.tensor(-4.0, dtype=torch.float64)})
    z, s = neuron.step(
        TorchOps(),
        torch.tensor(5.0, dtype=torch.float64),
        neuron.state(torch.tensor(0.2, dtype=torch.float64)),
        p,
    )
    a = math.exp(-1 / 4)
    up = a * 0.2 + (1 - a) * 5.0
    assert float(z) == 1.0 and float(s.u) == pytest.approx(up - 1.0, abs=1e-12)
    # and through the sympy backend (the same function)
    import sympy

    zs, _ = neuron.step(SympyOps(), sympy.Symbol("x"), neuron.state(sympy.Integer(0)), neuron.params(4))
    assert "Θ" in str(zs)

    torch.manual_seed(0)
    net = RecurrentNetwork(f"{FILE}:Leaky", 3, 8, 2, seed=0)
    x = torch.rand(20, 4, 3) * 4
    y = torch.tensor([0, 1, 1, 0])
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    losses = []
    for _ in range(8):
        opt.zero_grad()
        out = net(x)
        loss = torch.nn.functional.cross_entropy(out.outputs[-1], y)
        loss.backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
        assert float(net.hidden.tau.grad.abs().sum()) > 0
        opt.step()
        losses.append(float(loss.detach()))
    assert out.spikes.sum() > 0
    assert losses[-1] < losses[0]


def test_bad_neuron_files(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="defines no 'Missing'"):
        get_neuron(f"{FILE}:Missing")
    with pytest.raises(UserError, match="not a gradscape Neuron"):
        get_neuron(f"{FILE}:NOT_A_NEURON")
    broken = tmp_path / "broken.py"
    broken.write_text("import gradscape_no_such_module\n")
    with pytest.raises(UserError, match="failed to import"):
        get_neuron(f"{broken}:Leaky")
    syntax = tmp_path / "syntax.py"
    syntax.write_text("def f(:\n")
    with pytest.raises(UserError, match="failed to import"):
        get_neuron(f"{syntax}:Leaky")
    with pytest.raises(UserError, match="does not exist"):
        get_neuron(f"{tmp_path / 'absent.py'}:Leaky")
    with pytest.raises(UserError):
        RecurrentNetwork(f"{tmp_path / 'absent.py'}:Leaky", 1, 2, 2)
