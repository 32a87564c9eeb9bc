"""Symbolic gradient transition matrices: closed forms of the paper, and the cross-check against
torch autograd of the very same step function."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pytest
import sympy
import torch

from gradscape.errors import UserError
from gradscape.gradflow.parameter_map import divergence_boundary_curve
from gradscape.gradflow.symbolic import (
    SymbolicTimeout,
    derivation_times,
    derive,
    run_with_timeout,
)
from gradscape.models import Neuron, Normal, Uniform
from gradscape.models.neurons import RF_VARIANTS, get_neuron
from gradscape.models.ops import Spike, SurrogateSlope, TorchOps

DT = 0.01


def _same(a: sympy.Expr, b: sympy.Expr) -> bool:
    return sympy.simplify(sympy.expand(a - b)) == 0


def _matches(values: list[sympy.Expr], expected: list[sympy.Expr]) -> bool:
    """values equal expected as multisets, up to simplification."""
    rest = list(values)
    for e in expected:
        hit = next((v for v in rest if _same(v, e)), None)
        if hit is None:
            return False
        rest.remove(hit)
    return not rest


# ---------------------------------------------------------------------- closed forms
def test_brf_membrane_block_closed_form() -> None:
    jac = derive("brf", symbolic_constants=True)
    d, w, bp = (jac.param_symbols[k] for k in ("dt", "omega", "b_offset"))
    q = jac.state_symbols[jac.state_fields.index("q")]
    p = (-1 + sympy.sqrt(1 - (d * w) ** 2)) / d  # the paper's p(ω), written out by hand
    b = p - bp - q
    res = jac.eigenvalues("membrane")
    assert res.closed_form, res.note
    assert _matches(res.values, [1 + d * b + sympy.I * d * w, 1 + d * b - sympy.I * d * w])

    rho2 = jac.spectral_radius("membrane") ** 2
    assert _same(rho2, (1 + d * b) ** 2 + (d * w) ** 2)
    assert _same(rho2, 1 - 2 * d * (bp + q) * sympy.sqrt(1 - (d * w) ** 2) + d**2 * (bp + q) ** 2)

    # On the boundary (b' = q = 0) |λ| = 1 exactly: the two eigenvalues are conjugate (λ₋ is λ₊
    # with i → −i) and their product λ₊λ₋ = |λ|² simplifies to 1.
    on = {bp: 0, q: 0}
    lp, lm = (v.subs(on) for v in res.values)
    assert sympy.expand(lm - lp.subs(sympy.I, -sympy.I)) == 0
    assert sympy.simplify(sympy.expand(lp * lm) - 1) == 0
    assert sympy.simplify(rho2.subs(on) - 1) == 0

    num = derive("brf", params={"omega": 50, "b_offset": 1}, state={"q": 0})
    assert float(num.spectral_radius("membrane")) == pytest.approx(0.99135, abs=5e-6)


def test_vanilla_rf_unit_circle_roots() -> None:
    jac = derive("rf", symbolic_constants=True)
    d, w, bp = (jac.param_symbols[k] for k in ("dt", "omega", "b_offset"))
    b = sympy.Symbol("b", real=True)
    rho2 = (jac.spectral_radius("membrane") ** 2).subs(bp, -b)  # vanilla RF: b = −b'
    assert _same(rho2, (1 + d * b) ** 2 + (d * w) ** 2)
    r_lo = (-1 - sympy.sqrt(1 - (d * w) ** 2)) / d
    r_hi = (-1 + sympy.sqrt(1 - (d * w) ** 2)) / d
    assert _matches(sympy.solve(sympy.Eq(rho2, 1), b), [r_lo, r_hi])
    # |λ|² − 1 = δ²(b − r_lo)(b − r_hi): > 0 exactly outside [r_lo, r_hi].
    assert _same(rho2 - 1, d**2 * (b - r_lo) * (b - r_hi))

    # For 0 ≤ b' < (1 + sqrt(1 − (δω)²))/δ, b = −b' > r_lo, so |λ| > 1 ⇔ −b' > p(ω).
    f = sympy.lambdify((w, bp), jac.spectral_radius("membrane").subs(d, sympy.Rational(1, 100)))
    for omega in (10.0, 50.0, 70.0, 99.0):
        p = float(divergence_boundary_curve(omega, DT))
        upper = (1 + np.sqrt(1 - (DT * omega) ** 2)) / DT
        for b_off in np.linspace(0.0, upper * 0.999, 25):
            assert (f(omega, b_off) > 1) == (-b_off > p)

    num = derive("rf", params={"omega": 70, "b_offset": 1})
    assert float(num.spectral_radius("membrane")) == pytest.approx(1.21248, abs=5e-6)


def test_brf_subthreshold_full_state() -> None:
    jac = derive("brf")
    res = jac.eigenvalues("sub")
    assert res.closed_form, res.note
    membrane = jac.eigenvalues("membrane").values
    assert _matches(res.values, [*membrane, sympy.Rational(9, 10)])
    lp, lm = membrane
    assert sympy.expand(lm - lp.subs(sympy.I, -sympy.I)) == 0  # λ and λ̄


def test_alif_and_lif_subthreshold() -> None:
    jac = derive("alif")
    tm, ta = jac.param_symbols["tau_mem"], jac.param_symbols["tau_adp"]
    alpha, rho_a = sympy.exp(-1 / tm), sympy.exp(-1 / ta)
    res = jac.eigenvalues("sub")
    assert res.closed_form
    assert _matches(res.values, [alpha, rho_a, sympy.S.Zero])
    assert _matches(jac.eigenvalues("membrane").values, [alpha])
    assert jac.spectral_radius("sub") == sympy.Max(alpha, rho_a)

    lif = derive("lif")
    alpha = sympy.exp(-1 / lif.param_symbols["tau_mem"])
    assert _matches(lif.eigenvalues("sub").values, [alpha])
    assert _matches(lif.eigenvalues("membrane").values, [alpha])


@pytest.mark.parametrize("omega", [1, 15, 50, 70, 99])
def test_unit_modulus_on_divergence_boundary(omega: int) -> None:
    jac = derive("brf", params={"omega": omega, "b_offset": 0}, state={"q": 0})
    assert sympy.simplify(jac.spectral_radius("membrane") - 1) == 0
    p = float(divergence_boundary_curve(omega, DT))
    assert abs(1 + DT * (p + 1j * omega)) == pytest.approx(1.0, abs=1e-12)


def test_numeric_fallback_and_text_outputs() -> None:
    point = {"u": 0.9, "v": 0.1, "q": 0.2}
    jac = derive("brf", params={"omega": 40, "b_offset": 0.5}, state=point, x=5)
    res = jac.eigenvalues("full")
    assert not res.closed_form and "numeric" in res.note
    # Independent: numpy eigenvalues of the lambdified J at the same point.
    f = derive("brf").lambdify_torch("full")
    tens = {k: torch.tensor(v, dtype=torch.float64) for k, v in point.items()}
    J = f(tens, torch.tensor(5.0, dtype=torch.float64), {"omega": 40.0, "b_offset": 0.5}).numpy()
    want = np.sort_complex(np.linalg.eigvals(J))
    assert np.allclose(np.sort_complex(res.numeric()), want, atol=1e-12)
    assert float(jac.spectral_radius("full")) == pytest.approx(np.abs(want).max(), abs=1e-12)

    sym = derive("brf")
    assert not sym.eigenvalues("full").closed_form and sym.eigenvalues("full").values == []
    assert sym.spectral_radius("full") is None
    text = sym.to_text()
    assert "σ(" in text and "membrane block (u, v)" in text and "9/10" in text
    latex = sym.to_latex()
    assert r"\sigma" in latex and r"\omega" in latex and r"\begin{align*}" in latex


def test_time_limit_falls_back() -> None:
    t0 = time.perf_counter()
    with pytest.raises(SymbolicTimeout):
        run_with_timeout(lambda: time.sleep(3), 0.2)
    assert time.perf_counter() - t0 < 2.0
    box: list[Any] = []

    def in_thread() -> None:  # no SIGALRM outside the main thread: worker-thread path
        try:
            run_with_timeout(lambda: time.sleep(3), 0.2)
        except SymbolicTimeout as exc:
            box.append(exc)

    th = threading.Thread(target=in_thread)
    th.start()
    th.join(5)
    assert box and isinstance(box[0], SymbolicTimeout)
    assert run_with_timeout(lambda: 42, 1.0) == 42

    jac = derive("brf", params={"omega": 40, "b_offset": 0.5}, state={"u": 0.9, "v": 0.1, "q": 0.2}, x=5)
    res = jac.eigenvalues("sub", timeout=1e-6)  # far too short: falls back and says so
    assert not res.closed_form and "timed out" in res.note and "numeric" in res.note
    assert len(res.values) == 3


def test_derivation_times() -> None:
    times = derivation_times(["lif"])
    assert set(times) == {"lif"} and times["lif"] > 0


# ---------------------------------------------------------------------- autograd cross-check
class QState(NamedTuple):
    u: Any
    w: Any


@dataclass(frozen=True)
class QParams:
    tau: Any
    k: Any
    dt: float = 0.1
    theta: float = 1.0
    u_reset: float = -0.2
    tau_w: float = 5.0


def qif_step(ops: Any, x: Any, s: QState, p: QParams) -> tuple[Any, QState]:
    """Quadratic integrate-and-fire with a tanh adaptation current, defined only in this test."""
    leak = ops.exp(-p.dt / ops.abs(p.tau))
    u = leak * s.u + p.dt * (p.k * s.u**2 - s.w + x)
    w = s.w + p.dt * (ops.tanh(s.u) + ops.sigmoid(s.u) - s.w) / p.tau_w
    z = ops.spike(u - p.theta)
    return z, QState(u - z * (u - p.u_reset), w)


QIF = Neuron(
    name="qif-test",
    step=qif_step,
    state=QState,
    params=QParams,
    init={"tau": Uniform(5.0, 30.0), "k": Normal(0.5, 0.2)},
    membrane=("u",),
)

NEURONS_TO_CHECK = [*RF_VARIANTS, "alif", "lif", "qif"]


def _neuron(name: str) -> Neuron:
    return QIF if name == "qif" else get_neuron(name)


@pytest.mark.parametrize("name", NEURONS_TO_CHECK)
def test_symbolic_jacobian_equals_autograd(name: str) -> None:
    neuron = _neuron(name)
    jac = derive(neuron)
    gen = torch.Generator().manual_seed(7)
    n = 4
    raw = neuron.sample_init(n, gen)
    # random signs: the neuron uses |param|, and lambdify_torch must follow it exactly
    signs = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    params = {k: (v.double() * signs).clone() for k, v in raw.items()}
    if "omega" in params:  # keep δω < 1 for the divergence boundary
        params["omega"] = params["omega"].clamp(-90, 90)
    states = {
        f: torch.empty(n, dtype=torch.float64).uniform_(-1, 1, generator=gen) for f in neuron.state_fields
    }
    # Put the spike's argument a at r ∈ [−0.5, 0.5] (σ(a) far from 0) by solving a(x) = r for x.
    spike = jac.spike_real
    assert isinstance(spike, Spike)
    r = torch.empty(n, dtype=torch.float64).uniform_(-0.5, 0.5, generator=gen)
    xs = []
    for i in range(n):
        subs = {s: float(states[f][i]) for s, f in zip(jac.state_symbols, jac.state_fields, strict=True)}
        subs.update({sym: float(params[k][i]) for k, sym in jac.real_param_symbols.items()})
        (xi,) = sympy.solve(spike.args[0].subs(subs) - float(r[i]), jac.input_symbol)
        xs.append(float(xi))
    x = torch.tensor(xs, dtype=torch.float64)

    J_sym = jac.lambdify_torch("full")(states, x, params)
    assert J_sym.shape == (n, len(neuron.state_fields), len(neuron.state_fields))

    ops = TorchOps()
    for i in range(n):
        p_i = neuron.make_params({k: v[i] for k, v in params.items()})

        def step_vec(s: torch.Tensor, i: int = i, p_i: Any = p_i) -> torch.Tensor:
            _, new = neuron.step(ops, x[i], neuron.state(*s.unbind(0)), p_i)
            return torch.stack([torch.as_tensor(e, dtype=torch.float64) for e in new])

        s0 = torch.stack([states[f][i] for f in neuron.state_fields])
        J_auto = torch.func.jacrev(step_vec)(s0)
        assert torch.allclose(J_sym[i], J_auto, rtol=0, atol=1e-10), (name, i, J_sym[i], J_auto)

    if jac.J_real.has(SurrogateSlope):  # the spike path really was exercised
        J_sub = jac.lambdify_torch("sub")(states, x, params)
        assert (J_sym - J_sub).abs().amax() > 1e-3


# ---------------------------------------------------------------------- untraceable steps
def test_lstm_cannot_be_traced() -> None:
    with pytest.raises(UserError, match=r"'lstm' uses a function the sympy backend cannot trace.*unflatten"):
        derive("lstm")


BAD_NEURON = """
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

