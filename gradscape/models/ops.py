r"""The ``ops`` namespaces a neuron's step function is written against.

A step function never imports torch or sympy itself; it calls ``ops.exp``, ``ops.cos``,
``ops.spike`` … on whatever it is given. With :class:`TorchOps` it simulates and trains
(``ops.spike`` is Heaviside forward, surrogate backward); with :class:`SympyOps` the same function
returns sympy expressions, where ``ops.spike`` is :class:`Spike`, whose derivative is the unevaluated
surrogate slope :class:`SurrogateSlope` (printed σ); with :class:`NumpyOps` it computes plain values
(no derivatives; ``spike`` is Θ). That is how the function that trains is the function that
:mod:`gradscape.gradflow` analyses. Subclasses (the landscape's forward-only ops) inherit every name.

Every backend has every name below (:data:`OPS_NAMES`); arguments may be tensors / expressions or
plain numbers.

| op | value | torch | sympy | derivative |
|---|---|---|---|---|
| `sqrt(x)` | √x | `torch.sqrt` | `sqrt` | 1/(2√x) |
| `exp(x)` | eˣ | `torch.exp` | `exp` | eˣ |
| `log(x)` | ln x | `torch.log` | `log` | 1/x |
| `abs(x)` | \|x\| | `torch.abs` | `Abs` | sign x; **abs′(0) = 0** |
| `cos(x)` | cos x | `torch.cos` | `cos` | −sin x |
| `sin(x)` | sin x | `torch.sin` | `sin` | cos x |
| `tanh(x)` | tanh x | `torch.tanh` | `tanh` | 1 − tanh²x |
| `sigmoid(x)` | 1/(1 + e⁻ˣ) | `torch.sigmoid` | `1/(1 + exp(-x))` | sigmoid(x)(1 − sigmoid(x)) |
| `softplus(x)` | ln(1 + eˣ) | `F.softplus` | `Softplus` | sigmoid(x) |
| `relu(x)` | max(x, 0) | `torch.relu` | `Piecewise` | 1 for x > 0, else 0: **relu′(0) = 0** |
| `maximum(a, b)` | max(a, b) | `torch.maximum` | `Piecewise` | 1 to the larger; **a tie: ½ to each** |
| `minimum(a, b)` | min(a, b) | `torch.minimum` | `Piecewise` | 1 to the smaller; **a tie: ½ to each** |
| `clamp(x, lo, hi)` | min(max(x, lo), hi) | `torch.clamp` | `Piecewise` | ∂/∂x = 1 on **[lo, hi]** |
| `where(c, a, b)` | a where c, else b | `torch.where` | `Piecewise` | the taken branch's; none via c |
| `spike(x)` | Θ(x), Θ(0) = 0 | Θ + (F − stopgrad F) | `Spike` | the surrogate SG(x) (σ(x) in sympy) |
| `stop_gradient(x)` | x | `detach` | `StopGradient` | 0 |
| `zeros_like(x)` | 0 of x's shape | `torch.zeros_like` | `0` | 0 |
| `ones_like(x)` | 1 of x's shape | `torch.ones_like` | `1` | 0 |

**Derivatives at kinks** are PyTorch autograd's own (what training backpropagates), and the sympy
forms are written so that their derivatives are the same: relu′(0) = 0, abs′(0) = 0, clamp passes
the derivative to x on the *closed* interval [lo, hi] (1 at the bounds, the bounds get 0 there),
maximum/minimum at a tie a = b give ½ to each argument (sympy's ``Max``/``Min`` are not used: they
flatten nested calls, which changes the split at a three-way tie), and ``where`` differentiates the
branch it takes (its condition, a comparison, has no derivative). ``relu(x)`` and ``maximum(x, 0)``
therefore differ at x = 0 (0 and ½), exactly as in torch. ``where``'s condition may be a Python
bool (a configuration switch) in every backend.

Python control flow may depend on configuration (booleans, floats in the parameter dataclass) but
never on a tensor's value: use ``where``, ``maximum``, ``clamp`` … for that.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.special
import sympy
import torch
import torch.nn.functional as F

from gradscape.models.surrogates import Surrogate, get_surrogate, inference_spike

__all__ = [
    "TorchOps",
    "ForwardOps",
    "SympyOps",
    "NumpyOps",
    "Spike",
    "SurrogateSlope",
    "StopGradient",
    "Softplus",
    "OPS_NAMES",
]

#: every name a step function may call on ``ops`` (each backend has all of them).
OPS_NAMES = (
    "sqrt",
    "exp",
    "log",
    "abs",
    "cos",
    "sin",
    "tanh",
    "sigmoid",
    "softplus",
    "relu",
    "maximum",
    "minimum",
    "clamp",
    "where",
    "spike",
    "stop_gradient",
    "zeros_like",
    "ones_like",
)


def _t(x: Any) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(x, dtype=torch.get_default_dtype())


def _pair(a: Any, b: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Both as tensors; a plain number takes the other argument's dtype and device."""
    if isinstance(a, torch.Tensor) and not isinstance(b, torch.Tensor):
        return a, torch.as_tensor(b, dtype=a.dtype, device=a.device)
    if isinstance(b, torch.Tensor) and not isinstance(a, torch.Tensor):
        return torch.as_tensor(a, dtype=b.dtype, device=b.device), b
    return _t(a), _t(b)


