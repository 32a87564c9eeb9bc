"""Spike-sparse products: W z computed from the nonzero entries of z only (inference on a CPU).

A spiking layer's outputs are mostly zero (BRF on S-MNIST: about 6–8 % of the neurons fire per step),
so for the products a step of :class:`~gradscape.models.network.RecurrentNetwork` takes with them,

    (z Wᵀ)_{b,i} = Σ_j z_{b,j} W_{i,j} = Σ_{j : z_{b,j} ≠ 0} z_{b,j} W_{i,j},

only the columns of W for the neurons that fired are read: nnz(z)·N additions instead of B·H·N
multiply-adds. Both products with z_t — the next step's recurrent input W_rec z_t and the readout
drive W_out z_t — come from one gather-and-sum over the rows of the table A = [W_recᵀ | W_outᵀ]
(H × (H + C)). For float32 and float64 a native kernel finds the nonzeros and sums their rows in one
loop (:mod:`gradscape.models.native_sparse`); elsewhere, or where it cannot be built, numpy finds
them and :func:`torch.nn.functional.embedding_bag` sums (``mode="sum"`` with the values z_{b,j} as
per-sample weights). Either way graded or NaN outputs are multiplied in exactly as in the dense
product; only 0·∞ = NaN terms of a non-finite W are skipped.

The positions of the nonzeros are data-dependent, so :class:`SparseProduct` itself is an inference
product: it runs on CPU tensors that no autograd, forward-mode AD or ``torch.func`` transform can see
(:func:`sparse_possible`; a gradient with respect to z needs the zero entries too). Under reverse-mode
autograd the training pass :mod:`gradscape.models.sparse_sequence` uses it inside its own forward and
computes the weight gradient Zᵀ G from the same nonzeros (:func:`add_transposed_product`, or
:func:`nonzero_transposed_product` on the numpy path); anywhere else
the network uses its dense products. Values equal the dense path's up to floating-point summation order.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from gradscape.models import native_sparse
from gradscape.models.surrogates import derivative_possible

__all__ = [
    "NativeRows",
    "NonzeroRows",
    "add_transposed_product",
    "SparseProduct",
    "input_drives",
    "nonzero_rows",
    "sparse_matmul",
    "sparse_possible",
    "sparse_training_possible",
    "transposed_product",
    "nonzero_transposed_product",
]


class NonzeroRows(NamedTuple):
    """The nonzero entries of a (B, H) tensor z, row by row (CSR without the row index).

    ``cols``: column j of every nonzero, in row-major order; ``offsets`` (B + 1): row b's nonzeros
    are ``cols[offsets[b]:offsets[b + 1]]``; ``values``: z_{b,j} at those positions.
    """

    cols: Tensor
    offsets: Tensor
    values: Tensor


class NativeRows(NamedTuple):
    """A step's nonzeros as the native gather found them (:mod:`gradscape.models.native_sparse`):
    row b's column indices are ``cols[offsets[b]:offsets[b + 1]]`` and its values the same slice of
    ``values``; ``cols`` and ``values`` are buffers shared by many steps (``offsets`` index into them)."""

    cols: Tensor
    values: Tensor
    offsets: Tensor


_NUMPY_FLOATS = (torch.float16, torch.float32, torch.float64)

#: steps of nonzeros at the density cap that one buffer of :class:`SparseProduct` holds
_ARENA_STEPS = 16


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
    2-core EPYC the numpy path and the dense product cost the same at about 35 % (2 threads) to 45 %
    (1 thread) nonzeros, B = H = 256 (the native kernels are 2-4x faster than the numpy path, so the
    default 0.3 is conservative for them). ``native=False`` takes the numpy path.
    """

    def __init__(self, table: Tensor, batch: int, max_density: float = 0.3, native: bool = True) -> None:
        h = table.shape[0]
        self.batch, self.hidden = batch, h
        self.max_nonzeros = int(max_density * batch * h)
        self.total = 0.0  # Σ of every z multiplied so far (float64): spike counts for free
        # The native kernels (one loop per step, module docstring of native_sparse) where they build;
        # numpy's search and an embedding bag otherwise.
        self.kernel = native_sparse.kernels(table.dtype) if native else None
        self.native = self.kernel is not None
        self.table = table
        if self.native:
            self._padded = native_sparse.padded(table.detach())
            self._meta = torch.zeros(2, dtype=torch.float64)
            self._meta_np = self._meta.numpy()
            self._offsets = torch.empty(batch + 1, dtype=torch.int64)
            self._cols = self._values = table.new_empty(0)
            self._pos = self._capacity = 0
            self._scratch: tuple[Tensor, Tensor] | None = None
            return
        # Locating nonzeros is numpy's: on a (256, 256) bool mask its flatnonzero was 3-4x faster
        # than torch.nonzero on the 2-core EPYC, and z ≠ 0 in numpy 10x faster than in torch.
        self._bounds = np.arange(0, (batch + 1) * h, h)  # row b starts at flat index b·H
        self._col = np.tile(np.arange(h, dtype=np.int64), batch)  # column of each flat index

    def __call__(self, z: Tensor, keep: list | None = None) -> Tensor:
        """z @ table. With ``keep``, also appends z's nonzeros to it, for the training pass's Zᵀ G:
        :class:`NativeRows` (native kernels) or (flat indices into z, values) (numpy), or None where
        the dense product ran."""
        if self.native:
            return self._native(z, keep)
        zn = _flat_numpy(z)
        mask = zn != 0
        if np.count_nonzero(mask) > self.max_nonzeros:
            if keep is not None:
                keep.append(None)
            self.total += float(zn.sum(dtype=np.float64))
            return z @ self.table
        flat = np.flatnonzero(mask)
        values = zn[flat]
        rows = NonzeroRows(
            torch.from_numpy(self._col[flat]),
            torch.from_numpy(np.searchsorted(flat, self._bounds)),
            torch.from_numpy(values),
        )
        if keep is not None:
            keep.append((flat, rows.values))
        binary = bool((values == 1).all())  # in numpy: 4x cheaper than the same test in torch here
        self.total += float(flat.size) if binary else float(values.sum(dtype=np.float64))
        return sparse_matmul(rows, self.table, binary)

    def _native(self, z: Tensor, keep: list | None) -> Tensor:
        # The kernel trusts the shapes and dtype it is given: check them here, not in C++.
        if z.shape != (self.batch, self.hidden) or z.dtype != self._padded.dtype:
            raise ValueError(
                f"SparseProduct for ({self.batch}, {self.hidden}) {self.table.dtype} got z of shape "
                f"{tuple(z.shape)}, {z.dtype}"
            )
        if not z.is_contiguous():
            z = z.contiguous()
        cap = self.max_nonzeros
        if keep is None:  # nothing kept: every such step reuses one scratch buffer
            if self._scratch is None:
                self._scratch = (torch.empty(cap, dtype=torch.int32), self._padded.new_empty(cap))
            (cols, values), pos, offsets = self._scratch, 0, self._offsets
        else:
            if self._pos + cap > self._capacity:  # the steps kept so far hold on to the old buffers
                self._new_buffers(_ARENA_STEPS * cap)
            cols, values, pos = self._cols, self._values, self._pos
            offsets = torch.empty(self.batch + 1, dtype=torch.int64)
        out = z.new_empty(self.batch, self.table.shape[1])
        self.kernel(
            native_sparse.GATHER, z, self._padded, out, cols, values, offsets, self._meta,
            self.batch, self.hidden, self.table.shape[1], self._padded.stride(0), pos, cap,
        )  # fmt: skip
        count = int(self._meta_np[0])
        if count > cap:
            if keep is not None:
                keep.append(None)
            self.total += float(_flat_numpy(z).sum(dtype=np.float64))
            return z @ self.table
        self.total += float(self._meta_np[1])
        if keep is not None:
            keep.append(NativeRows(self._cols, self._values, offsets))
            self._pos += count
        return out

    def _new_buffers(self, size: int) -> None:
        self._cols = torch.empty(size, dtype=torch.int32)
        self._values = self.table.new_empty(size)
        self._pos, self._capacity = 0, size