from gradscape.models import Neuron, Normal


class S(NamedTuple):
    u: Any


@dataclass(frozen=True)
class P:
    tau: Any


def step(ops, x, s, p):
    u = torch.exp(-1 / p.tau) * s.u + x
    return ops.spike(u - 1), S(u)


Bad = Neuron(name="bad-torch", step=step, state=S, params=P, init={"tau": Normal(20.0, 5.0)}, membrane=("u",))
"""


def test_neuron_file_calling_torch_gives_user_error(tmp_path: Any) -> None:
    path = tmp_path / "bad_neuron.py"
    path.write_text(BAD_NEURON)
    with pytest.raises(
        UserError, match=r"'bad-torch' uses a function the sympy backend cannot trace.*torch\.exp"
    ):
        derive(f"{path}:Bad")


def test_unknown_parameter_is_user_error() -> None:
    with pytest.raises(UserError, match="no parameter"):
        derive("brf", params={"omgea": 3})
    with pytest.raises(UserError, match="no state field"):
        derive("brf", state={"w": 3})


# ---------------------------------------------------------------------- cos/sin: the exact resonator
class ResState(NamedTuple):
    u: Any
    v: Any


@dataclass(frozen=True)
class ResParams:
    omega: Any  # trainable angular frequency
    b: Any  # trainable damping (real: e^{bδ} < 1 for b < 0)
    dt: float = 0.01
    theta: float = 1.0


def resonator_step(ops: Any, x: Any, s: ResState, p: ResParams) -> tuple[Any, ResState]:
    """The exact discretisation of u̇ + iv̇ = (b + iω)(u + iv) + x over δ (input held):
    (u, v) rotated by ωδ and scaled by e^{bδ}; subtractive reset of u on a spike."""
    decay = ops.exp(p.b * p.dt)
    c, sn = ops.cos(p.omega * p.dt), ops.sin(p.omega * p.dt)
    u = decay * (c * s.u - sn * s.v) + p.dt * x
    v = decay * (sn * s.u + c * s.v)
    z = ops.spike(u - p.theta)
    return z, ResState(u - z * p.theta, v)


RESONATOR = Neuron(
    name="exact-resonator",
    step=resonator_step,
    state=ResState,
    params=ResParams,
    init={"omega": Uniform(5.0, 60.0), "b": Uniform(-20.0, -1.0)},
    membrane=("u", "v"),
)


def _no_spike_path_ops() -> TorchOps:
    """Torch ops whose spike has no derivative at all (σ = 0), written here, independently of
    gradflow's own sub-threshold surrogate."""

    class _Ops(TorchOps):
        def spike(self, x: torch.Tensor) -> torch.Tensor:
            return (x > 0).to(x.dtype)

    return _Ops()


