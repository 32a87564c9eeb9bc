"""Spike-sparse products: W z computed from the nonzero entries of z only (inference on a CPU).

A spiking layer's outputs are mostly zero (BRF on S-MNIST: about 6–8 % of the neurons fire per step),
so for the products a step of :class:`~gradscape.models.network.RecurrentNetwork` takes with them,

    (z Wᵀ)_{b,i} = Σ_j z_{b,j} W_{i,j} = Σ_{j : z_{b,j} ≠ 0} z_{b,j} W_{i,j},

only the columns of W for the neurons that fired are read: nnz(z)·N additions instead of B·H·N
multiply-adds. Both products with z_t — the next step's recurrent input W_rec z_t and the readout
drive W_out z_t — come from one gather-and-sum over the rows of the table A = [W_recᵀ | W_outᵀ]
(H × (H + C)), done by :func:`torch.nn.functional.embedding_bag` (``mode="sum"`` with the values
z_{b,j} as per-sample weights, so graded or NaN outputs are multiplied in exactly as in the dense
product; only 0·∞ = NaN terms of a non-finite W are skipped).

It is an inference path: the positions of the nonzeros are data-dependent, so it runs only on CPU
tensors that no autograd, forward-mode AD or ``torch.func`` transform can see (a gradient with respect
to z needs the zero entries too). Anywhere else :func:`sparse_possible` is False and the network uses
its dense products. Values equal the dense path's up to floating-point summation order.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from gradscape.models.surrogates import derivative_possible

__all__ = [
    "NonzeroRows",
    "SparseProduct",
    "SparseTraining",
    "nonzero_rows",
    "sparse_matmul",
    "sparse_possible",
    "sparse_training_possible",
    "transposed_product",
]


class NonzeroRows(NamedTuple):
    """The nonzero entries of a (B, H) tensor z, row by row (CSR without the row index).

    ``cols``: column j of every nonzero, in row-major order; ``offsets`` (B + 1): row b's nonzeros
    are ``cols[offsets[b]:offsets[b + 1]]``; ``values``: z_{b,j} at those positions.
    """

    cols: Tensor
    offsets: Tensor
    values: Tensor


_NUMPY_FLOATS = (torch.float16, torch.float32, torch.float64)


def sparse_possible(*tensors: Tensor) -> bool:
    """True when the spike-sparse products may replace the dense ones for these tensors: all on the
    CPU, of a float dtype numpy can view (not bfloat16), and invisible to autograd, forward-mode AD
    and ``torch.func`` transforms (e.g. ``vmap``)."""
    return all(
        t.device.type == "cpu" and t.dtype in _NUMPY_FLOATS and not derivative_possible(t) for t in tensors
    )


class SparseProduct:
    """z ↦ z @ table for (B, H) tensors z of one batch size B, from z's nonzero entries (module
    docstring); ``table`` is (H, N). Index helpers for B are built once, so a time loop pays only
    for locating the nonzeros and summing their rows.

    A step whose fraction of nonzeros exceeds ``max_density`` uses the dense product instead: on the
    2-core EPYC the two cost the same at about 35 % (2 threads) to 45 % (1 thread) nonzeros, B = H = 256.
    """

    def __init__(self, table: Tensor, batch: int, max_density: float = 0.3) -> None:
        self.table = table
        h = table.shape[0]
        self.batch, self.hidden = batch, h
        self.max_nonzeros = int(max_density * batch * h)
        # Locating nonzeros is numpy's: on a (256, 256) bool mask its flatnonzero was 3-4x faster
        # than torch.nonzero on the 2-core EPYC, and z ≠ 0 in numpy 10x faster than in torch.
        self._bounds = np.arange(0, (batch + 1) * h, h)  # row b starts at flat index b·H
        self._col = np.tile(np.arange(h, dtype=np.int64), batch)  # column of each flat index

    def rows(self, z: Tensor) -> NonzeroRows:
        """The nonzero entries of z (B, H). NaN counts as nonzero, so it reaches the product."""
        zn = _flat_numpy(z)
        return self._rows(zn, zn != 0)

    def _rows(self, zn: np.ndarray, mask: np.ndarray) -> NonzeroRows:
        flat = np.flatnonzero(mask)
        return NonzeroRows(
            torch.from_numpy(self._col[flat]),
            torch.from_numpy(np.searchsorted(flat, self._bounds)),
            torch.from_numpy(zn[flat]),
        )

    def __call__(self, z: Tensor) -> Tensor:
        zn = _flat_numpy(z)
        mask = zn != 0
        if np.count_nonzero(mask) > self.max_nonzeros:
            return z @ self.table
        return sparse_matmul(self._rows(zn, mask), self.table)


def _flat_numpy(z: Tensor) -> np.ndarray:
    return z.detach().contiguous().numpy().reshape(-1)


def nonzero_rows(z: Tensor) -> NonzeroRows:
    """The nonzero entries of z (B, H), row by row (see :class:`SparseProduct` for a time loop)."""
    b, h = z.shape
    return SparseProduct(z.new_empty(h, 0), b).rows(z)


def sparse_matmul(rows: NonzeroRows, table: Tensor) -> Tensor:
    """z @ table for the z that ``rows`` describes; ``table`` is (H, N). Returns (B, N)."""
    return F.embedding_bag(
        rows.cols,
        table,
        rows.offsets,
        mode="sum",
        per_sample_weights=rows.values.to(table.dtype),
        include_last_offset=True,
    )


# --------------------------------------------------------------------------- training
#
# The products with z_t under autograd. For A = [W_recᵀ | W_outᵀ] (H × N) and prod_t = z_t A:
#
#     ∂L/∂z_t = g_t Aᵀ                       (dense: the surrogate makes every neuron's gradient count)
#     ∂L/∂A   = Σ_t z_tᵀ g_t = Zᵀ G          (Z, G: all steps stacked; from Z's nonzeros only)
#
# so the forward product and the weight gradient skip the silent neurons and only ∂L/∂z_t stays a
# dense GEMM per step. The weight gradient is deferred: each step's backward stores g_t in a ring of
# ``chunk`` slots; backward visits the steps in decreasing t (step t's product feeds step t + 1's
# neuron update, whose backward needs ∂L/∂z_{t+1}, i.e. step t + 1's product backward), so when step
# c (c ≡ 0 mod chunk) has stored its g, the chunk [c, c + chunk) is complete and Z_cᵀ G_c is added
# to ∂L/∂A with one gather-and-sum. A zero-size handle node that every product takes as input
# runs after all of them (autograd's dependency count) and hands ∂L/∂A to A's producer.


def sparse_training_possible(*tensors: Tensor) -> bool:
    """True when :class:`SparseTraining` may run for these tensors: all on the CPU, of a float dtype
    numpy can view, and not seen by a ``torch.func`` transform (``vmap``, ``jvp``, ``grad``…),
    forward-mode AD or a ``torch.compile`` trace; reverse-mode autograd may (that is the point)."""
    if torch.compiler.is_compiling():
        return False
    wrapped = getattr(torch._C._functorch, "is_functorch_wrapped_tensor", None)
    if wrapped is None:
        return False
    return all(
        t.device.type == "cpu"
        and t.dtype in _NUMPY_FLOATS
        and not wrapped(t)
        and torch.autograd.forward_ad.unpack_dual(t).tangent is None
        for t in tensors
    )


#: Fraction of a step's nonzeros above which a training product (forward W_rec z, W_out z) falls
#: back to the dense one, and the same for the deferred weight gradient Zᵀ G of a chunk of steps.
#: Measured end to end (``benchmarks/bench_train.py --break-even``: BRF, B 256, H 256, T 100,
#: 1 thread, 2-core EPYC under load ≈ 3): all-sparse and all-dense products cost the same at about
#: 13 % spike density; at 7 % sparse is 4 % faster, at 0.6 % 20 %. Module-level so tests can force
#: either branch (read when a pass starts).
TRAINING_MAX_DENSITY = 0.15
WEIGHT_GRAD_MAX_DENSITY = 0.15


class SparseTraining:
    """The spike-sparse products z_t ↦ z_t A of one forward pass, differentiable (block comment above).

    ``table`` is A (H × N) as computed from the parameters (autograd sees it); ``split`` the column
    at which the product is cut into its two outputs (W_rec z_t and W_out z_t). Call :meth:`__call__`
    once per step in increasing t, starting with z_0.

    Under ``create_graph=True`` (Hessian-vector products) a step's backward returns the dense
    differentiable vector-Jacobian product (g_t Aᵀ, z_tᵀ g_t) instead, so second derivatives are exact.
    """

    def __init__(
        self, table: Tensor, batch: int, split: int, chunk: int = 16, max_density: float | None = None
    ) -> None:
        max_density = TRAINING_MAX_DENSITY if max_density is None else max_density
        self.table = table
        self.detached = table.detach()
        self.split = split
        self.chunk = chunk
        self.max_density = max_density
        self.weight_density = WEIGHT_GRAD_MAX_DENSITY
        self.product = SparseProduct(self.detached, batch, max_density)
        self.zs: list[Tensor] = []
        self.ring: Tensor | None = None
        self.written = [False] * chunk
        self.pending = 0
        self.grad: Tensor | None = None

    def handle(self) -> Tensor:
        """The zero-size node every product of this pass takes (kept by the caller: held here it
        would tie this object and the autograd graph into a reference cycle)."""
        return _Handle.apply(self.table, self)

    def __call__(self, z: Tensor, handle: Tensor) -> tuple[Tensor, Tensor]:
        """(z A)[:, :split], (z A)[:, split:] from z's nonzeros."""
        return _Product.apply(z, self.table, handle, self)

    # ----------------------------------------------------------------- backward bookkeeping
    def store(self, t: int, g_first: Tensor | None, g_second: Tensor | None) -> Tensor:
        """Keep g_t for the deferred ∂L/∂A; returns g_t (B × N)."""
        if self.ring is None:
            b, n = self.zs[0].shape[0], self.detached.shape[1]
            self.ring = self.detached.new_empty(self.chunk, b, n)
        slot = self.ring[t % self.chunk]
        for part, g in ((slot[:, : self.split], g_first), (slot[:, self.split :], g_second)):
            if g is None:
                part.zero_()
            else:
                part.copy_(g)
        self.written[t % self.chunk] = True
        self.pending = t - t % self.chunk
        if t % self.chunk == 0:
            self.flush(t)
        return slot

    def flush(self, start: int) -> None:
        """Add Z_cᵀ G_c of the chunk starting at ``start`` to ∂L/∂A (slots never written are zero:
        steps whose products the loss does not depend on)."""
        assert self.ring is not None
        n = min(self.chunk, len(self.zs) - start)
        for k in range(n):
            if not self.written[k]:
                self.ring[k].zero_()
        g = self.ring[:n].reshape(-1, self.ring.shape[-1])
        z = torch.stack(self.zs[start : start + n]).reshape(-1, self.detached.shape[0])
        part = transposed_product(z, g, self.weight_density)
        self.grad = part if self.grad is None else self.grad.add_(part)
        self.written = [False] * self.chunk

    def take(self) -> Tensor | None:
        """∂L/∂A accumulated by this backward pass (None: no deferred part), and reset."""
        if any(self.written):  # a chunk whose first step was not reached (cannot happen; be exact)
            self.flush(self.pending)
        grad, self.grad = self.grad, None
        return grad


