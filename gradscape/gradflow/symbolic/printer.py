"""Symbolic matrices as torch functions: sympy's own ``lambdify`` with its PyTorch printer.

``sympy.lambdify(..., modules="torch")`` with :class:`sympy.printing.pytorch.TorchPrinter` does the
translation (``Piecewise`` → ``torch.where``, ``cos`` → ``torch.cos`` …); the subclass here adds only
what sympy cannot know: the spike Θ(a) (:class:`~gradscape.models.ops.Spike`, the Heaviside step),
the surrogate slope σ(a) (:class:`~gradscape.models.ops.SurrogateSlope`, ``surrogate.grad``), the
detached path and softplus, and it folds numeric constants (sqrt(3)/2 → 0.866…) because
``torch.sqrt`` refuses Python numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import sympy
import torch
from sympy.printing.pytorch import TorchPrinter

from gradscape.models.ops import Softplus, Spike, StopGradient, SurrogateSlope
from gradscape.models.surrogates import Surrogate, get_surrogate, heaviside

__all__ = ["torch_matrix_function", "numeric_matrix"]


class TorchJPrinter(TorchPrinter):
    """sympy's torch printer plus Θ, σ, stop-gradient, softplus and folded numeric constants."""

    def _print(self, expr: Any, **kwargs: Any) -> str:
        if isinstance(expr, sympy.Expr) and expr.is_number and not expr.is_Integer:
            try:
                return repr(float(expr))
            except TypeError:
                pass
        return super()._print(expr, **kwargs)

    def _print_Spike(self, expr: Spike) -> str:
        return "Spike(%s)" % self._print(expr.args[0])

    def _print_SurrogateSlope(self, expr: SurrogateSlope) -> str:
        return "SurrogateSlope(%s)" % self._print(expr.args[0])

    def _print_StopGradient(self, expr: StopGradient) -> str:
        return "StopGradient(%s)" % self._print(expr.args[0])

    def _print_Softplus(self, expr: Softplus) -> str:
        return "Softplus(%s)" % self._print(expr.args[0])


def _as_tensor(a: Any) -> torch.Tensor:
    # A folded constant argument: float64 (a 0-dim tensor does not promote a float32 batch).
    return a if isinstance(a, torch.Tensor) else torch.as_tensor(a, dtype=torch.float64)


def torch_matrix_function(
    matrix: sympy.Matrix, symbols: Sequence[sympy.Symbol], surrogate: str | Surrogate = "double-gaussian"
) -> Callable[..., torch.Tensor]:
    """``f(*values) -> Tensor (..., k, k)``: ``matrix`` evaluated in torch, broadcasting the values
    given for ``symbols``; Θ(a) = heaviside(a) and σ(a) = ``surrogate.grad(a)``."""
    sg = get_surrogate(surrogate)
    k_rows, k_cols = matrix.shape
    namespace = {
        "SurrogateSlope": lambda a: sg.grad(_as_tensor(a)),
        "Spike": lambda a: heaviside(_as_tensor(a)),
        "StopGradient": lambda a: _as_tensor(a),
        "Softplus": lambda a: torch.nn.functional.softplus(_as_tensor(a)),
    }
    entries = list(matrix)
    fn = sympy.lambdify(list(symbols), entries, modules=[namespace, "torch"], printer=TorchJPrinter)

    def evaluate(*values: Any) -> torch.Tensor:
        tensors = [v for v in values if isinstance(v, torch.Tensor)]
        like = tensors[0] if tensors else torch.zeros((), dtype=torch.float64)
        dtype = like.dtype if like.is_floating_point() else torch.float64
        vals = [torch.as_tensor(v, dtype=dtype, device=like.device) for v in values]
        out = fn(*vals)
        out = [torch.as_tensor(e, dtype=dtype, device=like.device) for e in out]
        out = torch.broadcast_tensors(*out)
        return torch.stack(out, dim=-1).reshape(*out[0].shape, k_rows, k_cols)

    return evaluate


def numeric_matrix(M: sympy.Matrix, surrogate: Surrogate) -> np.ndarray | None:
    """M as a float array (σ and Θ evaluated numerically), or None while symbols remain."""
    if M.free_symbols:
        return None
    fn = torch_matrix_function(M, [], surrogate)
    with torch.no_grad():
        out = fn()
    return out.to(torch.float64).numpy()
