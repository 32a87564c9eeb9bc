"""Figure 4: which of BRF's additions carries the convergence benefit, and BRF vs RF, LSTM and ALIF.

Top: S-MNIST learning curves of vanilla RF, each of the refractory period (RP), smooth reset (SR) and
divergence boundary (DB) alone, each pair, and all three (BRF). Bottom: S-MNIST and PS-MNIST curves of
BRF, RF, a non-spiking LSTM and ALIF. A diverged run is drawn up to its divergence and marked ``×``.
:func:`make_fig4_reference` draws the bottom row's only released artifact: the authors' five PS-MNIST
vanilla-RF curves, which stop after the epoch-0 row (the runs diverged in their first epoch).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gradscape.figures.curves import BUNDLED_CAPTION, bundled_curves, plot_curves
from gradscape.figures.plotting import (
    TASK_LABELS,
    add_caption,
    message_panel,
    model_color,
    model_label,
    plt,
    save_figure,
)
from gradscape.figures.stats import Curve

__all__ = ["make_fig4", "make_fig4_reference"]


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
        ax.set_title(f"{TASK_LABELS.get(task, task)}: {', '.join(model_label(m) for m in groups)}")
    fig.suptitle(
        "Fig. 4 — convergence of RF variants and baselines (test accuracy, mean ± std; • = 95 % of final)"
    )
    add_caption(fig, caption)
    save_figure(fig, out, "fig4")
    return summary


def make_fig4_reference(out: Path) -> list[Path]:
    """Fig. 4 bottom from the authors' bundled curves → ``fig4.png/.pdf`` in ``out``.

    S-MNIST: no released curves (a panel says so). PS-MNIST: the five vanilla-RF runs hold only the
    epoch-0 (untrained) test accuracy; each is drawn as a point, with mean ± std, and marked
    "diverged after epoch 0"."""
    runs = bundled_curves(("psmnist",)).get(("psmnist", "rf"), [])
    fig, axes = plt.subplots(
        1, 2, figsize=(11, 4.2), layout="constrained", gridspec_kw={"width_ratios": [1, 1.8]}
    )
    message_panel(
        axes[0],
        "S-MNIST: BRF, RF, LSTM, ALIF",
        "No artifact: the authors released no S-MNIST learning curves (only the trained models, "
        "bundled:smnist-brf|rf|alif).",
    )
    ax = axes[1]
    colour = model_color("rf")
    acc = np.array([c.test_acc[0] for c in runs], dtype=float)
    # Five runs share epoch 0: spread them sideways so each point can be seen.
    x = np.linspace(-0.15, 0.15, len(acc)) if len(acc) > 1 else np.zeros(len(acc))
    ax.plot(
        x,
        acc,
        "o",
        color=colour,
        mec="k",
        ms=7,
        label="RF runs " + ", ".join(f"{c.seed}: {a:.2f} %" for c, a in zip(runs, acc, strict=True)),
        zorder=5,
    )
    if len(acc) > 1:
        ax.errorbar(
            [0.35], [acc.mean()], yerr=[acc.std(ddof=1)], fmt="s", color="k", capsize=4,
            label=f"mean ± std: {acc.mean():.2f} ± {acc.std(ddof=1):.2f} %",
        )  # fmt: skip
    ax.axhline(10.0, color="0.6", ls=":", lw=0.8, label="chance (10 %)")
    ax.axvspan(0.6, 5, color=colour, alpha=0.08, lw=0)
    ax.text(
        2.8, 17, "diverged after epoch 0\n(no epoch ≥ 1 logged in any run)", ha="center", va="center",
        color=colour, fontsize=10, fontweight="bold",
    )  # fmt: skip
    ax.set_xlim(-0.5, 5)
    ax.set_ylim(0, 30)
    ax.set_xticks(range(6))
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{TASK_LABELS['psmnist']}: vanilla RF, authors' runs ({len(acc)})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")
    fig.suptitle("Fig. 4 bottom (reference) — the authors' released curves: vanilla RF diverges on PS-MNIST")
    add_caption(
        fig,
        f"{BUNDLED_CAPTION} PS-MNIST vanilla RF (b = +|b|, no sustain-oscillation term), runs 0–4: each "
        "file holds only the epoch-0 row (untrained network): the runs diverged in their first training "
        "epoch and nothing after epoch 0 was logged. The BRF, LSTM and ALIF curves of the paper's "
        "Fig. 4 bottom were not released.",
        width=150,
    )
    return save_figure(fig, out, "fig4")
