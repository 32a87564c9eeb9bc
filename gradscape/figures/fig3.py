"""Figure 3: learning curves (test accuracy per epoch, mean ± std over seeds), BRF vs ALIF, per task.

A dot marks the first epoch at which the mean curve reaches 95 % of its final accuracy; a task whose
data is missing (SHD without its files) gets a panel saying how to get it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gradscape.figures.curves import plot_curves
from gradscape.figures.plotting import TASK_LABELS, add_caption, message_panel, plt, save_figure
from gradscape.figures.stats import Curve

__all__ = ["make_fig3", "CHANCE"]

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
