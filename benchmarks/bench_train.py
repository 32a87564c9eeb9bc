"""Training throughput at S-MNIST shape: eager vs fast vs spike-sparse vs a TorchScript baseline.

On the pinned weights of ``bundled:smnist-brf`` (BRF, H 256; about 8 % of the neurons spike per step
on MNIST test images) it times one forward + backward per batch (loss: cross-entropy of the last
readout, label-last, as the S-MNIST training does), side by side and interleaved so machine noise hits
every variant alike:

* ``eager``:  ``model(x, plan="eager")``, the plain step loop (the reference semantics);
* ``fast``:   ``ForwardPlan("fast", step_fn=make_step(neuron))``: W_in i_t for all t in one GEMM,
  the hidden update compiled by Inductor with its backward, the readout after the loop;
* ``sparse``: ``ForwardPlan("sparse", compiled=True)``, what ``model(x)`` takes by default here: the
  whole loop one autograd node (:mod:`gradscape.models.sparse_sequence`): W_rec z_t and W_out z_t
  from z_t's nonzeros (native kernels, :mod:`gradscape.models.native_sparse`), per step of the
  backward one GEMM and the step's compiled VJP kernel, the weight gradients from the same nonzeros;
* ``sparse-numpy`` (ask for it with ``--variants``): the same pass with the native product kernels
  turned off (``GRADSCAPE_NATIVE_SPARSE=0``: numpy finds the nonzeros, an embedding bag sums), the
  path those kernels replaced, side by side;
* ``script``: a baseline written here after the structure of the BRF authors' training code (one
  module, a per-step loop over ``cat([x_t, z_{t−1}]) @ Wᵀ``, a custom ``autograd.Function`` for the
  spike with the double-Gaussian surrogate, the module under ``torch.jit.script``). It runs the same
  weights and its loss and gradients are checked against the eager loop (float64, short T).

For each thread count (``--threads 1,2``) it reports best and median wall time per batch, the ratios
to eager and to script, peak resident memory of one forward + backward (VmHWM after resetting it, minus
the RSS before: what the pass itself added, each variant in a fresh process, since in one process the
later variants reuse the memory the first one freed) and the cold start (first call: compilation included).
``--busy`` starts a process that keeps one core busy for the whole run (a loaded-machine row).

Evaluate row: ``gradscape.models.evaluation.evaluate`` of ``--eval-samples`` S-MNIST test sequences
(default all 10,000, nothing extrapolated) with the path it took before issue 10 (the dense fast
path, no compile, spikes kept for the SOP count) and with its default now, interleaved
(``--eval-repeats`` calls each, best reported), with both accuracies; each path's cold start (its
first call, on one batch, compilation included) is reported apart, as for the training rows.

Exactness: float64, T = ``--equiv-T`` steps from pixel ``--equiv-offset`` (where the images have ink),
B 128 (large enough that the sparse path compiles its kernels): max |Δ| of the loss and every
gradient, fast, sparse and script vs eager.

    python benchmarks/bench_train.py                       # full shape (minutes per variant, 2 cores)
    python benchmarks/bench_train.py --batch 32 --steps 64 --repeats 2 --eval-batches 1   # quick check
"""

import argparse
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gradscape.models.checkpoints import open_checkpoint
from gradscape.models.datasets import load_task
from gradscape.models.fastpath import make_step
from gradscape.models.network import RecurrentNetwork
from gradscape.models.plan import ForwardPlan

# ----------------------------------------------------------------------------- TorchScript baseline


