"""The reference profile's analyses of the released models: Fig. 5 landscapes and Fig. 6 gradient flow.

Fig. 5: f(α, β) = L(θ* + α d + β e) by the Fig. 5 protocol (:func:`gradscape.figures.fig5.fig5_job`)
on the released S-MNIST/PS-MNIST models, the figure's grid plus the verdicts' spread (direction seeds ×
data subsets) and the Hessian extremes at θ*. Fig. 6: per-neuron membrane |λ_t| along real test
trajectories and ‖∂L/∂s_(T−k)‖ of the label-last NLL (:func:`analyse_flow`). Settings:
:class:`gradscape.figures.reference.ReferenceSettings`; every result is cached under
``OUT/analyses/reference/`` by the hash of its settings.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gradscape.figures.plotting import add_caption, model_color, plt, save_figure
from gradscape.figures.reference import TASK_LABEL, ReferenceSettings, model_kind
from gradscape.io import atomic_savez, atomic_write_text, config_hash

__all__ = ["fig5_reference", "fig6_reference", "analyse_flow", "precompute", "work_items"]

_BINS = np.linspace(0.0, 1.5, 601)


def _landscape(
    out: Path, s: ReferenceSettings, task: str, names: Sequence[str], grid: int, samples: int,
    direction_seed: int, subset_seed: int, curvature: bool, device: str, progress: bool,
) -> Any:  # fmt: skip
    from gradscape.figures.fig5 import fig5_job
    from gradscape.landscape.job import run_landscape
    from gradscape.landscape.jobspec import CurvatureSpec, DataSpec, ModelEntry

    settings = {
        "profile": s.name,
        "task": task,
        "grid": f"{-s.span:g}:{s.span:g}:{grid}",
        "samples": samples,
        "direction_seed": direction_seed,
        "subset_seed": subset_seed,
        "steps": s.steps,
        "curvature": curvature,
    }
    folder = out / "analyses" / "reference" / "fig5"
    entries = tuple(
        ModelEntry(f"bundled:{n}", label=n, result=folder / f"{config_hash({**settings, 'model': n})}.npz")
        for n in names
    )
    job = fig5_job(
        entries,
        DataSpec(task=task, split="test", samples=samples, subset_seed=subset_seed, steps=s.steps),
        folder,
        grid=settings["grid"],
        seed=direction_seed,
        normalization="filter-blocks",
        settings=settings,
        curvature=CurvatureSpec(centre=curvature, maxiter=s.curvature_maxiter),
        device=device,
        progress=progress,
    )
    return run_landscape(job)


def fig5_reference(
    out: Path, s: ReferenceSettings, device: str, progress: bool, log: Callable
) -> dict[str, Any]:
    """Fig. 5 of the released models (fig5.png, fig5-psmnist.png, .html) and, per model, the measures
    of every direction seed × data subset, those of the surface shown and the curvature at θ*."""
    from gradscape.landscape.outputs import measures_of
    from gradscape.landscape.plots import plot_surfaces, surfaces_html

    result: dict[str, Any] = {}
    for task, names in s.landscape_models.items():
        log(f"figures: reference fig5 {task}: {', '.join(names)} on {s.grid}×{s.grid} points")
        shown = _landscape(out, s, task, names, s.grid, s.samples, 0, 0, False, device, progress)
        curv = None
        if s.curvature:  # a 3-point grid: only its centre's curvature is used
            curv = _landscape(out, s, task, names, 3, s.curvature_samples, 0, 0, True, device, progress)
        per_model: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
        for seed in s.spread_seeds:
            for subset in s.spread_subsets:
                res = _landscape(
                    out,
                    s,
                    task,
                    names,
                    s.spread_grid,
                    s.spread_samples,
                    seed,
                    subset,
                    False,
                    device,
                    progress,
                )
                for m in res.models:
                    per_model[m.label].append({**measures_of(m.surface), "seed": seed, "subset": subset})
        surfaces = [m.surface for m in shown.models]
        measures = [measures_of(m.surface) for m in shown.models]
        for sf in surfaces:
            sf.meta["label"] = f"{TASK_LABEL[task]} {model_kind(str(sf.meta.get('label', '')))}"
        fig = plot_surfaces(surfaces, measures)
        add_caption(
            fig,
            f"Released {TASK_LABEL[task]} models ({', '.join('bundled:' + n for n in names)}), trained to "
            "convergence by the BRF authors — not the paper's snapshots at 50 % validation accuracy. "
            f"f(α, β) = L(θ* + α d + β e): the task's objective (batch mean) on {s.samples} seeded test "
            f"images (subset seed 0), {s.grid}×{s.grid} grid on [−{s.span:g}, {s.span:g}]², seeded Gaussian "
            "directions (seed 0) over W = [W_in | W_rec], filter-blocks normalisation. Measures of all "
            f"{len(s.spread_seeds)} direction seeds × {len(s.spread_subsets)} data subsets "
            f"({s.spread_grid}×{s.spread_grid}, {s.spread_samples} images) in REPORT.md.",
            width=220,
        )
        stem = "fig5" if task == "smnist" else f"fig5-{task}"
        save_figure(fig, out, stem)
        atomic_write_text(out / f"{stem}.html", surfaces_html(surfaces))
        result[task] = {
            "per_seed": per_model,
            "shown": {m.label: measures_of(m.surface) for m in shown.models},
            "curvature": {} if curv is None else {m.label: m.curvature for m in curv.models},
            "curvature_samples": s.curvature_samples if s.curvature else None,
        }
    return result


# ----------------------------------------------------------------------------- Fig. 6
def _flow_data(name: str, s: ReferenceSettings, subset: int) -> tuple[Any, Any, Any]:
    """(network, x (T, B, 1), y) for a released model on a seeded subset of the S-MNIST test split,
    in the pixel order it was trained with."""
    from gradscape.models.checkpoints import open_checkpoint
    from gradscape.models.datasets import load_task

    ck = open_checkpoint(f"bundled:{name}")
    split = load_task("smnist").test.subset(s.flow_samples, seed=subset)
    x = split.inputs if ck.permutation is None else split.inputs[:, ck.permutation]
    x = x.transpose(0, 1)
    if s.steps is not None:
        x = x[: s.steps]
    return ck.model, x.contiguous(), split.targets


def analyse_flow(net: Any, x: Any, y: Any) -> dict[str, np.ndarray]:
    """|λ_t| histogram and summary over every neuron, step and sequence, and ‖∂L/∂s_(T−k)‖ (label-last
    NLL) with its log10 ratio log10(‖∂L/∂s_0‖ / ‖∂L/∂s_T‖), median over sequences."""
    from gradscape.gradflow import backprop_gradients, gradient_norms, trajectory_spectra
    from gradscape.gradflow.network_flow import last_step_loss

    lam = trajectory_spectra(net, x).membrane_abs.detach().double().cpu().numpy().ravel()
    finite = lam[np.isfinite(lam)]
    hist, _ = np.histogram(np.clip(finite, _BINS[0], _BINS[-1]), bins=_BINS)
    norms = gradient_norms(backprop_gradients(net, x, last_step_loss(y))).detach().double().cpu().numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.log10(norms[-1] / norms[0])
    ok = np.isfinite(ratio)
    return {
        "hist": hist,
        "bins": _BINS,
        "lambda_median": np.array(np.median(finite) if finite.size else np.nan),
        "lambda_frac_gt_1": np.array((finite > 1).mean() if finite.size else np.nan),
        "lambda_max": np.array(finite.max() if finite.size else np.nan),
        "grad_norms": norms,
        "log10_grad_ratio": np.array(np.median(ratio[ok]) if ok.any() else np.nan),
    }


def _flow(out: Path, s: ReferenceSettings, name: str, subset: int) -> dict[str, np.ndarray]:
    settings = {"profile": s.name, "model": name, "samples": s.flow_samples, "subset": subset,
                "steps": s.steps, "bins": len(_BINS)}  # fmt: skip
    path = out / "analyses" / "reference" / "fig6" / f"{config_hash(settings)}.npz"
    if path.is_file():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    net, x, y = _flow_data(name, s, subset)
    res = analyse_flow(net, x, y)
    atomic_savez(path, **res, settings=np.array(str(settings)))
    return res


def fig6_reference(out: Path, s: ReferenceSettings, log: Callable) -> dict[str, Any]:
    """Fig. 6 of the released models (|λ_t| histograms, gradient norm against steps back) and, per
    model and data subset, the numbers behind the verdicts."""
    tasks = list(s.flow_models)
    fig, axes = plt.subplots(
        len(tasks), 2, figsize=(13, 4.4 * len(tasks)), layout="constrained", squeeze=False
    )
    centres = 0.5 * (_BINS[1:] + _BINS[:-1])
    per_model: dict[str, list[dict[str, float]]] = {}
    for row, task in enumerate(tasks):
        ax1, ax2 = axes[row]
        lo, hi = 1.0, 1.0
        for name in s.flow_models[task]:
            log(f"figures: reference fig6 {name}")
            results = [_flow(out, s, name, subset) for subset in s.flow_subsets]
            per_model[name] = [
                {"subset": sub, **{k: float(r[k]) for k in ("log10_grad_ratio", "lambda_median",
                                                              "lambda_frac_gt_1", "lambda_max")}}
                for sub, r in zip(s.flow_subsets, results, strict=True)
            ]  # fmt: skip
            kind = model_kind(name)
            color = model_color(kind.split()[0].lower())
            hist = np.sum([r["hist"] for r in results], axis=0).astype(float)
            if hist.sum() > 0:
                med = float(np.median([float(r["lambda_median"]) for r in results]))
                frac = float(np.mean([float(r["lambda_frac_gt_1"]) for r in results]))
                ax1.step(centres, hist / (hist.sum() * np.diff(_BINS)), where="mid", color=color,
                         label=f"{kind}: median {med:.4f}, {100 * frac:.2f} % > 1")  # fmt: skip
                nz = np.nonzero(hist)[0]
                lo, hi = min(lo, centres[nz[0]]), max(hi, centres[nz[-1]])
            norms = np.concatenate([r["grad_norms"] for r in results], axis=1)
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # steps where every norm is non-finite
                q = np.nanpercentile(
                    np.where(np.isfinite(norms) & (norms > 0), norms, np.nan), [25, 50, 75], axis=1
                )
            k = np.arange(norms.shape[0])
            ax2.plot(k, q[1], color=color, label=kind)
            ax2.fill_between(k, q[0], q[2], color=color, alpha=0.2, lw=0)
        ax1.axvline(1.0, color="k", ls="--", lw=0.8, label="|λ| = 1")
        ax1.set_xlim(max(0.0, lo - 0.01), min(_BINS[-1], hi + 0.01))
        ax1.set_yscale("log")
        ax1.set_xlabel("membrane-block eigenvalue modulus |λ_t|")
        ax1.set_ylabel("density (neuron-steps)")
        ax1.set_title(f"{TASK_LABEL[task]}: per-neuron |λ_t| along test trajectories")
        ax1.legend(fontsize=8)
        ax2.set_yscale("log")
        ax2.set_xlabel("steps back in time k")
        ax2.set_ylabel("‖∂L/∂s_(T−k)‖₂ (median; band 25–75 %)")
        ax2.set_title(f"{TASK_LABEL[task]}: gradient norm against steps back (label-last NLL)")
        ax2.legend(fontsize=8)
        ax2.grid(alpha=0.3)
    fig.suptitle("Fig. 6 — gradient flow in the released S-MNIST and PS-MNIST models")
    models = ", ".join(f"bundled:{n}" for t in tasks for n in s.flow_models[t])
    add_caption(
        fig,
        f"Released models ({models}); {len(s.flow_subsets)} seeded subsets × {s.flow_samples} S-MNIST test "
        f"sequences ({s.steps or 784} steps; PS-MNIST in the model's own pixel order); |λ_t| over all "
        f"hidden neurons and steps (histogram clipped to [0, {_BINS[-1]:g}]); gradient norms of the "
        "whole network state for the label-last NLL.",
    )
    save_figure(fig, out, "fig6")
    return {"per_model": per_model, "steps_back": s.steps or 784}


# ----------------------------------------------------------------------------- parallel precompute
def work_items(s: ReferenceSettings, figures: Sequence[str]) -> list[tuple[Any, ...]]:
    """Every cached analysis the profile needs, one model each, largest first: the figure's grids,
    the curvature grids, the spread grids (Fig. 5) and the flow subsets (Fig. 6)."""
    items: list[tuple[Any, ...]] = []
    if "fig5" in figures:
        for task, names in s.landscape_models.items():
            for n in names:
                items.append(("landscape", task, n, s.grid, s.samples, 0, 0, False))
                if s.curvature:
                    items.append(("landscape", task, n, 3, s.curvature_samples, 0, 0, True))
                for seed in s.spread_seeds:
                    for subset in s.spread_subsets:
                        items.append(
                            ("landscape", task, n, s.spread_grid, s.spread_samples, seed, subset, False)
                        )
    if "fig6" in figures:
        for names in s.flow_models.values():
            items += [("flow", n, subset) for n in names for subset in s.flow_subsets]

    def cost(item: tuple[Any, ...]) -> float:  # seq-evaluations; a Hessian-vector product ~ 3 forwards
        if item[0] == "flow":
            return 4.0 * s.flow_samples
        grid, samples, curvature = item[3], item[4], item[7]
        return grid * grid * samples + (200 * 3 * samples if curvature else 0)

    return sorted(items, key=cost, reverse=True)


def _run_item(out: Path, s: ReferenceSettings, device: str, item: tuple[Any, ...]) -> str:
    """One work item in a worker process (one intra-op thread: the workers share the cores)."""
    import torch

    torch.set_num_threads(1)
    if item[0] == "flow":
        _flow(out, s, item[1], item[2])
        return f"fig6 {item[1]} subset {item[2]}"
    _, task, name, grid, samples, seed, subset, curvature = item
    _landscape(out, s, task, [name], grid, samples, seed, subset, curvature, device, False)
    what = "curvature" if curvature else f"{grid}×{grid}, {samples} images"
    return f"fig5 {name} ({what}, directions {seed}, subset {subset})"


def precompute(
    out: Path, s: ReferenceSettings, figures: Sequence[str], device: str, workers: int, log: Callable
) -> None:
    """Fill the analysis cache with ``workers`` processes (one thread each) before the figures are
    drawn from it; each item writes its own cache file atomically, so the serial pass that follows
    only reads, and an interrupted profile resumes with what is left. ``workers`` ≤ 1: nothing."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    items = work_items(s, figures)
    if workers <= 1 or len(items) <= 1:
        return
    log(f"figures: reference analyses, {len(items)} items on {workers} worker processes")
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked OpenMP/torch state
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = [pool.submit(_run_item, out, s, device, item) for item in items]
        for k, done in enumerate(as_completed(futures), 1):
            log(f"figures: reference [{k}/{len(items)}] {done.result()}")
