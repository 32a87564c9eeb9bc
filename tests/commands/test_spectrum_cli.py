"""``gradscape spectrum`` end to end (in-process): JSON summary, files, checkpoints and user errors."""

from __future__ import annotations

import json
import math
import textwrap

import numpy as np
import pytest

from gradscape.cli import main

DT = 0.01


def _last_json(capsys) -> dict:
    out = capsys.readouterr().out.strip().splitlines()
    return json.loads(out[-1])


def _self_contained(path) -> bool:
    html = path.read_text(encoding="utf-8")
    # plotly.js inlined (megabytes), no external <script src=…>
    return "<script" in html and "<script src=" not in html and len(html) > 1_000_000


def test_rf_point_and_map(tmp_path, capsys):
    """Vanilla RF ω = 70, b' = 1: |λ| = 1.21248 (issue 3); map over (ω, b) with p(ω) drawn."""
    out = tmp_path / "rf"
    rc = main(["spectrum", "--neuron", "rf", "--param", "omega=70", "--param", "b_offset=1",
               "--map", "omega=0:99:21,b=-100:0:11", "--out", str(out), "--json"])  # fmt: skip
    assert rc == 0
    res = _last_json(capsys)
    assert res["spectral_radius"] == pytest.approx(1.21248, abs=5e-6)
    assert res["spectral_radius"] == pytest.approx(math.hypot(1 - DT * 1, DT * 70), abs=1e-12)
    assert res["spectral_radius_full"] == pytest.approx(res["spectral_radius"], abs=1e-12)
    assert sorted(round(im, 9) for _, im in res["eigenvalues"]) == [-0.7, 0.7]
    for name in ("result.json", "map.png", "map.npz", "spectrum.html", "jacobian_rf.txt", "jacobian_rf.tex"):
        assert (out / name).is_file(), name
    assert _self_contained(out / "spectrum.html")
    m = np.load(out / "map.npz")
    assert m["rho"].shape == (11, 21)
    # at b = 0 the modulus is sqrt(1 + (δω)²) ≥ 1; at ω = 0, b = −100 it is |1 − 1| = 0
    assert m["rho"][-1, -1] == pytest.approx(math.hypot(1.0, DT * 99), abs=1e-9)
    assert m["rho"][0, 0] == pytest.approx(0.0, abs=1e-9)
    full = json.loads((out / "result.json").read_text())
    assert full["config"]["map"] == "omega=0:99:21,b=-100:0:11"
    assert "gradscape_version" in full["provenance"]
    assert "\\begin{align*}" in (out / "jacobian_rf.tex").read_text()


def test_brf_given_state(tmp_path, capsys):
    """--state q=0.5: membrane |λ|² = (1 + δ(p(ω) − b' − q))² + (δω)², full-state J with σ at that state."""
    rc = main(["spectrum", "--neuron", "brf", "--param", "omega=50,b_offset=1", "--state", "q=0.5",
               "--out", str(tmp_path), "--json"])  # fmt: skip
    assert rc == 0
    res = _last_json(capsys)
    p = (-1 + math.sqrt(1 - (DT * 50) ** 2)) / DT
    assert res["spectral_radius"] == pytest.approx(math.hypot(1 + DT * (p - 1 - 0.5), DT * 50), abs=1e-12)
    assert res["state"] == {"u": 0.0, "v": 0.0, "q": 0.5}
    assert len(res["eigenvalues_full"]) == 3