class _DoubleGaussianSpike(torch.autograd.Function):
    """Θ(x) forward; the double-Gaussian surrogate SG(x) backward (h 0.15, s 6, σ 0.5, γ 0.5)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        h, s, sigma, gamma = 0.15, 6.0, 0.5, 0.5

        def pdf(y: Tensor, sd: float) -> Tensor:
            return torch.exp(-0.5 * (y / sd) ** 2) / (sd * math.sqrt(2 * math.pi))

        return g * gamma * ((1 + h) * pdf(x, sigma) - 2 * h * pdf(x, s * sigma))


class ScriptBRF(nn.Module):
    """The baseline: BRF hidden layer and leaky readout in one module, one Python-level step loop,
    scripted. Same parameters as a gradscape BRF network (copied in)."""

    def __init__(self, net: RecurrentNetwork) -> None:
        super().__init__()
        c = net.neuron.constants
        self.dt, self.theta, self.gamma = float(c.get("dt", 0.01)), float(c.get("theta", 1.0)), 0.9
        self.hidden_size, self.output_size = net.hidden_size, net.output_size
        self.weight = nn.Parameter(net.hidden.weight.detach().clone())
        self.omega = nn.Parameter(net.hidden.omega.detach().clone())
        self.b_offset = nn.Parameter(net.hidden.b_offset.detach().clone())
        self.out_weight = nn.Parameter(net.out.weight.detach().clone())
        self.tau_mem = nn.Parameter(net.out.tau_mem.detach().clone())

    @torch.jit.ignore
    def spike(self, x: Tensor) -> Tensor:
        return _DoubleGaussianSpike.apply(x)

    def forward(self, x: Tensor) -> Tensor:
        b = x.shape[1]
        z = torch.zeros(b, self.hidden_size, dtype=x.dtype, device=x.device)
        u, v, q = torch.zeros_like(z), torch.zeros_like(z), torch.zeros_like(z)
        o = torch.zeros(b, self.output_size, dtype=x.dtype, device=x.device)
        omega = self.omega.abs()
        p = (-1.0 + torch.sqrt(1.0 - (self.dt * omega) ** 2)) / self.dt
        b0 = p - self.b_offset.abs()
        alpha = torch.exp(-1.0 / self.tau_mem.abs())
        outputs: list[Tensor] = []
        for t in range(x.shape[0]):
            drive = torch.cat((x[t], z), dim=1) @ self.weight.t()
            bt = b0 - q
            u_new = u + self.dt * (bt * u - omega * v + drive)
            v = v + self.dt * (omega * u + bt * v)
            u = u_new
            z = self.spike(u - self.theta - q)
            q = self.gamma * q + z
            o = alpha * o + (1.0 - alpha) * (z @ self.out_weight.t())
            outputs.append(o)
        return torch.stack(outputs)


# ----------------------------------------------------------------------------- measurement


def peak_of(name: str, net: RecurrentNetwork, x: Tensor, y: Tensor) -> float:
    """MB of resident memory one forward + backward of ``name`` adds (VmHWM − RSS before), in this
    (fresh) process: in the timing process every variant after the first reuses freed memory."""
    fn = _variants(net, [name])[name]
    _fwd_bwd(fn, net, x[:2], y)  # compiles (kernels depend on B and H, not T) with little memory
    base = _peak_rss_reset()
    _fwd_bwd(fn, net, x, y)
    return (_status_kb("VmHWM") * 1024 - base) / 2**20 if base >= 0 else float("nan")


def _peak_in_subprocess(name: str, argv: list[str], threads: int) -> float:
    cmd = [sys.executable, __file__, *argv, "--peak-of", name, "--threads", str(threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip().splitlines()
    try:
        return float(out[-1])
    except (IndexError, ValueError):
        return float("nan")


def _peak_rss_reset() -> int:
    """Reset the process's peak RSS (Linux: clear_refs 5) and return the current RSS in bytes."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _status_kb("VmRSS") * 1024
    except OSError:
        return -1


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def _variants(net: RecurrentNetwork, names: list[str]) -> dict[str, Callable[[Tensor], Tensor]]:
    out: dict[str, Callable[[Tensor], Tensor]] = {}
    for name in names:
        if name == "eager":
            out[name] = lambda x: net(x, plan="eager", keep_spikes=False).outputs
        elif name == "fast":
            plan = ForwardPlan("fast", step_fn=make_step(net.neuron), compiled=True, keep_spikes=False)
            out[name] = lambda x, plan=plan: net(x, plan=plan).outputs
        elif name == "sparse":
            plan = ForwardPlan("sparse", compiled=True, keep_spikes=False)
            out[name] = lambda x, plan=plan: net(x, plan=plan).outputs
        elif name == "sparse-numpy":
            plan = ForwardPlan("sparse", compiled=True, keep_spikes=False)
            out[name] = lambda x, plan=plan: _without_native(lambda: net(x, plan=plan).outputs)
        elif name == "script":
            out[name] = torch.jit.script(ScriptBRF(net).to(next(net.parameters()).dtype))
        else:
            raise SystemExit(f"unknown variant {name!r}")
    return out


