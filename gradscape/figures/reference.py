"""``gradscape figures --profile reference``: the convergence paper's questions answered from the
models and learning curves its authors released, without training anything.

What each output shows (every caption names the released artifact):

* ``fig3``: ECG and SHD learning curves of BRF, RF and ALIF, mean ± std over the authors' 5 runs,
  with the epoch where the mean reaches 95 % of its final accuracy (:mod:`gradscape.figures.curves`).
* ``fig4``: bottom panel only — the 5 PS-MNIST vanilla-RF runs, which stop after epoch 0 (diverged).
  The top panel (RF variants) has no released artifact.
* ``table2``: the ECG and SHD rows recomputed from the curves under the one Table 2 rule
  (:data:`~gradscape.figures.stats.TABLE2_RULE`), beside the published row, and the comparison of the
  candidate final-accuracy rules (``table2_rules.md``).
* ``fig5``: loss landscapes of the released S-MNIST RF/BRF/ALIF and PS-MNIST BRF/ALIF models — the
  converged models, not the paper's snapshots at 50 % validation accuracy — on a seeded subset of the
  S-MNIST test images; f(α, β) = L(θ* + α d + β e) with seeded Gaussian directions over W = [W_in |
  W_rec], filter-blocks normalisation, the task's objective (label-last NLL on S-MNIST, per-step NLL
  on PS-MNIST, batch mean); the Hessian extremes (surrogate Hessian, Lanczos) at θ* on a smaller
  seeded subset (``curvature_samples``: a Hessian-vector product on 256 × 784 steps costs minutes).
* ``fig6``: per-neuron membrane |λ_t| along real test trajectories and ‖∂L/∂s_(T−k)‖ of the
  label-last NLL, for the released S-MNIST and PS-MNIST models.
* ``REPORT.md``: every claim of the convergence paper with a verdict from these artifacts.

The spread behind a verdict on single released models is fixed in :class:`ReferenceSettings` before
any run: landscapes on ``spread_seeds`` × ``spread_subsets`` (3 direction seeds × 2 data subsets, a
coarser grid on fewer samples than the figure), gradient flow on ``flow_subsets`` data subsets. The
verdict rule is :func:`gradscape.figures.report.verdict`'s. Every analysis is cached under
``OUT/analyses/reference/`` by the hash of its settings and resumed when interrupted.

This module holds the settings and runs the profile; the analyses of the released models (Fig. 5
landscapes, Fig. 6 gradient flow) are :mod:`gradscape.figures.reference_analyses`, the claims and
REPORT.md :mod:`gradscape.figures.reference_report`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gradscape.io import atomic_write_json, provenance

__all__ = ["ReferenceSettings", "REFERENCE", "REFERENCE_SMOKE", "generate_reference", "REFERENCE_FIGURES"]

REFERENCE_FIGURES = ("fig3", "fig4", "fig5", "fig6")

TASK_LABEL = {"smnist": "S-MNIST", "psmnist": "PS-MNIST"}
_KIND = {"brf": "BRF", "rf": "RF", "alif": "ALIF", "rf-posb": "RF (b = +|b'|)"}


@dataclass(frozen=True)
class ReferenceSettings:
    """The reference profile's analysis settings (fixed before any run; recorded in every result)."""

    name: str = "reference"
    landscape_models: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: {
            "smnist": ("smnist-rf", "smnist-brf", "smnist-alif"),
            "psmnist": ("psmnist-brf", "psmnist-alif"),
        }
    )
    grid: int = 21  # points per axis of the figure's grid on [−span, span]²
    span: float = 1.0
    samples: int = 256  # seeded test images of the figure's surfaces (subset seed 0, direction seed 0)
    spread_seeds: tuple[int, ...] = (0, 1, 2)  # direction seeds behind the landscape verdicts
    spread_subsets: tuple[int, ...] = (0, 1)  # data-subset seeds behind the landscape verdicts
    spread_grid: int = 11
    spread_samples: int = 64
    curvature: bool = True  # Hessian extremes (surrogate Hessian) at θ*
    # One Hessian-vector product at 256 × 784 steps costs minutes on a 2-core CPU, so the extremes are
    # computed on a smaller seeded subset (subset seed 0) of the same test split.
    curvature_samples: int = 16
    curvature_maxiter: int | None = 60
    flow_models: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: {
            "smnist": ("smnist-brf", "smnist-rf", "smnist-alif"),
            "psmnist": ("psmnist-brf", "psmnist-alif"),
        }
    )
    flow_samples: int = 32  # test sequences per data subset for |λ_t| and the gradient norms
    flow_subsets: tuple[int, ...] = (0, 1, 2)
    steps: int | None = None  # None: whole sequences (784 steps); smoke tests cut them

    def describe(self) -> dict[str, Any]:
        return {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in asdict(self).items()}


