"""Surrogate gradients: closed-form values, exact Heaviside forward, analytic first and second
derivatives, and torch.func / torch.compile compatibility."""

from __future__ import annotations

import math

import pytest
import torch
from torch.func import grad, jacfwd, jacrev, vmap

from gradscape.errors import UserError
from gradscape.models.surrogates import (
    SURROGATES,
    DoubleGaussian,
    FastSigmoid,
    Gaussian,
    Triangle,
    get_surrogate,
    inference_spike,
)

F64 = torch.float64
# points avoiding the kinks of the triangle (±1) and of the fast sigmoid (0) for derivative checks
XS = torch.tensor([-2.3, -0.9, -0.31, -0.05, 0.07, 0.42, 0.8, 1.7], dtype=F64)


def npdf(x: float, sd: float) -> float:
    return math.exp(-0.5 * (x / sd) ** 2) / (sd * math.sqrt(2 * math.pi))


def dg_formula(x: float) -> float:
    """γ_s[(1+h) N(x; 0, σ_s) − 2h N(x; 0, s σ_s)], h = 0.15, s = 6, σ_s = 0.5, γ_s = 0.5."""
    return 0.5 * (1.15 * npdf(x, 0.5) - 0.3 * npdf(x, 3.0))


def test_double_gaussian_values() -> None:
    sg = DoubleGaussian()
    assert round(float(sg.grad(torch.tensor(0.0, dtype=F64))), 5) == 0.43884
    for x in (0.25, -0.5, 1.0, 1.7, -3.0):
        assert float(sg.grad(torch.tensor(x, dtype=F64))) == pytest.approx(dg_formula(x), abs=1e-15)
    # the negative side lobe: beyond ~1.4σ_s-ish the wide negative Gaussian wins
    assert dg_formula(2.0) < 0 and float(sg.grad(torch.tensor(2.0, dtype=F64))) < 0


def test_other_surrogates_closed_forms() -> None:
    x = 0.3
    xt = torch.tensor(x, dtype=F64)
    assert float(Gaussian().grad(xt)) == pytest.approx(npdf(x, 0.5), abs=1e-15)
    assert float(FastSigmoid().grad(xt)) == pytest.approx(1 / (1 + 10 * x) ** 2, abs=1e-15)
    assert float(Triangle().grad(xt)) == pytest.approx(1 - x, abs=1e-15)
    assert float(Triangle().grad(torch.tensor(1.5, dtype=F64))) == 0.0
    assert set(SURROGATES) == {"double-gaussian", "gaussian", "fast-sigmoid", "triangle"}
    assert get_surrogate("gaussian") == Gaussian()
    with pytest.raises(UserError, match="unknown surrogate"):
        get_surrogate("sigmoidish")


@pytest.mark.parametrize("name", list(SURROGATES))
def test_forward_is_exact_heaviside(name: str) -> None:
    s = get_surrogate(name)
    x = torch.tensor([-1e-30, 0.0, 1e-30, -5.0, 5.0, -0.0, 0.5, -0.5], dtype=torch.float32)
    z = s.spike(x)
    assert z.tolist() == [0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0]  # Θ(0) = 0
    assert z.dtype == x.dtype
    zd = s.spike(XS)
    assert torch.equal(zd, (XS > 0).to(F64))


@pytest.mark.parametrize("name", list(SURROGATES))
def test_autograd_first_and_second_derivative(name: str) -> None:
    s = get_surrogate(name)
    x = XS.clone().requires_grad_()
    (d1,) = torch.autograd.grad(s.spike(x).sum(), x, create_graph=True)
    (d2,) = torch.autograd.grad(d1.sum(), x)
    torch.testing.assert_close(d1.detach(), s.grad(XS), rtol=0, atol=1e-14)
    torch.testing.assert_close(d2, s.grad2(XS), rtol=0, atol=1e-13)
    # independent check: central differences of the primitive and of grad
    h = 1e-6
    torch.testing.assert_close(
        (s.primitive(XS + h) - s.primitive(XS - h)) / (2 * h), s.grad(XS), rtol=0, atol=1e-8
    )
    torch.testing.assert_close((s.grad(XS + h) - s.grad(XS - h)) / (2 * h), s.grad2(XS), rtol=0, atol=1e-7)


@pytest.mark.parametrize("name", list(SURROGATES))
def test_torch_func_transforms(name: str) -> None:
    s = get_surrogate(name)
    diag = torch.diag
    torch.testing.assert_close(diag(jacrev(s.spike)(XS)), s.grad(XS), rtol=0, atol=1e-14)
    torch.testing.assert_close(diag(jacfwd(s.spike)(XS)), s.grad(XS), rtol=0, atol=1e-14)
    # vmap of a scalar gradient, and the Hessian (forward-over-reverse) diagonal = SG'
    torch.testing.assert_close(vmap(grad(s.spike))(XS), s.grad(XS), rtol=0, atol=1e-14)
    torch.testing.assert_close(vmap(grad(grad(s.spike)))(XS), s.grad2(XS), rtol=0, atol=1e-13)
    hess = jacfwd(jacrev(lambda v: s.spike(v).sum()))(XS)
    torch.testing.assert_close(hess, diag(s.grad2(XS)), rtol=0, atol=1e-13)
    torch.testing.assert_close(vmap(s.spike)(XS), (XS > 0).to(F64), rtol=0, atol=0)


def test_spike_under_torch_compile() -> None:
    """One small compiled function calling every surrogate's spike: value and gradient = eager."""
    surrogates = [get_surrogate(n) for n in SURROGATES]
    weights = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=F64)

    def f(x: torch.Tensor) -> torch.Tensor:
        return sum(w * s.spike(x).sum() for w, s in zip(weights, surrogates, strict=True))

    compiled = torch.compile(f, fullgraph=True, dynamic=False)
    x = XS.clone().requires_grad_()
    y = compiled(x)
    (g,) = torch.autograd.grad(y, x)
    x0 = XS.clone().requires_grad_()
    y0 = f(x0)
    (g0,) = torch.autograd.grad(y0, x0)
    assert float(y.detach()) == float(y0.detach()) == float(sum(w * (XS > 0).sum() for w in weights))
    torch.testing.assert_close(g, g0, rtol=0, atol=1e-14)
    torch.testing.assert_close(g, sum(w * s.grad(XS) for w, s in zip(weights, surrogates, strict=True)))


@pytest.mark.parametrize("name", list(SURROGATES))
def test_non_finite_membrane_gives_nan_spike_on_every_path(name: str) -> None:
    """One inference spike: a diverged membrane (NaN, ±inf) gives a NaN spike whether a derivative
    is possible (Θ + (F − stopgrad F)) or not (the inference shortcut), never a silent 0 or 1; finite
    values stay exactly Θ(x)."""
    s = get_surrogate(name)
    x = torch.tensor([float("nan"), float("inf"), -float("inf"), 0.0, 2.0, -2.0], dtype=F64)
    with torch.no_grad():
        fast = s.spike(x)
    assert torch.equal(torch.nan_to_num(fast, 7.0), torch.nan_to_num(inference_spike(x), 7.0))
    slow = s.spike(x.clone().requires_grad_()).detach()
    mapped = vmap(s.spike)(x)
    for z in (fast, slow, mapped):
        assert torch.isnan(z[:3]).all(), z
        assert z[3:].tolist() == [0.0, 1.0, 0.0]
