"""Lyapunov spectrum of the backward product (gradscape.gradflow.lyapunov) against closed forms and an
independent dense Jacobian product."""

from __future__ import annotations

import json
import math

import pytest
import torch

from gradscape.errors import UserError
from gradscape.gradflow.lyapunov import (
    lyapunov_spectrum,
    lyapunov_spectrum_of_step,
    network_step_fn,
    random_orthonormal,
)
from gradscape.gradflow.network_flow import network_jacobian, run_flat_states
from gradscape.models.network import NetState, RecurrentNetwork

F64 = torch.float64


def _diagonal(lam: torch.Tensor):
    """s_t = Λ s_{t−1} + i_t: 𝒥_t = Λ for every t (the input only moves the trajectory)."""

    def step(i: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return s * lam + i

    return step


def _trajectory(step, inputs: torch.Tensor, size: int) -> torch.Tensor:
    s = torch.zeros(inputs.shape[1], size, dtype=inputs.dtype)
    out = [s]
    for i in inputs:
        s = step(i, s)
        out.append(s)
    return torch.stack(out)


def _run_diagonal(lam, m, T=300, B=2, **kw):
    step = _diagonal(lam)
    x = torch.randn(T, B, lam.numel(), dtype=F64, generator=torch.Generator().manual_seed(1))
    return lyapunov_spectrum_of_step(step, x, _trajectory(step, x, lam.numel()), m, **kw)


# Eigenvalue moduli 1.2 > 0.9 > 0.5 > 0.3 > 0.1 > 0.05 at shuffled coordinates, two negative.
LAM = torch.tensor([0.3, -0.9, 0.05, 1.2, -0.1, 0.5], dtype=F64)


@pytest.mark.parametrize("qr_every", [1, 4])
def test_constant_diagonal_recurrence_gives_exact_rates(qr_every):
    """𝒥 = Λ constant: after the transient the exponents are ln|λ_i| sorted, at every QR.

    Tolerance 1e-12: Q converges to the leading coordinate axes like (|λ_{i+1}|/|λ_i|)^n, at worst
    (0.9/1.2)^150 ≈ 2e-19 after the 150 transient steps, so what remains is float64 rounding of
    ln|R_ii| (≈ 1e-16 per step)."""
    res = _run_diagonal(LAM, 3, transient=150, qr_every=qr_every)
    exact = torch.tensor([math.log(1.2), math.log(0.9), math.log(0.5)], dtype=F64)
    assert res.exponents.shape == (2, 3)
    torch.testing.assert_close(res.exponents, exact.expand(2, 3), rtol=0, atol=1e-12)
    torch.testing.assert_close(res.convergence, exact.expand_as(res.convergence), rtol=0, atol=1e-12)
    steps = res.convergence_steps.tolist()
    assert steps[-1] == res.settings.counted_steps == 150
    assert steps == sorted(steps) and all(b - a <= qr_every for a, b in zip([0, *steps], steps, strict=False))


def test_float32_states_accumulate_logs_in_float64():
    """A float32 trajectory: Q propagates in float32, the logs sum in float64. Tolerance 1e-6: float32
    rounding of |R_ii| (≈ 6e-8 relative per QR), not accumulated by the per-step average."""
    lam = LAM.float()
    step = _diagonal(lam)
    x = torch.randn(300, 2, 6, generator=torch.Generator().manual_seed(1))
    res = lyapunov_spectrum_of_step(step, x, _trajectory(step, x, 6), 3, transient=150, qr_every=4)
    assert res.exponents.dtype == F64 and res.settings.dtype == "float32"
    exact = torch.tensor([math.log(1.2), math.log(0.9), math.log(0.5)], dtype=F64)
    torch.testing.assert_close(res.exponents, exact.expand(2, 3), rtol=0, atol=1e-6)


def test_full_spectrum_of_diagonal_recurrence_and_the_transient_matters():
    """m = D: all six ln|λ| in decreasing order; without a transient the finite-T estimate from a
    random start is off by O(1/T) (the start's misalignment), which the transient removes."""
    exact = LAM.abs().log().sort(descending=True).values
    full = _run_diagonal(LAM, 6, transient=150)
    torch.testing.assert_close(full.exponents[0], exact, rtol=0, atol=1e-12)
    no_transient = _run_diagonal(LAM, 3, T=150, transient=0)
    err = (no_transient.exponents[0] - exact[:3]).abs().max()
    assert err > 1e-6  # the start's O(1/T) bias is visible …
    assert err < 0.1  # … but bounded: |ln cos(angle to the leading subspace)| / T


def test_eye_start_misses_the_leading_directions():
    """The bug of a coordinate start Q_0 = eye(D, m): for a diagonal 𝒥 the span of the first m
    coordinates is invariant, so it reports the rates of those coordinates (ln 0.3, ln 0.9 here, in
    column order) instead of the leading ones (ln 1.2, ln 0.9); a random orthonormal start finds them."""
    eye = _run_diagonal(LAM, 2, transient=150, start=torch.eye(6, 2, dtype=F64))
    torch.testing.assert_close(
        eye.exponents[0], torch.tensor([math.log(0.3), math.log(0.9)], dtype=F64), rtol=0, atol=1e-12
    )
    rand = _run_diagonal(LAM, 2, transient=150)
    torch.testing.assert_close(
        rand.exponents[0], torch.tensor([math.log(1.2), math.log(0.9)], dtype=F64), rtol=0, atol=1e-12
    )
    assert eye.settings.start == "given" and rand.settings.start.startswith("random orthonormal")


def _rotation(theta: torch.Tensor) -> torch.Tensor:
    c, s = theta.cos(), theta.sin()
    return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)


