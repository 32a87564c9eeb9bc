"""Each neuron's step against values computed by hand (plain Python floats) from the issue's equations."""

from __future__ import annotations

import math

import pytest
import torch

from gradscape.errors import UserError
from gradscape.models import RecurrentNetwork, SympyOps, TorchOps, get_neuron
from gradscape.models.neurons import (
    ALIFParams,
    ALIFState,
    LIFParams,
    LIFState,
    LSTMParams,
    LSTMState,
    RFParams,
    RFState,
    divergence_boundary,
)
from gradscape.models.surrogates import DoubleGaussian

OPS = TorchOps()
F64 = torch.float64


def t(*v: float) -> torch.Tensor:
    return torch.tensor(v, dtype=F64)


def heav(x: float) -> float:
    return 1.0 if x > 0 else 0.0


def sg(x: float, h=0.15, s=6.0, sigma=0.5, gamma=0.5) -> float:
    def n(x: float, sd: float) -> float:
        return math.exp(-0.5 * (x / sd) ** 2) / (sd * math.sqrt(2 * math.pi))

    return gamma * ((1 + h) * n(x, sigma) - 2 * h * n(x, s * sigma))


# ----------------------------------------------------------------------------- RF family
def rf_ref(x, u, v, q, omega, b_off, rp=True, sr=True, db=True, dt=0.01, theta=1.0, gamma=0.9):
    """The issue's RF/BRF equations, one neuron, plain floats."""
    w, bo = abs(omega), abs(b_off)
    b = -bo
    if db:
        b += (-1 + math.sqrt(1 - (dt * w) ** 2)) / dt
    if sr:
        b -= q
    u_new = u + dt * (b * u - w * v + x)
    v_new = v + dt * (w * u + b * v)
    z = heav(u_new - theta - (q if rp else 0.0))
    q_new = gamma * q + z if (rp or sr) else 0.0
    return z, u_new, v_new, q_new


VARIANTS = {
    "rf": (False, False, False),
    "rf+rp": (True, False, False),
    "rf+sr": (False, True, False),
    "rf+db": (False, False, True),
    "rf+rp+sr": (True, True, False),
    "rf+rp+db": (True, False, True),
    "rf+sr+db": (False, True, True),
    "brf": (True, True, True),
}


def run_variant(name: str, xs, state, omega, b_off):
    neuron = get_neuron(name)
    p = neuron.make_params({"omega": t(*omega), "b_offset": t(*b_off)})
    s = RFState(*(t(*f) for f in state))
    out = []
    for x in xs:
        z, s = neuron.step(OPS, t(*x), s, p)
        out.append((z.tolist(), s.u.tolist(), s.v.tolist(), s.q.tolist()))
    return out


@pytest.mark.parametrize("name", list(VARIANTS))
def test_rf_variants_against_hand_values(name: str) -> None:
    rp, sr, db = VARIANTS[name]
    # three neurons: negative raw ω and b' (|·| is taken), one spiking, one silent, one near threshold.
    omega, b_off = (-20.0, 35.0, 5.0), (-0.5, 0.2, 1.0)
    state = ((0.3, 0.95, -0.1), (-0.2, 0.4, 0.0), (0.4, 0.0, 0.3))
    xs = [(150.0, 20.0, 30.0), (10.0, 5.0, -3.0), (0.0, 60.0, 20.0)]
    got = run_variant(name, xs, state, omega, b_off)
    for n in range(3):
        u, v, q = (f[n] for f in state)
        for k, x in enumerate(xs):
            z, u, v, q = rf_ref(x[n], u, v, q, omega[n], b_off[n], rp, sr, db)
            gz, gu, gv, gq = (f[n] for f in got[k])
            assert gz == z and gq == pytest.approx(q, abs=1e-13)
            assert gu == pytest.approx(u, abs=1e-13) and gv == pytest.approx(v, abs=1e-13)
    # the chosen numbers make both outcomes of Θ occur
    assert {f for step in got for f in step[0]} == {0.0, 1.0}