def _without_native(run: Callable[[], Tensor]) -> Tensor:
    """``run()`` with the native sparse kernels turned off (the products it sets up take numpy's)."""
    old = os.environ.get("GRADSCAPE_NATIVE_SPARSE")
    os.environ["GRADSCAPE_NATIVE_SPARSE"] = "0"
    try:
        return run()
    finally:
        if old is None:
            del os.environ["GRADSCAPE_NATIVE_SPARSE"]
        else:
            os.environ["GRADSCAPE_NATIVE_SPARSE"] = old


def _params_of(fn: Any, net: RecurrentNetwork) -> list[Tensor]:
    return list(fn.parameters()) if isinstance(fn, torch.jit.ScriptModule) else list(net.parameters())


def _fwd_bwd(fn: Any, net: RecurrentNetwork, x: Tensor, y: Tensor) -> tuple[float, list[Tensor]]:
    params = _params_of(fn, net)
    for p in params:
        p.grad = None
    loss = F.cross_entropy(fn(x)[-1], y)
    loss.backward()
    return float(loss), [p.grad for p in params]


def equivalence(net64: RecurrentNetwork, x: Tensor, y: Tensor, names: list[str]) -> dict[str, float]:
    """max |Δ| of the loss and gradients vs eager (float64); script's parameters are in gradscape's order."""
    fns = _variants(net64, ["eager", *[n for n in names if n != "eager"]])
    l0, g0 = _fwd_bwd(fns["eager"], net64, x, y)
    g0 = [g.clone() for g in g0]
    res = {}
    for name, fn in fns.items():
        if name == "eager":
            continue
        l1, g1 = _fwd_bwd(fn, net64, x, y)
        res[name] = max([abs(l0 - l1)] + [float((a - b).abs().max()) for a, b in zip(g0, g1, strict=True)])
    return res


def timing(net: RecurrentNetwork, x: Tensor, y: Tensor, names: list[str], repeats: int) -> dict[str, dict]:
    fns = _variants(net, names)
    res: dict[str, dict] = {n: {"wall": [], "cpu": []} for n in names}
    for name, fn in fns.items():  # cold start, one variant at a time
        t0 = time.perf_counter()
        _fwd_bwd(fn, net, x, y)
        res[name]["cold"] = time.perf_counter() - t0
    for _ in range(repeats):
        for name, fn in fns.items():
            t, c = time.perf_counter(), time.process_time()
            _fwd_bwd(fn, net, x, y)
            res[name]["wall"].append(time.perf_counter() - t)
            res[name]["cpu"].append(time.process_time() - c)
    return res


def evaluate_rows(net: RecurrentNetwork, split: Any, batch: int, repeats: int) -> dict[str, dict]:
    """``evaluate`` on ``split`` with the path before issue 10 and with the default now: per path the
    cold start (first call on one batch: compilation included), then ``repeats`` timed calls on the
    whole split, interleaved; seconds per call and the accuracy %."""
    from gradscape.models.evaluation import evaluate
    from gradscape.models.plan import plan_forward

    before = plan_forward(net, grad=False, batch=batch, sparse=False)  # dense fast, spikes kept
    plans = {"before": before, "default": None}
    warm = split.subset(min(batch, len(split)), 0)
    res: dict[str, dict] = {}
    for name, plan in plans.items():
        t = time.perf_counter()
        evaluate(net, warm, mode="last", batch_size=batch, plan=plan)
        res[name] = {"cold": time.perf_counter() - t, "wall": []}
    for _ in range(repeats):
        for name, plan in plans.items():
            t = time.perf_counter()
            r = evaluate(net, split, mode="last", batch_size=batch, plan=plan)
            res[name]["wall"].append(time.perf_counter() - t)
            res[name]["accuracy"] = r["accuracy"]
    return res