def input_drives(inputs: Tensor, w_in: Tensor, block: int = 16) -> Iterator[Tensor]:
    """W_in i_t (B × H) for t = 0 … T−1 of ``inputs`` (T, B, I): ``block`` steps per GEMM into one
    reused buffer, each yielded as a view that the next block overwrites (use it before asking for
    the next). Precomputing all T at once (the fast path) writes T·B·H values to fresh memory,
    which cost more than the GEMMs on the 2-core EPYC."""
    steps, batch, _ = inputs.shape
    buffer = inputs.new_empty(min(block, steps), batch, w_in.shape[0])
    for t0 in range(0, steps, block):
        n = min(block, steps - t0)
        torch.matmul(inputs[t0 : t0 + n], w_in.T, out=buffer[:n])
        yield from buffer[:n].unbind(0)


def _flat_numpy(z: Tensor) -> np.ndarray:
    return z.detach().contiguous().numpy().reshape(-1)


def nonzero_rows(z: Tensor) -> NonzeroRows:
    """The nonzero entries of z (B, H), row by row. NaN counts as nonzero, so it reaches a product."""
    b, h = z.shape
    zn = _flat_numpy(z)
    flat = np.flatnonzero(zn != 0)
    return NonzeroRows(
        torch.from_numpy(flat % h),
        torch.from_numpy(np.searchsorted(flat, np.arange(0, (b + 1) * h, h))),
        torch.from_numpy(zn[flat]),
    )


