"""Simulation speed: the plain eager loop versus the fast path, forward + backward per batch.

For each case (BRF at S-MNIST shape B 256, T 784, H 256; BRF at ECG shape B 16, T 1300, H 36; ALIF
at both) it times, side by side and interleaved (so machine noise hits both alike),

* eager: ``model(x, fast=False)``, the loop of :func:`gradscape.models.network.network_step`;
* fast:  ``model(x, fast=True, step_fn=make_step(neuron))``: precomputed input projection, readout
  after the loop, and the compiled hidden update of :mod:`gradscape.models.fastpath`;

each followed by ``loss.backward()`` (loss = NLL of the last readout, label-last). It reports the
best and median wall time per batch and the ratio eager / fast of the best times, also in
process CPU time (on a machine shared with other jobs wall time is noise; CPU time less so).
Equivalence: loss and every parameter gradient at short T in float64 (max abs difference, must be
< 1e-5), and at full T in float32 the number of spikes that differ between the two paths
(floating-point sums in another order can flip a spike sitting on the threshold, after which the
trajectories part).

    python benchmarks/bench_sim.py                      # full shapes (minutes on 2 CPU cores)
    python benchmarks/bench_sim.py --T-scale 0.1 --B-scale 0.25 --repeats 2   # quick look
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gradscape.models import RecurrentNetwork
from gradscape.models.device import resolve_device
from gradscape.models.fastpath import make_step


@dataclass(frozen=True)
class Case:
    name: str
    neuron: str
    inputs: int
    hidden: int
    classes: int
    batch: int
    steps: int
    init: dict
    #: input scale: lets the untrained network spike (a few % of neuron-steps), so that the
    #: spike-flip count means something (timing does not depend on it: every op is dense).
    gain: float = 1.0


CASES = (
    Case("brf  S-MNIST", "brf", 1, 256, 10, 256, 784, {"omega": "U(15,50)", "b_offset": "U(0.1,1)"}, 1000.0),
    Case("brf  ECG", "brf", 4, 36, 6, 16, 1300, {"omega": "U(3,5)", "b_offset": "U(0.1,1)"}, 100.0),
    Case("alif S-MNIST", "alif", 1, 256, 10, 256, 784, {}),
    Case("alif ECG", "alif", 4, 36, 6, 16, 1300, {"tau_mem": "N(20,0.5)", "tau_adp": "N(7,0.2)"}),
)


def _data(case: Case, batch: int, steps: int, dtype: torch.dtype, device: torch.device):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(steps, batch, case.inputs, generator=g, dtype=dtype)
    if case.inputs > 1:  # ECG-like: a few active channels
        x = (x > 0.7).to(dtype)
    y = torch.randint(case.classes, (batch,), generator=g)
    return (x * case.gain).to(device), y.to(device)


def _model(case: Case, dtype: torch.dtype, device: torch.device) -> RecurrentNetwork:
    net = RecurrentNetwork(case.neuron, case.inputs, case.hidden, case.classes, init=case.init, seed=0)
    return net.to(dtype=dtype, device=device)


def _fwd_bwd(net: RecurrentNetwork, x, y, **kw) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
    net.zero_grad(set_to_none=True)
    out = net(x, **kw)
    loss = F.cross_entropy(out.outputs[-1], y)
    loss.backward()
    return loss.detach(), [p.grad.detach().clone() for p in net.parameters()], out.spikes.detach()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def equivalence(case: Case, steps: int, batch: int, device: torch.device) -> float:
    """Max abs difference of loss and gradients, eager vs fast, float64, ``steps`` steps."""
    net = _model(case, torch.float64, device)
    x, y = _data(case, batch, steps, torch.float64, device)
    step_fn = make_step(net.neuron)
    l0, g0, _ = _fwd_bwd(net, x, y, fast=False)
    l1, g1, _ = _fwd_bwd(net, x, y, fast=True, step_fn=step_fn)
    diffs = [float((l0 - l1).abs())] + [float((a - b).abs().max()) for a, b in zip(g0, g1, strict=True)]
    return max(diffs)


def timing(case: Case, batch: int, steps: int, repeats: int, device: torch.device) -> dict:
    net = _model(case, torch.float32, device)
    x, y = _data(case, batch, steps, torch.float32, device)
    variants = {"eager": {"fast": False}, "fast": {"fast": True, "step_fn": make_step(net.neuron)}}
    t0 = time.perf_counter()
    spikes = {k: _fwd_bwd(net, x, y, **kw)[2] for k, kw in variants.items()}  # warm-up, compiles
    warm = time.perf_counter() - t0
    times: dict[str, list[float]] = {k: [] for k in variants}
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(repeats):
        for k, kw in variants.items():
            _sync(device)
            t, c = time.perf_counter(), time.process_time()
            _fwd_bwd(net, x, y, **kw)
            _sync(device)
            times[k].append(time.perf_counter() - t)
            cpu[k].append(time.process_time() - c)
    flips = int((spikes["eager"] != spikes["fast"]).sum())
    return {
        "times": times,
        "cpu": cpu,
        "warm": warm,
        "flips": flips,
        "spikes": int(spikes["eager"].sum()),
        "numel": spikes["eager"].numel(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--T-scale", type=float, default=1.0, help="multiply every case's T (quick runs)")
    ap.add_argument("--B-scale", type=float, default=1.0, help="multiply every case's batch size")
    ap.add_argument("--repeats", type=int, default=3, help="timed fwd+bwd passes per variant")
    ap.add_argument("--equiv-T", type=int, default=50, help="T of the float64 equivalence check")
    ap.add_argument("--cases", default="all", help="comma-separated substrings of case names")
    ap.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: default)")
    ap.add_argument(
        "--flush-denormal",
        action="store_true",
        help="torch.set_flush_denormal(True): float32 denormals (e.g. the surrogate's Gaussian tails "
        "far from threshold) can make CPU kernels many times slower",
    )
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.flush_denormal:
        torch.set_flush_denormal(True)
    device = resolve_device(args.device)
    cases = [c for c in CASES if args.cases == "all" or any(s in c.name for s in args.cases.split(","))]
    print(
        f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, "
        f"flush denormals {args.flush_denormal}"
    )
    header = (
        f"{'case':<13} {'B':>4} {'T':>5} {'H':>4} | {'eager s/batch':>16} | {'fast s/batch':>16} | "
        f"{'ratio':>5} | {'cpu ratio':>9} | {'equiv f64':>9} | {'spike flips (f32)':>22} | compile+warm s"
    )
    print(header)
    print("-" * len(header))
    for case in cases:
        batch = max(1, round(case.batch * args.B_scale))
        steps = max(2, round(case.steps * args.T_scale))
        eq = equivalence(case, min(args.equiv_T, steps), min(batch, 8), device)
        r = timing(case, batch, steps, args.repeats, device)
        te, tf = r["times"]["eager"], r["times"]["fast"]
        cpu_ratio = min(r["cpu"]["eager"]) / min(r["cpu"]["fast"])
        print(
            f"{case.name:<13} {batch:>4} {steps:>5} {case.hidden:>4} | "
            f"{min(te):7.3f} (med {statistics.median(te):5.2f}) | "
            f"{min(tf):7.3f} (med {statistics.median(tf):5.2f}) | "
            f"{min(te) / min(tf):5.2f} | {cpu_ratio:9.2f} | "
            f"{eq:9.1e} | {r['flips']:>7} of {r['spikes']:>7} spk | {r['warm']:.0f}",
            flush=True,
        )
        if eq > 1e-5:
            print(f"  !! {case.name}: eager and fast differ by {eq:.2e} > 1e-5 in float64")
    print(
        "ratio = best eager / best fast wall time per batch (forward + backward); cpu ratio = the same "
        "with process CPU time (steadier on a shared machine); equiv = max |Δ| of loss "
        "and gradients at short T, float64; spike flips = hidden spikes differing at full T, float32 "
        "(out of the eager run's spike count)."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