def transposed_product(z: Tensor, g: Tensor, max_density: float = 0.3) -> Tensor:
    """zᵀ g for z (M × H) and g (M × N) from z's nonzeros: row j of the result sums z_{m,j} g_m over
    the m with z_{m,j} ≠ 0 (an embedding bag over the rows of g, one bag per column of z)."""
    m, h = z.shape
    zt = z.detach().t().contiguous().numpy().reshape(-1)
    mask = zt != 0
    flat = np.flatnonzero(mask)
    if flat.size > max_density * m * h:
        return z.detach().t() @ g
    rows = torch.from_numpy(flat % m)
    offsets = torch.from_numpy(np.searchsorted(flat, np.arange(0, (h + 1) * m, m)))
    values = torch.from_numpy(zt[flat]).to(g.dtype)
    return F.embedding_bag(rows, g, offsets, mode="sum", per_sample_weights=values, include_last_offset=True)


class _Handle(torch.autograd.Function):
    """Zero-size stand-in for A that every product takes; its backward runs last and returns the
    deferred ∂L/∂A."""

    @staticmethod
    def forward(ctx: Any, table: Tensor, owner: SparseTraining) -> Tensor:
        ctx.owner = owner
        return table.new_empty(0)

    @staticmethod
    def backward(ctx: Any, _: Tensor) -> tuple[Tensor | None, None]:
        return ctx.owner.take(), None