def test_exact_resonator_eigenvalues_closed_form() -> None:
    """J_sub = e^{bδ} R(ωδ), so λ = e^{bδ} e^{±iωδ} and ρ = e^{bδ} exactly (hand-derived)."""
    jac = derive(RESONATOR, symbolic_constants=True, positive=False)
    w, b, d = (jac.param_symbols[k] for k in ("omega", "b", "dt"))
    hand = sympy.exp(b * d) * sympy.Matrix(
        [[sympy.cos(w * d), -sympy.sin(w * d)], [sympy.sin(w * d), sympy.cos(w * d)]]
    )
    assert (jac.membrane_block - hand).applyfunc(sympy.simplify) == sympy.zeros(2, 2)
    res = jac.eigenvalues("membrane")
    assert res.closed_form, res.note
    # Vieta: λ₁ + λ₂ = 2e^{bδ}cos ωδ and λ₁λ₂ = e^{2bδ} = |λ|², exactly
    assert _same(sum(res.values), 2 * sympy.exp(b * d) * sympy.cos(w * d))
    assert _same(res.values[0] * res.values[1], sympy.exp(2 * b * d))
    # ρ = |λ| = e^{bδ} for both eigenvalues
    assert len(res.moduli) == 2 and all(_same(m, sympy.exp(b * d)) for m in res.moduli)
    assert _same(jac.spectral_radius("membrane"), sympy.exp(b * d))
    # at numbers (ωδ away from kπ: a complex pair): λ = e^{bδ}e^{±iωδ}, ρ = e^{bδ}
    for omega, damp in [(30.0, -5.0), (157.0, 2.0), (-12.5, -0.5)]:
        at = {w: omega, b: damp, d: DT}
        got = np.sort_complex(np.array([complex(sympy.N(v.subs(at))) for v in res.values]))
        want = np.sort_complex(np.exp(damp * DT) * np.exp(np.array([1j, -1j]) * omega * DT))
        assert np.allclose(got, want, rtol=0, atol=1e-14)
        rho = jac.spectral_radius("membrane").subs(at)
        assert float(rho) == pytest.approx(math.exp(damp * DT), rel=1e-14)


