"""Checkpoint lines/planes and the PCA plane of a trajectory."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gradscape import landscape
from gradscape.errors import UserError
from gradscape.landscape.plots import render
from gradscape.landscape.subspaces import checkpoint_directions, checkpoint_params, pca_directions
from gradscape.models.checkpoints import save_checkpoint
from gradscape.models.network import RecurrentNetwork


def test_line_through_two_checkpoints_reaches_the_second(tmp_path) -> None:
    a = RecurrentNetwork("brf", 3, 10, 4, seed=0).double()
    b = RecurrentNetwork("brf", 3, 10, 4, seed=1).double()
    b.load_state_dict({**b.state_dict(), **{k: v for k, v in a.state_dict().items() if k != "hidden.weight"}})
    save_checkpoint(tmp_path / "a.pt", a)
    save_checkpoint(tmp_path / "b.pt", b)
    pa, pb = checkpoint_params([tmp_path / "a.pt", tmp_path / "b.pt"], ["hidden.weight"])
    pa = {k: v.double() for k, v in pa.items()}
    pb = {k: v.double() for k, v in pb.items()}
    dirs = checkpoint_directions(pa, pb)
    assert dirs.info["checkpoint_coordinates"] == [[0.0], [1.0]]
    g = torch.Generator().manual_seed(0)
    x = 400 * torch.rand(15, 5, 3, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (5,), generator=g)
    lf, _ = landscape.recurrent_objective("last")
    s = landscape.evaluate_surface(
        a,
        lf,
        dirs,
        landscape.parse_grid("0:1:3", 1),
        data=(x, y),
        model_kwargs={"fast": True},
        progress=False,
    )
    with torch.no_grad():
        want = float(lf(b(x, fast=True), y))
    assert s.loss[-1] == pytest.approx(want, rel=1e-12)
    with pytest.raises(UserError, match="line needs 2"):
        checkpoint_directions(pa)


def test_pca_plane_of_a_planar_trajectory(tmp_path) -> None:
    g = torch.Generator().manual_seed(0)
    centre = {"w": torch.randn(4, 5, generator=g, dtype=torch.float64)}
    u = torch.randn(20, generator=g, dtype=torch.float64)
    v = torch.randn(20, generator=g, dtype=torch.float64)
    u, v = u / u.norm(), v - (v @ u) * u / (u @ u)
    v = v / v.norm()
    coef = torch.tensor([[3.0, 1.0], [2.0, -0.5], [1.2, 0.4], [0.5, -0.1], [0.0, 0.0]], dtype=torch.float64)
    traj = [{"w": centre["w"] + (a * u + b * v).reshape(4, 5)} for a, b in coef]
    dirs, path = pca_directions(traj, centre)
    ratio = dirs.info["explained_variance_ratio"]
    assert sum(ratio) == pytest.approx(1.0, abs=1e-12) and ratio[0] >= ratio[1]
    basis = torch.stack([dirs[0]["w"].reshape(-1), dirs[1]["w"].reshape(-1)])
    assert torch.allclose(basis @ basis.T, torch.eye(2, dtype=torch.float64), atol=1e-12)
    # The path lies in the plane: its coordinates reconstruct every θ_i − θ* exactly.
    for (a, b), p in zip(coef, path, strict=True):
        rebuilt = p[0] * basis[0] + p[1] * basis[1]
        assert torch.allclose(rebuilt, a * u + b * v, atol=1e-12)

    # Stored with a result and drawn on the contour.
    class M(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(centre["w"].clone())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.w

    m = M()
    s = landscape.evaluate_surface(
        m,
        lambda o, y: (o**2).sum(),
        dirs,
        "-4:4:5",
        data=(torch.zeros(1), torch.zeros(1)),
        extras={"path": path},
        out=tmp_path / "p.npz",
        progress=False,
    )
    back = landscape.load_surface(tmp_path / "p.npz")
    assert np.array_equal(back.extras["path"], path)
    assert back.meta["directions"]["kind"] == "pca"
    assert any(p.suffix == ".png" for p in render([back], tmp_path / "fig"))
    assert s.complete