def test_reference_checkpoints(tmp_path, capsys):
    """Bundled ECG BRF and RF: per-step statistics, q = 0 numbers, plots and provenance (ALIF's
    distribution is checked in test_gradflow_numeric; its symbolic eigen-analysis is the slow one)."""
    out = tmp_path / "ckpt"
    rc = main(["spectrum", "--checkpoint", "bundled:brf", "--checkpoint", "bundled:rf", "--task", "ecg",
               "--samples", "1", "--steps", "60", "--flow-samples", "1", "--lyapunov", "2",
               "--out", str(out), "--json"])  # fmt: skip
    assert rc == 0
    res = _last_json(capsys)
    brf, rf = res["checkpoints"]
    assert brf["model"] == "brf" and rf["model"] == "rf"
    q0 = brf["membrane_rho_q0"]
    assert (q0["median"], q0["min"], q0["max"]) == pytest.approx((0.99346, 0.96078, 0.99980), abs=5e-6)
    assert brf["membrane_rho"]["max"] <= 1.0 and brf["membrane_rho"]["count_gt_1"] == 0
    assert rf["membrane_rho"]["max"] < 1.0
    assert "frac_gt_1" in brf["full_rho"] and "frac_gt_1" in brf["sigma_max"]
    assert len(brf["lyapunov_median"]) == 2
    full = json.loads((out / "result.json").read_text())
    assert len(full["data"]["indices"]) == 1 and full["data"]["steps"] == 60
    assert full["config"]["seed"] == 0
    flow = full["checkpoints"][0]["gradient_flow"]
    assert flow["backprop_vs_jacobian_max_rel_diff"] < 1e-8
    assert len(full["checkpoints"][0]["per_neuron_q0"]) == 36
    for name in ("rho_distribution.png", "rho_full_distribution.png", "gradient_norms.png", "spectra.npz",
                 "spectrum.html", "jacobian_brf.txt", "jacobian_rf.tex"):  # fmt: skip
        assert (out / name).is_file(), name
    assert _self_contained(out / "spectrum.html")
    norms = np.load(out / "spectra.npz")["0_gradient_norms"]
    assert norms.shape == (61, 1)


def test_custom_neuron_file(tmp_path, capsys):
    """A user's neuron from path/file.py:Name: leaky unit, J = α = exp(−1/τ)."""
    f = tmp_path / "my_neuron.py"
    f.write_text(textwrap.dedent('''
        from dataclasses import dataclass
        from typing import Any, NamedTuple
        from gradscape.models.neurons import Neuron, Normal

        class S(NamedTuple):
            u: Any

        @dataclass(frozen=True)
        class P:
            tau: Any
            theta: float = 1.0

        def step(ops, x, s, p):
            a = ops.exp(-1 / ops.abs(p.tau))
            u = a * s.u + (1 - a) * x
            z = ops.spike(u - p.theta)
            return z, S(u - z * p.theta)

        Leaky = Neuron(name="leaky", step=step, state=S, params=P, init={"tau": Normal(20.0, 5.0)},
                       membrane=("u",))
    '''))  # fmt: skip
    rc = main(
        ["spectrum", "--neuron", f"{f}:Leaky", "--param", "tau=10", "--out", str(tmp_path / "o"), "--json"]
    )
    assert rc == 0
    assert _last_json(capsys)["spectral_radius"] == pytest.approx(math.exp(-0.1), abs=1e-12)


@pytest.mark.parametrize(
    ("source", "expect"),
    [
        ("import not_a_module_xyz\n", "failed to import"),
        ("X = 1\n", "is a int, not a gradscape Neuron"),
        ("Y = 1\n", "defines no 'X'"),
    ],
)
def test_bad_neuron_files(tmp_path, capsys, source, expect):
    f = tmp_path / "bad.py"
    f.write_text(source)
    rc = main(["spectrum", "--neuron", f"{f}:X", "--out", str(tmp_path / "o")])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expect in err[0]


def test_untraceable_neuron(tmp_path, capsys):
    """A step using torch directly runs in torch but not on sympy: one message naming the line."""
    f = tmp_path / "torchy.py"
    f.write_text(textwrap.dedent('''
        from dataclasses import dataclass
        from typing import Any, NamedTuple
        import torch
        from gradscape.models.neurons import Neuron, Constant

        class S(NamedTuple):
            u: Any

        @dataclass(frozen=True)
        class P:
            k: Any

        def step(ops, x, s, p):
            u = torch.tanh(p.k * s.u) + x
            return ops.spike(u - 1.0), S(u)

        T = Neuron(name="torchy", step=step, state=S, params=P, init={"k": Constant(0.5)}, membrane=("u",))
    '''))  # fmt: skip
    rc = main(["spectrum", "--neuron", f"{f}:T", "--out", str(tmp_path / "o")])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sympy backend cannot trace" in err[0] and "torch.tanh" in err[0]


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["--neuron", "brf", "--map", "omega=0:99"], "NAME=LO:HI:N"),
        (["--neuron", "brf", "--param", "nope=1"], "no parameter"),
        (["--neuron", "brf", "--state", "w=1"], "no state field"),
        (["--checkpoint", "bundled:brf"], "--task"),
        (["--checkpoint", "bundled:xyz", "--task", "ecg"], "bundled checkpoints are"),
        ([], "give --neuron"),
    ],
)
def test_user_errors(tmp_path, capsys, args, expect):
    rc = main(["spectrum", *args, "--out", str(tmp_path)])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expect in err[0]


