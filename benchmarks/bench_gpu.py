"""One prepared GPU check (issue 10): training step and evaluate throughput on CUDA, side by side.

On the pinned weights of ``bundled:smnist-brf`` (BRF, H 256) at S-MNIST shape (B 256, T 784), one
forward + backward per batch (cross-entropy of the last readout), interleaved so that clock and
thermal drift hit every variant alike:

* ``eager``      ``model(x, plan="eager")``: the plain step loop, the reference semantics;
* ``default``    ``model(x)``: what user code and every command take on this device (auto_plan);
* ``fast``       ``ForwardPlan("fast")``: W_in i_t for all t in one GEMM, the hidden update uncompiled;
* ``compiled``   the fast path with the update compiled by Inductor with its backward (``make_step``);
* ``graphs``     the same compiled with ``mode="reduce-overhead"`` (CUDA graphs);
* ``script``     the TorchScript baseline of ``bench_train.py`` (the BRF authors' code structure).

Per variant: best and median seconds per batch (``torch.cuda.synchronize`` around each pass), the
ratio to eager and to script, the cold start (first call, compilation included) and the peak of
``torch.cuda.max_memory_allocated`` over one pass. Exactness: float64, a 30-step window where the
images have ink, B 128: max |Δ| of the loss and every gradient vs eager. Evaluate: all 10,000
S-MNIST test sequences with the dense fast path, the compiled fast path and the default, seconds and
accuracy each. A variant that fails is reported with its error and the others still run.

    python benchmarks/bench_gpu.py --out gpu.json            # on a machine with CUDA (~5 minutes)
    python benchmarks/bench_gpu.py --dry-run                 # the code paths on a CPU, tiny sizes

The JSON records the GPU's name, torch and CUDA versions and every setting (gradscape provenance).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import torch
from bench_train import ScriptBRF, _fwd_bwd

from gradscape.io import atomic_write_json, provenance
from gradscape.models.checkpoints import open_checkpoint
from gradscape.models.evaluation import _mnist_test_split, evaluate
from gradscape.models.fastpath import make_step
from gradscape.models.network import RecurrentNetwork
from gradscape.models.plan import ForwardPlan, plan_forward

VARIANTS = ("eager", "default", "fast", "compiled", "graphs", "script")


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def variant(name: str, net: RecurrentNetwork) -> Callable[[torch.Tensor], torch.Tensor] | torch.nn.Module:
    if name == "eager":
        return lambda x: net(x, plan="eager", keep_spikes=False).outputs
    if name == "default":
        return lambda x: net(x, keep_spikes=False).outputs
    if name == "fast":
        plan = ForwardPlan("fast", keep_spikes=False)
        return lambda x: net(x, plan=plan).outputs
    if name in ("compiled", "graphs"):
        step = make_step(net.neuron, cuda_graphs=name == "graphs")
        plan = ForwardPlan("fast", step_fn=step, compiled=True, keep_spikes=False)
        return lambda x: net(x, plan=plan).outputs
    if name == "script":
        dev = next(net.parameters()).device
        return torch.jit.script(ScriptBRF(net).to(device=dev, dtype=next(net.parameters()).dtype))
    raise SystemExit(f"unknown variant {name!r}; choose from {', '.join(VARIANTS)}")


def _timed(fn: Any, net: RecurrentNetwork, x: torch.Tensor, y: torch.Tensor, dev: torch.device) -> float:
    _sync(dev)
    t = time.perf_counter()
    _fwd_bwd(fn, net, x, y)
    _sync(dev)
    return time.perf_counter() - t


def training_rows(
    net: RecurrentNetwork, x: torch.Tensor, y: torch.Tensor, names: list[str], repeats: int
) -> dict[str, dict[str, Any]]:
    dev = x.device
    rows: dict[str, dict[str, Any]] = {}
    fns: dict[str, Any] = {}
    for name in names:  # cold start and peak memory, one variant at a time
        try:
            fns[name] = variant(name, net)
            cold = _timed(fns[name], net, x, y, dev)
            if dev.type == "cuda":
                torch.cuda.reset_peak_memory_stats(dev)
            _timed(fns[name], net, x, y, dev)
            peak = torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else float("nan")
            rows[name] = {"cold_s": cold, "peak_mb": peak, "wall_s": []}
        except Exception as exc:  # one failing variant must not lose the others' numbers
            rows[name] = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc(limit=3)}
            fns.pop(name, None)
    for _ in range(repeats):
        for name, fn in fns.items():
            rows[name]["wall_s"].append(_timed(fn, net, x, y, dev))
    return rows


def exactness(net64: RecurrentNetwork, x: torch.Tensor, y: torch.Tensor, names: list[str]) -> dict[str, Any]:
    ref_loss, ref = _fwd_bwd(variant("eager", net64), net64, x, y)
    ref = [g.clone() for g in ref]
    out: dict[str, Any] = {}
    for name in names:
        if name == "eager":
            continue
        try:
            loss, grads = _fwd_bwd(variant(name, net64), net64, x, y)
            out[name] = max(
                [abs(ref_loss - loss)] + [float((a - b).abs().max()) for a, b in zip(ref, grads, strict=True)]
            )
        except Exception as exc:
            out[name] = f"{type(exc).__name__}: {exc}"
    return out


def evaluate_rows(net: RecurrentNetwork, split: Any, batch: int, dev: torch.device) -> dict[str, Any]:
    plans = {
        "fast": plan_forward(net, grad=False, batch=batch, sparse=False),
        "compiled": plan_forward(net, grad=False, batch=batch, sparse=False, compile=True),
        "default": None,
    }
    out: dict[str, Any] = {}
    for name, plan in plans.items():
        _sync(dev)
        t = time.perf_counter()
        r = evaluate(net, split, mode="last", batch_size=batch, device=dev, plan=plan)
        _sync(dev)
        out[name] = {"seconds": time.perf_counter() - t, "accuracy": r["accuracy"]}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=784)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--eval-samples", type=int, default=10000)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--out", help="write every number and setting to this JSON file")
    ap.add_argument("--dry-run", action="store_true", help="CPU, B 8, T 40, 64 evaluate sequences")
    args = ap.parse_args(argv)
    if args.dry_run:
        args.device, args.batch, args.steps, args.repeats, args.eval_samples = "cpu", 8, 40, 1, 64
        names = [n for n in args.variants.split(",") if n != "graphs"]
    else:
        names = args.variants.split(",")
    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        print("bench_gpu: no CUDA device here; run it on a GPU machine (or --dry-run on a CPU)",
              file=sys.stderr)  # fmt: skip
        return 2
    gpu = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu (dry run)"
    net = open_checkpoint("bundled:smnist-brf").model.float().train().to(dev)
    full, _ = _mnist_test_split("smnist", {}, None)  # what `gradscape evaluate` scores
    x = full.inputs[: args.batch, : args.steps].transpose(0, 1).contiguous().to(dev)
    y = full.targets[: args.batch].to(dev)
    print(f"{gpu}; torch {torch.__version__} (CUDA {torch.version.cuda}); B {args.batch}, T {args.steps}")

    net64 = open_checkpoint("bundled:smnist-brf").model.double().train().to(dev)
    window = full.inputs[:128, 392:422].transpose(0, 1).contiguous().double().to(dev)
    exact = exactness(net64, window, full.targets[:128].to(dev), names)
    print("exactness (float64, max |Δ| vs eager):", exact)

    rows = training_rows(net, x, y, names, args.repeats)
    ref = min(rows["eager"]["wall_s"]) if rows.get("eager", {}).get("wall_s") else float("nan")
    script = min(rows["script"]["wall_s"]) if rows.get("script", {}).get("wall_s") else float("nan")
    head = ("variant", "best s", "median s", "eager/x", "script/x", "peak MB", "cold s")
    print("  " + " ".join(f"{h:>8}" for h in head))
    for name, r in rows.items():
        if "error" in r:
            print(f"  {name:<9} failed: {r['error']}")
            continue
        w = r["wall_s"]
        best, median = min(w), statistics.median(w)
        r.update(best_s=best, median_s=median, eager_ratio=ref / best, script_ratio=script / best)
        print(
            f"  {name:>8} {best:8.4f} {median:8.4f} {ref / best:8.2f} {script / best:8.2f} "
            f"{r['peak_mb']:8.0f} {r['cold_s']:8.1f}",
            flush=True,
        )
    split = full if args.eval_samples >= len(full) else full.subset(args.eval_samples, 0)
    ev = evaluate_rows(net.eval(), split, args.batch, dev)
    for name, r in ev.items():
        print(f"  evaluate {len(split)} sequences, {name}: {r['seconds']:.2f} s, {r['accuracy']:.2f} %")
    if args.out:
        atomic_write_json(
            args.out,
            {
                "device": gpu,
                "torch": torch.__version__,
                "cuda": torch.version.cuda,
                "settings": vars(args),
                "exactness": exact,
                "training": rows,
                "evaluate": {"samples": len(split), **ev},
                "provenance": provenance(),
            },
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
