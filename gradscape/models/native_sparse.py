"""Native CPU kernels for the spike-sparse products: find a step's nonzeros and sum their rows in one loop.

For a (B, H) output z of a spiking layer and the product table A (H × N), the forward product and the
weight gradient's share of one step are

    (z A)_{b,:} = Σ_{j : z_{b,j} ≠ 0} z_{b,j} A_{j,:}          (gather: one row sum per sample b)
    Ā_{j,:}    += Σ_{b : z_{b,j} ≠ 0} z_{b,j} G_{b,:}          (scatter: G is the step's B × N cotangent)

:mod:`gradscape.models.sparse` computes them with numpy (locate the nonzeros) and an embedding bag
(sum the rows). Both are general-purpose and pay for it per step: numpy's ``flatnonzero`` branches on
every entry (mispredicted at random 8 % spikes) and the bag reads its index and offset arrays as
separate passes. These kernels do each product as one loop over the rows of z: a vector compare
finds the nonzeros of 8 (float64: 4) entries at a time and a table lookup writes their column
indices without a branch; the row sum keeps a 64-float block of (z A)_{b,:} in four 512-bit
registers while it adds the rows of A (padded to whole vectors, :func:`padded`). The scatter first
puts the step's nonzeros in column order (a counting sort), so row j of Ā is one register-blocked
sum over the rows of G, and threads own whole rows of Ā. The column indices, values and row offsets
the gather finds go into caller-owned buffers, so the training pass reuses them for the scatter
(no second search).

Measured on the 2-core EPYC (AVX-512, 2.6 GHz; B 256, H 256, N 266, random 8 % spikes; µs per step,
the range of three runs of ``benchmarks/bench_sparse_kernels.py`` with 1 thread and two with 2, on
a shared machine): gather 89–105 (2 threads: 63–85) against numpy's search + the embedding bag
230–281 (226–248) and the dense product 422–460 (254–294); scatter 96–129 (77–87) against the dense
zᵀ G 416–468 (244–271). ``benchmarks/bench_train.py`` compares whole training passes with and
without them (its ``sparse-numpy`` variant).

Values are those of the dense product up to summation order (ascending j), as for the numpy path;
NaN counts as nonzero and is multiplied in; only 0·∞ terms of a non-finite A are skipped.

The kernels (``native_sparse.cpp`` beside this module) are C++, compiled and cached by Inductor's
code cache (the same compiler, flags and cache as the neuron's step kernels,
:mod:`gradscape.models.step_kernels`), one module per dtype (float32, float64), built on first use
(part of the cold start ``benchmarks/bench_train.py`` reports; later processes load them from
Inductor's on-disk cache, keyed by source and flags). They parallelise over torch's intra-op
threads (OpenMP) for large steps. The code cache is a private torch API: where
it is missing or the build fails, :func:`kernels` returns None (a warning says why) and the numpy
path runs; ``GRADSCAPE_NATIVE_SPARSE=0`` turns them off.
"""

from __future__ import annotations

import functools
import importlib
import os
import warnings
from collections.abc import Callable
from importlib import resources

import torch
from torch import Tensor

__all__ = ["build", "kernels", "enabled", "padded", "GATHER", "SCATTER", "PAD_BYTES"]

#: the ``op`` argument of a kernel module's entry point
GATHER, SCATTER = 0, 1
#: bytes to which the gather's table rows are padded (one 512-bit vector: the row sums read whole ones)
PAD_BYTES = 64

_CTYPES = {torch.float32: "float", torch.float64: "double"}
_SOURCE = "native_sparse.cpp"  # beside this module

# Argument order of the entry point kernel() in native_sparse.cpp (pointers are passed as tensors).
_ARGTYPES = [
    "int64_t",  # op
    "const scalar_t*",  # z (gather) or G (scatter)
    "scalar_t*",  # A (gather, read) or Ā (scatter, added to)
    "scalar_t*",  # out (B × N, gather)
    "int32_t*",  # column indices
    "scalar_t*",  # values
    "int64_t*",  # B + 1 row offsets into the two above
    "double*",  # meta: [number of nonzeros, Σ values] (gather)
    "int64_t",  # B
    "int64_t",  # H
    "int64_t",  # N
    "int64_t",  # ld: the row stride of A (gather; N padded to PAD_BYTES)
    "int64_t",  # pos: where this step's nonzeros start in the index and value buffers
    "int64_t",  # max_nnz: more nonzeros than this and the gather writes nothing but meta[0]
]


def padded(table: Tensor) -> Tensor:
    """A copy of ``table`` (H × N) whose rows are padded with zeros to whole :data:`PAD_BYTES`: the
    gather's A (its row stride is ``padded(A).stride(0)``; the padding is never summed into a result)."""
    lanes = PAD_BYTES // table.element_size()
    n = table.shape[1]
    out = table.new_zeros(table.shape[0], -(-n // lanes) * lanes)
    out[:, :n] = table
    return out


def enabled() -> bool:
    """False where ``GRADSCAPE_NATIVE_SPARSE=0`` is set in the environment."""
    return os.environ.get("GRADSCAPE_NATIVE_SPARSE", "1") != "0"


def kernels(dtype: torch.dtype) -> Callable | None:
    """The compiled entry point for ``dtype`` (float32 or float64), or None: another dtype, turned
    off (:func:`enabled`), or no build possible here (warned once)."""
    if dtype not in _CTYPES or not enabled():
        return None
    return build(dtype)


@functools.cache
def build(dtype: torch.dtype) -> Callable | None:
    """The entry point for float32 or float64, built once per process whatever :func:`enabled`
    says (for data the kernels already produced), or None where it cannot be built."""
    ctype = _CTYPES[dtype]
    source = (
        f"#define GRADSCAPE_SCALAR {ctype}\n" + resources.files(__package__).joinpath(_SOURCE).read_text()
    )
    argtypes = [a.replace("scalar_t", ctype) for a in _ARGTYPES]
    try:
        codecache = importlib.import_module("torch._inductor.codecache")
        return codecache.CppPythonBindingsCodeCache.load_pybinding(argtypes, source)
    except Exception as err:  # no compiler, no Inductor, or a torch without this private API
        warnings.warn(
            f"gradscape: the native spike-sparse kernels could not be built ({type(err).__name__}: "
            f"{str(err)[:200]}); the numpy path runs instead (same values, slower).",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
