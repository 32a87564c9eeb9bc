"""Figure 3: learning curves (test accuracy per epoch, mean ± std over seeds), BRF vs ALIF, per task.

A dot marks the mean over runs of the epoch at which a run reaches 95 % of its final accuracy (the
Table 2 rule, :data:`gradscape.figures.stats.TABLE2_RULE`); a task whose data is missing (SHD without
its files) gets a panel saying how to get it. :func:`make_fig3_reference` draws the same figure from
the BRF authors' released curves (ECG and SHD, BRF / RF / ALIF, 5 runs each) without training.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gradscape.figures.curves import BUNDLED_CAPTION, bundled_curves, plot_curves
from gradscape.figures.plotting import TASK_LABELS, add_caption, message_panel, plt, save_figure
from gradscape.figures.stats import TABLE2_RULE, Curve

__all__ = ["make_fig3", "make_fig3_reference", "CHANCE"]

#: accuracy of always predicting the majority class (ECG: per step, test set) or a uniform guess
CHANCE = {"smnist": 10.0, "psmnist": 10.0, "ecg": 30.5, "shd": 5.0}


def make_fig3(
    out: Path,
    curves: Mapping[str, Mapping[str, Sequence[Curve]]],
    missing: Mapping[str, str],
    tasks: Sequence[str],
    caption: str,
) -> dict[str, Any]:
    """``curves[task][model]`` → fig3.png/.pdf; ``missing[task]`` is the reason a task has no runs."""
    fig, axes = plt.subplots(
        1, len(tasks), figsize=(4.2 * len(tasks), 3.8), layout="constrained", squeeze=False
    )
    summary: dict[str, Any] = {}
    for ax, task in zip(axes[0], tasks, strict=True):
        if task in missing:
            message_panel(ax, TASK_LABELS.get(task, task), missing[task])
            continue
        summary[task] = plot_curves(ax, curves[task], chance=CHANCE.get(task))
        ax.set_title(TASK_LABELS.get(task, task))
    fig.suptitle(
        "Fig. 3 — convergence of BRF vs ALIF (test accuracy, mean ± std over seeds; • = 95 % of final)"
    )
    add_caption(fig, caption)
    save_figure(fig, out, "fig3")
    return summary


def make_fig3_reference(out: Path, tasks: Sequence[str] = ("ecg", "shd")) -> list[Path]:
    """Fig. 3 from the authors' bundled curves → ``fig3.png/.pdf`` in ``out``; returns the
    paths. ECG's 400 epochs are drawn on a log axis (epoch + 1) so its first ten epochs stay visible."""
    groups = bundled_curves(tasks)
    fig, axes = plt.subplots(
        1, len(tasks), figsize=(5.6 * len(tasks), 4.2), layout="constrained", squeeze=False
    )
    for ax, task in zip(axes[0], tasks, strict=True):
        by_model = {m: groups[(task, m)] for m in ("brf", "rf", "alif") if (task, m) in groups}
        plot_curves(ax, by_model, chance=CHANCE.get(task), rule=TABLE2_RULE)
        runs = max(len(v) for v in by_model.values())
        epochs = int(max(c.epochs.max() for v in by_model.values() for c in v))
        if epochs > 50:
            ax.set_xscale("symlog", linthresh=10)
            ax.set_xlim(0, epochs)
            ax.set_xlabel("epoch (linear to 10, then log)")
        ax.set_title(f"{TASK_LABELS.get(task, task)} — authors' runs ({runs} per model, {epochs} epochs)")
        ax.set_ylim(0, 100)
        ax.plot([], [], "o", color="0.5", mec="k", label=f"• n₉₅ (Table 2 rule {TABLE2_RULE.name})")
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(
        "Fig. 3 (reference) — convergence of BRF, RF and ALIF from the authors' released learning curves"
    )
    add_caption(
        fig,
        f"{BUNDLED_CAPTION} Lines: mean test accuracy over runs; bands: ± 1 sample std; epoch 0 = before "
        f"training. Dot: mean over runs of the epoch at which a run first reaches 95 % of its final "
        f"accuracy, {TABLE2_RULE.describe()} (drawn at the curve step, i.e. n₉₅ + {1 - TABLE2_RULE.base}). "
        "RF = vanilla RF without reset. Dotted line: chance (ECG: majority class per step; SHD: 1/20).",
        width=150,
    )
    return save_figure(fig, out, "fig3")