@pytest.mark.parametrize("qr_every", [1, 7])
def test_rotation_scaling_recurrence_both_exponents_ln_r(qr_every):
    """s_t = r R(θ_t) s_{t−1} + b_t with the angle θ_t = 3 i_t set by the input: 𝒥_t = r R(θ_t) is
    r times a rotation (conformal), so |R_ii| = r at every QR from any start and both exponents are
    ln r at every row of the convergence history, no transient needed. Tolerance 1e-13: float64
    rounding only."""
    r = 0.95

    def step(i: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return r * (_rotation(3 * i[:, 0]) @ s.unsqueeze(-1)).squeeze(-1) + i[:, 1:]

    x = torch.rand(60, 3, 3, dtype=F64, generator=torch.Generator().manual_seed(2))
    res = lyapunov_spectrum_of_step(step, x, _trajectory(step, x, 2), 2, qr_every=qr_every)
    torch.testing.assert_close(
        res.convergence, torch.full_like(res.convergence, math.log(r)), rtol=0, atol=1e-13
    )


def test_block_rotation_scaling_spectrum():
    """Two rotation-scaling blocks r₁R(θ₁) ⊕ r₂R(θ₂), r₁ = 1.1 > r₂ = 0.7: m = 2 finds the pair ln r₁
    (after the transient; misalignment ≤ (0.7/1.1)^100 ≈ 2e-20), m = 4 gives (ln r₁, ln r₁, ln r₂,
    ln r₂). Tolerance 1e-12: float64 rounding."""
    blocks = torch.block_diag(
        1.1 * _rotation(torch.tensor(0.4, dtype=F64)), 0.7 * _rotation(torch.tensor(2.0, dtype=F64))
    )
    # Mix the coordinates so the leading plane is no coordinate plane.
    basis = random_orthonormal(4, 4, seed=5)
    A = basis @ blocks @ basis.T

    def step(i: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return s @ A.T + i

    x = torch.randn(200, 2, 4, dtype=F64, generator=torch.Generator().manual_seed(3))
    states = _trajectory(step, x, 4)
    lead = lyapunov_spectrum_of_step(step, x, states, 2, transient=100)
    torch.testing.assert_close(
        lead.exponents, torch.full((2, 2), math.log(1.1), dtype=F64), rtol=0, atol=1e-12
    )
    full = lyapunov_spectrum_of_step(step, x, states, 4, transient=100, qr_every=3)
    exact = torch.tensor([math.log(1.1)] * 2 + [math.log(0.7)] * 2, dtype=F64)
    torch.testing.assert_close(full.exponents, exact.expand(2, 4), rtol=0, atol=1e-12)


# ------------------------------------------------------------------ a real network, dense reference
def _dense_jacobians(net: RecurrentNetwork, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample D × D Jacobians 𝒥_t (T, B, D, D) by torch.autograd.functional.jacobian of the
    network step on a hand-flattened state (z, neuron fields…, o), and the hidden spikes (T, B, H)."""
    H, C = net.hidden_size, net.output_size
    k = len(net.neuron.state_fields)
    p = net.net_params()

    def unflat(s: torch.Tensor) -> NetState:
        parts = s.split([H] * (1 + k) + [C])
        return NetState(parts[0], net.neuron.state(*parts[1:-1]), parts[-1])

    def flat(st: NetState) -> torch.Tensor:
        return torch.cat([st.z, *st.neuron, st.o])

    jac, spikes = [], []
    for b in range(inputs.shape[1]):
        s = torch.zeros(H * (1 + k) + C, dtype=F64)
        jb, zb = [], []
        for i in inputs[:, b]:
            jb.append(
                torch.autograd.functional.jacobian(
                    lambda v, i=i: flat(net.step(net.ops, i, unflat(v), p)[1]), s
                )
            )
            with torch.no_grad():
                s = flat(net.step(net.ops, i, unflat(s), p)[1])
            zb.append(s[:H])
        jac.append(torch.stack(jb))
        spikes.append(torch.stack(zb))
    return torch.stack(jac, 1).detach(), torch.stack(spikes, 1).detach()


def _product(jac: torch.Tensor) -> torch.Tensor:
    """𝒫 = 𝒥_T ⋯ 𝒥_1 (B, D, D)."""
    P = jac[0]
    for J in jac[1:]:
        P = J @ P
    return P


@pytest.fixture(scope="module")
def small_case(tiny_net):
    net = tiny_net("brf", 2, 3, 2, seed=3, dtype=F64, drive=20.0)  # drive: neurons spike
    x = torch.rand(12, 2, 2, dtype=F64, generator=torch.Generator().manual_seed(4)) * 10
    jac, spikes = _dense_jacobians(net, x)
    return net, x, jac, spikes


@pytest.mark.parametrize("qr_every", [1, 4])
def test_full_spectrum_matches_dense_product(small_case, qr_every):
    """m = D, no transient, against the dense 𝒫 = 𝒥_T ⋯ 𝒥_1 built with autograd.functional.jacobian.

    The flat state carries z_t, which is a function of the other new fields (z_t = Θ(u_t − θ − q_{t−1}),
    q_t = γ q_{t−1} + z_t), so every 𝒥_t has rank r = D − H: H exponents are exactly −∞ and come out
    at rounding level: each QR segment of k steps leaves them a residue ≈ 1e-16 of the leading
    columns, i.e. ≈ ln(1e-16)/k per step; asserted below ln(1e-12)/k. For i ≤ r:

    * Σ_t ln|R_ii| of the iteration (any k) is ln|R_ii| of one QR of the dense 𝒫ᵀQ_0;
    * against the singular values σ_i of 𝒫 the closed sandwich (volume of the first j columns)

          0 ≤ Σ_{i≤j} ln σ_i − Σ_{i≤j} T μ_i ≤ gap_j = −ln|det(V_jᵀ E_j)|,

      V the right singular vectors of 𝒫ᵀQ_0 and E_j its first j coordinates, holds, so
      |μ_i − (1/T) ln σ_i| ≤ max(gap_{i−1}, gap_i)/T: the finite-T difference between a QR exponent
      and a singular-value rate, bounded by the start's angle to the singular directions.

    Tolerance 1e-9 (on T μ): float64 rounding of 12 products of 14 × 14 matrices; σ_1/σ_r is
    printed in the message (≈ 2e3, so the dense QR loses ≈ 1e-12 relative)."""
    net, x, jac, spikes = small_case
    assert spikes.sum() > 0 and spikes.sum() < spikes.numel()  # the spike path and reset are exercised
    T, B, D = jac.shape[0], jac.shape[1], jac.shape[2]
    r = D - net.hidden_size
    res = lyapunov_spectrum(net, x, D, transient=0, qr_every=qr_every, neuron_bound=False)
    assert bool((res.exponents[:, r:] < math.log(1e-12) / qr_every).all())
    growth = res.exponents[:, :r] * T
    P = _product(jac)
    A = P.transpose(-1, -2) @ random_orthonormal(D, D, seed=0)
    logs = torch.diagonal(torch.linalg.qr(A).R, dim1=-2, dim2=-1).abs().log()[:, :r]
    sv = torch.linalg.svdvals(P)[:, :r]
    msg = f"sigma_1 / sigma_r: {(sv[:, 0] / sv[:, -1]).tolist()}"
    torch.testing.assert_close(growth, logs, rtol=0, atol=1e-9, msg=msg)
    Vh = torch.linalg.svd(A).Vh
    partial_qr, partial_sv = growth.cumsum(-1), sv.log().cumsum(-1)
    gaps = torch.stack([-torch.linalg.det(Vh[:, :j, :j]).abs().log() for j in range(1, r + 1)], -1)
    assert bool((partial_sv - partial_qr >= -1e-9).all())
    assert bool((partial_sv - partial_qr <= gaps + 1e-9).all())
    bound = torch.maximum(gaps, torch.cat([torch.zeros(B, 1, dtype=F64), gaps[:, :-1]], -1)) / T
    assert bool(((res.exponents[:, :r] - sv.log() / T).abs() <= bound + 1e-9).all())


def test_leading_exponents_with_transient_match_dense_product(small_case):
    """m = 4 < D with a transient of 5 and QR every 3: the exponents are ln|diag R| / (T − 5) of the
    QR of (𝒥_1ᵀ ⋯ 𝒥_7ᵀ) Q_5, Q_5 the orthonormalised (𝒥_8ᵀ ⋯ 𝒥_12ᵀ) Q_0 — all dense. 1e-9: rounding."""
    net, x, jac, _ = small_case
    T, D = jac.shape[0], jac.shape[2]
    res = lyapunov_spectrum(net, x, 4, transient=5, qr_every=3, seed=7, neuron_bound=False)
    Q = random_orthonormal(D, 4, seed=7).expand(jac.shape[1], D, 4)
    Q = torch.linalg.qr(_product(jac[T - 5 :]).transpose(-1, -2) @ Q).Q
    R = torch.linalg.qr(_product(jac[: T - 5]).transpose(-1, -2) @ Q).R
    expected = torch.diagonal(R, dim1=-2, dim2=-1).abs().log() / (T - 5)
    torch.testing.assert_close(res.exponents, expected, rtol=0, atol=1e-9)
    assert res.settings.counted_steps == T - 5 and res.convergence_steps.tolist() == [1, 4, 7]


def test_eye_start_reproduces_the_dense_per_step_route(small_case):
    """With the old settings (Q_0 = eye(D, m), no transient, QR every step) the VJP route gives the
    exponents of the dense per-step route (network_flow.network_jacobian, jacrev D × D, then 𝒥_tᵀQ):
    one product, two implementations. 1e-10: rounding."""
    net, x, _, _ = small_case
    states = run_flat_states(net, x)
    T, B, D = x.shape[0], x.shape[1], states.shape[-1]
    Q = torch.eye(D, 3, dtype=F64).expand(B, D, 3)
    acc = torch.zeros(B, 3, dtype=F64)
    for t in range(T, 0, -1):
        Q, R = torch.linalg.qr(network_jacobian(net, x[t - 1], states[t - 1]).transpose(-1, -2) @ Q)
        acc = acc + torch.diagonal(R, dim1=-2, dim2=-1).abs().log()
    new = lyapunov_spectrum_of_step(network_step_fn(net), x, states, 3, start=torch.eye(D, 3, dtype=F64))
    torch.testing.assert_close(new.exponents, acc / T, rtol=0, atol=1e-10)


def test_seeded_start_is_reproducible_and_orthonormal(small_case):
    net, x, _, _ = small_case
    a = lyapunov_spectrum(net, x, 3, transient=2, seed=11)
    b = lyapunov_spectrum(net, x, 3, transient=2, seed=11)
    c = lyapunov_spectrum(net, x, 3, transient=2, seed=12)
    assert torch.equal(a.exponents, b.exponents) and torch.equal(a.convergence, b.convergence)
    assert not torch.equal(a.exponents, c.exponents)
    assert a.settings.seed == 11 and a.settings.start == "random orthonormal (seed 11)"
    q = random_orthonormal(14, 5, seed=11)
    torch.testing.assert_close(q.T @ q, torch.eye(5, dtype=F64), rtol=0, atol=1e-14)
    assert torch.equal(q, random_orthonormal(14, 5, seed=11))
    # The per-neuron comparison: one mean ln ρ per sample and neuron, JSON-able summary.
    assert a.neuron_log_rho.shape == (2, 3) and bool(torch.isfinite(a.neuron_log_rho).all())
    summary = json.loads(json.dumps(a.summary()))
    assert summary["settings"]["transient"] == 2 and len(summary["exponents_per_step"]["mean"]) == 3


def test_a_sample_does_not_depend_on_its_batch_and_progress_is_quiet_off_a_terminal(small_case, capsys):
    """One Q_0 for every sample: a sample's exponents are the same alone or in a batch (so callers may
    chunk a test set). 1e-12: batched vs single matmul rounding. ``progress=None`` shows a bar only
    on a terminal (pytest's captured stderr is none)."""
    net, x, _, _ = small_case
    both = lyapunov_spectrum(net, x, 3, transient=2, progress=None)
    alone = lyapunov_spectrum(net, x[:, 1:], 3, transient=2, progress=None)
    torch.testing.assert_close(both.exponents[1:], alone.exponents, rtol=0, atol=1e-12)
    assert capsys.readouterr().err == ""


def test_uncoupled_one_field_neurons_match_their_per_neuron_rate():
    """W_rec = 0 and W_out = 0, LIF (one state field u): 𝒥_t is block triangular with a zero z-block,
    diagonal u-block (∂u_t/∂u_{t−1} per neuron, spike reset through the surrogate included) and the
    constant readout block α, so the exponents are the per-neuron rates mean_t ln|∂u_t/∂u_{t−1}| =
    the per-neuron mean ln ρ(J_t), and ln α_c. The rates (≈ −0.2, −0.4, −0.6, −1.04) are ≥ 0.2 apart,
    so after the 100 transient steps the misalignment is ≈ e^{−0.2·100} ≈ 2e-9 and the QR
    exponents equal the sorted rates to 1e-6 (see the message)."""
    net = RecurrentNetwork("lif", 1, 3, 1, seed=0, tau_out=5.0).double()
    with torch.no_grad():
        net.hidden.weight[:, 1:] = 0.0
        net.hidden.weight[:, 0] = torch.tensor([40.0, 1.5, 0.0], dtype=F64)
        net.hidden.tau_mem.copy_(torch.tensor([30.0, 8.0, 1.0], dtype=F64))
        net.out.weight.zero_()
    x = torch.rand(400, 1, 1, dtype=F64, generator=torch.Generator().manual_seed(6))
    res = lyapunov_spectrum(net, x, 4, transient=100, qr_every=2)
    rates = torch.cat([res.neuron_log_rho[0], torch.exp(-1 / net.out.tau_mem.detach()).log()])
    expected = rates.sort(descending=True).values
    assert bool(torch.isfinite(expected).all())
    torch.testing.assert_close(res.exponents[0], expected, rtol=0, atol=1e-6, msg=f"rates {rates.tolist()}")
    # The coordinate start eye(D, m) spans z: back in time a z-cotangent only reaches u (through the
    # surrogate) and u never reaches o, so the leading readout rate ln α = −0.2 is never seen.
    eye = lyapunov_spectrum_of_step(
        network_step_fn(net), x, run_flat_states(net, x), 2, start=torch.eye(7, 2, dtype=F64)
    )
    assert float(eye.exponents[0, 0]) < expected[0] - 0.1


def test_user_errors():
    step = _diagonal(LAM)
    x = torch.zeros(5, 1, 6, dtype=F64)
    s = torch.zeros(6, 1, 6, dtype=F64)
    with pytest.raises(UserError, match="between 1 and the state size 6"):
        lyapunov_spectrum_of_step(step, x, s, 7)
    with pytest.raises(UserError, match="transient"):
        lyapunov_spectrum_of_step(step, x, s, 2, transient=5)
    with pytest.raises(UserError, match="qr_every"):
        lyapunov_spectrum_of_step(step, x, s, 2, qr_every=0)
    with pytest.raises(UserError, match="start must be"):
        lyapunov_spectrum_of_step(step, x, s, 2, start=torch.eye(6, 3, dtype=F64))