def test_exact_resonator_rho_is_printed_as_e_to_the_b_delta() -> None:
    """What the report prints is ρ = e^{bδ} itself (sin² + cos² = 1 applied), compared structurally,
    not after simplify(): sqrt(e^{2bδ} sin²(ωδ) + e^{2bδ} cos²(ωδ)) is right but unreadable."""
    jac = derive(RESONATOR, symbolic_constants=True, positive=False)
    b, d = jac.param_symbols["b"], jac.param_symbols["dt"]
    assert jac.spectral_radius("membrane") == sympy.exp(b * d)
    assert jac.spectral_radius("sub") == sympy.exp(b * d)
    jac = derive(RESONATOR)  # δ = 0.01 a number: ρ = e^{b/100}
    assert jac.spectral_radius("membrane") == sympy.exp(jac.param_symbols["b"] / 100)


def test_exact_resonator_symbolic_equals_autograd_and_closed_form() -> None:
    """The lambdified symbolic J (sub and full) against torch autograd of the same step, and the
    autograd eigenvalues against e^{bδ}e^{±iωδ}, at random ω, b (either sign), states and inputs."""
    jac = derive(RESONATOR)
    gen = torch.Generator().manual_seed(3)
    n = 6
    params = {
        "omega": torch.empty(n, dtype=torch.float64).uniform_(-80, 80, generator=gen),
        "b": torch.empty(n, dtype=torch.float64).uniform_(-30, 5, generator=gen),
    }
    states = {f: torch.empty(n, dtype=torch.float64).uniform_(-1, 1, generator=gen) for f in ("u", "v")}
    x = torch.empty(n, dtype=torch.float64).uniform_(-50, 150, generator=gen)
    J_sub = jac.lambdify_torch("sub")(states, x, params)
    J_full = jac.lambdify_torch("full")(states, x, params)
    for i in range(n):
        p_i = RESONATOR.make_params({k: v[i] for k, v in params.items()})
        s0 = torch.stack([states["u"][i], states["v"][i]])
        for ops, J_sym in ((_no_spike_path_ops(), J_sub[i]), (TorchOps(), J_full[i])):

            def step_vec(s: torch.Tensor, ops: Any = ops, p_i: Any = p_i, i: int = i) -> torch.Tensor:
                _, new = RESONATOR.step(ops, x[i], ResState(*s.unbind(0)), p_i)
                return torch.stack(list(new))

            J_auto = torch.func.jacrev(step_vec)(s0)
            # 1e-12: float64 rounding of the same few products
            assert torch.allclose(J_sym, J_auto, rtol=0, atol=1e-12), (i, J_sym, J_auto)
        lam = np.sort_complex(torch.linalg.eigvals(J_sub[i]).numpy())
        w, damp = float(params["omega"][i]), float(params["b"][i])
        want = np.sort_complex(math.exp(damp * DT) * np.exp(np.array([1j, -1j]) * w * DT))
        assert np.allclose(lam, want, rtol=0, atol=1e-13)
        assert np.abs(lam).max() == pytest.approx(math.exp(damp * DT), rel=1e-13)


