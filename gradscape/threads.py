"""How many torch threads a command uses when ``--threads`` is not given: the cores no other process
is running on when it starts.

Torch's default is one intra-op thread per physical core. When another process keeps a core busy,
the thread that lands there runs at a fraction of its speed and every parallel region waits for it
(OpenMP threads spin while they wait): measured on the 2-core EPYC with one core kept busy, an
S-MNIST training step (BRF, B 256, H 256) took 3.0 s with two threads against 1.0 s with one (idle:
0.68 s and 1.0 s), and ``gradscape evaluate`` of 2,048 sequences 14.9 s with two against 9.2 s
with one (idle 9.0 and 9.4 s). So the default is torch's count minus the processes running
elsewhere now: Linux's ``/proc/loadavg`` counts the runnable tasks at this instant (the 1-minute
load average would lag a job that just started), this process's own thread among them.
"""

from __future__ import annotations

import torch

__all__ = ["INFERENCE_THREADS", "default_threads", "apply_threads", "runnable_elsewhere"]


def runnable_elsewhere(path: str = "/proc/loadavg") -> int:
    """Tasks runnable right now other than this one (0 where ``/proc/loadavg`` is absent)."""
    try:
        with open(path) as f:
            running = int(f.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return 0
    return max(0, running - 1)


def default_threads(cores: int | None = None) -> int:
    """Torch's thread count (or ``cores``) less the tasks running elsewhere, at least 1."""
    cores = torch.get_num_threads() if cores is None else cores
    return max(1, cores - runnable_elsewhere())


#: The thread count inference commands (evaluate, landscape) prefer on a CPU. Their large-step path
#: (spike-sparse products and one step kernel per step) gains little from a second thread, and a
#: second thread is what falls off the cliff when another process takes a core mid-run (above).
#: Measured on the 2-core EPYC with the numpy products: ``evaluate`` of the 10,000 S-MNIST test
#: sequences 10.1 s with one thread, 12.6 s with two, a landscape point 0.166 s and 0.170 s; with the
#: native kernels (:mod:`gradscape.models.native_sparse`) 6.6 s and 5.9 s, in a later run 7.4 s and
#: 5.9 s (``benchmarks/bench_train.py --threads 1,2 --eval-samples 10000``, idle): 1.1-1.25x from the
#: second core, not worth the cliff.
#: The small models run the plain loop, too small to split.
INFERENCE_THREADS = 1


def apply_threads(requested: int | None, prefer: int | None = None) -> int:
    """Set torch's intra-op threads to ``requested``, else to the smaller of ``prefer`` and
    :func:`default_threads`; returns the count."""
    n = requested or min(prefer or torch.get_num_threads(), default_threads())
    torch.set_num_threads(n)
    return n
