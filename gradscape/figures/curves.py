"""Drawing learning curves: the panels of Figs. 3 and 4 (mean ± std over seeds, the 95 % dot,
divergence marks) and the comparison of curve sources (``gradscape curves``).

The curves are read by :mod:`gradscape.figures.curve_files` and Table 2 of the authors' curves is
:mod:`gradscape.figures.table2_reference`; this module re-exports both, so that every name imported
from ``gradscape.figures.curves`` before keeps working.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gradscape.figures import curve_files as _curve_files
from gradscape.figures import table2_reference as _table2_reference
from gradscape.figures.curve_files import CurveGroups
from gradscape.figures.plotting import model_color, model_label
from gradscape.figures.stats import TABLE2_RULE, Curve, Table2Rule, convergence_epochs, effective_rule

#: the names that moved to curve_files and table2_reference, still importable from here
_MOVED = {name: module for module in (_curve_files, _table2_reference) for name in module.__all__}
__all__ = [*_MOVED, "padded", "plot_curves", "plot_comparison"]


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        return getattr(_MOVED[name], name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def padded(curves: Sequence[Curve]) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, acc (runs, epochs)) with NaN after a run's last finite epoch."""
    n = max(len(c.epochs) for c in curves)
    acc = np.full((len(curves), n), np.nan)
    for i, c in enumerate(curves):
        acc[i, : len(c.test_acc)] = c.test_acc
    longest = max(curves, key=lambda c: len(c.epochs))
    return longest.epochs, acc


def _dot_epoch(curves: Sequence[Curve], epochs: np.ndarray, mean: np.ndarray, rule: Table2Rule) -> int | None:
    """Curve step of the 95 % dot: the mean over runs of n₉₅ under ``rule`` (Table 2's number, with
    Table 2's fallback for runs without a validation curve), put back on the step axis and rounded."""
    used = effective_rule(curves, rule)
    per_run = [convergence_epochs(c, 95, used) for c in curves]
    steps = [n + (1 - used.base) for n in per_run if n is not None]
    return round(float(np.mean(steps))) if steps else None


def plot_curves(
    ax: Any,
    groups: Mapping[str, Sequence[Curve]],
    *,
    chance: float | None = None,
    rule: Table2Rule = TABLE2_RULE,
    styles: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Draw mean ± std (over runs that reached an epoch) per model; a dot on the mean curve at the
    mean epoch at which runs reach 95 % of their final accuracy (``rule``, as in Table 2); ``×`` where
    a run diverged. ``styles[key]`` may set ``color``, ``ls`` and ``label`` (default: the model's colour,
    a solid line, its display name). Returns per-model summary numbers."""
    summary: dict[str, Any] = {}
    for model, curves in groups.items():
        if not curves:
            continue
        epochs, acc = padded(curves)
        # epochs that only some runs reached: NaN columns / one-run std are expected, not warnings
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(acc, axis=0)
            count = np.sum(np.isfinite(acc), axis=0)
            std = (
                np.where(count > 1, np.nanstd(acc, axis=0, ddof=1), 0.0)
                if len(curves) > 1
                else np.zeros_like(mean)
            )
        style = (styles or {}).get(model, {})
        colour = style.get("color", model_color(model))
        ls = style.get("ls", "-")
        n_div = sum(c.diverged for c in curves)
        label = f"{style.get('label', model_label(model))} (n={len(curves)}" + (
            f", {n_div} diverged)" if n_div else ")"
        )
        ax.plot(epochs, mean, color=colour, lw=1.5, ls=ls, label=label)
        if len(curves) > 1:
            ax.fill_between(epochs, mean - std, mean + std, color=colour, alpha=0.2, lw=0)
        e95 = _dot_epoch(curves, epochs, mean, rule)
        if e95 is not None and e95 in list(epochs):
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


_SOURCE_LS = ("-", "--", "-.", ":")


def plot_comparison(
    out: str | Path,
    by_source: Mapping[str, CurveGroups],
    *,
    rule: Table2Rule = TABLE2_RULE,
    caption: str = "",
    name: str = "curves",
) -> list[Path]:
    """One panel per task: every (source, model) group's mean ± std test accuracy and its 95 % dot
    (``rule``); sources differ by line style, models by colour. Writes ``name.png/.pdf``."""
    from gradscape.figures.fig3 import CHANCE
    from gradscape.figures.plotting import TASK_LABELS, add_caption, plt, save_figure

    order = {t: i for i, t in enumerate(("smnist", "psmnist", "ecg", "shd"))}
    tasks = sorted({t for g in by_source.values() for t, _ in g}, key=lambda t: (order.get(t, 9), t))
    fig, axes = plt.subplots(
        1, len(tasks), figsize=(5.6 * len(tasks), 4.4), layout="constrained", squeeze=False
    )
    for ax, task in zip(axes[0], tasks, strict=True):
        groups: dict[str, list[Curve]] = {}
        styles: dict[str, dict[str, Any]] = {}
        for i, (source, g) in enumerate(by_source.items()):
            for (t, model), cs in g.items():
                if t != task:
                    continue
                key = f"{source}|{model}"
                groups[key] = list(cs)
                styles[key] = {
                    "color": model_color(model),
                    "ls": _SOURCE_LS[i % len(_SOURCE_LS)],
                    "label": f"{model_label(model)}, {source}",
                }
        plot_curves(ax, groups, chance=CHANCE.get(task), rule=rule, styles=styles)
        epochs = int(max(c.epochs.max() for cs in groups.values() for c in cs))
        if epochs > 50:
            ax.set_xscale("symlog", linthresh=10)
            ax.set_xlim(0, epochs)
            ax.set_xlabel("epoch (linear to 10, then log)")
        ax.set_ylim(0, 100)
        ax.set_title(TASK_LABELS.get(task, task))
        ax.plot([], [], "o", color="0.5", mec="k", label=f"• n₉₅ ({rule.name})")
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle("Convergence: test accuracy per epoch, mean ± std over runs")
    add_caption(
        fig,
        f"{caption} Dot: mean over runs of the epoch at which a run first reaches 95 % of its final "
        f"accuracy ({rule.describe()}), drawn at the curve step. Epoch 0 = before training.",
        width=150,
    )
    return save_figure(fig, Path(out), name)
