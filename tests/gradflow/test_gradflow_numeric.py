"""Numeric gradient flow: per-neuron J_t along trajectories and whole-network gradient routes."""

from __future__ import annotations

import importlib.resources
import math

import numpy as np
import pytest
import torch

from gradscape.gradflow.jacobians import (
    block_spectra,
    neuron_jacobians,
    record_trajectory,
    summarize,
    trajectory_spectra,
)
from gradscape.gradflow.network_flow import (
    backprop_gradients,
    jacobian_gradients,
    jacobian_product,
    last_step_loss,
    state_layout,
)
from gradscape.models.checkpoints import load_model
from gradscape.models.network import RecurrentNetwork
from gradscape.models.neurons import get_neuron
from gradscape.models.ops import TorchOps
from gradscape.models.surrogates import Triangle

DT = 0.01


def _bundled(kind: str):
    path = importlib.resources.files("gradscape.bundled") / "checkpoints" / f"ecg_{kind}.pt"
    return load_model(str(path), kind)[0]


@pytest.fixture(scope="module")
def ecg_inputs() -> torch.Tensor:
    from gradscape.models.datasets import load_task

    test = load_task("ecg").test
    # 2 samples, 250 steps: enough to see spikes and refractory dynamics, fast on 2 cores.
    return test.subset(2, seed=0).inputs[:, :250].transpose(0, 1).contiguous()


def test_per_neuron_blocks_match_dense_autograd():
    """Per-neuron blocks (forward mode on whole layers) equal the block diagonal of a dense autograd
    Jacobian."""
    torch.manual_seed(0)
    for name in ("brf", "rf", "alif", "lif", "lstm"):
        neuron = get_neuron(name)
        H, k = 4, len(neuron.state_fields)
        net = RecurrentNetwork(neuron, 2, H, 3, seed=1).double()
        params = net.neuron_params()
        prev = neuron.state(*(torch.randn(H, dtype=torch.float64) * 0.7 for _ in range(k)))
        # currents near threshold so the spike path (σ ≠ 0) is exercised
        x = torch.randn(neuron.gates * H, dtype=torch.float64) * 50
        J = neuron_jacobians(neuron, x, prev, params, ops=TorchOps())

        def flat_step(s: torch.Tensor, params=params, neuron=neuron, x=x, H=H) -> torch.Tensor:
            _, new = neuron.step(TorchOps(), x, neuron.state(*s.split(H)), params)
            return torch.cat(list(new))

        dense = torch.autograd.functional.jacobian(flat_step, torch.cat(list(prev)))
        blocks = dense.reshape(k, H, k, H).permute(1, 0, 2, 3).diagonal(dim1=0, dim2=3).permute(2, 0, 1)
        torch.testing.assert_close(J, blocks, rtol=0, atol=1e-12, msg=name)
        off = dense.reshape(k, H, k, H).clone()
        for h in range(H):
            off[:, h, :, h] = 0
        assert off.abs().max() == 0, f"{name}: neurons coupled inside one step"


