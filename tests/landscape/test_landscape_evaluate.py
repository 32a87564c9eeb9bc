"""Grid evaluation: analytic quadratic, batched == sequential, NaN masking, centre, resume checks, API."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gradscape import landscape
from gradscape.errors import UserError
from gradscape.landscape.evaluate import load_surface, spike_flips
from gradscape.landscape.measures import surface_measures
from gradscape.landscape.plots import render
from gradscape.models.network import RecurrentNetwork


class Quadratic(nn.Module):
    """forward() returns W; the loss ½ Σ c (W − A)² is a known quadratic in W."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w = nn.Parameter(torch.randn(3, 4, generator=g, dtype=torch.float64))
        self.register_buffer("a", torch.randn(3, 4, generator=g, dtype=torch.float64))
        self.register_buffer("c", torch.rand(3, 4, generator=g, dtype=torch.float64) + 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w + 0 * x.sum()


def test_quadratic_model_gives_the_analytic_surface() -> None:
    m = Quadratic()
    before = m.w.detach().clone()

    def loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return 0.5 * (m.c * (out - m.a) ** 2).sum()

    dirs = landscape.random_directions(m, ["w"], normalization="filter", seed=1)
    s = landscape.evaluate_surface(
        m, loss, dirs, "-2:2:9,-1:1:5", data=(torch.zeros(1), torch.zeros(1)), chunk_size=7, progress=False
    )
    w, a, c = before.numpy(), m.a.numpy(), m.c.numpy()
    d, e = dirs[0]["w"].numpy(), dirs[1]["w"].numpy()
    want = np.array([[0.5 * np.sum(c * (w + al * d + be * e - a) ** 2) for be in s.betas] for al in s.alphas])
    assert np.allclose(s.loss, want, rtol=1e-13, atol=0)
    assert s.complete and not s.diverged.any()
    assert np.isclose(s.center["loss"], 0.5 * np.sum(c * (w - a) ** 2), rtol=1e-13)
    assert np.isnan(s.accuracy).all()  # no accuracy function given
    assert torch.equal(m.w.detach(), before)  # never mutated


def test_centre_is_evaluated_even_when_the_grid_skips_zero() -> None:
    m = Quadratic()

    def loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ((out - m.a) ** 2).sum()

    dirs = landscape.random_directions(m, ["w"], seed=0, dims=1)
    s = landscape.evaluate_surface(
        m,
        loss,
        dirs,
        landscape.parse_grid("0.5:1:2", 1),
        data=(torch.zeros(1), torch.zeros(1)),
        progress=False,
    )
    assert s.center["computed"]
    assert np.isclose(s.center["loss"], float(((m.w.detach() - m.a) ** 2).sum()), rtol=1e-13)


def _spiking_net() -> tuple[RecurrentNetwork, torch.Tensor, torch.Tensor]:
    net = RecurrentNetwork("brf", 3, 12, 4, seed=0).double().eval()
    g = torch.Generator().manual_seed(0)
    x = 400.0 * torch.rand(25, 6, 3, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (6,), generator=g)
    return net, x, y


def test_batched_equals_sequential_in_float64_with_spikes() -> None:
    net, x, y = _spiking_net()
    with torch.no_grad():
        rate = float(net(x, fast=True).spikes.mean())
    assert 0.02 < rate < 0.5, rate  # the comparison is about real spike trains
    loss_fn, acc_fn = landscape.recurrent_objective("last")
    dirs = landscape.random_directions(net, seed=3)
    kw = dict(data=(x, y), accuracy_fn=acc_fn, model_kwargs={"fast": True}, chunk_size=5, progress=False)
    a = landscape.evaluate_surface(net, loss_fn, dirs, "-1:1:4", **kw)
    b = landscape.evaluate_surface(net, loss_fn, dirs, "-1:1:4", sequential=True, **kw)
    assert np.allclose(a.loss, b.loss, rtol=1e-6, atol=0) and np.array_equal(a.accuracy, b.accuracy)
    assert a.meta["config"]["mode"] == "batched" and b.meta["config"]["mode"] == "sequential"
    flips = spike_flips(net, dirs, a.grid.points()[:6], x)
    assert flips["flips"] == 0 and flips["total"] == 6 * 25 * 6 * 12
    # The forward-only ops give exactly the model's own forward at the centre.
    with torch.no_grad():
        ref = loss_fn(net(x, fast=True), y)
    assert float(ref) == a.center["loss"]


def test_diverging_points_are_recorded_and_masked(tmp_path) -> None:
    m = Quadratic()
    w0 = m.w.detach().clone()

    def loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        t = out[0, 0] - w0[0, 0]  # = α along d below
        return torch.sqrt(0.5 - t) + (out[0, 1] - w0[0, 1]) ** 2

    d = {"w": torch.zeros(3, 4, dtype=torch.float64)}
    e = {"w": torch.zeros(3, 4, dtype=torch.float64)}
    d["w"][0, 0] = 1.0
    e["w"][0, 1] = 1.0
    out = tmp_path / "nan.npz"
    s = landscape.evaluate_surface(
        m,
        loss,
        [d, e],
        "-1:1:5",
        data=(torch.zeros(1), torch.zeros(1)),
        accuracy_fn=lambda o, y: torch.tensor(50.0),
        out=out,
        progress=False,
    )
    A = s.alphas[:, None] * np.ones((1, 5))
    assert np.array_equal(s.diverged, A > 0.5)
    assert np.isnan(s.masked_loss()[A > 0.5]).all() and np.isfinite(s.masked_loss()[A <= 0.5]).all()
    assert np.isnan(s.accuracy[A > 0.5]).all() and (s.accuracy[A <= 0.5] == 50).all()
    back = load_surface(out)
    assert back.meta["progress"]["diverged"] == 5 and np.array_equal(back.diverged, s.diverged)
    m_ = surface_measures(back.alphas, back.betas, back.masked_loss())
    assert m_["diverged"] == 5
    written = render([back], tmp_path / "fig", measures=[m_])
    assert {p.suffix for p in written} == {".png", ".pdf", ".html"}


def test_resume_refuses_a_different_config_and_keeps_finished_points(tmp_path) -> None:
    m = Quadratic()

    def loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ((out - m.a) ** 2).sum()

    data = (torch.zeros(1), torch.zeros(1))
    out = tmp_path / "r.npz"
    dirs = landscape.random_directions(m, ["w"], seed=0)
    full = landscape.evaluate_surface(
        m, loss, dirs, "-1:1:4", data=data, out=out, chunk_size=3, config={"seed": 0}, progress=False
    )
    assert load_surface(out).meta["config"]["chunk_size"] == 3
    # A file with half its points erased resumes to the same bits, reusing the stored chunk size.
    part = load_surface(out)
    part.computed.reshape(-1)[6:] = False
    part.loss.reshape(-1)[6:] = np.nan
    part.save(out)
    again = landscape.evaluate_surface(
        m, loss, dirs, "-1:1:4", data=data, out=out, resume=True, config={"seed": 0}, progress=False
    )
    assert again.loss.tobytes() == full.loss.tobytes()
    assert again.meta["config"]["chunk_size"] == 3
    with pytest.raises(UserError, match=r"different configuration.*seed"):
        landscape.evaluate_surface(
            m, loss, dirs, "-1:1:4", data=data, out=out, resume=True, config={"seed": 1}, progress=False
        )
    with pytest.raises(UserError, match="chunk_size"):
        landscape.evaluate_surface(
            m,
            loss,
            dirs,
            "-1:1:4",
            data=data,
            out=out,
            resume=True,
            chunk_size=2,
            config={"seed": 0},
            progress=False,
        )
    other = landscape.random_directions(m, ["w"], seed=9)
    with pytest.raises(UserError, match="directions_hash"):
        landscape.evaluate_surface(
            m, loss, other, "-1:1:4", data=data, out=out, resume=True, config={"seed": 0}, progress=False
        )


def test_readme_example_small_mlp() -> None:
    torch.manual_seed(0)
    x = torch.randn(64, 2)
    y = (x[:, 0] * x[:, 1] > 0).long()
    mlp = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2))
    opt = torch.optim.Adam(mlp.parameters(), lr=0.05)
    for _ in range(50):
        opt.zero_grad()
        F.cross_entropy(mlp(x), y).backward()
        opt.step()

    # --- README example ---
    dirs = landscape.random_directions(mlp, params=["0.weight", "2.weight"], normalization="filter", seed=0)
    surf = landscape.evaluate_surface(
        mlp,
        F.cross_entropy,
        dirs,
        "-1:1:11",
        data=(x, y),
        accuracy_fn=lambda out, t: 100.0 * (out.argmax(-1) == t).double().mean(),
        progress=False,
    )
    # ---
    assert surf.loss.shape == (11, 11)
    with torch.no_grad():
        assert np.isclose(surf.loss[5, 5], float(F.cross_entropy(mlp(x), y)), rtol=1e-6)
    assert surf.loss[5, 5] == pytest.approx(surf.center["loss"], rel=1e-6)
    assert surf.loss[5, 5] < surf.loss[0, 0] and surf.loss[5, 5] < surf.loss[-1, -1]