# ---------------------------------------------------------------------- float control flow, kinks
@dataclass(frozen=True)
class FlowParams:
    tau: Any  # trainable
    leak: float = 0.5  # a float constant the step branches on
    phase: float = 0.3  # used through math.cos: a plain number
    theta: float = 1.0
    rectify: bool = True  # a bool switch (valid default)


class FlowState(NamedTuple):
    u: Any
    w: Any


def flow_step(ops: Any, x: Any, s: FlowState, p: FlowParams) -> tuple[Any, FlowState]:
    """u' = a·u + cos(φ)·w + x with a = e^{−1/|τ|} if leak > 0 else 1; w' = relu(u) or u."""
    a = ops.exp(-1 / ops.abs(p.tau)) if p.leak > 0 else 1.0
    u = a * s.u + math.cos(p.phase) * s.w + x
    w = ops.relu(s.u) if p.rectify else s.u
    z = ops.spike(u - p.theta)
    return z, FlowState(u - z * p.theta, p.leak * w)


FLOW = Neuron(
    name="float-flow",
    step=flow_step,
    state=FlowState,
    params=FlowParams,
    init={"tau": Normal(10.0, 1.0)},
    membrane=("u", "w"),
)


def test_float_control_flow_and_relu_kink_hand_eigenvalues() -> None:
    """J_sub = [[a, cos φ], [leak·relu′(u), 0]]: at u_{t−1} = 0 (the kink, relu′(0) = 0) the
    eigenvalues are a and 0; at u_{t−1} > 0 they solve λ² − aλ − leak·cos φ = 0 (hand-derived)."""
    jac = derive(FLOW)
    tau = jac.param_symbols["tau"]
    a = sympy.exp(-1 / tau)
    at_kink = derive(FLOW, state={"u": 0})
    assert _matches(at_kink.eigenvalues("membrane").values, [a, sympy.Integer(0)])
    # math.cos(φ) is a float in the expressions: compare numbers (1e-12: float64 rounding)
    c = 0.5 * math.cos(0.3)  # leak · cos φ

    def hand(t: float) -> np.ndarray:
        at = math.exp(-1 / t)
        r = math.sqrt(at * at + 4 * c)
        return np.sort(np.array([(at + r) / 2, (at - r) / 2]))

    def numeric(jac_at: Any, t: float) -> np.ndarray:
        vals = jac_at.eigenvalues("membrane").values
        return np.sort(np.array([float(v.subs(tau, t)) for v in vals]))

    above = derive(FLOW, state={"u": 0.5})
    off = derive(FLOW, params={"rectify": False}, state={"u": 0})  # the bool switch off: no kink
    for t in (2.0, 8.0, 30.0):
        assert np.allclose(numeric(above, t), hand(t), rtol=0, atol=1e-12)
        assert np.allclose(numeric(off, t), hand(t), rtol=0, atol=1e-12)
    # the other branch of the float constant (leak = 0): a = 1, and w' = 0
    assert _matches(derive(FLOW, params={"leak": 0.0}).eigenvalues("membrane").values, [1, 0])

    # the same J from torch autograd at the kink and away from it (relu′(0) = 0 in both)
    f = jac.lambdify_torch("sub")
    p = FLOW.make_params({"tau": torch.tensor(8.0, dtype=torch.float64)})
    for u0 in (0.0, 0.5, -0.5):
        s0 = torch.tensor([u0, 0.2], dtype=torch.float64)

        def step_vec(s: torch.Tensor) -> torch.Tensor:
            _, new = FLOW.step(_no_spike_path_ops(), torch.tensor(0.1, dtype=torch.float64), FlowState(*s), p)
            return torch.stack([torch.as_tensor(e, dtype=torch.float64) for e in new])

        J_auto = torch.func.jacrev(step_vec)(s0)
        J_sym = f({"u": s0[0], "w": s0[1]}, 0.1, {"tau": 8.0})
        assert torch.allclose(J_sym, J_auto, rtol=0, atol=1e-14), (u0, J_sym, J_auto)
        assert float(J_auto[1, 0]) == (0.5 if u0 > 0 else 0.0)