def _unary(fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """``fn`` as an op: a plain number argument becomes a tensor of the default dtype first."""

    def op(x: Any) -> torch.Tensor:
        return fn(_t(x))

    op.__name__ = op.__qualname__ = fn.__name__
    op.__doc__ = f"``{fn.__name__}`` of x (torch)."
    return staticmethod(op)


def _is_switch(c: Any) -> bool:
    return isinstance(c, bool | np.bool_)


class TorchOps:
    """Torch backend: ``spike`` = Θ forward, ``surrogate.grad`` backward (module docstring)."""

    backend = "torch"

    def __init__(self, surrogate: str | Surrogate = "double-gaussian") -> None:
        self.surrogate = get_surrogate(surrogate)

    sqrt = _unary(torch.sqrt)
    exp = _unary(torch.exp)
    log = _unary(torch.log)
    abs = _unary(torch.abs)
    cos = _unary(torch.cos)
    sin = _unary(torch.sin)
    tanh = _unary(torch.tanh)
    sigmoid = _unary(torch.sigmoid)
    # β = 1; torch returns x itself for x > 20, within ln(1 + e⁻²⁰) ≈ 2e-9 of ln(1 + eˣ).
    softplus = _unary(F.softplus)
    relu = _unary(torch.relu)
    zeros_like = _unary(torch.zeros_like)
    ones_like = _unary(torch.ones_like)

    @staticmethod
    def maximum(a: Any, b: Any) -> torch.Tensor:
        return torch.maximum(*_pair(a, b))

    @staticmethod
    def minimum(a: Any, b: Any) -> torch.Tensor:
        return torch.minimum(*_pair(a, b))

    @staticmethod
    def clamp(x: Any, lo: Any, hi: Any) -> torch.Tensor:
        x = _t(x)
        if isinstance(lo, numbers.Real) and isinstance(hi, numbers.Real):
            return torch.clamp(x, float(lo), float(hi))
        return torch.clamp(x, _pair(x, lo)[1], _pair(x, hi)[1])

    @staticmethod
    def where(cond: Any, a: Any, b: Any) -> Any:
        if _is_switch(cond):
            return a if cond else b
        return torch.where(_t(cond), *_pair(a, b))

    @staticmethod
    def stop_gradient(x: torch.Tensor) -> torch.Tensor:
        return _t(x).detach()

    def spike(self, x: torch.Tensor) -> torch.Tensor:
        return self.surrogate.spike(x)

    def __repr__(self) -> str:
        return f"TorchOps(surrogate={self.surrogate!r})"


class ForwardOps(TorchOps):
    """:class:`TorchOps` for evaluation without gradients: the spike is
    :func:`~gradscape.models.surrogates.inference_spike` (Θ(x), NaN for a non-finite membrane), the
    value every other path computes, without the surrogate's primitive (whose erf a compiled kernel
    would compute only to cancel it)."""

    def spike(self, x: torch.Tensor) -> torch.Tensor:
        return inference_spike(x)


class _Symbol1(sympy.Function):
    """A one-argument function printed as ``TEXT(a)`` and in LaTeX as ``\\TEX\\left(a\\right)``."""

    nargs = 1
    _tex = ""
    _text = ""

    def _latex(self, printer: Any, exp: str | None = None) -> str:
        tex = r"%s\left(%s\right)" % (self._tex, printer._print(self.args[0]))
        return tex if exp is None else r"%s^{%s}" % (tex, exp)  # σ(a)² is printed with exp=

    def _sympystr(self, printer: Any) -> str:
        return "%s(%s)" % (self._text, printer._print(self.args[0]))


class SurrogateSlope(_Symbol1):
    """σ(x) = SG(x): the surrogate derivative of the spike at argument x, left unevaluated."""

    _tex, _text = r"\sigma", "σ"


class Spike(_Symbol1):
    """Θ(x) whose derivative is σ(x) (:class:`SurrogateSlope`), not a Dirac delta."""

    _tex, _text = r"\Theta", "Θ"

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return SurrogateSlope(self.args[0])


class StopGradient(sympy.Function):
    """x with derivative 0 (a detached path, e.g. a detached reset)."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return sympy.Integer(0)

    def _sympystr(self, printer: Any) -> str:
        return "sg(%s)" % printer._print(self.args[0])


class Softplus(sympy.Function):
    """softplus(x) = ln(1 + eˣ), kept as one function so that its derivative is written
    1/(1 + e⁻ˣ), which stays finite for large x where eˣ/(1 + eˣ) is inf/inf."""

    nargs = 1

    @classmethod
    def eval(cls, x: sympy.Expr) -> sympy.Expr | None:
        if x.is_zero:
            return sympy.log(2)
        return None

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return 1 / (1 + sympy.exp(-self.args[0]))

    def _eval_rewrite_as_log(self, x: sympy.Expr, **kwargs: Any) -> sympy.Expr:
        return sympy.log(1 + sympy.exp(x))

    def _eval_evalf(self, prec: int) -> sympy.Expr | None:
        return self.rewrite(sympy.log)._eval_evalf(prec)

    def _eval_is_extended_real(self) -> bool | None:
        return self.args[0].is_extended_real

    def _eval_is_positive(self) -> bool | None:
        return True if self.args[0].is_extended_real else None

    def _latex(self, printer: Any, exp: str | None = None) -> str:
        tex = r"\operatorname{softplus}\left(%s\right)" % printer._print(self.args[0])
        return tex if exp is None else r"%s^{%s}" % (tex, exp)


def _sym(x: Any) -> sympy.Expr:
    return sympy.sympify(x)


class SympyOps:
    """Sympy backend: the step function returns symbolic expressions (module docstring)."""

    backend = "sympy"

    sqrt = staticmethod(sympy.sqrt)
    exp = staticmethod(sympy.exp)
    log = staticmethod(sympy.log)
    abs = staticmethod(sympy.Abs)
    cos = staticmethod(sympy.cos)
    sin = staticmethod(sympy.sin)
    tanh = staticmethod(sympy.tanh)

    @staticmethod
    def sigmoid(x: Any) -> sympy.Expr:
        return 1 / (1 + sympy.exp(-x))

    @staticmethod
    def softplus(x: Any) -> sympy.Expr:
        return Softplus(x)

    @staticmethod
    def relu(x: Any) -> sympy.Expr:
        x = _sym(x)
        return sympy.Piecewise((x, x > 0), (0, True))

    @staticmethod
    def maximum(a: Any, b: Any) -> sympy.Expr:
        a, b = _sym(a), _sym(b)
        return sympy.Piecewise((a, a > b), (b, a < b), ((a + b) / 2, True))

    @staticmethod
    def minimum(a: Any, b: Any) -> sympy.Expr:
        a, b = _sym(a), _sym(b)
        return sympy.Piecewise((a, a < b), (b, a > b), ((a + b) / 2, True))

    @staticmethod
    def clamp(x: Any, lo: Any, hi: Any) -> sympy.Expr:
        x, lo, hi = _sym(x), _sym(lo), _sym(hi)
        return sympy.Piecewise((lo, x < lo), (hi, x > hi), (x, True))

    @staticmethod
    def where(cond: Any, a: Any, b: Any) -> Any:
        if _is_switch(cond):
            return a if cond else b
        return sympy.Piecewise((_sym(a), cond), (_sym(b), True))

    @staticmethod
    def zeros_like(x: Any) -> sympy.Expr:
        return sympy.Integer(0)

    @staticmethod
    def ones_like(x: Any) -> sympy.Expr:
        return sympy.Integer(1)

    @staticmethod
    def spike(x: Any) -> sympy.Expr:
        return Spike(x)

    @staticmethod
    def stop_gradient(x: Any) -> sympy.Expr:
        return StopGradient(x)

    def __repr__(self) -> str:
        return "SympyOps()"


class NumpyOps:
    """Numpy backend: plain values on arrays or floats, no derivatives (``spike`` = Θ,
    ``stop_gradient`` = identity); for closed forms evaluated on grids."""

    backend = "numpy"

    sqrt = staticmethod(np.sqrt)
    exp = staticmethod(np.exp)
    log = staticmethod(np.log)
    abs = staticmethod(np.abs)
    cos = staticmethod(np.cos)
    sin = staticmethod(np.sin)
    tanh = staticmethod(np.tanh)
    sigmoid = staticmethod(scipy.special.expit)
    maximum = staticmethod(np.maximum)
    minimum = staticmethod(np.minimum)
    zeros_like = staticmethod(np.zeros_like)
    ones_like = staticmethod(np.ones_like)

    @staticmethod
    def softplus(x: Any) -> Any:
        return np.logaddexp(0.0, x)

    @staticmethod
    def relu(x: Any) -> Any:
        return np.maximum(x, 0.0)

    @staticmethod
    def clamp(x: Any, lo: Any, hi: Any) -> Any:
        return np.minimum(np.maximum(x, lo), hi)

    @staticmethod
    def where(cond: Any, a: Any, b: Any) -> Any:
        if _is_switch(cond):
            return a if cond else b
        return np.where(cond, a, b)

    @staticmethod
    def spike(x: Any) -> Any:
        return (np.asarray(x) > 0).astype(np.float64)

    @staticmethod
    def stop_gradient(x: Any) -> Any:
        return x

    def __repr__(self) -> str:
        return "NumpyOps()"
