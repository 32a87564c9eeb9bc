"""Speed of the gradient-flow analysis (a benchmark, not a test).

Prints, in one run:

1. per-neuron J_t = ∂s_t/∂s_{t−1} and its spectra (membrane |λ|, full ρ, singular values) for every
   neuron and step of a BRF network, H = 256, T = 784 (S-MNIST length), batch 1 and batch 32, float32,
   by :func:`gradscape.gradflow.jacobians.trajectory_spectra` (vmap over neurons × steps × samples of
   jacfwd of the neuron's own step);
2. the same per step by a dense ``torch.autograd.functional.jacobian`` of the whole hidden state
   (H·k = 768 entries per sample) followed by the same block spectra: timed on a few steps and
   extrapolated linearly to T (said in the output), and the ratio dense / batched (target ≥ 50×);
3. the m leading Lyapunov exponents of the backward product 𝒥_1ᵀ ⋯ 𝒥_Tᵀ of the same network and
   inputs (whole network, D = H·(1+k) + C), side by side: the VJP route of
   :func:`gradscape.gradflow.lyapunov.lyapunov_spectrum` (one vector-Jacobian product per step batched
   over the m tangents, whole T, forward included) and the dense route (per step the D × D network
   Jacobian by ``jacrev`` as :func:`gradscape.gradflow.network_flow.network_jacobian`, then 𝒥_tᵀQ and
   the same QR) timed on a few steps and extrapolated linearly to T; the ratio dense / VJP and the
   largest exponent difference of the two routes on those steps (same start) are printed;
4. the time of the full symbolic derivation (J, eigenvalues and ρ of membrane block, J_sub and J, and
   the LaTeX report) of each built-in spiking neuron;
5. ``gradscape spectrum --checkpoint bundled:brf --task ecg --flow-samples 4 --lyapunov 5`` as the
   library call :func:`gradscape.gradflow.run_spectrum` (all 141 ECG test sequences × 1300 steps, the
   issue's 30 s target, files written included), next to the dense route for its per-neuron spectra
   (per step a dense Jacobian of the whole hidden state, timed on ``--dense-steps`` steps and
   extrapolated to every step and sample): the ratio dense / job.

Usage: ``python benchmarks/bench_gradflow.py [--device auto] [--dense-steps 3] [--batches 1,32]
[--lyapunov 5] [--no-lyapunov] [--no-checkpoint] [--threads N]``. On a shared, oversubscribed CPU
``--threads 1`` is much less noisy: torch's intra-op threads then spin-wait for each other on every
small elementwise op.
"""

from __future__ import annotations

import argparse
import time

import torch

from gradscape.gradflow.jacobians import (
    block_spectra,
    membrane_indices,
    record_trajectory,
    trajectory_spectra,
)
from gradscape.gradflow.lyapunov import (
    lyapunov_spectrum,
    lyapunov_spectrum_of_step,
    network_step_fn,
    random_orthonormal,
)
from gradscape.gradflow.network_flow import network_jacobian, run_flat_states
from gradscape.models.device import resolve_device
from gradscape.models.network import RecurrentNetwork


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _inputs(T: int, B: int, seed: int) -> tuple[torch.Tensor, str]:
    try:
        from gradscape.models.datasets import load_task

        split = load_task("smnist").test.subset(B, seed=seed)
        return split.inputs.transpose(0, 1).contiguous()[
            :T
        ], f"S-MNIST test images (indices {split.indices[:4].tolist()}…)"
    except Exception as exc:  # the benchmark still runs without the data
        g = torch.Generator().manual_seed(seed)
        return torch.rand(T, B, 1, generator=g), f"uniform random pixels ({type(exc).__name__}: no MNIST)"


def bench_batched(net: RecurrentNetwork, x: torch.Tensor, device: torch.device) -> tuple[float, float, dict]:
    _sync(device)
    t0 = time.perf_counter()
    traj = record_trajectory(net, x)
    _sync(device)
    t1 = time.perf_counter()
    spec = trajectory_spectra(net, trajectory=traj)
    _sync(device)
    t2 = time.perf_counter()
    return (
        t1 - t0,
        t2 - t1,
        {"membrane_rho_max": float(spec.membrane_rho.max()), "n": spec.membrane_rho.numel()},
    )


