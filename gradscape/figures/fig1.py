"""Figure 1: a single resonate-and-fire neuron on either side of the divergence boundary.

Left: vanilla RF (no reset, no boundary) at δ = 0.01, ω = 10 driven by a brief injected current. Its
membrane update is linear below threshold, (u, v)_t = A (u, v)_{t−1} + δ (x_t, 0) with eigenvalues
λ = 1 + δ(b ± iω), so |λ|² = (1 + δb)² + (δω)²: b = −0.3 gives |λ| = 1.0020 (oscillation grows),
b = −1 gives |λ| = 0.9950 (it decays). Traces of u over time and the u–v phase plane.

Right: the (ω, b) plane at δ = 0.01 (ω 0…99, b −100…0), coloured by the spectral radius ρ of the
membrane block, with the divergence boundary p(ω) = (−1 + sqrt(1 − (δω)²))/δ drawn: ρ = 1 on it,
ρ < 1 below it (down to the lower root (−1 − sqrt(1 − (δω)²))/δ, beyond this range), ρ > 1 above.

Everything is computed from the neuron's own step function (:func:`gradscape.models.neurons.rf_step`)
— the simulation by calling it, ρ from its Jacobian — never from a copy of the equations.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gradscape.figures.plotting import add_caption, plt, save_figure
from gradscape.models.neurons import RF_VARIANTS, RFParams, RFState, divergence_boundary, rf_step
from gradscape.models.ops import TorchOps

__all__ = ["Fig1Settings", "simulate_rf", "membrane_radius_map", "make_fig1"]

DT = 0.01
OMEGA = 10.0
CASES = ((-0.3, "diverges"), (-1.0, "converges"))


@dataclass(frozen=True)
class Fig1Settings:
    steps: int = 1500
    pulse_steps: int = 5
    pulse_amplitude: float = 10.0
    map_omega: int = 200
    map_b: int = 201


def _rf_params(omega: Any, b: Any, dt: float = DT) -> RFParams:
    """Vanilla RF (no RP, SR, DB): b_t = −|b'|, so b' = −b for b ≤ 0."""
    return RF_VARIANTS["rf"].make_params({"omega": omega, "b_offset": -b}, dt=dt)


def simulate_rf(b: float, settings: Fig1Settings, omega: float = OMEGA) -> dict[str, np.ndarray]:
    """u, v and spikes z of one vanilla RF neuron driven by x_t = A for t < pulse_steps, then 0."""
    ops = TorchOps()
    p = _rf_params(torch.tensor([omega], dtype=torch.float64), torch.tensor([b], dtype=torch.float64))
    zero = torch.zeros(1, dtype=torch.float64)
    state = RFState(zero, zero, zero)
    us, vs, zs = [], [], []
    with torch.no_grad():
        for t in range(settings.steps):
            x = torch.full(
                (1,), settings.pulse_amplitude if t < settings.pulse_steps else 0.0, dtype=torch.float64
            )
            z, state = rf_step(ops, x, state, p)
            us.append(state.u)
            vs.append(state.v)
            zs.append(z)
    return {k: torch.cat(v).numpy() for k, v in (("u", us), ("v", vs), ("z", zs))}


def membrane_radius_map(omega: np.ndarray, b: np.ndarray, dt: float = DT) -> np.ndarray:
    """ρ of the membrane block ∂(u_t, v_t)/∂(u_{t−1}, v_{t−1}) on the grid ``b × omega``.

    Uses :func:`gradscape.gradflow.parameter_map.spectral_radius_map` when the gradient-flow subsystem
    provides it; otherwise the Jacobian of :func:`rf_step` by ``torch.func.jacrev`` (same function).
    """
    try:
        from gradscape.gradflow.parameter_map import spectral_radius_map
    except ImportError:  # the gradient-flow subsystem is absent: same Jacobian by autograd below
        spectral_radius_map = None
    if spectral_radius_map is not None:
        return spectral_radius_map("rf", "omega", omega, "b", b, constants={"dt": dt})
    ops = TorchOps()
    W, B = np.meshgrid(omega, b)
    w = torch.tensor(W.ravel(), dtype=torch.float64)
    bb = torch.tensor(B.ravel(), dtype=torch.float64)

    def membrane(uv: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor) -> torch.Tensor:
        zero = torch.zeros((), dtype=torch.float64)
        _, s = rf_step(ops, zero, RFState(uv[0], uv[1], zero), _rf_params(w1, b1, dt))
        return torch.stack([s.u, s.v])

    uv0 = torch.zeros(len(w), 2, dtype=torch.float64)
    jac = torch.func.vmap(torch.func.jacrev(membrane), in_dims=(0, 0, 0))(uv0, w, bb)
    rho = torch.linalg.eigvals(jac).abs().amax(-1)
    return rho.reshape(W.shape).numpy()


def make_fig1(out: Path, settings: Fig1Settings, caption_extra: str = "") -> dict[str, Any]:
    """Write fig1.png / fig1.pdf; returns the numbers shown (|λ| of both cases)."""
    fig = plt.figure(figsize=(14, 7), layout="constrained")
    gs = fig.add_gridspec(2, 3, width_ratios=[1.4, 0.8, 1.5])
    t = np.arange(settings.steps) * DT
    facts: dict[str, Any] = {}
    radius_cases = membrane_radius_map(np.array([OMEGA]), np.array([b for b, _ in CASES]))[:, 0]
    for row, ((b, word), rho) in enumerate(zip(CASES, radius_cases, strict=True)):
        sim = simulate_rf(b, settings)
        colour = "tab:red" if rho > 1 else "tab:blue"
        ax = fig.add_subplot(gs[row, 0])
        ax.plot(t, sim["u"], color=colour, lw=0.9)
        ax.axhline(1.0, color="0.4", ls="--", lw=0.8, label="threshold θ = 1")
        spikes = t[sim["z"] > 0]
        ax.plot(spikes, np.full_like(spikes, 1.0), "|", color="k", ms=8, label="spike")
        ax.axvspan(0, settings.pulse_steps * DT, color="0.85", label="injected current")
        ax.set_title(f"b = {b:g}: {word}, |λ| = {rho:.4f}")
        ax.set_ylabel("membrane u (a.u.)")
        ax.set_xlabel("time (s, δ = 0.01 per step)")
        ax.legend(loc="upper right", fontsize=7)
        ax_phase = fig.add_subplot(gs[row, 1])
        ax_phase.plot(sim["u"], sim["v"], color=colour, lw=0.7)
        ax_phase.plot(sim["u"][0], sim["v"][0], "o", color="k", ms=3, label="start")
        ax_phase.set_xlabel("u (a.u.)")
        ax_phase.set_ylabel("v (a.u.)")
        ax_phase.set_title(f"u–v phase plane, b = {b:g}")
        ax_phase.legend(fontsize=7, loc="upper right")
        ax_phase.set_aspect("equal", adjustable="datalim")
        facts[f"abs_lambda_b{b:g}"] = float(rho)

    omega = np.linspace(0, 99, settings.map_omega)
    b = np.linspace(-100, 0, settings.map_b)
    rho = membrane_radius_map(omega, b)
    ax = fig.add_subplot(gs[:, 2])
    from matplotlib.colors import TwoSlopeNorm

    mesh = ax.pcolormesh(
        omega,
        b,
        rho,
        shading="auto",
        cmap="RdBu_r",
        norm=TwoSlopeNorm(vcenter=1.0, vmin=float(rho.min()), vmax=float(rho.max())),
    )
    fig.colorbar(mesh, ax=ax, label="spectral radius ρ of the membrane block")
    p = divergence_boundary(TorchOps(), torch.tensor(omega, dtype=torch.float64), DT).numpy()
    ax.plot(omega, p, color="k", lw=2, label="divergence boundary p(ω)")
    ax.contour(omega, b, rho, levels=[1.0], colors="yellow", linewidths=0.8, linestyles=":")
    for (bc, _), r in zip(CASES, radius_cases, strict=True):
        ax.plot(OMEGA, bc, "o", color="tab:red" if r > 1 else "tab:blue", mec="k")
    ax.text(60, -20, "ρ > 1: diverges", fontsize=9)
    ax.text(5, -80, "ρ < 1: converges", fontsize=9)
    ax.set_xlabel("ω (rad/s)")
    ax.set_ylabel("b (1/s)")
    ax.set_title("single-neuron parameter space, δ = 0.01")
    ax.legend(loc="lower left", fontsize=8)
    ax.set_xlim(0, 99)
    ax.set_ylim(-100, 0)
    facts["rho_max_above_boundary"] = float(rho.max())
    facts["grid_points"] = int(rho.size)
    fig.suptitle("Fig. 1 — resonate-and-fire neuron and the divergence boundary")
    add_caption(
        fig,
        f"Vanilla RF (no refractory period, smooth reset or boundary), δ = {DT}, ω = {OMEGA:g}, "
        f"x_t = {settings.pulse_amplitude:g} for the first {settings.pulse_steps} steps then 0, "
        f"{settings.steps} steps. Right: ρ of ∂(u_t,v_t)/∂(u_t−1,v_t−1) from the neuron's step function "
        f"on a {settings.map_omega}×{settings.map_b} grid (yellow dotted: the ρ = 1 contour, which "
        f"lies on p(ω)); dots: the two neurons on the left. {caption_extra}",
    )
    save_figure(fig, out, "fig1")
    return facts
