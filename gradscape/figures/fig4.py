"""Figure 4: which of BRF's additions carries the convergence benefit, and BRF vs RF, LSTM and ALIF.

Top: S-MNIST learning curves of vanilla RF, each of the refractory period (RP), smooth reset (SR) and
divergence boundary (DB) alone, each pair, and all three (BRF). Bottom: S-MNIST and PS-MNIST curves of
BRF, RF, a non-spiking LSTM and ALIF. A diverged run is drawn up to its divergence and marked ``×``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gradscape.figures.curves import plot_curves
from gradscape.figures.plotting import TASK_LABELS, add_caption, plt, save_figure
from gradscape.figures.stats import Curve

__all__ = ["make_fig4"]


def make_fig4(
    out: Path,
    variants: Mapping[str, Sequence[Curve]],
    models: Mapping[str, Mapping[str, Sequence[Curve]]],
    caption: str,
) -> dict[str, Any]:
    """``variants[name]`` (S-MNIST) and ``models[task][model]`` → fig4.png/.pdf."""
    fig = plt.figure(figsize=(12, 8), layout="constrained")
    gs = fig.add_gridspec(2, 2)
    top = fig.add_subplot(gs[0, :])
    summary: dict[str, Any] = {"variants": plot_curves(top, variants, chance=10.0)}
    top.set_title("S-MNIST: RF variants (RP refractory period, SR smooth reset, DB divergence boundary)")
    top.legend(fontsize=7, ncol=3)
    summary["models"] = {}
    for i, (task, groups) in enumerate(models.items()):
        ax = fig.add_subplot(gs[1, i])
        summary["models"][task] = plot_curves(ax, groups, chance=10.0)
        ax.set_title(f"{TASK_LABELS.get(task, task)}: BRF, RF, LSTM, ALIF")
    fig.suptitle(
        "Fig. 4 — convergence of RF variants and baselines (test accuracy, mean ± std; • = 95 % of final)"
    )
    add_caption(fig, caption)
    save_figure(fig, out, "fig4")
    return summary