def break_even(net: RecurrentNetwork, x: Tensor, y: Tensor, gains: list[float], repeats: int) -> None:
    """Spike density vs the cost of one forward + backward (process CPU time, best of ``repeats``):
    the sparse path with every product from the nonzeros (density caps 1), the same path with every
    product dense (caps 0), and the compiled dense fast path. The input is scaled by each gain to
    move the density; where "all sparse" and "all dense" cross is the break-even."""
    from gradscape.models import sparse as sp

    fast = ForwardPlan("fast", step_fn=make_step(net.neuron), compiled=True, keep_spikes=False)
    plan = ForwardPlan("sparse", compiled=True, keep_spikes=False)
    caps = (sp.TRAINING_MAX_DENSITY, sp.WEIGHT_GRAD_MAX_DENSITY)
    print(f"\nbreak-even ({torch.get_num_threads()} thread(s), CPU s per forward + backward):")
    print(f"  {'gain':>5} {'density %':>9} {'all sparse':>10} {'all dense':>9} {'default':>8} {'fast':>6}")
    try:
        for gain in gains:
            xg = x * gain
            with torch.no_grad():
                density = float(net(xg, plan="eager").spikes.mean())
            row = {}
            for name, cap in (("all sparse", 1.0), ("all dense", 0.0), ("default", None), ("fast", None)):
                if cap is not None:
                    sp.TRAINING_MAX_DENSITY = sp.WEIGHT_GRAD_MAX_DENSITY = cap
                else:
                    sp.TRAINING_MAX_DENSITY, sp.WEIGHT_GRAD_MAX_DENSITY = caps
                fn = (
                    (lambda v: net(v, plan=fast).outputs)
                    if name == "fast"
                    else (lambda v: net(v, plan=plan).outputs)
                )
                _fwd_bwd(fn, net, xg, y)  # warm-up
                best = math.inf
                for _ in range(repeats):
                    c = time.process_time()
                    _fwd_bwd(fn, net, xg, y)
                    best = min(best, time.process_time() - c)
                row[name] = best
            print(
                f"  {gain:5.2f} {100 * density:9.1f} {row['all sparse']:10.3f} {row['all dense']:9.3f} "
                f"{row['default']:8.3f} {row['fast']:6.3f}",
                flush=True,
            )
    finally:
        sp.TRAINING_MAX_DENSITY, sp.WEIGHT_GRAD_MAX_DENSITY = caps