REFERENCE = ReferenceSettings()

#: every code path of the reference profile on tiny settings (tests)
REFERENCE_SMOKE = ReferenceSettings(
    name="reference-smoke",
    landscape_models={"smnist": ("smnist-brf", "smnist-alif"), "psmnist": ("psmnist-brf",)},
    grid=3,
    samples=3,
    curvature_samples=2,
    spread_seeds=(0, 1),
    spread_subsets=(0, 1),
    spread_grid=3,
    spread_samples=2,
    curvature_maxiter=4,
    flow_models={"smnist": ("smnist-brf", "smnist-alif"), "psmnist": ("psmnist-brf",)},
    flow_samples=2,
    flow_subsets=(0, 1),
    steps=60,
)


def model_kind(name: str) -> str:
    """The display name of a released model's neuron (``smnist-brf`` → ``BRF``)."""
    from gradscape.models.bundled import bundled_model

    return _KIND.get(bundled_model(name).neuron, bundled_model(name).neuron)


def generate_reference(
    out: str | Path,
    figures: Sequence[str] = REFERENCE_FIGURES,
    *,
    settings: ReferenceSettings = REFERENCE,
    device: str = "auto",
    progress: bool = True,
    log: Callable[[str], None] = print,
    workers: int = 1,
) -> dict[str, Any]:
    """Write the reference profile's figures, Table 2 and REPORT.md into ``out``; returns the summary.

    ``workers`` > 1: the cached analyses (one landscape grid or flow subset per model each) are
    computed first by that many processes, one intra-op thread each (the 2-core CPU runs two at
    once); the figures are then drawn from the cache, identical to a serial run's."""
    # deferred: the analyses need the landscape/gradflow stack, which profiles (importing the
    # settings above) must not pull in
    from gradscape.figures import fig3, fig4
    from gradscape.figures.curves import bundled_curves, write_table2_reference
    from gradscape.figures.reference_analyses import fig5_reference, fig6_reference, precompute
    from gradscape.figures.reference_report import claims_of, write_report

    t0 = time.perf_counter()
    out = Path(out)
    made: dict[str, Any] = {}
    if "fig3" in figures:
        made["fig3"] = [str(p) for p in fig3.make_fig3_reference(out)]
        made["table2"] = [str(p) for p in write_table2_reference(out)]
    if "fig4" in figures:
        made["fig4"] = [str(p) for p in fig4.make_fig4_reference(out)]
    precompute(out, settings, figures, device, workers, log)
    f5 = fig5_reference(out, settings, device, progress, log) if "fig5" in figures else {}
    f6 = fig6_reference(out, settings, log) if "fig6" in figures else {}
    curves = _grouped(bundled_curves())
    claims = claims_of(curves, f5, f6)
    wall = time.perf_counter() - t0
    write_report(out, settings, claims, f5, wall, workers)
    summary = {
        "profile": settings.name,
        "settings": settings.describe(),
        "figures": sorted(figures),
        "made": made,
        "fig5": f5,
        "fig6": f6,
        "claims": [{k: c[k] for k in ("claim", "figure", "verdict")} for c in claims],
        "wall_time_s": wall,
        "workers": workers,
        "provenance": provenance(),
    }
    atomic_write_json(out / "summary.json", summary)
    return summary


def _grouped(curves: Mapping[tuple[str, str], Sequence[Any]]) -> dict[str, dict[str, list[Any]]]:
    """(task, model) → runs as task → model → the authors' runs."""
    out: dict[str, dict[str, list[Any]]] = {}
    for (task, model), runs in curves.items():
        out.setdefault(task, {})[model] = list(runs)
    return out