def sparse_matmul(rows: NonzeroRows, table: Tensor, binary: bool | None = None) -> Tensor:
    """z @ table for the z that ``rows`` describes; ``table`` is (H, N). Returns (B, N).
    ``binary``: whether every nonzero is 1 (None: look)."""
    return F.embedding_bag(
        rows.cols,
        table,
        rows.offsets,
        mode="sum",
        per_sample_weights=_weights(rows.values, table.dtype, binary),
        include_last_offset=True,
    )


def _weights(values: Tensor, dtype: torch.dtype, binary: bool | None = None) -> Tensor | None:
    # Spikes are 1: a plain sum of the rows is the same product and skips the multiply-add's
    # weight stream (10 % of an embedding bag on the 2-core EPYC); graded or NaN values multiply.
    if binary is None:
        binary = bool(values.numel()) and bool((values == 1).all())
    return None if binary else values.to(dtype)


# --------------------------------------------------------------------------- training
#
# The products with z_t under autograd (gradscape.models.sparse_sequence): for A = [W_recᵀ | W_outᵀ]
# and G the stacked gradients of the products, ∂L/∂A = Zᵀ G is taken from Z's nonzeros only.


def sparse_training_possible(*tensors: Tensor) -> bool:
    """True when :func:`~gradscape.models.sparse_sequence.sparse_sequence` may run for these
    tensors: all on the CPU, of a float dtype numpy can view, and not seen by a ``torch.func``
    transform (``vmap``, ``jvp``, ``grad``…), forward-mode AD or a ``torch.compile`` trace;
    reverse-mode autograd may (that is the point)."""
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
#: back to the dense one; with the native kernels that step's share of the weight gradient Zᵀ G is
#: then one GEMM too. Measured end to end for the one-node training pass with the native kernels
#: (``benchmarks/bench_train.py --break-even``: BRF, B 256, H 256, T 784, 1 thread, 2-core EPYC,
#: CPU s per forward + backward, the input scaled to move the mean spike density): every product
#: from the nonzeros against every product dense 0.97 vs 1.52 s at 7.9 %, 1.15 vs 1.59 at 19.1 %,
#: 1.36 vs 1.59 at 26.1 %, 1.57 vs 1.85 at 29.4 %, 1.71 vs 1.64 at 32.9 %: they cross at about 31 %.
#: (With the numpy products they crossed at about 20 %: 1.71 vs 1.84 s at 19.1 %, 1.92 vs 1.84 at
#: 22.6 %; where the native kernels cannot be built, steps between 20 and 30 % run somewhat slower
#: than dense ones.) Module-level so tests can force either branch (read when a pass starts).
TRAINING_MAX_DENSITY = 0.3
#: The numpy path's cap for the deferred Zᵀ G of a chunk of steps (one product per 16 steps), about
#: 20 % as measured above for that path; the native path goes step by step and uses the cap above.
WEIGHT_GRAD_MAX_DENSITY = 0.2