# ---------------------------------------------------------------------- issue 11 items 2, 3, 7
RESONATOR = """
import math
from dataclasses import dataclass
from typing import Any, NamedTuple
from gradscape.models.neurons import Neuron, Uniform

class S(NamedTuple):
    u: Any
    v: Any

@dataclass(frozen=True)
class P:
    b: Any
    omega: float = 20.0
    dt: float = 0.01
    leak: float = 0.0

def step(ops, x, s, p):
    # exact discretisation of the damped rotation; cos/sin of float constants in plain math
    r = ops.exp(p.b * p.dt)
    c, si = math.cos(p.omega * p.dt), math.sin(p.omega * p.dt)
    u = r * (c * s.u - si * s.v) + p.dt * x
    v = r * (si * s.u + c * s.v)
    if p.leak > 0:  # control flow on a float constant
        u = u - p.leak * p.dt * s.u
    return ops.spike(u - 1.0), S(u, v)

Res = Neuron(name="res", step=step, state=S, params=P, init={"b": Uniform(-10.0, -1.0)}, membrane=("u", "v"))
"""

IZHIKEVICH = """
from dataclasses import dataclass
from typing import Any, NamedTuple
from gradscape.models.neurons import Neuron

class S(NamedTuple):
    v: Any
    u: Any

@dataclass(frozen=True)
class P:
    a: float = 0.02
    b: float = 0.2
    c: float = -65.0
    d: float = 8.0
    dt: float = 0.5
    peak: float = 30.0

def step(ops, x, s, p):
    v = s.v + p.dt * (0.04 * s.v * s.v + 5 * s.v + 140 - s.u + x)
    u = s.u + p.dt * p.a * (p.b * s.v - s.u)
    z = ops.spike(v - p.peak)
    return z, S((1 - z) * v + z * p.c, u + z * p.d)

Izh = Neuron(name="izh", step=step, state=S, params=P, init={}, membrane=("v", "u"))
"""


def _pair_moduli(tr: float, det: float) -> list[float]:
    """|λ| of λ² − tr λ + det, largest first (hand formula)."""
    disc = tr * tr - 4 * det
    if disc < 0:
        return [math.sqrt(det)] * 2
    return sorted((abs((tr + math.sqrt(disc)) / 2), abs((tr - math.sqrt(disc)) / 2)), reverse=True)


def test_float_constants_stay_floats(tmp_path, capsys):
    """math.cos/sin of float constants and `if p.leak > 0` work: ρ = e^{bδ} (leak 0) and the hand
    eigenvalues of [[r cos − lδ, −r sin], [r sin, r cos]] (leak 5); 1e-12: float64 rounding."""
    f = tmp_path / "res.py"
    f.write_text(RESONATOR)
    b, dt, w = -5.0, 0.01, 20.0
    r, c, s = math.exp(b * dt), math.cos(w * dt), math.sin(w * dt)
    rc = main(["spectrum", "--neuron", f"{f}:Res", "--param", "b=-5", "--out", str(tmp_path / "a"), "--json"])
    assert rc == 0
    res = _last_json(capsys)
    assert res["spectral_radius"] == pytest.approx(math.exp(b * dt), abs=1e-12)
    got = sorted(res["eigenvalues"])
    assert [v for pair in got for v in pair] == pytest.approx([r * c, -r * s, r * c, r * s], abs=1e-12)
    rc = main(
        ["spectrum", "--neuron", f"{f}:Res", "--param", "b=-5,leak=5", "--out", str(tmp_path / "b"), "--json"]
    )
    assert rc == 0
    res = _last_json(capsys)
    a11 = r * c - 5 * dt
    expect = _pair_moduli(a11 + r * c, a11 * r * c + r * s * r * s)
    assert res["spectral_radius"] == pytest.approx(expect[0], abs=1e-12)
    assert sorted(math.hypot(*v) for v in res["eigenvalues"]) == pytest.approx(sorted(expect), abs=1e-12)


