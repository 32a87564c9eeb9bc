"""Figure 6: gradient flow through time in trained BRF, RF and ALIF networks on real sequences.

Left: the distribution of the per-neuron membrane-block eigenvalue moduli |λ_t| of
J_t = ∂s_t/∂s_{t−1} (BRF/RF: the (u, v) block; ALIF: u) over every hidden neuron, time step and
analysed test sequence (:func:`gradscape.gradflow.jacobians.trajectory_spectra`, the neurons' own step
functions differentiated along the recorded trajectories). Right: ‖∂L/∂s_{T−k}‖₂ of the whole network
state s = (z, neuron state, o) against the number of steps back k, for the label-last NLL
(:func:`gradscape.gradflow.network_flow.backprop_gradients`); median over sequences, band = 25–75 %.

The claim's measure is log10(‖∂L/∂s_0‖ / ‖∂L/∂s_T‖) (median over sequences), i.e. how much gradient
survives the whole sequence; results are cached in ``OUT/analyses/fig6/<hash>.npz``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gradscape.figures.plotting import add_caption, model_color, model_label, plt, save_figure
from gradscape.figures.profiles import Profile
from gradscape.figures.runner import Runner, run_key
from gradscape.io import atomic_savez, config_hash
from gradscape.models.training_config import TrainConfig

__all__ = ["analyse_run", "make_fig6"]

_BINS = np.linspace(0.0, 1.5, 601)


def analyse_run(
    runner: Runner, cfg: TrainConfig, profile: Profile, device: str = "auto"
) -> dict[str, np.ndarray]:
    """|λ_t| histogram + summary and the gradient-norm curve of one trained run (cached)."""
    import torch

    f6 = profile.fig6
    settings = {
        "run": run_key(cfg),
        "samples": f6.samples,
        "grad_samples": f6.grad_samples,
        "bins": len(_BINS),
        "version": 1,
    }
    path = Path(runner.root) / "analyses" / "fig6" / f"{config_hash(settings)}.npz"
    if path.is_file():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    from gradscape.gradflow import backprop_gradients, gradient_norms, trajectory_spectra
    from gradscape.gradflow.network_flow import last_step_loss
    from gradscape.models.checkpoints import open_checkpoint
    from gradscape.models.datasets import load_task
    from gradscape.models.device import resolve_device

    dev = resolve_device(device)
    net = open_checkpoint(runner.checkpoint(cfg, "last")).model.to(dev)
    data = load_task(cfg.task, data_dir=cfg.data_dir, seed=cfg.data_seed, permutation=cfg.permutation)
    split = data.test.subset(f6.samples, seed=0)
    x = split.inputs.transpose(0, 1).to(dev)
    y = split.targets.to(dev)
    spectra = trajectory_spectra(net, x)
    lam = spectra.membrane_abs.detach().double().cpu().numpy().ravel()
    finite = lam[np.isfinite(lam)]
    hist, _ = np.histogram(np.clip(finite, _BINS[0], _BINS[-1]), bins=_BINS)
    g = backprop_gradients(net, x[:, : f6.grad_samples], last_step_loss(y[: f6.grad_samples]))
    norms = gradient_norms(g).detach().double().cpu().numpy()  # (T+1, B), k = 0 … T
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.log10(norms[-1] / norms[0])
    res = {
        "hist": hist,
        "bins": _BINS,
        "lambda_median": np.array(np.median(finite) if finite.size else np.nan),
        "lambda_frac_gt_1": np.array((finite > 1).mean() if finite.size else np.nan),
        "lambda_min": np.array(finite.min() if finite.size else np.nan),
        "lambda_max": np.array(finite.max() if finite.size else np.nan),
        "lambda_nonfinite": np.array(lam.size - finite.size),
        "grad_norms": norms,
        "log10_grad_ratio": np.array(
            np.nanmedian(np.where(np.isfinite(ratio), ratio, np.nan)) if np.isfinite(ratio).any() else np.nan
        ),
        "sample_indices": split.indices.numpy(),
        "grad_nonfinite": np.array(int((~np.isfinite(norms)).sum())),
    }
    with torch.no_grad():
        atomic_savez(path, **res)
    return res


def make_fig6(
    out: Path,
    runner: Runner,
    runs: Mapping[str, Sequence[TrainConfig]],
    profile: Profile,
    *,
    device: str = "auto",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """fig6.png/.pdf: |λ_t| distributions (pooled over seeds) and gradient norm vs steps back."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.8), layout="constrained")
    per_seed: dict[str, list[dict[str, float]]] = {}
    centres = 0.5 * (_BINS[1:] + _BINS[:-1])
    lo, hi = 1.0, 1.0
    for model, cfgs in runs.items():
        results = [analyse_run(runner, c, profile, device) for c in cfgs]
        per_seed[model] = [
            {
                "seed": c.seed,
                "log10_grad_ratio": float(r["log10_grad_ratio"]),
                "lambda_median": float(r["lambda_median"]),
                "lambda_frac_gt_1": float(r["lambda_frac_gt_1"]),
                "lambda_min": float(r["lambda_min"]),
                "lambda_max": float(r["lambda_max"]),
                "status": runner.curve(c).status,
            }
            for c, r in zip(cfgs, results, strict=True)
        ]
        hist = np.sum([r["hist"] for r in results], axis=0).astype(float)
        total = hist.sum()
        if total > 0:
            dens = hist / (total * np.diff(_BINS))
            med = np.median([float(r["lambda_median"]) for r in results])
            frac = np.mean([float(r["lambda_frac_gt_1"]) for r in results])
            ax1.step(
                centres,
                dens,
                where="mid",
                color=model_color(model),
                label=f"{model_label(model)}: median {med:.4f}, {100 * frac:.2f} % > 1",
            )
            nz = np.nonzero(hist)[0]
            lo, hi = min(lo, centres[nz[0]]), max(hi, centres[nz[-1]])
        norms = np.concatenate([r["grad_norms"] for r in results], axis=1)
        k = np.arange(norms.shape[0])
        with np.errstate(all="ignore"):
            q = np.nanpercentile(
                np.where(np.isfinite(norms) & (norms > 0), norms, np.nan), [25, 50, 75], axis=1
            )
        ax2.plot(k, q[1], color=model_color(model), label=model_label(model))
        ax2.fill_between(k, q[0], q[2], color=model_color(model), alpha=0.2, lw=0)
    ax1.axvline(1.0, color="k", ls="--", lw=0.8, label="|λ| = 1")
    ax1.set_xlim(max(0.0, lo - 0.01), min(_BINS[-1], hi + 0.01))
    ax1.set_yscale("log")
    ax1.set_xlabel("membrane-block eigenvalue modulus |λ_t|")
    ax1.set_ylabel("density (neuron-steps)")
    ax1.set_title("per-neuron |λ_t| along real trajectories")
    ax1.legend(fontsize=8)
    ax2.set_yscale("log")
    ax2.set_xlabel("steps back in time k")
    ax2.set_ylabel("‖∂L/∂s_(T−k)‖₂ (median over sequences)")
    ax2.set_title("gradient norm against steps back (label-last NLL)")
    ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3)
    f6 = profile.fig6
    seeds = ",".join(str(c.seed) for c in next(iter(runs.values())))
    fig.suptitle("Fig. 6 — gradient flow in trained BRF, RF and ALIF networks")
    add_caption(
        fig,
        f"Profile {profile.name}; {f6.task} runs ({profile.settings_text(f6.task)}), seeds {seeds}, "
        "final epoch; "
        f"|λ_t| over {f6.samples} test sequences × all steps × all hidden neurons (histogram clipped to "
        f"[0, {_BINS[-1]:g}], pooled over seeds); gradient norms over {f6.grad_samples} sequences per seed.",
    )
    save_figure(fig, out, "fig6")
    return {"per_seed": per_seed, "steps_back": "T (the whole sequence)"}
