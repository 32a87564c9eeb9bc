"""Landscape evaluation speed: naive loop vs loss-landscapes vs gradscape, on one model, data and grid.

Prints grid points per second of

  (a) a naive loop: copy θ* + αd + βe into a model copy, run its forward, one point at a time
      (``torch.no_grad()``; with the network's default forward, what a generic tool calls, and with
      its fast forward);
  (b) the ``loss-landscapes`` package (``random_plane``), when it is importable (timed once, after
      the interleaved rounds);
  (c) gradscape: :func:`gradscape.landscape.evaluate_surface` with the forward that
      :func:`gradscape.landscape.api.recurrent_forward` picks (at the S-MNIST shape on a CPU: the
      spike-sparse path, :mod:`gradscape.models.sparse`), and its sequential path;

plus gradscape's achieved matmul FLOP/s, counted as the dense products' 2·T·B·H·(I+H) + 2·T·B·H·C
per point (the spike-sparse path does fewer: its rate is "dense-equivalent" and can exceed the
machine's), as a fraction of this machine's dense float32 matmul throughput measured in the same run,
the spike rate, the sparse path's nonzero-operand FLOPs (2·nnz(z)·(H+C) per step), and the
spike-flip count between batched and sequential evaluation at the full T. Timing rounds are
interleaved and the best round is reported; the first round of (c) includes the one-time Inductor
compile of the neuron update, reported separately as ``first_round_extra_s``.

Default is the S-MNIST shape (BRF, H 256, T 784, 256 samples); ``--reduced`` shrinks T and the
number of points for a quick look. Example::

    python benchmarks/bench_landscape.py --points 16 --naive-points 4
    python benchmarks/bench_landscape.py --reduced
"""

from __future__ import annotations

import argparse
import copy
import json
import time

import numpy as np
import torch

from gradscape import landscape
from gradscape.landscape.evaluate import spike_flips
from gradscape.landscape.grid import Axis, Grid
from gradscape.models.network import RecurrentNetwork
from gradscape.models.objectives import sequence_loss


