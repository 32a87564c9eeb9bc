"""Figure 5: error landscapes of RF, BRF and ALIF on S-MNIST (surfaces top, contours bottom, measures below).

Protocol (the paper's): each model trained until its validation accuracy first reaches 50 %
(``stop_at_val_acc``; the profile may cap the epochs); f(α, β) = L(θ* + α d + β e) with two seeded
Gaussian directions over the recurrent layer's weight matrix W = [W_in | W_rec] only, each unit's input
and recurrent blocks normalised separately to the norms of θ*'s (``filter-blocks``); L the task's
NLL objective (label-last on S-MNIST, per step on PS-MNIST), mean over a subset of the test images
seeded 0; a grid on [−span, span]². :func:`landscape_job` states this as a
:class:`~gradscape.landscape.jobspec.LandscapeJob`; :func:`gradscape.landscape.job.run_landscape`
evaluates it, :func:`gradscape.landscape.outputs.measures_of` measures it, and
:mod:`gradscape.landscape.plots` draws it.

Each surface is cached in ``OUT/analyses/fig5/<hash>.npz`` (hash of the run key and the landscape
settings; the job's ``resume="cache"``): a complete file is reused, a partial one resumed, one
computed with another configuration started over.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from gradscape.figures.plotting import add_caption, model_label, save_figure
from gradscape.figures.profiles import Profile
from gradscape.figures.runner import Runner, run_key
from gradscape.io import atomic_write_text, config_hash
from gradscape.landscape.jobspec import CurvatureSpec, DataSpec, DirectionSpec, LandscapeJob, ModelEntry
from gradscape.models.training_config import TrainConfig

__all__ = ["landscape_job", "fig5_job", "compute_surfaces", "make_fig5"]


def _surface_path(runner: Runner, cfg: TrainConfig, profile: Profile) -> tuple[Path, dict[str, Any]]:
    f5 = profile.fig5
    settings = {
        "run": run_key(cfg),
        "grid": f"{-f5.span:g}:{f5.span:g}:{f5.grid}",
        "samples": f5.samples,
        "normalization": f5.normalization,
        "direction_seed": cfg.seed,
        "params": "hidden.weight",
    }
    return Path(runner.root) / "analyses" / "fig5" / f"{config_hash(settings)}.npz", settings


def landscape_job(
    runner: Runner, cfg: TrainConfig, model_name: str, profile: Profile, device: str, progress: bool
) -> LandscapeJob:
    """The Fig. 5 protocol (module docstring) for one trained run, as a landscape job."""
    f5 = profile.fig5
    path, settings = _surface_path(runner, cfg, profile)
    return fig5_job(
        (ModelEntry(runner.checkpoint(cfg, "last"), label=model_label(model_name), result=path),),
        DataSpec(
            task=cfg.task,
            split="test",
            samples=f5.samples,
            subset_seed=0,
            data_dir=cfg.data_dir,
            data_seed=cfg.data_seed,
            permutation=cfg.permutation,
        ),
        path.parent,
        grid=settings["grid"],
        seed=cfg.seed,
        normalization=f5.normalization,
        settings=settings,
        device=device,
        progress=progress,
    )


def fig5_job(
    models: Sequence[ModelEntry],
    data: DataSpec,
    out: Path,
    *,
    grid: str,
    seed: int,
    normalization: str,
    settings: Mapping[str, Any],
    curvature: CurvatureSpec | None = None,
    device: str = "auto",
    progress: bool = True,
) -> LandscapeJob:
    """The Fig. 5 protocol (module docstring) as a landscape job: seeded (``seed``) directions over
    W = [W_in | W_rec] only, normalised by ``normalization``, on ``grid``; cached by each entry's result
    file (``resume="cache"``), no measures or renderings of its own (the figure draws them), and
    ``settings`` recorded in the job's config. The reference profile uses it for the released models."""
    return LandscapeJob(
        models=tuple(models),
        data=data,
        out=out,
        directions=DirectionSpec(params=("hidden.weight",), normalization=normalization),
        grid=grid,
        seed=seed,
        curvature=curvature if curvature is not None else CurvatureSpec(),
        device=device,
        resume="cache",
        write_measures=False,
        render=False,
        config={"figure": "fig5", **settings},
        progress=progress,
    )


def compute_surfaces(
    runner: Runner,
    runs: Mapping[str, Sequence[TrainConfig]],
    profile: Profile,
    *,
    device: str = "auto",
    progress: bool = True,
) -> dict[str, list[Any]]:
    """Every model's and seed's landscape (cached; under torchrun all ranks share the grid points)."""
    from gradscape.landscape.job import run_landscape

    return {
        name: [
            run_landscape(landscape_job(runner, cfg, name, profile, device, progress)).models[0].surface
            for cfg in cfgs
        ]
        for name, cfgs in runs.items()
    }


def make_fig5(
    out: Path,
    surfaces: Mapping[str, Sequence[Any]],
    runner: Runner,
    runs: Mapping[str, Sequence[TrainConfig]],
    profile: Profile,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Render fig5.png/.pdf/.html from the seed-0 surfaces; returns the measures of every seed."""
    from gradscape.landscape.outputs import measures_of
    from gradscape.landscape.plots import plot_surfaces, surfaces_html

    per_seed: dict[str, list[dict[str, Any]]] = {}
    shown, shown_measures = [], []
    stop = {}
    for model_name, ss in surfaces.items():
        per_seed[model_name] = []
        for i, (s, cfg) in enumerate(zip(ss, runs[model_name], strict=True)):
            m = measures_of(s)
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