def test_float_constants_in_a_trained_network(tmp_path):
    """The checkpoint route (network params, per-neuron J_t along a trajectory, the point of the
    network's neuron) keeps the constants floats: every neuron-step has ρ = e^{b_h δ} exactly."""
    import torch

    from gradscape.gradflow import checkpoint_spectra, parameter_values, point_spectrum
    from gradscape.models.network import RecurrentNetwork
    from gradscape.models.neurons import get_neuron

    f = tmp_path / "res.py"
    f.write_text(RESONATOR)
    net = RecurrentNetwork(get_neuron(f"{f}:Res"), 2, 5, 3, seed=1).double()
    x = torch.randn(30, 2, 2, dtype=torch.float64) * 50
    stats, _ = checkpoint_spectra(net, x)
    rho = torch.exp(net.hidden.b.detach() * 0.01)
    assert stats["trajectory"]["membrane_rho"]["max"] == pytest.approx(float(rho.max()), abs=1e-12)
    assert stats["trajectory"]["membrane_rho"]["min"] == pytest.approx(float(rho.min()), abs=1e-12)
    params, _ = parameter_values(net.neuron, {"b": -2.0})
    assert point_spectrum(net.neuron, params).spectral_radius == pytest.approx(math.exp(-0.02), abs=1e-12)


def test_izhikevich_zero_state_fires_is_detected(tmp_path, capsys):
    """v' = v + δ(0.04v² + 5v + 140 − u): at v = u = 0 the step gives v' = 70 ≥ 30, a spike. The
    point becomes the resting state (v, u) = (−70, −14) (the stable root of 0.04v² + 4.8v + 140 = 0,
    u = bv), where J_sub = [[1 + δ(0.08v + 5), −δ], [δab, 1 − δa]] = [[0.7, −0.5], [0.002, 0.99]]."""
    f = tmp_path / "izh.py"
    f.write_text(IZHIKEVICH)
    rc = main(["spectrum", "--neuron", f"{f}:Izh", "--out", str(tmp_path / "o"), "--json"])
    assert rc == 0
    captured = capsys.readouterr().out.strip().splitlines()
    res = json.loads(captured[-1])
    assert res["zero_state_fires"] is True and "resting state" in res["point"]
    assert any("spikes at the zero state" in line for line in captured[:-1])
    # stationary to 1e-13 relative: the state and hence J to ~1e-9 (slow mode 0.9865 per step)
    assert res["state"]["v"] == pytest.approx(-70.0, abs=1e-8) and res["state"]["u"] == pytest.approx(
        -14.0, abs=1e-8
    )
    expect = _pair_moduli(0.7 + 0.99, 0.7 * 0.99 + 0.5 * 0.002)
    assert res["spectral_radius_subthreshold"] == pytest.approx(expect[0], abs=1e-9)
    assert res["spectral_radius"] == res["spectral_radius_subthreshold"]
    assert res["fires"] is False


def test_subthreshold_and_at_state_are_two_names(tmp_path, capsys):
    """Leaky unit with reset u − zθ at u = 0.95: sub-threshold ρ = α; at the state the spike path
    gives α(1 − θσ(a)), a = αu − θ (x = 0), σ the double-Gaussian slope."""
    import torch

    from gradscape.models.surrogates import get_surrogate

    f = tmp_path / "my_neuron.py"
    f.write_text(textwrap.dedent('''
        from dataclasses import dataclass
        from typing import Any, NamedTuple
        from gradscape.models.neurons import Neuron, Normal

        class S(NamedTuple):
            u: Any

        @dataclass(frozen=True)
        class P:
            tau: Any
            theta: float = 1.0

        def step(ops, x, s, p):
            a = ops.exp(-1 / ops.abs(p.tau))
            u = a * s.u + (1 - a) * x
            z = ops.spike(u - p.theta)
            return z, S(u - z * p.theta)

        Leaky = Neuron(name="leaky", step=step, state=S, params=P, init={"tau": Normal(20.0, 5.0)},
                       membrane=("u",))
    '''))  # fmt: skip
    rc = main(["spectrum", "--neuron", f"{f}:Leaky", "--param", "tau=10", "--state", "u=0.95",
               "--out", str(tmp_path / "o"), "--json"])  # fmt: skip
    assert rc == 0
    res = _last_json(capsys)
    alpha = math.exp(-0.1)
    sigma = float(
        get_surrogate("double-gaussian").grad(torch.tensor(alpha * 0.95 - 1.0, dtype=torch.float64))
    )
    assert res["spectral_radius_subthreshold"] == pytest.approx(alpha, abs=1e-12)
    assert res["spectral_radius_at_state"] == pytest.approx(abs(alpha * (1 - sigma)), abs=1e-12)
    assert res["spectral_radius_at_state"] != pytest.approx(res["spectral_radius_subthreshold"], abs=1e-3)
    assert res["spectral_radius"] == res["spectral_radius_subthreshold"]