def transposed_product(z: Tensor, g: Tensor, max_density: float = 0.3) -> Tensor:
    """zᵀ g for z (M × H) and g (M × N) from z's nonzeros (:func:`nonzero_transposed_product`), or
    the dense product where more than ``max_density`` of z is nonzero. NaN counts as nonzero."""
    m, h = z.shape
    zn = z.detach().contiguous().numpy().reshape(-1)
    flat = np.flatnonzero(zn != 0)
    if flat.size > max_density * m * h:
        return z.detach().t() @ g
    return _column_bags(flat, torch.from_numpy(zn[flat]), h, g)


def add_transposed_product(out: Tensor, rows: NativeRows, g: Tensor) -> None:
    """out += zᵀ g for the z (B × H) whose nonzeros the native gather found (``rows``) and g (B × N),
    in place; ``out`` (H × N) and g contiguous, of the kernels' dtype."""
    kernel = native_sparse.build(out.dtype)
    b, (h, n) = rows.offsets.shape[0] - 1, out.shape
    # The kernel trusts what it is given: a wrong shape or layout would read or write out of bounds.
    if (
        kernel is None
        or g.shape != (b, n)
        or g.dtype != out.dtype
        or rows.values.dtype != out.dtype
        or not (g.is_contiguous() and out.is_contiguous())
    ):
        raise ValueError(
            f"add_transposed_product: out {tuple(out.shape)} {out.dtype}, g {tuple(g.shape)} {g.dtype} "
            f"(contiguous: {out.is_contiguous()}, {g.is_contiguous()}) do not fit nonzeros of {b} rows "
            f"of {rows.values.dtype} from the native kernels"
        )
    kernel(
        native_sparse.SCATTER, g, out, out, rows.cols, rows.values, rows.offsets, _NO_META, b, h, n, n, 0, 0
    )


_NO_META = torch.zeros(2, dtype=torch.float64)  # the scatter reports nothing


def nonzero_transposed_product(flat: np.ndarray, values: Tensor, h: int, g: Tensor) -> Tensor:
    """zᵀ g for the z (M × H) whose nonzeros are ``values`` at ``flat`` (indices into z flattened
    row-major, increasing) and g (M × N): row j of the result sums z_{m,j} g_m over the nonzeros in
    column j (an embedding bag over the rows of g, one bag per column of z).

    The bags are the nonzeros in column order, by a stable counting sort of their column indices
    (a transposed copy of z cost several times more on the 2-core EPYC, M = 4096, H = 256)."""
    return _column_bags(flat, values, h, g)


def _column_bags(flat: np.ndarray, values: Tensor, h: int, g: Tensor) -> Tensor:
    if h & (h - 1) == 0:  # a power of two: shift and mask, 5x faster than numpy's divmod
        shift = h.bit_length() - 1
        rows, cols = flat >> shift, flat & (h - 1)
    else:
        rows, cols = np.divmod(flat, h)
    order = np.argsort(cols.astype(np.int16 if h <= 32767 else np.int64), kind="stable")
    offsets = np.zeros(h + 1, dtype=np.int64)
    np.cumsum(np.bincount(cols, minlength=h), out=offsets[1:])
    weights = _weights(values, g.dtype)
    return F.embedding_bag(
        torch.from_numpy(rows[order]),
        g,
        torch.from_numpy(offsets),
        mode="sum",
        per_sample_weights=None if weights is None else weights[torch.from_numpy(order)],
        include_last_offset=True,
    )
