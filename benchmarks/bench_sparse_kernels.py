"""One step's spike-sparse products, per kernel: native gather and scatter vs numpy + embedding bag vs dense.

At S-MNIST shape (B 256, H 256, N = H + 10: the table A = [W_recᵀ | W_outᵀ]) with random spikes of
``--density`` it times, interleaved and side by side (best of ``--repeats`` passes over ``--steps``
different z):

* ``gather``:  z ↦ z A by the native kernel (:mod:`gradscape.models.native_sparse`), through
  :class:`~gradscape.models.sparse.SparseProduct` (its Python overhead included);
* ``numpy``:   the same product by numpy's nonzero search and an embedding bag (the fallback);
* ``dense``:   ``z @ A``;
* ``scatter``: Ā += zᵀ G from the gather's nonzeros (:func:`~gradscape.models.sparse.add_transposed_product`);
* ``zT G``:    the dense Ā += zᵀ G.

Values are checked against the dense products before timing (float32, max |Δ| printed).

    python benchmarks/bench_sparse_kernels.py --threads 1,2
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import torch

from gradscape.models.sparse import SparseProduct, add_transposed_product


def _best(fn: Callable[[int], object], steps: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        for i in range(steps):
            fn(i)
        best = min(best, (time.perf_counter() - t) / steps)
    return best * 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--outputs", type=int, default=10)
    ap.add_argument("--density", type=float, default=0.08)
    ap.add_argument("--steps", type=int, default=64, help="different z per timed pass")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    b, h = args.batch, args.hidden
    n = h + args.outputs
    gen = torch.Generator().manual_seed(args.seed)
    table = torch.randn(h, n, generator=gen)
    zs = [(torch.rand(b, h, generator=gen) < args.density).float() for _ in range(args.steps)]
    g = torch.randn(b, n, generator=gen)
    native = SparseProduct(table, b, max_density=1.0)
    if not native.native:
        raise SystemExit("the native kernels did not build here (see the warning above)")
    numpy = SparseProduct(table, b, max_density=1.0, native=False)
    kept: list = []
    for z in zs:
        native(z, kept)
    d_table = torch.zeros(h, n)
    err = max(float((native(z) - z @ table).abs().max()) for z in zs[:4])
    add_transposed_product(d_table, kept[0], g)
    err_t = float((d_table - zs[0].T @ g).abs().max())
    print(
        f"torch {torch.__version__}; B {b}, H {h}, N {n}, spike density {args.density:.0%}; "
        f"max |Δ| vs dense: gather {err:.1e}, scatter {err_t:.1e}; load average {os.getloadavg()[0]:.2f}"
    )
    cases: dict[str, Callable[[int], object]] = {
        "gather": lambda i: native(zs[i]),
        "numpy": lambda i: numpy(zs[i]),
        "dense": lambda i: zs[i] @ table,
        "scatter": lambda i: add_transposed_product(d_table, kept[i], g),
        "zT G": lambda i: d_table.addmm_(zs[i].T, g),
    }
    print(f"  {'threads':>7} " + " ".join(f"{k:>8}" for k in cases) + "   (µs per step, best of repeats)")
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        res = dict.fromkeys(cases, float("inf"))
        for _ in range(2):  # interleaved rounds: noise hits every case alike
            for k, fn in cases.items():
                res[k] = min(res[k], _best(fn, args.steps, args.repeats))
        print(
            f"  {threads:>7} " + " ".join(f"{res[k]:8.1f}" for k in cases) + f"   gather vs numpy "
            f"{res['numpy'] / res['gather']:.2f}x, vs dense {res['dense'] / res['gather']:.2f}x; "
            f"scatter vs dense {res['zT G'] / res['scatter']:.2f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