def test_brf_membrane_block_closed_form():
    """BRF membrane block: eigenvalues 1 + δb ± iδω, b = p(ω) − b' − q, at any state (spike path too)."""
    neuron = get_neuron("brf")
    omega = torch.tensor([50.0, 10.0, 99.0], dtype=torch.float64)
    b_off = torch.tensor([1.0, 0.0, 3.0], dtype=torch.float64)
    q = torch.tensor([0.0, 0.5, 2.0], dtype=torch.float64)
    params = neuron.make_params({"omega": omega, "b_offset": b_off})
    prev = neuron.state(torch.full((3,), 0.9, dtype=torch.float64), torch.zeros(3, dtype=torch.float64), q)
    J = neuron_jacobians(neuron, torch.zeros(3, dtype=torch.float64), prev, params)
    spec = block_spectra(J, [0, 1])
    p = (-1 + torch.sqrt(1 - (DT * omega) ** 2)) / DT
    expected = torch.sqrt((1 + DT * (p - b_off - q)) ** 2 + (DT * omega) ** 2)
    torch.testing.assert_close(spec["membrane_rho"], expected, rtol=0, atol=1e-12)
    assert spec["membrane_rho"][0].item() == pytest.approx(0.99135, abs=5e-6)  # issue: ω=50, b'=1, q=0
    assert spec["membrane_rho"][1].item() == pytest.approx(
        math.sqrt(1 - 2 * DT * 0.5 * math.sqrt(1 - (DT * 10) ** 2) + (DT * 0.5) ** 2), abs=1e-12
    )
    # sub-threshold full state (u, v, q): eigenvalues {λ, λ̄, γ_q = 0.9}
    Jsub = neuron_jacobians(neuron, torch.zeros(3, dtype=torch.float64), prev, params, subthreshold=True)
    full = torch.linalg.eigvals(Jsub).abs().sort(-1).values
    lam = expected.unsqueeze(-1).expand(3, 2)
    ref = torch.cat([lam, torch.full((3, 1), 0.9, dtype=torch.float64)], -1).sort(-1).values
    torch.testing.assert_close(full, ref, rtol=0, atol=1e-12)


def test_brf_ecg_q0_matches_published_numbers():
    """Bundled BRF ECG model at q = 0: median 0.99346, range 0.96078–0.99980 (issue 3, acceptance).

    At q = 0 the membrane block depends only on (ω, b'), so a few steps of one sample give the same
    distribution over neuron-steps as the full test set (every neuron has the same number of steps).
    """
    net = _bundled("brf")
    x = torch.randn(5, 2, net.input_size)
    s = trajectory_spectra(net, x, zero_fields=("q",))
    stats = summarize(s)["membrane_rho"]
    assert stats["median"] == pytest.approx(0.99346, abs=5e-6)
    assert stats["min"] == pytest.approx(0.96078, abs=5e-6)
    assert stats["max"] == pytest.approx(0.99980, abs=5e-6)
    assert stats["count_gt_1"] == 0
    # independent check from the closed form |λ|² = (1 + δ(p(ω) − b'))² + (δω)²
    w = net.hidden.omega.detach().double().abs()
    b = (-1 + torch.sqrt(1 - (DT * w) ** 2)) / DT - net.hidden.b_offset.detach().double().abs()
    closed = torch.sqrt((1 + DT * b) ** 2 + (DT * w) ** 2).numpy()
    assert stats["median"] == pytest.approx(float(np.median(closed)), abs=1e-6)


def test_brf_ecg_membrane_below_one_along_trajectory(ecg_inputs):
    """Along real ECG trajectories the BRF membrane |λ_t| ≤ 1 everywhere; q > 0 only lowers it."""
    net = _bundled("brf")
    traj = record_trajectory(net, ecg_inputs)
    assert traj.spikes.sum() > 0
    s = trajectory_spectra(net, trajectory=traj)
    s0 = trajectory_spectra(net, trajectory=traj, zero_fields=("q",))
    assert float(s.membrane_rho.max()) <= 1.0
    assert torch.all(s.membrane_rho <= s0.membrane_rho + 1e-6)
    assert torch.any(s.membrane_rho < s0.membrane_rho - 1e-3)  # refractory q acted somewhere
    st = summarize(s)
    assert 0 <= st["full_rho"]["frac_gt_1"] < 0.5
    # ALIF and RF distributions beside it: below 1 along their trajectories as well
    for kind in ("rf", "alif"):
        other = summarize(trajectory_spectra(_bundled(kind), ecg_inputs[:100]))
        assert other["membrane_rho"]["max"] < 1.0