def test_brf_two_steps_written_out() -> None:
    """BRF, ω = 20, b' = 0.5, δ = 0.01: the equations typed in literally."""
    p_w = (-1 + math.sqrt(1 - 0.2**2)) / 0.01  # p(20) = −2.0204…
    assert p_w == pytest.approx(-2.0204102886728847, abs=1e-12)
    u0, v0, q0, x1, x2 = 0.3, -0.2, 0.4, 150.0, -20.0
    b1 = p_w - 0.5 - q0
    u1 = u0 + 0.01 * (b1 * u0 - 20 * v0 + x1)
    v1 = v0 + 0.01 * (20 * u0 + b1 * v0)
    z1 = 1.0 if u1 - 1 - q0 > 0 else 0.0
    q1 = 0.9 * q0 + z1
    b2 = p_w - 0.5 - q1
    u2 = u1 + 0.01 * (b2 * u1 - 20 * v1 + x2)
    v2 = v1 + 0.01 * (20 * u1 + b2 * v1)
    z2 = 1.0 if u2 - 1 - q1 > 0 else 0.0
    q2 = 0.9 * q1 + z2
    assert (z1, z2) == (1.0, 0.0)
    brf = get_neuron("brf")
    p = brf.make_params({"omega": t(20.0), "b_offset": t(0.5)})
    s = RFState(t(u0), t(v0), t(q0))
    z, s = brf.step(OPS, t(x1), s, p)
    assert (float(z), float(s.u), float(s.v), float(s.q)) == pytest.approx((z1, u1, v1, q1), abs=1e-13)
    z, s = brf.step(OPS, t(x2), s, p)
    assert (float(z), float(s.u), float(s.v), float(s.q)) == pytest.approx((z2, u2, v2, q2), abs=1e-13)


@pytest.mark.parametrize("omega", [0.5, 5.0, 20.0, 50.0, 85.0, 99.0, 99.99])
def test_divergence_boundary_has_unit_modulus(omega: float) -> None:
    """|1 + δ(p(ω) + iω)| = 1 for δω < 1; below the boundary (b' > 0) the modulus is < 1."""
    dt = 0.01
    p = float(divergence_boundary(OPS, t(omega), dt))
    assert abs(1 + dt * complex(p, omega)) == pytest.approx(1.0, abs=1e-12)
    assert abs(1 + dt * complex(p - 0.1, omega)) < 1.0
    # the sympy backend gives the same expression
    assert float(divergence_boundary(SympyOps, omega, dt)) == pytest.approx(p, abs=1e-12)


def test_all_eight_rf_variants_by_name() -> None:
    names = {get_neuron(n).name for n in VARIANTS}
    assert names == set(VARIANTS)
    assert get_neuron("rf+rp+sr+db").name == "brf"
    assert get_neuron("rf+db+sr+rp").name == "brf"
    assert get_neuron("RF+DB+SR").name == "rf+sr+db"
    assert get_neuron("rf+db+rp").name == "rf+rp+db"
    for name, (rp, sr, db) in VARIANTS.items():
        c = get_neuron(name).constants
        assert (c["refractory"], c["smooth_reset"], c["boundary"]) == (rp, sr, db)
    for bad in ("rf+xx", "rf+rp+rp", "brf+rp", "nope"):
        with pytest.raises(UserError):
            get_neuron(bad)


def _one(name: str, x: float, u: float, v: float, q: float, omega=20.0, b_off=0.5):
    neuron = get_neuron(name)
    p = neuron.make_params({"omega": t(omega), "b_offset": t(b_off)})
    z, s = neuron.step(OPS, t(x), RFState(t(u), t(v), t(q)), p)
    return float(z), float(s.u), float(s.v), float(s.q)