def test_float_branch_needs_its_constant_to_stay_a_number() -> None:
    with pytest.raises(UserError, match=r"float-flow.*ops\.where"):
        derive(FLOW, symbolic_constants=True)
    # naming the constants to make symbolic keeps the branch's one a number
    jac = derive(FLOW, symbolic_constants=["theta"])
    assert set(jac.param_symbols) == {"tau", "theta"} and jac.constants["leak"] == sympy.Rational(1, 2)
    with pytest.raises(UserError, match="no parameter"):
        derive(FLOW, symbolic_constants=["lek"])


def test_kinks_agree_between_symbolic_and_the_numeric_route() -> None:
    """gradflow's numeric per-neuron J_t (forward-mode AD on a whole layer) equals the lambdified
    symbolic J at relu's kink u = 0 and off it, with and without the spike path."""
    from gradscape.gradflow.jacobians import neuron_jacobians

    u = torch.tensor([0.0, 0.0, 0.4, -0.3], dtype=torch.float64)
    w = torch.tensor([0.2, -0.1, 0.3, 0.0], dtype=torch.float64)
    x = torch.tensor([0.1, 0.9, 0.6, 1.2], dtype=torch.float64)  # some spike arguments near 0
    tau = torch.tensor([8.0, 3.0, 20.0, 5.0], dtype=torch.float64)
    params = FLOW.make_params({"tau": tau})
    jac = derive(FLOW)
    for sub, which in ((True, "sub"), (False, "full")):
        numeric = neuron_jacobians(FLOW, x, FlowState(u, w), params, subthreshold=sub)
        symbolic = jac.lambdify_torch(which)({"u": u, "w": w}, x, {"tau": tau})
        # 1e-14: float64 rounding of the same products
        assert torch.allclose(numeric, symbolic, rtol=0, atol=1e-14), (which, numeric, symbolic)
        assert numeric[:2, 1, 0].tolist() == [0.0, 0.0]  # relu′(0) = 0 at the kink
