"""Symmetric linear operators known by their action v ↦ A v, and their SciPy view.

The curvature algorithms (:mod:`gradscape.landscape.eigen`) see only this interface, never a model,
as in hessian-eigenthings and curvlinops: the Hessian of a loss
(:class:`~gradscape.landscape.hessian.HVPOperator`), an explicit matrix (:class:`MatrixOperator`) or
any other symmetric map is one :class:`Operator`, and :func:`as_linear_operator` hands it to
:mod:`scipy.sparse.linalg` (e.g. ARPACK's ``eigsh``).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator
from torch import Tensor

__all__ = ["Operator", "MatrixOperator", "as_linear_operator"]


class Operator:
    """A symmetric linear map on ℝⁿ given by its action ``apply(v) = A v`` (v of shape (n,))."""

    size: int
    dtype: torch.dtype = torch.float64
    device: torch.device = torch.device("cpu")

    def apply(self, v: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def __matmul__(self, v: Tensor) -> Tensor:
        return self.apply(v)

    def dense(self) -> Tensor:
        """The explicit n × n matrix, column by column (n products; for small n and tests)."""
        eye = torch.eye(self.size, dtype=self.dtype, device=self.device)
        return torch.stack([self.apply(e) for e in eye], dim=1)


class MatrixOperator(Operator):
    """An explicit symmetric matrix as an operator."""

    def __init__(self, matrix: Tensor) -> None:
        if matrix.dim() != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ValueError(f"need a square matrix, got shape {tuple(matrix.shape)}")
        self.matrix = matrix
        self.size = matrix.shape[0]
        self.dtype = matrix.dtype
        self.device = matrix.device

    def apply(self, v: Tensor) -> Tensor:
        return self.matrix @ v


class _Counted(LinearOperator):
    """``op`` as a float64 SciPy operator that counts its products (``applies``)."""

    def __init__(self, op: Operator) -> None:
        super().__init__(dtype=np.dtype(np.float64), shape=(op.size, op.size))
        self.op = op
        self.applies = 0

    def _matvec(self, x: np.ndarray) -> np.ndarray:
        self.applies += 1
        v = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64).reshape(-1))
        out = self.op.apply(v.to(dtype=self.op.dtype, device=self.op.device))
        return out.detach().cpu().double().numpy()

    def _rmatvec(self, x: np.ndarray) -> np.ndarray:  # symmetric: Aᵀ x = A x
        return self._matvec(x)


def as_linear_operator(op: Operator) -> _Counted:
    """``op`` as a :class:`scipy.sparse.linalg.LinearOperator` in float64 (ARPACK's precision).

    Every product is one host round trip (vector to the operator's device and dtype and back); for
    a model's Hessian that copy is small next to the HVP itself. ``.applies`` counts the products.
    """
    return _Counted(op)
