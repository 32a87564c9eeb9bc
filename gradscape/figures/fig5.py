"""Figure 5: error landscapes of RF, BRF and ALIF on S-MNIST (surfaces top, contours bottom, measures below).

Protocol (the paper's): each model trained until its validation accuracy first reaches 50 %
(``stop_at_val_acc``; the profile may cap the epochs); f(α, β) = L(θ* + α d + β e) with two seeded
Gaussian directions over the recurrent layer's weight matrix W = [W_in | W_rec] only, each unit's input
and recurrent blocks normalised separately to the norms of θ*'s (``filter-blocks``); L the label-last
NLL, mean over the evaluated test images; a grid on [−span, span]². Evaluated by
:func:`gradscape.landscape.api.recurrent_landscape` and measured by
:func:`gradscape.landscape.measures.surface_measures`; drawn with :mod:`gradscape.landscape.plots`.

Each surface is cached in ``OUT/analyses/fig5/<hash>.npz`` (hash of the run key and the landscape
settings) and resumed when interrupted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from gradscape.errors import UserError
from gradscape.figures.plotting import add_caption, model_label, save_figure
from gradscape.figures.profiles import Profile
from gradscape.figures.runner import Runner, run_key
from gradscape.io import atomic_write_text, config_hash
from gradscape.models.training_config import TrainConfig

__all__ = ["compute_surfaces", "make_fig5"]


def _surface_path(runner: Runner, cfg: TrainConfig, profile: Profile) -> tuple[Path, dict[str, Any]]:
    f5 = profile.fig5
    settings = {
        "run": run_key(cfg),
        "grid": f"{-f5.span:g}:{f5.span:g}:{f5.grid}",
        "samples": f5.samples,
        "normalization": f5.normalization,
        "direction_seed": cfg.seed,
        "objective": "last",
        "params": "hidden.weight",
    }
    return Path(runner.root) / "analyses" / "fig5" / f"{config_hash(settings)}.npz", settings


def compute_surfaces(
    runner: Runner,
    runs: Mapping[str, Sequence[TrainConfig]],
    profile: Profile,
    *,
    device: str = "auto",
    progress: bool = True,
) -> dict[str, list[Any]]:
    """Every model's and seed's landscape (cached; under torchrun all ranks share the grid points)."""
    import torch

    from gradscape.landscape.api import recurrent_landscape
    from gradscape.landscape.evaluate import load_surface
    from gradscape.models.checkpoints import load_model
    from gradscape.models.datasets import load_task
    from gradscape.models.device import resolve_device

    dev = resolve_device(device)
    f5 = profile.fig5
    out: dict[str, list[Any]] = {}
    for model_name, cfgs in runs.items():
        out[model_name] = []
        for cfg in cfgs:
            path, settings = _surface_path(runner, cfg, profile)
            if path.is_file():
                s = load_surface(path)
                if s.complete:
                    out[model_name].append(s)
                    continue
            net, _ = load_model(runner.checkpoint(cfg, "last"))
            net = net.to(dev)
            data = load_task(cfg.task, data_dir=cfg.data_dir, seed=cfg.data_seed, permutation=cfg.permutation)
            split = data.test if f5.samples is None else data.test.subset(f5.samples, seed=0)
            kwargs = dict(
                mode="last",
                reduction="mean",
                params=["hidden.weight"],
                normalization=f5.normalization,
                seed=cfg.seed,
                grid=settings["grid"],
                batch_size=min(256, len(split)),
                out=path,
                config={
                    "figure": "fig5",
                    **settings,
                    "indices_hash": config_hash({"i": split.indices.tolist()}),
                },
                meta={
                    "label": model_label(model_name),
                    "sample_indices": split.indices.tolist(),
                    "checkpoint": str(runner.checkpoint(cfg, "last")),
                },
                progress=progress,
            )
            with torch.no_grad():
                try:
                    s = recurrent_landscape(net, split, resume=True, **kwargs)
                except UserError:  # a partial file from another device/config: start it over
                    s = recurrent_landscape(net, split, resume=False, **kwargs)
            out[model_name].append(s)
    return out


def make_fig5(
    out: Path,
    surfaces: Mapping[str, Sequence[Any]],
    runner: Runner,
    runs: Mapping[str, Sequence[TrainConfig]],
    profile: Profile,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Render fig5.png/.pdf/.html from the seed-0 surfaces; returns the measures of every seed."""
    from gradscape.landscape.measures import surface_measures
    from gradscape.landscape.plots import plot_surfaces, surfaces_html

    per_seed: dict[str, list[dict[str, Any]]] = {}
    shown, shown_measures = [], []
    stop = {}
    for model_name, ss in surfaces.items():
        per_seed[model_name] = []
        for i, (s, cfg) in enumerate(zip(ss, runs[model_name], strict=True)):
            m = surface_measures(s.alphas, s.betas, s.masked_loss(), centre_loss=s.center.get("loss"))
            curve = runner.curve(cfg)
            m["trained_epochs"] = int(curve.epochs.max()) if len(curve.epochs) else 0
            m["val_accuracy"] = curve.final.get("val_accuracy")
            m["status"] = curve.status
            m["seed"] = cfg.seed
            per_seed[model_name].append(m)
            if i == 0:
                shown.append(s)
                shown_measures.append(m)
                stop[model_name] = (m["trained_epochs"], m["val_accuracy"], curve.status)
    fig = plot_surfaces(shown, shown_measures)
    f5 = profile.fig5
    reached = "; ".join(
        f"{model_label(k)}: {e} epoch(s), val acc {v:.1f} %"
        + ("" if st == "stopped" or f5.stop_at_val_acc is None else f" ({st}: target not reached)")
        for k, (e, v, st) in stop.items()
    )
    add_caption(
        fig,
        f"Profile {profile.name}. Models trained on {f5.task} "
        + (
            f"until validation accuracy ≥ {f5.stop_at_val_acc:g} % "
            f"(at most {f5.max_epochs or 'the default'} epochs; "
            if f5.stop_at_val_acc is not None
            else "for the profile's epochs (no accuracy target; "
        )
        + f"{profile.settings_text(f5.task)}) — {reached}. "
        f"Directions over W = [W_in | W_rec] only, {f5.normalization} normalisation, label-last NLL on "
        f"{f5.samples or 'all'} test images, {f5.grid}×{f5.grid} grid on [−{f5.span:g}, {f5.span:g}]²; "
        f"seeds {','.join(str(c.seed) for c in next(iter(runs.values())))} "
        "(first shown, measures of all in REPORT.md).",
        width=220,
    )
    save_figure(fig, out, "fig5")
    atomic_write_text(Path(out) / "fig5.html", surfaces_html(shown))
    return {"per_seed": per_seed, "grid": f5.grid, "samples": f5.samples}
