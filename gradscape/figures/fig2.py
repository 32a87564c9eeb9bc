"""Figure 2: the datasets as the networks see them.

Top: an MNIST test image with pixel row r outlined in red; the sequential (S-MNIST, step t reads pixel
t of the row-major image) and permuted (PS-MNIST, step t reads pixel π(t)) sequences with the steps that
read row r outlined in red in both. Bottom: an ECG test sequence (QTDB) after level-crossing encoding
(4 channels: up/down level crossings of two leads) with its per-step labels; an SHD sample (700 channels,
4 ms bins) when the SHD files are present, otherwise a panel saying how to get them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.patches import Rectangle

from gradscape.errors import UserError
from gradscape.figures.plotting import add_caption, message_panel, plt, save_figure

__all__ = ["make_fig2", "ECG_CLASS_NAMES"]

ECG_CLASS_NAMES = ("P", "PQ", "QR", "RS", "ST", "TP")


def make_fig2(
    out: Path,
    *,
    row: int = 14,
    sample: int = 0,
    shd_data_dir: str | None = None,
    mnist_data_dir: str | None = None,
) -> dict[str, Any]:
    """Write fig2.png/.pdf; returns what was drawn (sample indices, whether SHD was present)."""
    from gradscape.models.datasets import load_task

    smnist = load_task("smnist", data_dir=mnist_data_dir)
    psmnist = load_task("psmnist", data_dir=mnist_data_dir)
    ecg = load_task("ecg")
    x_seq = smnist.test.inputs[sample, :, 0].numpy()
    x_perm = psmnist.test.inputs[sample, :, 0].numpy()
    perm = psmnist.permutation.numpy()
    label = int(smnist.test.targets[sample])
    source_index = int(smnist.test.indices[sample])
    np.testing.assert_allclose(x_perm, x_seq[perm])  # PS-MNIST reads the same image through π

    fig = plt.figure(figsize=(14, 8.5), layout="constrained")
    gs = fig.add_gridspec(3, 3, width_ratios=[0.8, 2.2, 2.2], height_ratios=[1, 1, 1.5])
    ax = fig.add_subplot(gs[0:2, 0])
    ax.imshow(x_seq.reshape(28, 28), cmap="gray_r", vmin=0, vmax=1)
    ax.add_patch(Rectangle((-0.5, row - 0.5), 28, 1, fill=False, ec="red", lw=2))
    ax.set_title(f"MNIST test image #{source_index} (label {label})")
    ax.set_xlabel("column")
    ax.set_ylabel("row")
    in_row = np.arange(784) // 28 == row
    for r, (name, seq, mark) in enumerate(
        (
            ("sequential (S-MNIST): step t reads pixel t", x_seq, in_row),
            ("permuted (PS-MNIST): step t reads pixel π(t)", x_perm, in_row[perm]),
        )
    ):
        ax = fig.add_subplot(gs[r, 1:])
        t = np.arange(784)
        ax.imshow(seq[None, :], aspect="auto", cmap="gray_r", vmin=0, vmax=1, extent=(-0.5, 783.5, 0, 1))
        ax.plot(t, seq, color="tab:blue", lw=0.6)
        steps = np.nonzero(mark)[0]
        if r == 0:  # the row is one contiguous block of 28 steps
            ax.add_patch(Rectangle((steps[0] - 0.5, 0), len(steps), 1.02, fill=False, ec="red", lw=2))
        else:
            for s in steps:
                ax.add_patch(Rectangle((s - 0.5, 0), 1, 1.02, fill=False, ec="red", lw=1.0))
        ax.set_xlim(-0.5, 783.5)
        ax.set_ylim(0, 1.02)
        ax.set_title(f"{name}; red: the {len(steps)} steps that read row {row}")
        ax.set_xlabel("time step t")
        ax.set_ylabel("pixel intensity")

    ax = fig.add_subplot(gs[2, 0:2])
    ex = ecg.test.inputs[sample].numpy()
    ey = ecg.test.targets[sample].numpy()
    T = ex.shape[0]
    for c in range(ex.shape[1]):
        on = np.nonzero(ex[:, c] > 0)[0]
        ax.vlines(on, c + 0.1, c + 0.9, color="k", lw=0.8)
    cmap = plt.get_cmap("tab10")
    ax.imshow(
        ey[None, :],
        aspect="auto",
        cmap=cmap,
        vmin=0,
        vmax=10,
        alpha=0.35,
        extent=(-0.5, T - 0.5, -1.2, -0.2),
        interpolation="nearest",
    )
    ax.set_yticks([-0.7, 0.5, 1.5, 2.5, 3.5], ["label", "channel 0", "channel 1", "channel 2", "channel 3"])
    ax.set_ylim(-1.3, 4)
    ax.set_xlim(-0.5, T - 0.5)
    ax.set_xlabel("time step t")
    handles = [Rectangle((0, 0), 1, 1, color=cmap(i), alpha=0.5) for i in range(len(ECG_CLASS_NAMES))]
    ax.legend(
        handles,
        ECG_CLASS_NAMES,
        ncol=6,
        fontsize=7,
        loc="lower left",
        bbox_to_anchor=(0, 1.08),
        title="per-step label",
        title_fontsize=7,
    )
    ax.set_title(f"ECG (QTDB test #{int(ecg.test.indices[sample])}): level-crossing spikes and labels")

    ax = fig.add_subplot(gs[2, 2])
    shd_present = False
    try:
        shd = load_task("shd", data_dir=shd_data_dir)
    except UserError as exc:
        message_panel(ax, "SHD (not available)", str(exc))
    else:
        shd_present = True
        xs = shd.test.inputs[sample].float().numpy()
        t_idx, ch = np.nonzero(xs)
        ax.scatter(t_idx * 4, ch, s=0.5, color="k")
        ax.set_xlabel("time (ms, 4 ms bins)")
        ax.set_ylabel("channel")
        ax.set_title(f"SHD test #{int(shd.test.indices[sample])} (class {int(shd.test.targets[sample])})")
    fig.suptitle("Fig. 2 — datasets: S-MNIST, PS-MNIST, ECG and SHD")
    add_caption(
        fig,
        f"MNIST: {smnist.info.get('note', '')}; PS-MNIST permutation: "
        f"{psmnist.info.get('permutation_source', psmnist.info.get('permutation_seed', 'seeded'))}. "
        f"ECG: {ecg.info.get('note', '')}.",
    )
    save_figure(fig, out, "fig2")
    return {
        "mnist_index": source_index,
        "ecg_index": int(ecg.test.indices[sample]),
        "shd_present": shd_present,
    }