def _busy() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=784, help="T (the first T pixels of each image)")
    ap.add_argument("--threads", default="1,2", help="comma-separated torch thread counts")
    ap.add_argument("--repeats", type=int, default=3, help="timed passes per variant and thread count")
    ap.add_argument("--variants", default="eager,fast,sparse,script")
    ap.add_argument("--busy", action="store_true", help="also keep one core busy with another process")
    ap.add_argument(
        "--eval-samples", type=int, default=10000, help="test sequences of the evaluate row (0: no row)"
    )
    ap.add_argument("--eval-repeats", type=int, default=2, help="timed evaluate calls per path")
    ap.add_argument("--equiv-T", type=int, default=30)
    ap.add_argument("--equiv-offset", type=int, default=392, help="first pixel of the exactness window")
    ap.add_argument("--checkpoint", default="bundled:smnist-brf")
    ap.add_argument("--offset", type=int, default=0, help="first pixel of the T-step window")
    ap.add_argument(
        "--break-even",
        default="",
        help="comma-separated input gains: print spike density vs sparse/dense cost (1 thread) and stop",
    )
    ap.add_argument("--peak-of", help=argparse.SUPPRESS)  # internal: one variant's peak, then exit
    args = ap.parse_args(argv)
    names = args.variants.split(",")

    net = open_checkpoint(args.checkpoint).model.float().train()
    split = load_task("smnist").test
    n = split.inputs.shape[0]
    idx = torch.arange(args.batch) % n
    seqs = split.inputs[idx, args.offset : args.offset + args.steps].transpose(0, 1).contiguous()  # (T, N, 1)
    labels = split.targets[idx]
    x, y = seqs[:, : args.batch], labels[: args.batch]
    with torch.no_grad():
        density = float(net(x, plan="eager").spikes.mean())
    load = os.getloadavg()
    print(
        f"torch {torch.__version__}; {args.checkpoint} ({net.neuron.name}, H {net.hidden_size}); "
        f"B {args.batch}, T {args.steps}; spike density {100 * density:.1f} %; "
        f"load average before {load[0]:.2f} on {os.cpu_count()} CPUs"
    )
    if args.peak_of:
        torch.set_num_threads(int(args.threads.split(",")[0]))
        print(peak_of(args.peak_of, net, x, y))
        return 0
    torch.set_num_threads(1)
    if args.break_even:
        break_even(net, x, y, [float(g) for g in args.break_even.split(",")], args.repeats)
        return 0
    net64 = open_checkpoint(args.checkpoint).model.double().train()
    window = split.inputs[:128, args.equiv_offset : args.equiv_offset + args.equiv_T].transpose(0, 1)
    eq = equivalence(net64, window.contiguous().double(), split.targets[:128], names)
    print("exactness (float64, T %d from pixel %d, B 128, max |Δ| loss and gradients vs eager): "
          % (args.equiv_T, args.equiv_offset)
          + ", ".join(f"{k} {v:.1e}" for k, v in eq.items()))  # fmt: skip

    busy_modes = [False, True] if args.busy else [False]
    for busy in busy_modes:
        proc = _busy() if busy else None
        try:
            for threads in (int(t) for t in args.threads.split(",")):
                torch.set_num_threads(threads)
                r = timing(net, x, y, names, args.repeats)
                shape = [
                    "--batch",
                    str(args.batch),
                    "--steps",
                    str(args.steps),
                    "--checkpoint",
                    args.checkpoint,
                ]
                for name in names:
                    r[name]["peak_mb"] = _peak_in_subprocess(
                        name, [*shape, "--offset", str(args.offset)], threads
                    )
                ref = min(r["eager"]["wall"]) if "eager" in r else math.nan
                script = min(r["script"]["wall"]) if "script" in r else math.nan
                print(f"\n{threads} thread(s){', one core kept busy' if busy else ''}:")
                print(
                    f"  {'variant':<12} {'best s':>7} {'median s':>8} {'cpu s':>6} {'eager/x':>7} "
                    f"{'script/x':>8} {'peak MB':>8} {'cold s':>7}"
                )
                for name in names:
                    w = r[name]["wall"]
                    print(
                        f"  {name:<12} {min(w):7.3f} {statistics.median(w):8.3f} {min(r[name]['cpu']):6.2f} "
                        f"{ref / min(w):7.2f} {script / min(w):8.2f} {r[name]['peak_mb']:8.0f} "
                        f"{r[name]['cold']:7.1f}",
                        flush=True,
                    )
                if args.eval_samples:
                    from gradscape.models.evaluation import _mnist_test_split

                    full, _ = _mnist_test_split("smnist", {}, None)  # what `gradscape evaluate` scores
                    sub = full if args.eval_samples >= len(full) else full.subset(args.eval_samples, 0)
                    ev = evaluate_rows(net, sub, args.batch, args.eval_repeats)
                    b, d = ev["before"], ev["default"]
                    tb, td = min(b["wall"]), min(d["wall"])
                    print(
                        f"  evaluate of {len(sub)} sequences (B {args.batch}, best of {args.eval_repeats}): "
                        f"before issue 10 (dense fast) {tb:.1f} s, {b['accuracy']:.2f} %; default now "
                        f"{td:.1f} s, {d['accuracy']:.2f} %; ratio {tb / td:.2f}x; cold start (one batch, "
                        f"compilation included) {b['cold']:.1f} s / {d['cold']:.1f} s",
                        flush=True,
                    )
        finally:
            if proc is not None:
                proc.kill()
                proc.wait()
    load = os.getloadavg()
    print(
        f"\nload average after {load[0]:.2f}; x/y columns: best-time ratios (higher: x faster); peak MB: "
        "resident memory one forward + backward added (VmHWM); cold: first call incl. compilation."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