@pytest.mark.parametrize("flag", [[], ["--no-progress"]])
def test_progress_quiet_off_a_terminal(tmp_path, capsys, flag):
    """stderr is not a terminal here: no progress bar (no carriage returns) with or without the flag."""
    rc = main(["spectrum", "--checkpoint", "bundled:brf", "--task", "ecg", "--samples", "1", "--steps", "20",
               "--no-flow", "--out", str(tmp_path), *flag])  # fmt: skip
    assert rc == 0
    assert "\r" not in capsys.readouterr().err


def test_run_spectrum_library_call(tmp_path):
    """The library call returns every number and the files it wrote (no private keys)."""
    from gradscape.gradflow import MapSpec, SpectrumJob, run_spectrum

    job = SpectrumJob(out=tmp_path, neuron="rf", params={"omega": 70.0, "b_offset": 1.0},
                      map=MapSpec.parse("omega=0:99:5,b=-100:0:4"))  # fmt: skip
    res = run_spectrum(job)
    assert res.point.spectral_radius_subthreshold == pytest.approx(math.hypot(1 - DT, DT * 70), abs=1e-12)
    assert set(res.files) == {"map.png", "map.npz", "spectrum.html", "jacobian_rf.txt", "jacobian_rf.tex"}
    assert all((tmp_path / name).is_file() for name in res.files)
    written = json.loads((tmp_path / "result.json").read_text())
    assert written["files"] == res.files and not any(k.startswith("_") for k in written)
    assert written["evaluation_point"]["spectral_radius"] == res.point.spectral_radius_subthreshold
    assert res.parameter_map is not None and res.parameter_map.rho.shape == (4, 5)


@pytest.mark.parametrize("how", ["model", "trust"])
def test_float_constants_through_spectrum_checkpoint(tmp_path, capsys, how):
    """`spectrum --checkpoint RUN --model file.py:Name` (or --trust-neuron-file) on a network of that
    neuron (issue 11 item 2):
    the neuron's J does not depend on the state, so every neuron-step has ρ = e^{b_h δ}; 1e-6: the
    network is float32."""
    import torch

    from gradscape.models.checkpoints import save_checkpoint
    from gradscape.models.network import RecurrentNetwork
    from gradscape.models.neurons import get_neuron

    f = tmp_path / "res.py"
    f.write_text(RESONATOR)
    spec = f"{f}:Res"
    net = RecurrentNetwork(get_neuron(spec), 4, 5, 6, seed=3)
    save_checkpoint(tmp_path / "res.pt", net, spec)
    reopen = ["--model", spec] if how == "model" else ["--trust-neuron-file"]
    rc = main(["spectrum", "--checkpoint", str(tmp_path / "res.pt"), *reopen, "--task", "ecg",
               "--samples", "1", "--steps", "30", "--flow-samples", "1", "--lyapunov", "2",
               "--out", str(tmp_path / "o"), "--json"])  # fmt: skip
    assert rc == 0
    (ck,) = _last_json(capsys)["checkpoints"]
    rho = torch.exp(net.hidden.b.detach().double() * 0.01)
    assert ck["membrane_rho"]["min"] == pytest.approx(float(rho.min()), abs=1e-6)
    assert ck["membrane_rho"]["max"] == pytest.approx(float(rho.max()), abs=1e-6)
    assert len(ck["lyapunov_median"]) == 2