def test_rf_switches_act_as_described() -> None:
    u, v, q, x = 0.8, 0.1, 0.5, 60.0
    # RP: with q = 0.5 the threshold is 1.5; u_t ≈ 1.36 spikes without RP only
    z_plain, u_plain, *_ = _one("rf", x, u, v, q)
    z_rp, u_rp, *_ = _one("rf+rp", x, u, v, q)
    assert 1.0 < u_plain < 1.5 and u_rp == u_plain and (z_plain, z_rp) == (1.0, 0.0)
    # SR: −q_{t−1} in b changes u by −δ q u_{t−1} and v by −δ q v_{t−1}
    _, u_sr, v_sr, _ = _one("rf+sr", x, u, v, q)
    _, u0, v0, _ = _one("rf", x, u, v, q)
    assert u_sr - u0 == pytest.approx(-0.01 * q * u, abs=1e-14)
    assert v_sr - v0 == pytest.approx(-0.01 * q * v, abs=1e-14)
    # DB: adds p(ω) to b
    _, u_db, v_db, _ = _one("rf+db", x, u, v, q)
    p_w = (-1 + math.sqrt(1 - 0.2**2)) / 0.01
    assert u_db - u0 == pytest.approx(0.01 * p_w * u, abs=1e-14)
    assert v_db - v0 == pytest.approx(0.01 * p_w * v, abs=1e-14)
    # q is updated iff RP or SR (else it stays 0)
    for name, (rp, sr, _db) in VARIANTS.items():
        z, _, _, q_new = _one(name, x, u, v, q)
        assert q_new == pytest.approx(0.9 * q + z if (rp or sr) else 0.0, abs=1e-14)
    # vanilla RF has no reset: a spike leaves u as it is
    z1, u1, _, _ = _one("rf", 200.0, 1.0, 0.0, 0.0)
    assert z1 == 1.0 and u1 == pytest.approx(1.0 + 0.01 * (-0.5 * 1.0 + 200.0), abs=1e-14)


def test_boundary_rejects_large_omega_and_project_clamps() -> None:
    with pytest.raises(UserError, match="δω ≥ 1"):
        RecurrentNetwork("brf", 1, 4, 2, init={"omega": "U(90,120)"}, seed=0)
    with pytest.raises(UserError):
        RecurrentNetwork("rf+db", 1, 3, 2, init={"omega": 100.0}, seed=0)  # δω = 1 exactly
    for name in ("rf", "rf+rp", "rf+sr", "rf+rp+sr"):  # without DB any ω is valid
        net = RecurrentNetwork(name, 1, 4, 2, init={"omega": "U(150,300)"}, seed=0)
        out = net(torch.rand(5, 2, 1))
        assert torch.isfinite(out.outputs).all()
        assert int(net.project_()) == 0
    net = RecurrentNetwork("brf", 1, 4, 2, seed=0)
    with torch.no_grad():
        net.hidden.omega.copy_(torch.tensor([10.0, -150.0, 99.0, 100.0]))
    assert int(net.project_()) == 2
    w = net.hidden.omega.detach()
    assert w[0] == 10.0 and w[2] == 99.0
    assert (w.abs() * 0.01 < 1).all() and w[1] < 0 and w[3] > 0
    net.validate()  # valid again
    assert int(net.project_()) == 0


# ----------------------------------------------------------------------------- ALIF, LIF
def test_alif_against_hand_values() -> None:
    tau_m, tau_a = 20.0, 200.0
    alpha, rho = math.exp(-1 / tau_m), math.exp(-1 / tau_a)
    u, a, zp = 0.5, 0.1, 1.0
    xs = (4.0, -8.0, 12.0)
    neuron = get_neuron("alif")
    p = neuron.make_params({"tau_mem": t(-tau_m), "tau_adp": t(tau_a)})  # |τ| is taken
    s = ALIFState(t(u), t(a), t(zp))
    zs = []
    for x in xs:
        a = rho * a + (1 - rho) * zp
        th = 0.01 + 1.8 * a
        up = alpha * u + (1 - alpha) * x
        zp = heav(up - th)
        u = up - zp * th
        z, s = neuron.step(OPS, t(x), s, p)
        assert float(z) == zp
        assert (float(s.u), float(s.a), float(s.z)) == pytest.approx((u, a, zp), abs=1e-14)
        zs.append(zp)
    assert 0.0 in zs and 1.0 in zs


