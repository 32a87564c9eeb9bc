"""The ops namespace: every op in every backend, values and derivatives against closed forms, the
derivative convention at kinks (torch autograd's) reproduced by sympy, and the one table."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import sympy
import torch

from gradscape.landscape.forward import ForwardOps
from gradscape.models import ops as ops_module
from gradscape.models.ops import OPS_NAMES, NumpyOps, SympyOps, TorchOps


def _sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# name, f(ops, *args), points, closed-form value, closed-form gradient (one entry per argument).
# Kink points are included on purpose; the gradient there is the documented convention.
CASES: list[tuple[str, Callable[..., Any], list[tuple[float, ...]], Callable, Callable]] = [
    ("sqrt", lambda o, x: o.sqrt(x), [(0.25,), (2.0,)], math.sqrt, lambda x: (0.5 / math.sqrt(x),)),
    ("exp", lambda o, x: o.exp(x), [(-1.0,), (0.7,)], math.exp, lambda x: (math.exp(x),)),
    ("log", lambda o, x: o.log(x), [(0.5,), (3.0,)], math.log, lambda x: (1 / x,)),
    ("abs", lambda o, x: o.abs(x), [(-2.0,), (0.0,), (1.5,)], abs, lambda x: (float(np.sign(x)),)),
    ("cos", lambda o, x: o.cos(x), [(0.0,), (1.2,), (-3.0,)], math.cos, lambda x: (-math.sin(x),)),
    ("sin", lambda o, x: o.sin(x), [(0.0,), (1.2,), (-3.0,)], math.sin, lambda x: (math.cos(x),)),
    ("tanh", lambda o, x: o.tanh(x), [(0.3,)], math.tanh, lambda x: (1 - math.tanh(x) ** 2,)),
    ("sigmoid", lambda o, x: o.sigmoid(x), [(-0.4,)], _sig, lambda x: (_sig(x) * (1 - _sig(x)),)),
    (
        "softplus",
        lambda o, x: o.softplus(x),
        [(-3.0,), (0.0,), (2.5,)],
        lambda x: math.log1p(math.exp(x)),
        lambda x: (_sig(x),),
    ),
    (
        "relu",
        lambda o, x: o.relu(x),
        [(-1.0,), (0.0,), (2.0,)],
        lambda x: max(x, 0.0),
        lambda x: (float(x > 0),),
    ),
    (
        "maximum",
        lambda o, a, b: o.maximum(a, b),
        [(1.0, 2.0), (3.0, -1.0), (2.0, 2.0)],
        max,
        lambda a, b: (1.0, 0.0) if a > b else (0.0, 1.0) if a < b else (0.5, 0.5),
    ),
    (
        "minimum",
        lambda o, a, b: o.minimum(a, b),
        [(1.0, 2.0), (3.0, -1.0), (2.0, 2.0)],
        min,
        lambda a, b: (1.0, 0.0) if a < b else (0.0, 1.0) if a > b else (0.5, 0.5),
    ),
    (
        "clamp",
        lambda o, x, lo, hi: o.clamp(x, lo, hi),
        [(-2.0, -1.0, 1.0), (-1.0, -1.0, 1.0), (0.3, -1.0, 1.0), (1.0, -1.0, 1.0), (4.0, -1.0, 1.0)],
        lambda x, lo, hi: min(max(x, lo), hi),
        # ∂/∂(x, lo, hi): x's on the closed interval [lo, hi], else the active bound's
        lambda x, lo, hi: (0.0, 1.0, 0.0) if x < lo else (0.0, 0.0, 1.0) if x > hi else (1.0, 0.0, 0.0),
    ),
    (
        "where",
        lambda o, x, y: o.where(x > 0, 3 * x * y, y - x),
        [(-1.0, 2.0), (0.0, 2.0), (0.5, 2.0)],
        lambda x, y: 3 * x * y if x > 0 else y - x,
        lambda x, y: (3 * y, 3 * x) if x > 0 else (-1.0, 1.0),
    ),
]
IDS = [f"{c[0]}-{i}" for c in CASES for i in range(len(c[2]))]
POINTS = [(c[0], c[1], p, c[3], c[4]) for c in CASES for p in c[2]]


def _torch_value_and_grad(fn: Callable, point: tuple[float, ...], mode: str) -> tuple[float, list[float]]:
    args = [torch.tensor(v, dtype=torch.float64) for v in point]
    if mode == "reverse":
        args = [a.requires_grad_() for a in args]
        out = fn(TorchOps(), *args)
        grads = torch.autograd.grad(out, args, allow_unused=True, materialize_grads=True)
        return float(out.detach()), [float(g) for g in grads]
    # forward mode (what the per-neuron J_t of gradflow uses): one jacfwd per argument
    grads = [
        float(torch.func.jacfwd(lambda a, i=i: fn(TorchOps(), *args[:i], a, *args[i + 1 :]))(args[i]))
        for i in range(len(args))
    ]
    return float(fn(TorchOps(), *args)), grads


@pytest.mark.parametrize(("name", "fn", "point", "value", "grad"), POINTS, ids=IDS)
def test_value_and_derivative_torch_sympy_closed_form(name, fn, point, value, grad) -> None:
    want_v, want_g = value(*point), list(grad(*point))
    # torch, reverse and forward mode; float64 so 1e-12 is rounding only
    for mode in ("reverse", "forward"):
        v, g = _torch_value_and_grad(fn, point, mode)
        assert v == pytest.approx(want_v, abs=1e-12), (name, mode)
        assert g == pytest.approx(want_g, abs=1e-12), (name, mode, g)
    # sympy: differentiate symbolically first, then substitute the point (the analysis' order)
    syms = sympy.symbols(f"a0:{len(point)}", real=True)
    expr = sympy.sympify(fn(SympyOps(), *syms))
    at = dict(zip(syms, point, strict=True))
    assert float(expr.subs(at)) == pytest.approx(want_v, abs=1e-12), name
    assert [float(sympy.diff(expr, s).subs(at)) for s in syms] == pytest.approx(want_g, abs=1e-12), name
    # numpy: values only
    assert float(fn(NumpyOps(), *(np.float64(p) for p in point))) == pytest.approx(want_v, abs=1e-12)


@pytest.mark.parametrize(
    ("name", "fn", "point", "expected"),
    [
        ("relu'(0)", lambda o, x: o.relu(x), (0.0,), [0.0]),
        ("abs'(0)", lambda o, x: o.abs(x), (0.0,), [0.0]),
        ("maximum tie", lambda o, a, b: o.maximum(a, b), (1.5, 1.5), [0.5, 0.5]),
        ("minimum tie", lambda o, a, b: o.minimum(a, b), (1.5, 1.5), [0.5, 0.5]),
        ("maximum(x, 0) at 0", lambda o, x: o.maximum(x, 0.0), (0.0,), [0.5]),
        ("clamp at lo", lambda o, x, lo, hi: o.clamp(x, lo, hi), (-1.0, -1.0, 1.0), [1.0, 0.0, 0.0]),
        ("clamp at hi", lambda o, x, lo, hi: o.clamp(x, lo, hi), (1.0, -1.0, 1.0), [1.0, 0.0, 0.0]),
        ("clamp float bounds at hi", lambda o, x: o.clamp(x, -1.0, 1.0), (1.0,), [1.0]),
        ("where at the switch", lambda o, x: o.where(x > 0, 2 * x, -x), (0.0,), [-1.0]),
    ],
)
def test_derivative_at_kinks_is_the_documented_convention(name, fn, point, expected) -> None:
    """The convention written in the ops docstring, at the kink itself, in torch (both AD modes),
    in sympy (derivative, then substitution) and through the sympy → torch printer."""
    for mode in ("reverse", "forward"):
        assert _torch_value_and_grad(fn, point, mode)[1] == expected, (name, mode)
    syms = sympy.symbols(f"a0:{len(point)}", real=True)
    expr = sympy.sympify(fn(SympyOps(), *syms))
    at = dict(zip(syms, point, strict=True))
    derivs = [sympy.diff(expr, s) for s in syms]
    assert [sympy.nsimplify(d.subs(at)) for d in derivs] == [sympy.nsimplify(e) for e in expected], name
    # the same derivatives printed to torch by the symbolic package's printer
    from gradscape.gradflow.symbolic import torch_matrix_function

    f = torch_matrix_function(sympy.Matrix([derivs]), syms)
    got = f(*(torch.tensor(p, dtype=torch.float64) for p in point))
    assert got.reshape(-1).tolist() == expected, name


@pytest.mark.parametrize("backend", [TorchOps(), SympyOps(), NumpyOps(), ForwardOps()], ids=repr)
def test_every_backend_has_every_op(backend: Any) -> None:
    missing = [n for n in OPS_NAMES if not callable(getattr(backend, n, None))]
    assert not missing, missing


def test_the_table_lists_exactly_the_ops() -> None:
    rows = re.findall(r"^\| `([a-z_]+)\(", ops_module.__doc__ or "", flags=re.M)
    assert rows == list(OPS_NAMES)


@pytest.mark.parametrize("backend", [TorchOps(), SympyOps(), NumpyOps()], ids=repr)
def test_where_takes_a_python_bool_switch(backend: Any) -> None:
    """A bool configuration field selects a branch in every backend (no tensor, no Piecewise)."""
    a, b = object(), object()
    assert backend.where(True, a, b) is a and backend.where(False, a, b) is b
    assert backend.where(np.bool_(False), a, b) is b


def test_softplus_derivative_stays_finite_for_large_arguments() -> None:
    """ln(1 + eˣ)' written eˣ/(1 + eˣ) is inf/inf = NaN at x = 1000; the Softplus function's
    derivative 1/(1 + e⁻ˣ) is 1 there, in sympy and after printing to torch."""
    from gradscape.gradflow.symbolic import torch_matrix_function

    x = sympy.Symbol("x", real=True)
    d = sympy.diff(SympyOps.softplus(x), x)
    f = torch_matrix_function(sympy.Matrix([[SympyOps.softplus(x), d]]), [x])
    out = f(torch.tensor([1000.0, -1000.0, 0.0], dtype=torch.float64))
    assert torch.equal(out[:, 0, 1], torch.tensor([1.0, 0.0, 0.5], dtype=torch.float64))
    assert out[0, 0, 0] == 1000.0 and out[2, 0, 0] == pytest.approx(math.log(2), abs=1e-15)
    assert float(SympyOps.softplus(sympy.Float(2.0)).evalf()) == pytest.approx(
        math.log1p(math.exp(2)), abs=1e-14
    )


def test_mixed_python_numbers_and_tensors_keep_the_tensor_dtype() -> None:
    x = torch.tensor([0.5, -2.0], dtype=torch.float64)
    for out in (TorchOps.maximum(x, 0.0), TorchOps.minimum(1.0, x), TorchOps.clamp(x, -1.0, x + 1)):
        assert out.dtype == torch.float64
    assert TorchOps.where(x > 0, x, 0.0).tolist() == [0.5, 0.0]
