"""A neuron defined only in a user file, loaded by ``file.py:Name``, trains through the network;
malformed files give a UserError."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from gradscape.errors import UserError
from gradscape.models import RecurrentNetwork, SympyOps, TorchOps, get_neuron

FILE = Path(__file__).resolve().parents[1] / "data" / "custom_neuron.py"


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


# --------------------------------------------------------------------------- examples/resonator.py
RESONATOR = Path(__file__).resolve().parents[2] / "examples" / "resonator.py"


def _spectrum_json(capsys: pytest.CaptureFixture[str], args: list[str]) -> dict:
    import json

    from gradscape.cli import main

    rc = main(["spectrum", *args, "--json"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    return json.loads(captured.out.strip().splitlines()[-1])


@pytest.mark.parametrize(("omega", "b"), [(20.0, -5.0), (45.0, -0.5), (30.0, 0.0)])
def test_exact_resonator_spectrum_is_exp_b_dt(
    omega: float, b: float, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Closed form: below threshold J = e^{bδ} R(ωδ), so λ = e^{bδ} e^{±iωδ} and ρ = e^{bδ}, δ = 0.01.
    Tolerance 1e-12: float64 eigenvalues of a 2×2 matrix, rounding only."""
    d = _spectrum_json(
        capsys,
        ["--neuron", f"{RESONATOR}:Resonator", "--param", f"omega={omega},b={b}", "--out", str(tmp_path)],
    )
    dt = 0.01
    rho = math.exp(b * dt)
    assert d["spectral_radius"] == pytest.approx(rho, abs=1e-12)
    eig = [part for e in sorted(d["eigenvalues"], key=lambda e: e[1]) for part in e]
    c, sn = rho * math.cos(omega * dt), rho * math.sin(omega * dt)
    want = [c, -sn, c, sn]  # e^{bδ} e^{∓iωδ} as (real, imag) pairs
    assert eig == pytest.approx(want, abs=1e-12)


def test_exact_resonator_symbolic_radius_is_exp_b_dt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The sympy analysis of the same step (ops.cos/ops.sin) gives ρ = e^{bδ} exactly: as a function
    of the trainable (ω, b) at δ = 1/100 it simplifies to exp(b/100), and the closed form the CLI
    writes to result.json, evaluated at (ω, b) points, is e^{bδ} (1e-12: float64 evaluation of an
    exact expression)."""
    import json

    import sympy

    from gradscape.gradflow import derive

    rho = derive(f"{RESONATOR}:Resonator").spectral_radius("membrane")
    syms = {s.name: s for s in rho.free_symbols}
    # ω has dropped out (sin² + cos² = 1 is applied in the modulus) and δ is the constant 0.01
    assert set(syms) == {"b"}
    assert sympy.simplify(rho - sympy.exp(syms["b"] / 100)) == 0

    _spectrum_json(
        capsys,
        [
            "--neuron",
            f"{RESONATOR}:Resonator",
            "--param",
            "omega=20,b=-5",
            "--symbolic",
            "--out",
            str(tmp_path),
        ],
    )
    result = json.loads((tmp_path / "result.json").read_text())
    rho_text = result["symbolic"]["resonator"]["closed_form"]["membrane"]["spectral_radius"]
    rho_cli = sympy.sympify(rho_text)
    names = {s.name: s for s in rho_cli.free_symbols}
    assert set(names) == {"b"}  # ρ does not depend on ω (was {"omega", "b"} before sin² + cos² = 1)
    for _omega, b in [(20.0, -5.0), (3.0, -0.7), (50.0, 0.0), (99.0, 2.0)]:
        value = float(rho_cli.subs({names["b"]: b}))  # the same value at every ω
        assert value == pytest.approx(math.exp(b * 0.01), abs=1e-12)


def test_exact_resonator_steps_and_trains() -> None:
    """One step by hand (float64), then gradients reach ω and b through a network, and ``project``
    keeps b ≤ 0."""
    neuron = get_neuron(f"{RESONATOR}:Resonator")
    f64 = torch.float64
    omega, b, dt = 20.0, -5.0, 0.01
    p = neuron.make_params({"omega": torch.tensor(omega, dtype=f64), "b": torch.tensor(b, dtype=f64)})
    s = neuron.state(torch.tensor(0.3, dtype=f64), torch.tensor(-0.2, dtype=f64))
    z, new = neuron.step(TorchOps(), torch.tensor(5.0, dtype=f64), s, p)
    e, c, sn = math.exp(b * dt), math.cos(omega * dt), math.sin(omega * dt)
    u = e * (c * 0.3 + sn * 0.2) + dt * 5.0
    v = e * (sn * 0.3 - c * 0.2)
    assert float(z) == (1.0 if u > 1.0 else 0.0)
    assert float(new.u) == pytest.approx(u - float(z), abs=1e-14) and float(new.v) == pytest.approx(
        v, abs=1e-14
    )

    net = RecurrentNetwork(f"{RESONATOR}:Resonator", 2, 6, 2, seed=0)
    x = torch.rand(30, 3, 2) * 200
    loss = torch.nn.functional.cross_entropy(net(x).outputs[-1], torch.tensor([0, 1, 0]))
    loss.backward()
    assert float(net.hidden.omega.grad.abs().sum()) > 0 and float(net.hidden.b.grad.abs().sum()) > 0
    with torch.no_grad():
        net.hidden.b[0] = 2.0
    assert int(net.project_()) == 1 and float(net.hidden.b.detach().max()) <= 0.0
