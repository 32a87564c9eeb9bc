"""Flush subnormal floats to zero on the calling thread while a spike-sparse pass runs (x86 CPUs).

A float32 below the smallest normal number 2⁻¹²⁶ ≈ 1.18 × 10⁻³⁸ is *subnormal* (denormal). x86
cores compute with such an operand or result through a microcode assist that costs tens to
hundreds of cycles, and one subnormal lane slows the whole 16-lane AVX-512 instruction. Trained
spiking networks produce them routinely: a BRF neuron whose ω has decayed to about zero (the
released S-MNIST model has ω₀ = 8.8 × 10⁻⁴⁰, itself subnormal) drives its v into that range, and
so one column of every row of the state and of its cotangent v̄ is subnormal. Measured on the
2-core Xeon (``bundled:smnist-brf``, B 256, T 784, 1 thread, both settings side by side in one
process): the spike-sparse training pass's step VJP kernel took 500 ms per forward + backward with
subnormals and 258 ms with them flushed; the whole pass 1.67 → 1.40 s. The eager loop gains nothing
from it (3.91 vs 4.00 s); ``benchmarks/bench_train.py`` went from 2.38× to 2.83× eager.

:func:`denormals_flushed` sets the FTZ/DAZ bits of the calling thread's MXCSR
(:func:`torch.set_flush_denormal`) for the duration of a block and restores them after, the way
TensorFlow runs every CPU kernel. Results change only where a value would be subnormal: it becomes
0, an absolute change below 1.2 × 10⁻³⁸ in float32 (2.2 × 10⁻³⁰⁸ in float64), far under the rounding
of any normal value the pass computes. torch offers no getter for the mode, so whether it is
already on is found by computing (2⁻¹²⁶ · ½ is 0 only when results are flushed); where it is, or
where the CPU has no such mode, the block runs unchanged.

Only the calling thread is switched: torch's other intra-op threads keep their mode (with 2
threads they compute part of each kernel with subnormals), since no public API runs code on them.
``GRADSCAPE_FLUSH_DENORMALS=0`` in the environment turns this off (bit-for-bit the eager loop's
arithmetic for subnormal values too).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["denormals_flushed", "flushing_denormals"]

_SMALLEST_NORMAL = torch.finfo(torch.float32).tiny


def flushing_denormals() -> bool:
    """True when this thread flushes subnormal results to zero (a one-element product runs here,
    on the calling thread, not on torch's intra-op pool)."""
    return bool(torch.tensor(_SMALLEST_NORMAL, dtype=torch.float32).mul_(0.5) == 0)


@contextmanager
def denormals_flushed() -> Iterator[bool]:
    """Run the block with subnormals flushed to zero on this thread (module docstring); yields
    whether this block switched the mode on (False: already on, unsupported, or turned off)."""
    if os.environ.get("GRADSCAPE_FLUSH_DENORMALS", "1") == "0" or flushing_denormals():
        yield False
        return
    if not torch.set_flush_denormal(True):  # no FTZ/DAZ on this CPU
        yield False
        return
    try:
        yield True
    finally:
        torch.set_flush_denormal(False)
