"""The ``ops`` namespaces a neuron's step function is written against.

A step function never imports torch or sympy itself; it calls ``ops.exp``, ``ops.sqrt``,
``ops.spike`` … on whatever it is given. With :class:`TorchOps` it simulates and trains
(``ops.spike`` is Heaviside forward, surrogate backward); with :class:`SympyOps` the same function
returns sympy expressions, where ``ops.spike`` is :class:`Spike`, whose derivative is the unevaluated
surrogate slope :class:`SurrogateSlope` (printed σ). That is how the function that trains is the
function that :mod:`gradscape.gradflow` analyses.

Available names, in both backends: ``sqrt, exp, log, abs, tanh, sigmoid, spike, zeros_like,
stop_gradient`` (the value passes, the derivative is 0: ``detach`` in torch).
Python control flow may depend on configuration (booleans, floats in the parameter dataclass) but
never on a tensor's value.
"""

from __future__ import annotations

from typing import Any

import sympy
import torch

from gradscape.models.surrogates import Surrogate, get_surrogate

__all__ = ["TorchOps", "SympyOps", "Spike", "SurrogateSlope", "OPS_NAMES"]

OPS_NAMES = ("sqrt", "exp", "log", "abs", "tanh", "sigmoid", "spike", "zeros_like", "stop_gradient")


def _t(x: Any) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(x, dtype=torch.get_default_dtype())


class TorchOps:
    """Torch backend: ``spike`` = Θ forward, ``surrogate.grad`` backward."""

    backend = "torch"

    def __init__(self, surrogate: str | Surrogate = "double-gaussian") -> None:
        self.surrogate = get_surrogate(surrogate)

    @staticmethod
    def sqrt(x: Any) -> torch.Tensor:
        return torch.sqrt(_t(x))

    @staticmethod
    def exp(x: Any) -> torch.Tensor:
        return torch.exp(_t(x))

    @staticmethod
    def log(x: Any) -> torch.Tensor:
        return torch.log(_t(x))

    @staticmethod
    def abs(x: Any) -> torch.Tensor:
        return torch.abs(_t(x))

    @staticmethod
    def tanh(x: Any) -> torch.Tensor:
        return torch.tanh(_t(x))

    @staticmethod
    def sigmoid(x: Any) -> torch.Tensor:
        return torch.sigmoid(_t(x))

    @staticmethod
    def zeros_like(x: Any) -> torch.Tensor:
        return torch.zeros_like(_t(x))

    @staticmethod
    def stop_gradient(x: torch.Tensor) -> torch.Tensor:
        return x.detach()

    def spike(self, x: torch.Tensor) -> torch.Tensor:
        return self.surrogate.spike(x)

    def __repr__(self) -> str:
        return f"TorchOps(surrogate={self.surrogate!r})"


class SurrogateSlope(sympy.Function):
    """σ(x) = SG(x): the surrogate derivative of the spike at argument x, left unevaluated."""

    nargs = 1

    def _latex(self, printer: Any, exp: str | None = None) -> str:
        tex = r"\sigma\left(%s\right)" % printer._print(self.args[0])
        return tex if exp is None else r"%s^{%s}" % (tex, exp)  # σ(a)² is printed with exp=

    def _sympystr(self, printer: Any) -> str:
        return "σ(%s)" % printer._print(self.args[0])


class Spike(sympy.Function):
    """Θ(x) whose derivative is σ(x) (:class:`SurrogateSlope`), not a Dirac delta."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return SurrogateSlope(self.args[0])

    def _latex(self, printer: Any, exp: str | None = None) -> str:
        tex = r"\Theta\left(%s\right)" % printer._print(self.args[0])
        return tex if exp is None else r"%s^{%s}" % (tex, exp)

    def _sympystr(self, printer: Any) -> str:
        return "Θ(%s)" % printer._print(self.args[0])


class StopGradient(sympy.Function):
    """x with derivative 0 (a detached path, e.g. a detached reset)."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return sympy.Integer(0)

    def _sympystr(self, printer: Any) -> str:
        return "sg(%s)" % printer._print(self.args[0])


class SympyOps:
    """Sympy backend: the step function returns symbolic expressions."""

    backend = "sympy"

    sqrt = staticmethod(sympy.sqrt)
    exp = staticmethod(sympy.exp)
    log = staticmethod(sympy.log)
    abs = staticmethod(sympy.Abs)
    tanh = staticmethod(sympy.tanh)

    @staticmethod
    def sigmoid(x: Any) -> sympy.Expr:
        return 1 / (1 + sympy.exp(-x))

    @staticmethod
    def zeros_like(x: Any) -> sympy.Expr:
        return sympy.Integer(0)

    @staticmethod
    def spike(x: Any) -> sympy.Expr:
        return Spike(x)

    @staticmethod
    def stop_gradient(x: Any) -> sympy.Expr:
        return StopGradient(x)

    def __repr__(self) -> str:
        return "SympyOps()"
