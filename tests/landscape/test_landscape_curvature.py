"""Hessian-vector products (incl. the surrogate Hessian of a spiking network), eigenvalue
algorithms, Hutchinson's trace, the |λ_min/λ_max| grid map and Hessian directions."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call

from gradscape.errors import UserError
from gradscape.landscape.curvature import (
    curvature_ratio_grid,
    hessian_directions,
    hessian_extremes,
    hessian_trace,
)
from gradscape.landscape.eigen import hutchinson_trace, lanczos, power_iteration
from gradscape.landscape.hessian import HVPOperator, MatrixOperator, output_loss
from gradscape.models.network import RecurrentNetwork
from gradscape.models.surrogates import SURROGATES, DoubleGaussian, heaviside

F64 = torch.float64


# --------------------------------------------------------------------------- surrogates: SG'
@pytest.mark.parametrize("name", list(SURROGATES))
def test_surrogate_grad2_matches_finite_differences_and_autograd(name: str) -> None:
    sg = SURROGATES[name]()
    x = torch.empty(200, dtype=F64).uniform_(-2.5, 2.5, generator=torch.Generator().manual_seed(3))
    # Stay away from the kinks of the piecewise surrogates (0 for |x|, ±width for the triangle).
    x = x[(x.abs() > 1e-3) & ((x.abs() - 1.0).abs() > 1e-3)]
    eps = 1e-6
    fd = (sg.grad(x + eps) - sg.grad(x - eps)) / (2 * eps)
    torch.testing.assert_close(sg.grad2(x), fd, rtol=1e-6, atol=1e-7)
    fd1 = (sg.primitive(x + eps) - sg.primitive(x - eps)) / (2 * eps)
    torch.testing.assert_close(sg.grad(x), fd1, rtol=1e-6, atol=1e-7)
    xg = x.clone().requires_grad_(True)
    (auto,) = torch.autograd.grad(sg.grad(xg).sum(), xg)
    torch.testing.assert_close(sg.grad2(x), auto, rtol=1e-12, atol=1e-12)
    # The spike itself: value Θ(x), first derivative SG, second derivative SG' (what HVPs see).
    z = sg.spike(xg)
    assert torch.equal(z.detach(), heaviside(x))
    (d1,) = torch.autograd.grad(z.sum(), xg, create_graph=True)
    (d2,) = torch.autograd.grad(d1.sum(), xg)
    torch.testing.assert_close(d1.detach(), sg.grad(x), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(d2, sg.grad2(x), rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- small smooth model
def _mlp() -> tuple[nn.Module, tuple[torch.Tensor, torch.Tensor]]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 3)).to(F64)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(16, 3, generator=g, dtype=F64)
    y = torch.randint(0, 3, (16,), generator=g)
    return model, (x, y)


def _ce(f, batch):
    return nn.functional.cross_entropy(f(batch[0]), batch[1])


def _explicit_hessian(model: nn.Module, batch, names: list[str]) -> torch.Tensor:
    """H = ∇²L by torch.func.hessian over the flattened subset: an independent computation."""
    params = dict(model.named_parameters())
    shapes = [params[n].shape for n in names]
    sizes = [params[n].numel() for n in names]
    theta = torch.cat([params[n].detach().reshape(-1) for n in names])

    def loss(flat: torch.Tensor) -> torch.Tensor:
        parts = {n: p.reshape(s) for n, p, s in zip(names, torch.split(flat, sizes), shapes, strict=True)}
        return _ce(lambda *a: functional_call(model, parts, a), batch)

    return torch.func.hessian(loss)(theta)


@pytest.mark.parametrize("method", ["forward-over-reverse", "double-backward"])
def test_hvp_equals_explicit_hessian(method: str) -> None:
    model, batch = _mlp()
    names = ["0.weight", "2.weight", "2.bias"]
    op = HVPOperator(model, _ce, batch, names, method=method)
    H = _explicit_hessian(model, batch, names)
    assert op.size == H.shape[0] == 12 + 12 + 3
    torch.testing.assert_close(op.dense(), H, rtol=1e-10, atol=1e-12)
    # Two batches of 12 and 4 samples weighted by size, through the (outputs, y) adapter and
    # (x, y, n) batches: the Hessian of the mean over all 16 samples.
    parts = [(batch[0][:12], batch[1][:12], 12), (batch[0][12:], batch[1][12:], 4)]
    loss = output_loss(nn.functional.cross_entropy)
    op2 = HVPOperator(model, loss, parts, names, batches=True, weights=[12, 4], method=method)
    torch.testing.assert_close(op2.dense(), H, rtol=1e-10, atol=1e-12)


def test_eigen_algorithms_match_dense_spectrum() -> None:
    model, batch = _mlp()
    op = HVPOperator(model, _ce, batch)
    H = op.dense()
    evals, evecs = torch.linalg.eigh(H)
    for res, expect in (
        (lanczos(op, 2, which="LA"), evals.flip(0)[:2]),
        (lanczos(op, 2, which="SA"), evals[:2]),
        (lanczos(op, 1, which="LM"), evals[evals.abs().argmax()].reshape(1)),
        # Power iteration needs hundreds of products: run it on the same matrix, explicitly.
        (power_iteration(MatrixOperator(H), 1, which="LA", tol=1e-12, n_iter=3000), evals[-1:]),
        (power_iteration(MatrixOperator(H), 1, which="SA", tol=1e-12, n_iter=3000), evals[:1]),
        (
            power_iteration(MatrixOperator(H), 2, which="LM", tol=1e-12, n_iter=3000),
            evals[evals.abs().argsort(descending=True)[:2]],
        ),
    ):
        torch.testing.assert_close(res.values, expect, rtol=1e-6, atol=1e-8)
        assert (res.residuals < 1e-3 * evals.abs().max()).all()
        # Residuals are what they claim to be.
        for lam, v, r in zip(res.values, res.vectors, res.residuals, strict=True):
            assert math.isclose(float((H @ v - lam * v).norm()), float(r), rel_tol=1e-6, abs_tol=1e-14)
    top = lanczos(op, 1, which="LA")
    assert top.residuals[0] < 1e-10 and top.converged
    assert abs(float(top.vectors[0] @ evecs[:, -1])) == pytest.approx(1.0, abs=1e-8)


def test_dense_fallback_and_bad_arguments() -> None:
    A = torch.diag(torch.tensor([3.0, -1.0, 2.0], dtype=F64))
    res = lanczos(MatrixOperator(A), 3, which="SA")
    torch.testing.assert_close(res.values, torch.tensor([-1.0, 2.0, 3.0], dtype=F64))
    with pytest.raises(UserError):
        lanczos(MatrixOperator(A), 4)
    with pytest.raises(UserError):
        lanczos(MatrixOperator(A), 1, which="XX")
    model, batch = _mlp()
    with pytest.raises(UserError, match="not a parameter"):
        HVPOperator(model, _ce, batch, ["0.weigth"])


def test_hutchinson_trace_against_exact_trace() -> None:
    model, batch = _mlp()
    op = HVPOperator(model, _ce, batch)
    H = op.dense()
    exact = float(torch.trace(H))
    # Many probes on the explicit matrix (the algorithm sees only the operator) ...
    n = 2000
    res = hutchinson_trace(MatrixOperator(H), n, seed=0)
    # Rademacher probes: Var(zᵀHz) = 2 Σ_{i≠j} H_ij², so the estimate is within 4σ/√n.
    off = H - torch.diag(torch.diag(H))
    sigma = math.sqrt(2 * float((off**2).sum()))
    assert abs(res.estimate - exact) < 4 * sigma / math.sqrt(n)
    assert res.stderr == pytest.approx(sigma / math.sqrt(n), rel=0.1)
    # ... and the same seeded probes through the model's HVPs give the same numbers.
    few = hessian_trace(model, _ce, data=batch, n_samples=8, seed=3)
    torch.testing.assert_close(
        few.samples, hutchinson_trace(MatrixOperator(H), 8, seed=3).samples, rtol=1e-10, atol=1e-12
    )
    # Diagonal matrix: every Rademacher probe gives the exact trace.
    D = MatrixOperator(torch.diag(torch.arange(1.0, 6.0, dtype=F64)))
    assert hutchinson_trace(D, 3, seed=5).estimate == pytest.approx(15.0, abs=1e-12)


def test_hessian_directions_are_top_eigenvectors() -> None:
    model, batch = _mlp()
    names = ["0.weight", "2.weight"]
    dirs = hessian_directions(model, _ce, names, k=2, seed=0, data=batch)
    assert len(dirs) == 2 and all(list(d) == names for d in dirs)
    assert dirs[0]["0.weight"].shape == (4, 3) and dirs[0]["2.weight"].shape == (3, 4)
    op = HVPOperator(model, _ce, batch, names)
    _, evecs = torch.linalg.eigh(op.dense())
    for i, d in enumerate(dirs):
        v = op.flatten(d)
        assert float(v.norm()) == pytest.approx(1.0, abs=1e-12)
        assert abs(float(v @ evecs[:, -1 - i])) == pytest.approx(1.0, abs=1e-8)
    again = hessian_directions(model, _ce, names, k=2, seed=0, data=batch)
    assert all(torch.equal(a[n], b[n]) for a, b in zip(dirs, again, strict=True) for n in names)
    # loss_fn closing over its data (data=None form).
    closed = hessian_directions(model, lambda f: _ce(f, batch), names, k=1)
    assert abs(float(op.flatten(closed[0]) @ op.flatten(dirs[0]))) == pytest.approx(1.0, abs=1e-8)


# --------------------------------------------------------------------------- known curvature on a grid
class _Vector(nn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(n, dtype=F64))

    def forward(self) -> torch.Tensor:
        return self.w


_A = torch.tensor([[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, -0.5]], dtype=F64)


def _cubic(f):
    """L(w) = ½ wᵀAw + Σ wᵢ³/6 (+∞ beyond w₀ > 2.5): H(w) = A + diag(w), known at every point."""
    w = f()
    loss = 0.5 * w @ _A @ w + (w**3).sum() / 6
    return torch.where(w[0] > 2.5, torch.full_like(loss, math.inf), loss)


def test_curvature_ratio_grid_matches_analytic_hessian() -> None:
    model = _Vector(3)
    d = {"w": torch.tensor([1.0, 0.0, 0.0], dtype=F64)}
    e = {"w": torch.tensor([0.0, 0.6, -0.8], dtype=F64)}
    alphas, betas = np.array([-1.0, 0.0, 1.0, 3.0]), np.array([-0.5, 0.5])
    out = curvature_ratio_grid(model, _cubic, None, [d, e], alphas, betas, progress=False, tol=1e-10)
    assert out["ratio"].shape == (4, 2)
    for i, a in enumerate(alphas):
        for j, b in enumerate(betas):
            w = a * d["w"] + b * e["w"]
            if a > 2.5:  # diverged point: recorded as NaN, not raised
                assert math.isinf(out["loss"][i, j]) and math.isnan(out["ratio"][i, j])
                continue
            ev = torch.linalg.eigvalsh(_A + torch.diag(w))
            assert out["lambda_min"][i, j] == pytest.approx(float(ev[0]), abs=1e-8)
            assert out["lambda_max"][i, j] == pytest.approx(float(ev[-1]), abs=1e-8)
            assert out["ratio"][i, j] == pytest.approx(abs(float(ev[0] / ev[-1])), rel=1e-7)
            assert out["converged"][i, j] and out["residual_max"][i, j] < 1e-8
    ext = hessian_extremes(model, _cubic)
    ev = torch.linalg.eigvalsh(_A)
    assert ext.lambda_max == pytest.approx(float(ev[-1]), abs=1e-9)
    assert ext.lambda_min == pytest.approx(float(ev[0]), abs=1e-9)
    assert ext.to_dict()["abs_min_over_max"] == pytest.approx(abs(float(ev[0] / ev[-1])), rel=1e-8)
    assert not model.w.detach().any()  # the model was never mutated


# ----------------------------------------------------------------- spiking network: surrogate Hessian
@dataclass(frozen=True)
class _ReplayDoubleGaussian(DoubleGaussian):
    """The BRF surrogate, able to record c = Θ(x) − F(x) at θ₀ and replay spikes as c + F(x):
    the locally smoothed loss L̃_θ₀ whose exact Hessian the HVP claims to be."""

    tape: list = field(default_factory=list, compare=False)
    state: dict = field(default_factory=lambda: {"mode": "off", "pos": 0}, compare=False)

    def spike(self, x: torch.Tensor) -> torch.Tensor:
        mode = self.state["mode"]
        if mode == "record":
            self.tape.append(((heaviside(x) - self.primitive(x)).detach(), x.detach()))
        if mode == "replay":
            c = self.tape[self.state["pos"]][0]
            self.state["pos"] += 1
            return c + self.primitive(x)
        return super().spike(x)


def _spiking(neuron: str = "brf", hidden: int = 6, steps: int = 25):
    sg = _ReplayDoubleGaussian()
    net = RecurrentNetwork(neuron, 3, hidden, 2, surrogate=sg, seed=0).to(F64)
    g = torch.Generator().manual_seed(1)
    scale = 100.0 if neuron == "brf" else 3.0
    inputs = torch.rand(steps, 4, 3, generator=g, dtype=F64) * scale
    targets = torch.randint(0, 2, (4,), generator=g)
    return net, sg, (inputs, targets)


def _last_ce(f, batch):
    return nn.functional.cross_entropy(f(batch[0]).outputs[-1], batch[1])


def _grad_at(net: nn.Module, point: dict, batch) -> torch.Tensor:
    p = {n: t.detach().clone().requires_grad_(True) for n, t in point.items()}
    loss = _last_ce(lambda *a: functional_call(net, p, a), batch)
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, list(p.values()))])


def _spikes_at(net: nn.Module, point: dict, batch) -> torch.Tensor:
    with torch.no_grad():
        return functional_call(net, point, (batch[0],)).spikes


@pytest.mark.parametrize("neuron", ["brf", "alif"])
def test_surrogate_hvp_matches_finite_differences(neuron: str) -> None:
    net, sg, batch = _spiking(neuron)
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    op = HVPOperator(net, _last_ce, batch)  # all parameters: W, neuron parameters, readout
    theta = op.point
    v = torch.randn(op.size, generator=torch.Generator().manual_seed(2), dtype=F64)
    hv = op.apply(v)
    eps = 1e-5
    plus = {n: t + eps * op.unflatten(v)[n] for n, t in theta.items()}
    minus = {n: t - eps * op.unflatten(v)[n] for n, t in theta.items()}

    # Near-threshold regime (so SG' matters) and no spike flips within ±εv (so FD is valid).
    sg.state["mode"] = "record"
    spikes0 = _spikes_at(net, theta, batch)
    xs = torch.cat([x.reshape(-1) for _, x in sg.tape])
    sg.state["mode"] = "off"
    assert 0 < spikes0.mean() < 0.5
    assert (xs.abs() < sg.sigma).double().mean() > 0.05
    assert torch.equal(_spikes_at(net, plus, batch), spikes0)
    assert torch.equal(_spikes_at(net, minus, batch), spikes0)

    # (1) H̃v = finite difference of the gradient of the locally smoothed loss L̃_θ₀.
    def smoothed_grad(point: dict) -> torch.Tensor:
        sg.state.update(mode="replay", pos=0)
        try:
            return _grad_at(net, point, batch)
        finally:
            sg.state["mode"] = "off"

    # L̃_θ₀ has the surrogate gradient at θ₀ ...
    torch.testing.assert_close(smoothed_grad(theta), op.flatten(op.gradient()), rtol=1e-10, atol=1e-14)
    fd = (smoothed_grad(plus) - smoothed_grad(minus)) / (2 * eps)
    # ... and H̃ as its Hessian.
    torch.testing.assert_close(hv, fd, rtol=1e-5, atol=1e-7 * float(hv.abs().max()))

    # (2) Along readout-only directions no membrane moves: the plain surrogate gradient g's own
    # finite difference (g(θ+εv) − g(θ−εv))/2ε equals H̃v exactly there.
    names = op.names
    mask = torch.cat(
        [
            torch.full((k,), float(n.startswith("out.")), dtype=F64)
            for n, k in zip(names, op.numels, strict=True)
        ]
    )
    vr = v * mask
    hvr = op.apply(vr)
    pr = {n: t + eps * op.unflatten(vr)[n] for n, t in theta.items()}
    mr = {n: t - eps * op.unflatten(vr)[n] for n, t in theta.items()}
    fd_plain = (_grad_at(net, pr, batch) - _grad_at(net, mr, batch)) / (2 * eps)
    torch.testing.assert_close(hvr, fd_plain, rtol=1e-5, atol=1e-7 * float(hvr.abs().max()))

    # (3) Along hidden directions g's finite difference misses the spike-value path (spikes do not
    # flip), so it is NOT H̃v: the reason (1) is the right reference. H̃ itself is symmetric.
    fd_plain_all = (_grad_at(net, plus, batch) - _grad_at(net, minus, batch)) / (2 * eps)
    assert float((fd_plain_all - hv).norm()) > 1e-3 * float(hv.norm())
    u = torch.randn(op.size, generator=torch.Generator().manual_seed(7), dtype=F64)
    assert float(u @ hv) == pytest.approx(float(v @ op.apply(u)), rel=1e-9)

    # Both HVP methods agree; the model is untouched.
    op2 = HVPOperator(net, _last_ce, batch, method="double-backward")
    torch.testing.assert_close(op2.apply(v), hv, rtol=1e-9, atol=1e-12 * float(hv.abs().max()))
    for n, p in net.named_parameters():
        assert torch.equal(p.detach(), before[n]) and p.requires_grad


def test_spiking_extremes_and_directions_over_weight_subset() -> None:
    net, _, batch = _spiking("brf", hidden=3, steps=12)
    ext = hessian_extremes(net, _last_ce, ["hidden.weight"], data=batch, tol=1e-10)
    op = HVPOperator(net, _last_ce, batch, ["hidden.weight"])
    evals = torch.linalg.eigvalsh(op.dense())
    assert ext.lambda_max == pytest.approx(float(evals[-1]), rel=1e-7)
    assert ext.lambda_min == pytest.approx(float(evals[0]), rel=1e-7)
    assert ext.top.residuals[0] < 1e-8 * abs(ext.lambda_max)
    dirs = hessian_directions(net, _last_ce, ["hidden.weight"], k=2, seed=0, data=batch)
    assert [list(d) for d in dirs] == [["hidden.weight"]] * 2
    assert dirs[0]["hidden.weight"].shape == net.hidden.weight.shape
    v = op.flatten(dirs[0])
    torch.testing.assert_close(
        op.apply(v), float(evals[-1]) * v, rtol=1e-6, atol=1e-8 * float(evals.abs().max())
    )
