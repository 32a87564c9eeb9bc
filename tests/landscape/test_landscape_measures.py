"""Surface measures against analytic surfaces: bowl, saddle, a sine grid, NaN masking, 1-D."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from gradscape.landscape.measures import curvature_maps, surface_measures

GRID = np.linspace(-1.0, 1.0, 41)  # h = 0.05, includes 0 at index 20
H = 0.05


def _grid(f):
    A, B = np.meshgrid(GRID, GRID, indexing="ij")
    return f(A, B)


def _dump(m: dict) -> None:
    json.dumps(m, allow_nan=False)  # raises on NaN/inf: the report must be strict JSON


def test_quadratic_bowl() -> None:
    a, b, rise = 1.0, 2.0, 0.10
    m = surface_measures(GRID, GRID, _grid(lambda x, y: a * x**2 + b * y**2), rise=rise)
    _dump(m)
    assert m["dims"] == 2 and m["settings"]["rise"] == rise and m["settings"]["neighbourhood"] == 8
    assert m["centre"] == {"alpha": 0.0, "beta": 0.0, "exact": True, "grid_loss": 0.0}
    assert m["centre_loss"] == 0.0 and m["min"] == 0.0
    rng = a + b
    assert m["max"] == pytest.approx(rng) and m["range"] == pytest.approx(rng)
    # Second differences are 2a h² along α and 2b h² along β, (41 − 2) × 41 of each.
    assert m["roughness_alpha"] == pytest.approx(2 * a * H**2 / rng, rel=1e-9)
    assert m["roughness_beta"] == pytest.approx(2 * b * H**2 / rng, rel=1e-9)
    assert m["roughness"] == pytest.approx((a + b) * H**2 / rng, rel=1e-9)
    assert m["local_minima"] == 1 and m["centre_is_local_minimum"]
    assert m["local_minima_points"] == [{"alpha": 0.0, "loss": 0.0, "beta": 0.0}]
    assert m["psd_fraction"] == 1.0 and m["psd_points"] == 39 * 39
    pc = m["principal_curvatures"]
    assert pc["centre"]["kappa_min"] == pytest.approx(2 * a, rel=1e-9)
    assert pc["centre"]["kappa_max"] == pytest.approx(2 * b, rel=1e-9)
    assert pc["centre"]["abs_min_over_max"] == pytest.approx(a / b, rel=1e-9)
    assert pc["kappa_min"]["min"] == pytest.approx(2 * a, rel=1e-6)
    assert pc["kappa_max"]["max"] == pytest.approx(2 * b, rel=1e-6)
    assert pc["negative_kappa_min_fraction"] == 0.0
    # Basin half-width sqrt(rise R / a); the chord of a convex f lies above it, so linear
    # interpolation crosses at most h²/(8 w) early.
    for axis, coef in (("alpha", a), ("beta", b)):
        exact = math.sqrt(rise * rng / coef)
        for side in ("plus", "minus"):
            got = m["basin_width"][axis][side]
            assert got["status"] == "crossed"
            assert exact - H**2 / (8 * exact) <= got["width"] <= exact + 1e-12
        assert m["basin_width"][axis]["mean"] == pytest.approx(exact, abs=H**2 / (8 * exact))


def test_basin_width_exact_on_grid_point_and_beyond_grid() -> None:
    x = np.linspace(-1.0, 1.0, 21)
    # f = α²: range 1, rise 0.25 → threshold 0.25 reached exactly at α = ±0.5.
    m = surface_measures(x, None, x**2, rise=0.25)
    _dump(m)
    assert m["dims"] == 1 and m["settings"]["neighbourhood"] == 2
    assert m["basin_width"]["alpha"]["plus"]["width"] == pytest.approx(0.5, abs=1e-12)
    assert m["basin_width"]["alpha"]["minus"]["width"] == pytest.approx(0.5, abs=1e-12)
    assert m["curvature"]["centre"] == pytest.approx(2.0, rel=1e-9)
    assert m["psd_fraction"] == 1.0 and m["local_minima"] == 1
    assert m["roughness"] == pytest.approx(2 * 0.1**2 / 1.0, rel=1e-9)
    # A ramp on one side never rises on the other: that side is beyond the grid.
    f = np.where(x > 0, x, 0.0)
    m = surface_measures(x, None, f, rise=0.10)
    assert m["basin_width"]["alpha"]["plus"]["width"] == pytest.approx(0.1, abs=1e-12)
    assert m["basin_width"]["alpha"]["minus"] == {"width": None, "status": "beyond_grid", "lower_bound": 1.0}
    assert m["basin_width"]["alpha"]["mean"] is None


def test_saddle() -> None:
    m = surface_measures(GRID, GRID, _grid(lambda x, y: x**2 - y**2))
    _dump(m)
    assert m["psd_fraction"] == 0.0
    assert m["local_minima"] == 0 and not m["centre_is_local_minimum"]
    pc = m["principal_curvatures"]
    assert pc["centre"]["kappa_min"] == pytest.approx(-2.0, rel=1e-9)
    assert pc["centre"]["kappa_max"] == pytest.approx(2.0, rel=1e-9)
    assert pc["centre"]["abs_min_over_max"] == pytest.approx(1.0, rel=1e-9)
    assert pc["negative_kappa_min_fraction"] == 1.0
    # Rotated saddle α β: only the mixed term, κ = ∓1 — checks the Δ_αβ stencil.
    m = surface_measures(GRID, GRID, _grid(lambda x, y: x * y))
    assert m["principal_curvatures"]["centre"]["kappa_min"] == pytest.approx(-1.0, rel=1e-9)
    assert m["principal_curvatures"]["centre"]["kappa_max"] == pytest.approx(1.0, rel=1e-9)
    assert m["psd_fraction"] == 0.0
    # Along the β axis the loss of −β² only falls: beyond the grid on both sides.
    m = surface_measures(GRID, GRID, _grid(lambda x, y: x**2 - y**2))
    assert m["basin_width"]["beta"]["plus"]["status"] == "beyond_grid"


def test_sine_grid_local_minima_and_roughness() -> None:
    # sin(5πα) has minima at α = −0.1 + 0.4 n: −0.9, −0.5, −0.1, 0.3, 0.7 on the grid (period 8 h);
    # the separable sum has a strict 8-neighbourhood minimum exactly where both coordinates do.
    w = 5 * math.pi
    f = _grid(lambda x, y: np.sin(w * x) + np.sin(w * y))
    m = surface_measures(GRID, GRID, f)
    _dump(m)
    assert m["local_minima"] == 25
    listed = {(round(p["alpha"], 9), round(p["beta"], 9)) for p in m["local_minima_points"]}
    mins = [-0.9, -0.5, -0.1, 0.3, 0.7]
    assert listed == {(a, b) for a in mins for b in mins}
    assert all(p["loss"] == pytest.approx(-2.0) for p in m["local_minima_points"])
    # Δ sin(ω α) = 2 sin(ω α)(cos ω h − 1): mean |Δ| over the interior, both axes alike.
    interior = GRID[1:-1]
    mean_abs = 2 * (1 - math.cos(w * H)) * np.abs(np.sin(w * interior)).mean()
    assert m["range"] == pytest.approx(4.0, abs=1e-9)
    assert m["roughness"] == pytest.approx(mean_abs / 4.0, rel=1e-9)
    bowl = surface_measures(GRID, GRID, _grid(lambda x, y: x**2 + y**2))
    assert m["roughness"] > 10 * bowl["roughness"]
    assert 0.0 < m["psd_fraction"] < 1.0
    m = surface_measures(GRID, GRID, f, max_listed_minima=3)
    assert m["local_minima"] == 25 and len(m["local_minima_points"]) == 3


def test_nan_region_is_masked() -> None:
    a, b = 1.0, 2.0
    f = _grid(lambda x, y: a * x**2 + b * y**2)
    f[:5, :5] = np.nan  # a diverged corner (α, β ≤ −0.8)
    f[0, -1] = np.inf
    m = surface_measures(GRID, GRID, f)
    _dump(m)
    assert m["diverged"] == 26 and m["diverged_fraction"] == pytest.approx(26 / 41**2)
    # Max over finite points: the corner (1, 1) = a + b, the min still the centre.
    assert m["max"] == pytest.approx(a + b) and m["min"] == 0.0 and m["range"] == pytest.approx(a + b)
    # Interior points whose 3×3 stencil touches the NaN block (i, j ∈ 1..5) or the inf corner drop out.
    assert m["psd_points"] == 39 * 39 - 25 - 1
    assert m["psd_fraction"] == 1.0
    assert m["local_minima"] == 1
    # Every axis loses 25 + 1 second differences, equally: the mean is unchanged.
    assert m["roughness"] == pytest.approx((a + b) * H**2 / (a + b), rel=1e-9)
    maps = curvature_maps(GRID, GRID, f)
    assert np.isnan(maps["kappa_min"][3, 3]) and maps["kappa_min"][20, 20] == pytest.approx(2 * a)
    # A diverged point on the basin walk stops it there, marked.
    g = _grid(lambda x, y: a * x**2 + b * y**2)
    g[26, 20] = np.nan  # α = 0.3 on the β = 0 line, before the crossing at √0.3 ≈ 0.548
    walk = surface_measures(GRID, GRID, g)["basin_width"]["alpha"]
    assert walk["plus"] == {"width": pytest.approx(0.3), "status": "diverged"}
    assert walk["minus"]["status"] == "crossed"
    # An all-NaN surface is a result too, not a crash.
    empty = surface_measures(GRID, GRID, np.full((41, 41), np.nan))
    _dump(empty)
    assert empty["min"] is None and empty["psd_fraction"] is None and empty["local_minima"] == 0
    assert empty["basin_width"]["alpha"]["plus"] == {"width": None, "status": "centre_diverged"}


def test_centre_off_grid_given_centre_loss_and_bad_input() -> None:
    x = np.linspace(-1.0, 1.0, 40)  # no 0 on the grid
    m = surface_measures(x, x, np.add.outer(x**2, x**2), centre_loss=0.0)
    assert m["centre"]["exact"] is False and abs(m["centre"]["alpha"]) == pytest.approx(1 / 39)
    assert m["centre_loss"] == 0.0 and m["settings"]["centre_loss_source"] == "given"
    with pytest.raises(ValueError, match="shape"):
        surface_measures(GRID, GRID, np.zeros((41, 40)))
    with pytest.raises(ValueError, match="uniform"):
        surface_measures(np.array([0.0, 0.1, 0.3]), None, np.zeros(3))
    with pytest.raises(ValueError, match="rise"):
        surface_measures(GRID, None, GRID**2, rise=1.5)