def test_backprop_equals_jacobian_products_float64():
    """‖∂L/∂s_{T−k}‖ by backprop and by network-Jacobian products agree to 1e-8 (label-last loss)."""
    torch.manual_seed(0)
    for name in ("brf", "alif"):
        net = RecurrentNetwork(name, 3, 5, 4, seed=2).double()
        x = torch.randn(16, 2, 3, dtype=torch.float64) * (60.0 if name == "brf" else 2.0)
        assert net(x).spikes.sum() > 0, "the test needs spikes so the surrogate path is exercised"
        loss = last_step_loss(torch.tensor([1, 3]))
        a = backprop_gradients(net, x, loss)
        r = jacobian_gradients(net, x, loss, lyapunov=3)
        b = r["gradients"]
        assert a.shape == (17, 2, state_layout(net).size)
        torch.testing.assert_close(b, a, rtol=0, atol=1e-8 * float(a.abs().max()))
        assert float(a[:-1, :, : net.hidden_size].abs().max()) > 0  # gradient reached the spikes
        # repeated QR from e_1, e_2: μ_1 = log‖Pᵀe_1‖/T and μ_1 + μ_2 = log area(Pᵀ[e_1 e_2])/T,
        # P = 𝒥_T ⋯ 𝒥_1 formed independently
        mu = r["exponents"]
        assert mu.shape == (2, 3)
        E = jacobian_product(net, x).transpose(-1, -2)[:, :, :2]
        T = x.shape[0]
        torch.testing.assert_close(mu[:, 0], E[:, :, 0].norm(dim=-1).log() / T, rtol=1e-9, atol=1e-12)
        area = torch.linalg.det(E.transpose(-1, -2) @ E).sqrt().log() / T
        torch.testing.assert_close(mu[:, 0] + mu[:, 1], area, rtol=1e-9, atol=1e-12)


