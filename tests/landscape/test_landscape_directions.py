"""Directions and grids: filter norms, masks, blocks, globs, seeding, Gaussian draws, grid specs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from gradscape.errors import UserError
from gradscape.landscape.directions import (
    dot,
    filter_norms,
    parameter_blocks,
    parameter_masks,
    random_directions,
    select_parameters,
)
from gradscape.landscape.grid import parse_grid
from gradscape.models.network import RecurrentNetwork


def _masked_net(dtype: torch.dtype = torch.float64) -> RecurrentNetwork:
    g = torch.Generator().manual_seed(3)
    mask = (torch.rand(6, 4 + 6, generator=g) > 0.3).double()
    mask[2] = 0.0  # a unit with no synapses at all: its filter must stay zero
    mask[4, :4] = 0.0  # a unit without input synapses: its input block is empty
    net = RecurrentNetwork("brf", 4, 6, 3, mask=mask, seed=1).to(dtype)
    return net


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_every_filter_has_the_norm_of_theta(dtype: torch.dtype) -> None:
    net = _masked_net(dtype)
    mask = net.hidden.mask
    w = net.hidden.weight.detach()
    d, e = random_directions(net, normalization="filter", seed=0)
    tol = 1e-12 if dtype == torch.float64 else 1e-6
    for v in (d, e):
        dv = v["hidden.weight"]
        assert dv.dtype == dtype
        assert torch.all(dv[mask == 0] == 0), "masked weights must stay zero"
        # Independent computation: row norms of the masked matrices.
        want = (w * mask).double().norm(dim=1)
        got = dv.double().norm(dim=1)
        assert torch.allclose(got, want, rtol=tol, atol=0)
        assert got[2] == 0
    assert not torch.equal(d["hidden.weight"], e["hidden.weight"])


def test_filter_blocks_normalise_input_and_recurrent_parts_separately() -> None:
    net = _masked_net()
    assert parameter_blocks(net, ["hidden.weight"]) == {"hidden.weight": [4, 6]}
    w = net.hidden.weight.detach() * net.hidden.mask
    d = random_directions(net, normalization="filter-blocks", seed=5, dims=1)[0]["hidden.weight"]
    for sl in (slice(0, 4), slice(4, 10)):
        assert torch.allclose(d[:, sl].norm(dim=1), w[:, sl].norm(dim=1), rtol=1e-12, atol=0)
    assert torch.all(d[4, :4] == 0)
    # filter_norms gives the same table (n_filters, n_blocks).
    fn = filter_norms(d, net.hidden.mask, [4, 6])
    assert torch.allclose(fn, filter_norms(net.hidden.weight, net.hidden.mask, [4, 6]), rtol=1e-12)


def test_layer_none_and_one_dimensional_parameters() -> None:
    net = _masked_net()
    theta_w = net.hidden.weight.detach() * net.hidden.mask
    d = random_directions(net, ["hidden.weight", "hidden.omega"], normalization="layer", seed=2, dims=1)[0]
    assert math.isclose(float(d["hidden.weight"].norm()), float(theta_w.norm()), rel_tol=1e-12)
    # 1-D: one filter, the raw (unconstrained) tensor's norm, never |θ| or θ itself.
    om = net.hidden.omega.detach()
    for norm in ("filter", "filter-blocks", "layer"):
        dd = random_directions(net, ["hidden.omega"], normalization=norm, seed=2, dims=1)[0]["hidden.omega"]
        assert math.isclose(float(dd.norm()), float(om.norm()), rel_tol=1e-12)
        assert not torch.allclose(dd.abs(), om.abs())
    raw = random_directions(net, ["hidden.omega"], normalization="none", seed=2, dims=1)[0]["hidden.omega"]
    g = torch.Generator().manual_seed(2)
    assert torch.equal(raw, torch.randn(om.shape, generator=g, dtype=torch.float64))


def test_draws_are_gaussian_and_seeded() -> None:
    net = RecurrentNetwork("alif", 20, 100, 5, seed=0).double()
    a = random_directions(net, normalization="none", seed=11)
    b = random_directions(net, normalization="none", seed=11)
    c = random_directions(net, normalization="none", seed=12)
    assert torch.equal(a[0]["hidden.weight"], b[0]["hidden.weight"])
    assert not torch.equal(a[0]["hidden.weight"], c[0]["hidden.weight"])
    x = a[0]["hidden.weight"].flatten().numpy()
    # N(0,1): P(|x|>2) = 4.55 %; a U(-1,1) draw (Li et al.'s code) has none.
    assert abs(x.mean()) < 0.05 and abs(x.std() - 1) < 0.05
    assert 0.035 < np.mean(np.abs(x) > 2) < 0.056
    # d of a 1-D landscape is d of the 2-D one with the same seed.
    one = random_directions(net, normalization="filter", seed=4, dims=1)
    two = random_directions(net, normalization="filter", seed=4, dims=2)
    assert torch.equal(one[0]["hidden.weight"], two[0]["hidden.weight"])


def test_orthogonalisation_after_normalisation_is_recorded() -> None:
    net = _masked_net()
    plain = random_directions(net, seed=0)
    orth = random_directions(net, seed=0, orthogonalize=True)
    assert torch.equal(plain[0]["hidden.weight"], orth[0]["hidden.weight"])
    assert abs(float(dot(orth[0], orth[1]))) < 1e-10 * float(dot(orth[0], orth[0]))
    assert torch.all(orth[1]["hidden.weight"][net.hidden.mask == 0] == 0)
    assert orth.info["orthogonalized"] and orth.info["exact_filter_norms"] == [True, False]
    assert "no longer" in orth.info["note"]
    assert plain.info["exact_filter_norms"] == [True, True]


def test_parameter_globs_match_parameters_only() -> None:
    net = _masked_net()
    assert select_parameters(net) == ["hidden.weight"]
    assert select_parameters(net, ["*.weight"]) == ["hidden.weight", "out.weight"]
    assert select_parameters(net, ["hidden.*"]) == ["hidden.weight"]  # 1-D only by exact name
    assert select_parameters(net, ["hidden.*", "hidden.omega"]) == ["hidden.weight", "hidden.omega"]
    assert list(parameter_masks(net, ["hidden.weight", "out.weight"])) == ["hidden.weight"]
    with pytest.raises(UserError, match="buffer"):
        select_parameters(net, ["hidden.mask"])
    with pytest.raises(UserError, match="matches no parameter"):
        select_parameters(net, ["encoder.*"])
    with pytest.raises(UserError, match="named exactly"):
        select_parameters(net, ["*.tau_mem"])
    mlp = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    assert select_parameters(mlp) == ["0.weight", "2.weight"]
    with pytest.raises(UserError, match="filter-blocks"):
        random_directions(mlp, normalization="filter-blocks")
    with pytest.raises(UserError, match="normalization"):
        random_directions(mlp, normalization="unit")


def test_grid_specs() -> None:
    g = parse_grid("-1:1:5")
    assert g.shape == (5, 5) and g.size == 25
    assert np.allclose(g.coords[0], [-1, -0.5, 0, 0.5, 1])
    pts = g.points()
    assert pts.shape == (25, 2) and tuple(pts[1]) == (-1.0, -0.5)  # β fastest (C order)
    g2 = parse_grid("-1:1:3,0:2:2")
    assert g2.shape == (3, 2) and g2.spec == "-1:1:3,0:2:2"
    assert parse_grid("0.5:1:4", dims=1).shape == (4,)
    for bad in ("1:-1:5", "-1:1", "a:b:c", "-1:1:0", "-1:1:2.5", "-1:1:3,0:1:3,0:1:3", "0:inf:3"):
        with pytest.raises(UserError, match="grid spec"):
            parse_grid(bad)
