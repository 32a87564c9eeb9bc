"""Keep freed memory in the process heap (glibc), so a time loop's fresh tensors do not page-fault.

A training pass allocates a few (B × H) tensors per step and frees them in the backward; the next
pass allocates the same sizes again. glibc serves blocks above its mmap threshold (128 KiB, raised
dynamically) with fresh ``mmap`` pages and returns freed memory at the heap's top to the system
(``M_TRIM_THRESHOLD``), so each pass touches new pages: a page fault and a zeroed 4 KiB page per
4 KiB written. Measured on the 2-core EPYC (BRF, S-MNIST shape, 1 thread, ``benchmarks/bench_train.py``):
the forward's step kernel took 143 ms per pass with the defaults and 91 ms with freed memory kept.

:func:`keep_freed_memory` sets ``M_MMAP_THRESHOLD`` to 32 MiB (glibc's maximum; larger blocks
still come from ``mmap``) and ``M_TRIM_THRESHOLD`` to 1 GiB, once per process: memory a pass freed
stays with the process for the next one (as PyTorch's CUDA caching allocator keeps it), instead of
going back to the system. A no-op where the C library is not glibc, or when the environment sets
``GRADSCAPE_KEEP_FREED_MEMORY=0``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

__all__ = ["keep_freed_memory"]

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_done: bool | None = None


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory for reuse (module docstring); True if it was set."""
    global _done
    if _done is None:
        _done = False
        if os.environ.get("GRADSCAPE_KEEP_FREED_MEMORY", "1") != "0":
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                mallopt = libc.mallopt
            except (OSError, AttributeError):
                return False
            mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
            _done = bool(mallopt(_M_MMAP_THRESHOLD, 32 << 20)) and bool(mallopt(_M_TRIM_THRESHOLD, 1 << 30))
    return _done