class _Product(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, z: Tensor, table: Tensor, handle: Tensor, owner: SparseTraining
    ) -> tuple[Tensor, Tensor]:
        ctx.set_materialize_grads(False)
        ctx.owner, ctx.t = owner, len(owner.zs)
        ctx.save_for_backward(z, table)
        owner.zs.append(z.detach())
        prod = owner.product(z.detach())
        return prod[:, : owner.split], prod[:, owner.split :]

    @staticmethod
    def backward(ctx: Any, g_first: Tensor | None, g_second: Tensor | None) -> tuple[Any, ...]:
        owner: SparseTraining = ctx.owner
        z, table = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph: the dense VJP, itself differentiable
            s = owner.split
            parts = [
                (g, table[:, :s]) if i == 0 else (g, table[:, s:]) for i, g in enumerate((g_first, g_second))
            ]
            terms = [g @ a.T for g, a in parts if g is not None]
            gz = sum(terms[1:], terms[0]) if terms and ctx.needs_input_grad[0] else None
            gt = torch.cat(
                [g if g is not None else z.new_zeros(z.shape[0], a.shape[1]) for g, a in parts], dim=1
            )
            return gz, z.T @ gt, None, None
        g = owner.store(ctx.t, g_first, g_second)
        gz = g @ owner.detached.T if ctx.needs_input_grad[0] else None
        return gz, None, None, None