def test_per_step_loss_routes_agree():
    """With a loss at every step the adjoint recursion adds ∂L/∂o_t at each t and still matches."""
    net = RecurrentNetwork("brf", 2, 4, 3, seed=3).double()
    x = torch.randn(10, 2, 2, dtype=torch.float64) * 60
    y = torch.randint(0, 3, (10, 2))

    def loss(o: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(o.reshape(-1, 3), y.reshape(-1), reduction="sum")

    a = backprop_gradients(net, x, loss)
    b = jacobian_gradients(net, x, loss)["gradients"]
    torch.testing.assert_close(b, a, rtol=0, atol=1e-10)


def test_brf_subthreshold_membrane_product_norm():
    """Below threshold (triangle surrogate: σ = 0 exactly) each neuron's (u, v) block of
    𝒥_T ⋯ 𝒥_1 is a product of scaled rotations with norm ∏|λ_s|, |λ_s|² = (1+δb_s)² + (δω)²,
    b_s = p(ω) − b' − q_{s−1} with q decaying from q_0 (so the |λ_s| differ from step to step)."""
    H, T = 4, 25
    net = RecurrentNetwork("brf", 2, H, 3, seed=4, surrogate=Triangle(width=0.5)).double()
    x = torch.randn(T, 1, 2, dtype=torch.float64) * 1e-2
    s0 = net.initial_state(1)
    q0 = torch.tensor([[0.5, 1.0, 2.0, 0.0]], dtype=torch.float64)
    s0 = type(s0)(s0.z, s0.neuron._replace(q=q0), s0.o)
    run = net(x, record=True, state=s0)
    assert run.spikes.sum() == 0 and run.states.u.abs().max() < 0.4  # σ = 0: |u − θ − q| ≥ width
    P = jacobian_product(net, x, initial=s0)[0]
    lay = state_layout(net)
    w = net.hidden.omega.detach().abs()
    p = (-1 + torch.sqrt(1 - (DT * w) ** 2)) / DT
    b_off = net.hidden.b_offset.detach().abs()
    qs = q0[0] * 0.9 ** torch.arange(T, dtype=torch.float64).unsqueeze(-1)  # q_{s−1}, s = 1 … T
    lam = torch.sqrt((1 + DT * (p - b_off - qs)) ** 2 + (DT * w) ** 2)
    for h in range(H):
        idx = [lay.index("u", h), lay.index("v", h)]
        block = P[idx][:, idx]
        norm = torch.linalg.matrix_norm(block, ord=2)
        assert float(norm) == pytest.approx(float(lam[:, h].prod()), rel=1e-12)
        # a scaled rotation: both singular values equal
        sv = torch.linalg.svdvals(block)
        assert float(sv[0] - sv[1]) == pytest.approx(0, abs=1e-12)


def test_closed_form_small_spectra_match_lapack():
    """gradflow.small_spectra (closed forms for k ≤ 3, LAPACK above) against torch.linalg on seeded
    random matrices and structured ones (scaled rotations, distinct diagonals, triangular).
    Tolerances: eigenvalue moduli 1e-12 of the largest (both routes are backward stable, ~1e-15, and a
    random 3 × 3 can be ill-conditioned by 10²–10³); σ_max 1e-13 relative; the smaller singular values
    1e-8 of σ_max (they come from σ² = eigenvalues of MᵀM, absolute error ε‖M‖²)."""
    from gradscape.gradflow.small_spectra import eigenvalue_moduli, singular_values

    g = torch.Generator().manual_seed(0)
    for k in (1, 2, 3, 4):
        rand = torch.randn(5000, k, k, dtype=torch.float64, generator=g)
        diag = torch.diag_embed(torch.rand(200, k, dtype=torch.float64, generator=g) * 2 - 1)
        tri = torch.triu(torch.randn(200, k, k, dtype=torch.float64, generator=g))
        mats = [rand, diag, tri]
        if k >= 2:
            th = torch.rand(200, dtype=torch.float64, generator=g) * math.pi
            rot = torch.zeros(200, k, k, dtype=torch.float64)
            rot[:, 0, 0], rot[:, 0, 1], rot[:, 1, 0], rot[:, 1, 1] = th.cos(), -th.sin(), th.sin(), th.cos()
            if k > 2:
                rot[:, 2:, 2:] = torch.eye(k - 2, dtype=torch.float64) * 0.9
            mats.append(0.99 * rot)
        M = torch.cat(mats)
        got = eigenvalue_moduli(M).sort(-1).values
        ref = torch.linalg.eigvals(M).abs().sort(-1).values
        scale = ref[:, -1:].clamp_min(1e-300)
        assert float(((got - ref).abs() / scale).max()) < 1e-12, k
        sv, rs = singular_values(M), torch.linalg.svdvals(M)
        assert float(((sv[:, 0] - rs[:, 0]).abs() / rs[:, 0].clamp_min(1e-300)).max()) < 1e-13, k
        assert float(((sv - rs).abs() / rs[:, :1].clamp_min(1e-300)).max()) < 1e-8, k


def test_closed_form_spectra_on_ecg_blocks():
    """The bundled BRF's per-neuron blocks along real trajectories hold nearly double real membrane
    pairs (where eigenvalues from the cubic's coefficients alone were off by 1e-7): ρ and ‖J‖₂ from
    small_spectra against LAPACK to 1e-10 relative (the worst blocks have all three eigenvalues within
    0.3 % of each other)."""
    from gradscape.gradflow.small_spectra import eigenvalue_moduli, singular_values
    from gradscape.models.datasets import load_task

    net = _bundled("brf")
    # 3 whole test sequences (140,400 blocks): the first 250 steps hold almost no near-double pair
    x = load_task("ecg").test.subset(3, seed=0).inputs.transpose(0, 1).contiguous()
    traj = record_trajectory(net, x)
    params = net.neuron_params()
    with torch.no_grad():
        J = neuron_jacobians(net.neuron, traj.x, traj.prev, params, ops=net.ops).double().reshape(-1, 3, 3)
    rho, ref = eigenvalue_moduli(J).amax(-1), torch.linalg.eigvals(J).abs().amax(-1)
    assert float(((rho - ref).abs() / ref).max()) < 1e-10
    sv, rs = singular_values(J)[:, 0], torch.linalg.svdvals(J)[:, 0]
    assert float(((sv - rs).abs() / rs).max()) < 1e-12