def test_lif_against_hand_values() -> None:
    tau = 7.0
    alpha = math.exp(-1 / tau)
    u = 0.9
    neuron = get_neuron("lif")
    p = neuron.make_params({"tau_mem": t(tau)})
    s = LIFState(t(u))
    zs = []
    for x in (5.0, 0.5, 9.0):
        up = alpha * u + (1 - alpha) * x
        z_ref = heav(up - 1.0)
        u = up - z_ref * 1.0
        z, s = neuron.step(OPS, t(x), s, p)
        assert float(z) == z_ref and float(s.u) == pytest.approx(u, abs=1e-14)
        zs.append(z_ref)
    assert zs == [1.0, 0.0, 1.0]


def test_lstm_against_hand_values() -> None:
    def sig(v: float) -> float:
        return 1 / (1 + math.exp(-v))

    biases = {"bias_i": 0.1, "bias_f": 1.0, "bias_g": -0.2, "bias_o": 0.3}
    neuron = get_neuron("lstm")
    p = neuron.make_params({k: t(v) for k, v in biases.items()})
    h, c = 0.0, 0.0
    s = LSTMState(t(h), t(c))
    for gates in ((0.5, -0.3, 0.8, 0.2), (-1.0, 0.4, -0.6, 1.1)):
        xi, xf, xg, xo = gates
        i, f = sig(xi + 0.1), sig(xf + 1.0)
        g, o = math.tanh(xg - 0.2), sig(xo + 0.3)
        c = f * c + i * g
        h = o * math.tanh(c)
        z, s = neuron.step(OPS, t(*gates), s, p)  # gate-major currents [x_i, x_f, x_g, x_o]
        assert float(z) == pytest.approx(h, abs=1e-14)
        assert (float(s.h), float(s.c)) == pytest.approx((h, c), abs=1e-14)
    assert neuron.gates == 4 and not neuron.spiking
    assert isinstance(LSTMParams, type)


@pytest.mark.parametrize("kind", ["alif", "lif"])
def test_detach_reset_changes_gradient_not_forward(kind: str) -> None:
    """du_t/dx_t = (1−α)(1 − SG(u'−ϑ) ϑ) with the reset in the graph, (1−α) with it detached."""
    tau, x0, u0 = 20.0, 30.0, 0.8
    alpha = math.exp(-1 / tau)
    outs = {}
    for detach in (False, True):
        x = t(x0).requires_grad_()
        if kind == "alif":
            p = ALIFParams(t(tau), t(200.0), detach_reset=detach)
            z, s = get_neuron("alif").step(OPS, x, ALIFState(t(u0), t(0.0), t(0.0)), p)
            theta = 0.01
        else:
            p = LIFParams(t(tau), detach_reset=detach)
            z, s = get_neuron("lif").step(OPS, x, LIFState(t(u0)), p)
            theta = 1.0
        (g,) = torch.autograd.grad(s.u, x)
        outs[detach] = (float(z.detach()), float(s.u.detach()), float(g))
    up = alpha * u0 + (1 - alpha) * x0
    assert outs[True][:2] == outs[False][:2] and outs[True][0] == 1.0
    assert outs[True][2] == pytest.approx(1 - alpha, abs=1e-14)
    assert outs[False][2] == pytest.approx((1 - alpha) * (1 - sg(up - theta) * theta), abs=1e-12)
    assert outs[False][2] != pytest.approx(outs[True][2], abs=1e-6)


def test_network_detach_reset_constant_reaches_step() -> None:
    x = torch.rand(6, 3, 2, dtype=F64) * 3
    grads, outs = {}, {}
    for detach in (False, True):
        net = RecurrentNetwork("lif", 2, 4, 2, constants={"detach_reset": detach}, seed=1).double()
        out = net(x)
        out.outputs.sum().backward()
        grads[detach] = net.hidden.weight.grad.clone()
        outs[detach] = out.outputs.detach()
    assert torch.equal(outs[False], outs[True])
    assert not torch.allclose(grads[False], grads[True])


def test_double_gaussian_default_is_the_networks_surrogate() -> None:
    net = RecurrentNetwork("brf", 1, 2, 2)
    assert net.ops.surrogate == DoubleGaussian()
    assert isinstance(RFParams(t(1.0), t(1.0)).dt, float)
