"""Parameter maps of the spectral radius and the RF divergence boundary."""

from __future__ import annotations

import numpy as np
import pytest

from gradscape.errors import UserError
from gradscape.gradflow.parameter_map import (
    divergence_boundary_curve,
    spectral_radius_map,
    unit_modulus_b,
)

DT = 0.01


def _rf_rho(omega: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hand closed form: |1 + δ(b ± iω)| = sqrt((1 + δb)² + (δω)²)."""
    return np.sqrt((1 + DT * b) ** 2 + (DT * omega) ** 2)


def test_boundary_curves() -> None:
    w = np.array([0.0, 10.0, 50.0, 70.0, 99.0, 150.0])
    p = divergence_boundary_curve(w, DT)
    root = np.sqrt(1 - (DT * w[:5]) ** 2)
    assert np.allclose(p[:5], (-1 + root) / DT, rtol=0, atol=1e-12)
    assert np.isnan(p[5])  # δω > 1: no boundary
    lo, hi = unit_modulus_b(w, DT)
    assert np.allclose(hi[:5], p[:5], rtol=0, atol=1e-10)
    assert np.allclose(lo[:5], (-1 - root) / DT, rtol=0, atol=1e-10)
    assert np.isnan(lo[5]) and np.isnan(hi[5])


def test_vanilla_rf_map_over_omega_and_b() -> None:
    omega = np.array([10.0, 30.0, 50.0, 70.0, 90.0])
    b = np.linspace(-260.0, 20.0, 57)
    rho = spectral_radius_map("rf", "omega", omega, "b", b)
    assert rho.shape == (len(b), len(omega))
    W, B = np.meshgrid(omega, b)
    assert np.allclose(rho, _rf_rho(W, B), rtol=0, atol=1e-12)
    lo, hi = unit_modulus_b(W, DT)
    margin = 1e-9
    assert (rho[B > hi + margin] > 1).all()  # above p(ω): explodes
    assert (rho[(B > lo + margin) & (B < hi - margin)] < 1).all()  # between the roots: decays
    assert (rho[B < lo - margin] > 1).all()
    # hand-computed points: (ω, b) → ρ
    for w, bb, want in [(70.0, -1.0, 1.2124768), (50.0, -150.0, np.sqrt(0.5)), (50.0, -10.0, np.sqrt(1.06))]:
        got = spectral_radius_map("rf", "omega", [w], "b", [bb])[0, 0]
        assert got == pytest.approx(want, abs=1e-7)
    # b_offset axis: b = −|b'| for vanilla RF
    got = spectral_radius_map("rf", "omega", [70.0], "b_offset", [1.0, -1.0])
    assert np.allclose(got, 1.2124768, atol=1e-7)


def test_brf_map_over_omega_and_b_offset() -> None:
    omega = np.linspace(1.0, 99.0, 40)
    b_off = np.linspace(0.0, 5.0, 26)
    rho = spectral_radius_map("brf", "omega", omega, "b_offset", b_off)
    assert rho.shape == (26, 40)
    assert np.isfinite(rho).all()
    assert (rho <= 1 + 1e-12).all()
    assert np.allclose(rho[0], 1.0, rtol=0, atol=1e-12)  # b' = 0: on the unit circle
    assert (rho[1:] < 1).all()
    W, Bo = np.meshgrid(omega, b_off)
    want = np.sqrt(1 - 2 * DT * Bo * np.sqrt(1 - (DT * W) ** 2) + DT**2 * Bo**2)
    assert np.allclose(rho, want, rtol=0, atol=1e-12)
    assert spectral_radius_map("brf", "omega", [50.0], "b_offset", [1.0])[0, 0] == pytest.approx(
        0.99135, abs=5e-6
    )
    # past δω = 1 the boundary is undefined: NaN, not an error
    assert np.isnan(spectral_radius_map("brf", "omega", [120.0], "b_offset", [1.0])).all()


def test_maps_over_constants_state_and_other_neurons() -> None:
    # δ on an axis: BRF membrane at b' = 1, ω = 50
    dts = np.array([0.001, 0.005, 0.01])
    rho = spectral_radius_map("brf", "omega", [50.0], "dt", dts, constants={"b_offset": 1.0})[:, 0]
    want = np.sqrt(1 - 2 * dts * np.sqrt(1 - (dts * 50) ** 2) + dts**2)
    assert np.allclose(rho, want, rtol=0, atol=1e-12)
    # the smooth-reset state q on an axis lowers ρ like b'
    rq = spectral_radius_map("brf", "omega", [50.0], "q", [0.0, 1.0], constants={"b_offset": 0.0})[:, 0]
    assert rq == pytest.approx([1.0, 0.99135], abs=5e-6)
    # boolean switches in `constants` select the variant: BRF without the boundary is RF+RP+SR
    off = spectral_radius_map("brf", "omega", [70.0], "b_offset", [1.0], constants={"boundary": False})
    assert off[0, 0] == pytest.approx(1.21248, abs=5e-6)
    # ALIF sub-threshold: ρ = max(α, ρ_a)
    tm, ta = np.array([5.0, 20.0]), np.array([1.0, 200.0])
    rho = spectral_radius_map("alif", "tau_mem", tm, "tau_adp", ta, which="sub")
    TM, TA = np.meshgrid(tm, ta)
    assert np.allclose(rho, np.maximum(np.exp(-1 / TM), np.exp(-1 / TA)), rtol=0, atol=1e-12)


def test_map_errors() -> None:
    with pytest.raises(UserError, match="not a numeric parameter"):
        spectral_radius_map("rf", "omega", [1.0], "nope", [1.0])
    with pytest.raises(UserError, match="RF-family"):
        spectral_radius_map("alif", "tau_mem", [1.0], "b", [1.0])
    with pytest.raises(UserError, match="give a value for 'b_offset'"):
        spectral_radius_map("brf", "omega", [1.0], "dt", [0.01])


def test_a_neurons_own_b_is_mapped_as_itself() -> None:
    """The exact resonator (examples/resonator.py) has a trainable field named b: ``--map omega,b``
    maps it, not the RF family's derived damping, and ρ = e^{bδ} at every ω (hand-derived: J_sub =
    e^{bδ} R(ωδ)); 1e-12: float64 eigenvalues of a 2×2 rotation-scaling."""
    from pathlib import Path

    from gradscape.models.neurons import get_neuron

    res = get_neuron(f"{Path(__file__).resolve().parents[2] / 'examples' / 'resonator.py'}:Resonator")
    omega = np.linspace(1.0, 60.0, 7)
    b = np.linspace(-20.0, 5.0, 6)
    rho = spectral_radius_map(res, "omega", omega, "b", b)
    expected = np.repeat(np.exp(b * 0.01)[:, None], len(omega), axis=1)
    np.testing.assert_allclose(rho, expected, rtol=0, atol=1e-12)