def dense_matmul_flops(device: torch.device, n: int = 2048, reps: int = 5) -> float:
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    a @ b
    best = float("inf")
    for _ in range(reps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def data(args: argparse.Namespace, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, str]:
    try:
        from gradscape.models.datasets import load_task

        split = load_task("smnist").train.subset(args.samples, 0)
        x = split.inputs[:, : args.steps].transpose(0, 1).contiguous().to(device)
        return x, split.targets.to(device), "S-MNIST (bundled), first %d steps" % args.steps
    except Exception as exc:  # pragma: no cover - data missing
        g = torch.Generator().manual_seed(0)
        x = torch.rand(args.steps, args.samples, 1, generator=g).to(device)
        y = torch.randint(0, 10, (args.samples,), generator=g).to(device)
        return x, y, f"random inputs ({type(exc).__name__})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="brf")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--steps", type=int, default=784)
    p.add_argument("--samples", type=int, default=256)
    p.add_argument("--points", type=int, default=4, help="grid points for gradscape (a square grid)")
    p.add_argument("--naive-points", type=int, default=2, help="grid points for the naive loop")
    p.add_argument("--chunk-size", type=int, default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--input-scale",
        type=float,
        default=2000.0,
        help="scale W_in of the untrained network so that it spikes (rate reported)",
    )
    p.add_argument("--rec-scale", type=float, default=5.0, help="scale W_rec of the untrained network")
    p.add_argument("--reduced", action="store_true", help="T 300 and fewer points: a quick look")
    p.add_argument("--skip-sequential", action="store_true")
    p.add_argument("--rounds", type=int, default=2, help="interleaved timing rounds (best is reported)")
    args = p.parse_args()
    if args.reduced:
        args.steps, args.points, args.naive_points = 300, 4, 2
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    x, y, source = data(args, device)
    I0 = x.shape[-1]
    net = RecurrentNetwork(args.model, I0, args.hidden, 10, seed=0)
    with torch.no_grad():
        net.hidden.weight[:, :I0].mul_(args.input_scale)
        net.hidden.weight[:, I0:].mul_(args.rec_scale)
    net = net.to(device).eval()
    T, B, I = x.shape
    H, C = args.hidden, 10
    flops_point = 2 * T * B * H * (I + H) + 2 * T * B * H * C
    side = int(np.ceil(np.sqrt(args.points)))
    grid = Grid((Axis(-1, 1, side), Axis(-1, 1, side)))
    dirs = landscape.random_directions(net, seed=0)
    pts = grid.points()
    with torch.no_grad():
        rate = float(net(x, fast=True).spikes.mean())
    report: dict = {
        "weights": f"untrained, W_in x{args.input_scale:g}, W_rec x{args.rec_scale:g} (so that it spikes)",
        "shape": {"model": args.model, "H": H, "T": T, "B": B, "I": I, "C": C},
        "data": source,
        "threads": torch.get_num_threads(),
        "device": str(device),
        "spikes_per_neuron_step": round(rate, 4),
        "matmul_flops_per_point": flops_point,
    }
    peak = dense_matmul_flops(device)
    report["dense_matmul_gflops"] = round(peak / 1e9, 2)

    # (a) naive loop: copy weights in, evaluate, one point at a time — with the model's default
    # forward (what a generic tool calls) and with its fast forward (a careful user).
    work = copy.deepcopy(net)
    theta = net.hidden.weight.detach()
    d, e = dirs[0]["hidden.weight"], dirs[1]["hidden.weight"]

    def naive(fast: bool) -> tuple[float, list[float]]:
        losses = []
        t = time.perf_counter()
        with torch.no_grad():
            for a, b in pts[: args.naive_points]:
                work.hidden.weight.copy_(theta + float(a) * d + float(b) * e)
                losses.append(float(sequence_loss(work(x, fast=fast).outputs, y, mode="last")))
        return (time.perf_counter() - t) / args.naive_points, losses

    # (c) gradscape, its default mode (vmap chunks when they pay; here one point at a time) and
    # sequential; the centre is evaluated too: counted.
    lf, af = landscape.recurrent_objective("last")
    forward_kwargs = landscape.api.recurrent_forward(net, batch=B)

    def gradscape(sequential: bool) -> tuple[float, object]:
        t = time.perf_counter()
        s = landscape.evaluate_surface(
            net,
            lf,
            dirs,
            grid,
            data=[(x, y, B)],
            accuracy_fn=af,
            model_kwargs=forward_kwargs,
            chunk_size=args.chunk_size,
            sequential=sequential,
            progress=False,
        )
        return (time.perf_counter() - t) / (grid.size + 1), s

    # Interleaved rounds, best per-point time of each method: this CPU is shared and noisy.
    times: dict[str, list[float]] = {
        k: [] for k in ("naive_default", "naive_fast", "gradscape", "sequential")
    }
    for _ in range(args.rounds):
        tt, default_losses = naive(False)
        times["naive_default"].append(tt)
        tt, naive_losses = naive(True)
        times["naive_fast"].append(tt)
        tt, surf = gradscape(False)
        times["gradscape"].append(tt)
        if not args.skip_sequential:
            times["sequential"].append(gradscape(True)[0])
    best = {k: min(v) for k, v in times.items() if v}
    pps = {k: 1.0 / v for k, v in best.items()}
    report["seconds_per_point_all_rounds"] = {k: [round(t, 3) for t in v] for k, v in times.items() if v}
    report["points_per_s"] = {k: round(v, 4) for k, v in pps.items()}
    report["gradscape_chunk_size"] = surf.meta["config"]["chunk_size"]
    report["speedup_gradscape_vs_naive_default"] = round(pps["gradscape"] / pps["naive_default"], 2)
    report["speedup_gradscape_vs_naive_fast"] = round(pps["gradscape"] / pps["naive_fast"], 2)
    if "sequential" in pps:
        report["speedup_sequential_vs_naive_fast"] = round(pps["sequential"] / pps["naive_fast"], 2)
    fastest = max(pps.items(), key=lambda kv: kv[1])
    report["fastest"] = fastest[0]
    report["gradscape_dense_equivalent_gflops"] = round(pps["gradscape"] * flops_point / 1e9, 2)
    report["fraction_of_dense_matmul"] = round(pps["gradscape"] * flops_point / peak, 3)
    if forward_kwargs.get("sparse"):
        sparse_flops = 2 * rate * T * B * H * (H + C) + 2 * T * B * H * I
        report["gradscape_sparse_flops_per_point"] = int(sparse_flops)
        report["gradscape_sparse_gflops"] = round(pps["gradscape"] * sparse_flops / 1e9, 2)
    if args.rounds > 1:
        first = times["gradscape"][0] - min(times["gradscape"][1:])
        report["first_round_extra_s"] = round(first * (grid.size + 1), 2)
    k = min(len(naive_losses), grid.size)
    ref = naive_losses if forward_kwargs.get("fast") else default_losses
    # Other summation orders (cat + full W, sparse sums): at full T some spikes flip.
    report["max_abs_loss_diff_vs_naive"] = float(
        np.max(np.abs(np.array(ref[:k]) - surf.loss.reshape(-1)[:k]))
    )
    report["max_abs_loss_diff_naive_default_vs_fast"] = float(
        np.max(np.abs(np.array(default_losses) - np.array(naive_losses)))
    )

    # (b) loss-landscapes, when installed: its random_plane over the same model and data (it draws
    # its own directions over all parameters and copies weights into the model point by point).
    try:
        import loss_landscapes
        import loss_landscapes.metrics
    except ImportError:
        report["loss_landscapes"] = "not installed (pip install loss-landscapes); skipped"
    else:

        class _Outputs(torch.nn.Module):
            def __init__(self, inner: torch.nn.Module) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, inputs: torch.Tensor) -> torch.Tensor:
                return self.inner(inputs).outputs

        metric = loss_landscapes.metrics.Loss(lambda o, t: sequence_loss(o, t, mode="last"), x, y)
        side_ll = max(2, int(np.ceil(np.sqrt(args.naive_points))))
        t = time.perf_counter()
        with torch.no_grad():
            loss_landscapes.random_plane(
                _Outputs(copy.deepcopy(net)), metric, distance=1, steps=side_ll, deepcopy_model=True
            )
        per_point = (time.perf_counter() - t) / side_ll**2
        report["loss_landscapes"] = {
            "points": side_ll**2,
            "seconds_per_point": round(per_point, 3),
            "points_per_s": round(1 / per_point, 4),
            "gradscape_speedup": round(pps["gradscape"] * per_point, 2),
        }
    fl = spike_flips(net, dirs, pts[:2], x, model_kwargs=forward_kwargs)
    report["spike_flips_batched_vs_sequential"] = fl
    report["gradscape_forward"] = forward_kwargs
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