def bench_dense(net: RecurrentNetwork, x: torch.Tensor, steps: int, device: torch.device) -> float:
    """Seconds per time step (all samples) of the dense route, measured on ``steps`` steps."""
    traj = record_trajectory(net, x)
    neuron, ops = net.neuron, net.ops
    params = net.net_params().neuron
    H, k = net.hidden_size, len(neuron.state_fields)
    mem = membrane_indices(neuron)
    times = []
    for t in range(1, 1 + steps):  # step 0 once more as warm-up below
        _sync(device)
        t0 = time.perf_counter()
        for b in range(x.shape[1]):
            xt = traj.x[t, b]
            s_prev = torch.cat([f[t, b] for f in traj.prev])

            def f(s: torch.Tensor, xt: torch.Tensor = xt) -> torch.Tensor:
                _, new = neuron.step(ops, xt, neuron.state(*s.split(H)), params)
                return torch.cat(list(new))

            dense = torch.autograd.functional.jacobian(f, s_prev)  # (H·k, H·k)
            blocks = dense.reshape(k, H, k, H).diagonal(dim1=1, dim2=3).permute(2, 0, 1)
            block_spectra(blocks, mem)
        _sync(device)
        times.append(time.perf_counter() - t0)
    return sum(times) / len(times)


def bench_lyapunov(
    net: RecurrentNetwork, x: torch.Tensor, m: int, dense_steps: int, device: torch.device
) -> dict[str, float]:
    """The VJP route over all T steps, and the dense route on the last ``dense_steps`` steps (the first
    ones the backward iteration meets) with the VJP route repeated on exactly those steps."""
    T = x.shape[0]
    lyapunov_spectrum(net, x[:5], m, transient=0, neuron_bound=False)  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    res = lyapunov_spectrum(net, x, m, neuron_bound=False)
    _sync(device)
    t_vjp = time.perf_counter() - t0

    n = min(dense_steps, T)
    states = run_flat_states(net, x)
    D = states.shape[-1]
    qr_every = res.settings.qr_every
    params = net.net_params()
    Q = random_orthonormal(D, m, seed=0).to(device=device, dtype=states.dtype).expand(x.shape[1], D, m)
    acc = torch.zeros(x.shape[1], m, dtype=torch.float64, device=device)
    with torch.no_grad():
        network_jacobian(net, x[T - 1], states[T - 1], params=params)  # warm-up
        _sync(device)
        t0 = time.perf_counter()
        for k, t in enumerate(range(T, T - n, -1), start=1):
            J = network_jacobian(net, x[t - 1], states[t - 1], params=params)  # (B, D, D)
            Q = J.transpose(-1, -2) @ Q
            if k % qr_every == 0 or k == n:
                Q, R = torch.linalg.qr(Q)
                acc = acc + torch.diagonal(R, dim1=-2, dim2=-1).abs().double().log()
        _sync(device)
        per_step_dense = (time.perf_counter() - t0) / n
    dense_mu = acc / n
    same = lyapunov_spectrum_of_step(
        network_step_fn(net), x[T - n :], states[T - n : T], m, qr_every=qr_every
    )
    return {
        "vjp_s": t_vjp,
        "dense_per_step_s": per_step_dense,
        "dense_total_s": per_step_dense * T,
        "state_size": D,
        "dense_steps": n,
        "max_abs_diff": float((same.exponents.double() - dense_mu).abs().max()),
        "leading": res.mean[0].item(),
        "transient": res.settings.transient,
        "qr_every": qr_every,
    }


