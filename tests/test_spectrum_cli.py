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
