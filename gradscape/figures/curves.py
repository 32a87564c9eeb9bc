"""Learning-curve panels shared by Figs. 3 and 4: mean ± std over seeds, the 95 % dot, divergence marks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from gradscape.figures.plotting import model_color, model_label
from gradscape.figures.stats import Curve, epochs_to_fraction

__all__ = ["padded", "plot_curves"]


def padded(curves: Sequence[Curve]) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, acc (runs, epochs)) with NaN after a run's last finite epoch."""
    n = max(len(c.epochs) for c in curves)
    acc = np.full((len(curves), n), np.nan)
    for i, c in enumerate(curves):
        acc[i, : len(c.test_acc)] = c.test_acc
    longest = max(curves, key=lambda c: len(c.epochs))
    return longest.epochs, acc


def plot_curves(
    ax: Any, groups: Mapping[str, Sequence[Curve]], *, chance: float | None = None
) -> dict[str, Any]:
    """Draw mean ± std (over runs that reached an epoch) per model; a dot where the mean curve first
    reaches 95 % of its last value; ``×`` where a run diverged. Returns per-model summary numbers."""
    summary: dict[str, Any] = {}
    for model, curves in groups.items():
        if not curves:
            continue
        epochs, acc = padded(curves)
        with np.errstate(all="ignore"):
            mean = np.nanmean(acc, axis=0)
            count = np.sum(np.isfinite(acc), axis=0)
            std = (
                np.where(count > 1, np.nanstd(acc, axis=0, ddof=1), 0.0)
                if len(curves) > 1
                else np.zeros_like(mean)
            )
        colour = model_color(model)
        n_div = sum(c.diverged for c in curves)
        label = f"{model_label(model)} (n={len(curves)}" + (f", {n_div} diverged)" if n_div else ")")
        ax.plot(epochs, mean, color=colour, lw=1.5, label=label)
        if len(curves) > 1:
            ax.fill_between(epochs, mean - std, mean + std, color=colour, alpha=0.2, lw=0)
        e95 = epochs_to_fraction(epochs, mean, 95)
        if e95 is not None:
            ax.plot(e95, mean[list(epochs).index(e95)], "o", color=colour, mec="k", ms=6, zorder=5)
        for c in curves:
            if c.diverged:
                ep, a = c.finite()
                x = c.diverged_epoch if c.diverged_epoch is not None else (ep[-1] if len(ep) else 0)
                y = a[-1] if len(a) else np.nan
                ax.plot(x, y, "x", color=colour, ms=9, mew=2, zorder=6)
                ax.annotate(
                    "diverged", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7, color=colour
                )
        summary[model] = {
            "epochs_to_95_mean_curve": e95,
            "final_mean": float(mean[np.isfinite(mean)][-1]) if np.isfinite(mean).any() else float("nan"),
            "runs": len(curves),
            "diverged": n_div,
        }
    if chance is not None:
        ax.axhline(chance, color="0.6", ls=":", lw=0.8, label=f"chance ({chance:.1f} %)")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return summary