def bench_checkpoint_job(dense_steps: int, device: torch.device) -> dict:
    """Wall time of the ECG spectrum job and the extrapolated dense route on the same network."""
    import tempfile
    from pathlib import Path

    from gradscape.gradflow import CheckpointSpec, SpectrumJob, run_spectrum
    from gradscape.models.checkpoints import open_checkpoint
    from gradscape.models.datasets import load_task

    with tempfile.TemporaryDirectory() as tmp:
        job = SpectrumJob(
            out=Path(tmp) / "spec",
            checkpoints=(CheckpointSpec("bundled:brf"),),
            task="ecg",
            flow_samples=4,
            lyapunov=5,
            device=str(device),
            progress=False,
        )
        _sync(device)
        t0 = time.perf_counter()
        run_spectrum(job)
        _sync(device)
        job_s = time.perf_counter() - t0
    net = open_checkpoint("bundled:brf").model.to(device)
    test = load_task("ecg").test
    x = test.inputs.transpose(0, 1).contiguous().to(device)  # (T, B, C) time-major
    T, B = x.shape[0], x.shape[1]
    per_step = bench_dense(net, x[: dense_steps + 2], dense_steps, device)
    return {
        "job_s": job_s,
        "T": T,
        "B": B,
        "hidden": net.hidden_size,
        "dense_total_s": per_step * T,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--steps", type=int, default=784)
    ap.add_argument("--batches", default="1,32")
    ap.add_argument(
        "--dense-steps", type=int, default=3, help="steps timed for the dense route (extrapolated)"
    )
    ap.add_argument("--no-symbolic", action="store_true")
    ap.add_argument("--lyapunov", type=int, default=5, help="leading Lyapunov exponents m (default 5)")
    ap.add_argument("--no-lyapunov", action="store_true")
    ap.add_argument("--no-checkpoint", action="store_true", help="skip the ECG spectrum job (section 5)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    torch.manual_seed(args.seed)
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    net = RecurrentNetwork("brf", 1, args.hidden, 10, seed=args.seed).to(device)
    with torch.no_grad():
        net.hidden.weight.mul_(3.0)  # enough drive that neurons spike (the spike path is exercised)
    for B in (int(b) for b in args.batches.split(",")):
        x, what = _inputs(args.steps, B, args.seed)
        x = x.to(device)
        bench_batched(net, x[:5], device)  # warm-up
        t_run, t_jac, info = bench_batched(net, x, device)
        per_step_dense = bench_dense(net, x[: args.dense_steps + 2], args.dense_steps, device)
        dense_total = per_step_dense * args.steps
        print(
            f"BRF H={args.hidden} T={args.steps} batch={B} float32 ({what}):\n"
            f"  forward with recorded states: {t_run:.3f} s\n"
            f"  per-neuron J_t + spectra (vmap∘jacfwd, {info['n']} neuron-steps): {t_jac:.3f} s "
            f"({1e9 * t_jac / info['n']:.1f} ns/neuron-step); max membrane ρ {info['membrane_rho_max']:.5f}\n"
            f"  dense autograd.functional.jacobian ({args.hidden * 3}×{args.hidden * 3} per sample) + same "
            f"spectra: {per_step_dense:.3f} s per step, measured on {args.dense_steps} steps, "
            f"extrapolated ×{args.steps} = {dense_total:.1f} s\n"
            f"  ratio dense / batched: {dense_total / t_jac:.0f}×  (target ≥ 50×)"
        )
        if not args.no_lyapunov:
            ly = bench_lyapunov(net, x, args.lyapunov, args.dense_steps, device)
            print(
                f"  Lyapunov m={args.lyapunov} of the backward product (D={ly['state_size']}, transient "
                f"{ly['transient']}, QR every {ly['qr_every']}; leading exponent {ly['leading']:.5f} "
                "per step):\n"
                f"    VJP route (one VJP per step batched over {args.lyapunov} tangents, whole T, forward "
                f"included): {ly['vjp_s']:.3f} s\n"
                f"    dense route (jacrev {ly['state_size']}×{ly['state_size']} per sample per step, then "
                f"J^T Q): {ly['dense_per_step_s']:.3f} s per step, measured on {ly['dense_steps']} steps, "
                f"extrapolated ×{args.steps} = {ly['dense_total_s']:.1f} s\n"
                f"    ratio dense / VJP: {ly['dense_total_s'] / ly['vjp_s']:.0f}×; the two routes on the "
                f"same {ly['dense_steps']} steps and start differ by ≤ {ly['max_abs_diff']:.1e} per step"
            )
    if not args.no_checkpoint:
        ck = bench_checkpoint_job(args.dense_steps, device)
        print(
            f"spectrum job on bundled:brf (ECG test set: {ck['B']} sequences × {ck['T']} steps, "
            f"H={ck['hidden']}; --flow-samples 4 --lyapunov 5, files included):\n"
            f"  run_spectrum: {ck['job_s']:.1f} s  (target < 30 s on the 2-core CPU, 1 thread, idle)\n"
            f"  dense per-step Jacobian route for the per-neuron spectra alone, extrapolated: "
            f"{ck['dense_total_s']:.0f} s; ratio dense / job {ck['dense_total_s'] / ck['job_s']:.0f}×"
        )
    if not args.no_symbolic:
        from gradscape.gradflow.symbolic import derivation_times

        print("full symbolic derivation (derive + eigenvalues/ρ of membrane, sub, full + LaTeX):")
        for name, sec in derivation_times().items():
            print(f"  {name:12s} {sec:7.2f} s")


if __name__ == "__main__":
    main()
