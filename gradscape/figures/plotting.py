"""Shared plotting helpers: atomic PNG/PDF/HTML output, display names and colours, captions."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from gradscape.io import atomic_write
from gradscape.io import save_figure as io_save_figure

__all__ = [
    "plt",
    "TASK_LABELS",
    "MODEL_LABELS",
    "model_label",
    "model_color",
    "save_figure",
    "save_html",
    "add_caption",
    "message_panel",
]

TASK_LABELS = {"smnist": "S-MNIST", "psmnist": "PS-MNIST", "ecg": "ECG", "shd": "SHD"}
MODEL_LABELS = {"brf": "BRF", "rf": "RF", "alif": "ALIF", "lif": "LIF", "lstm": "LSTM"}
_COLORS = {
    "brf": "tab:blue",
    "rf": "tab:red",
    "alif": "tab:orange",
    "lstm": "tab:green",
    "lif": "tab:purple",
    "rf+rp": "tab:pink",
    "rf+sr": "tab:olive",
    "rf+db": "tab:cyan",
    "rf+rp+sr": "tab:brown",
    "rf+rp+db": "tab:purple",
    "rf+sr+db": "tab:gray",
}


def model_label(model: str) -> str:
    """``brf`` → ``BRF``, ``rf+rp+db`` → ``RF+RP+DB``."""
    return MODEL_LABELS.get(model, model.upper())


def model_color(model: str) -> str:
    return _COLORS.get(model, "black")


def save_figure(fig: Any, out: Path, name: str, *, dpi: int = 150) -> list[Path]:
    """Write ``name.png`` and ``name.pdf`` into ``out`` atomically and close the figure."""
    return io_save_figure(fig, Path(out) / name, dpi=dpi)


def save_html(fig: Any, out: Path, name: str) -> Path:
    """An offline, self-contained plotly HTML file (plotly.js embedded)."""
    path = Path(out) / f"{name}.html"
    atomic_write(path, lambda p: fig.write_html(str(p), include_plotlyjs=True, full_html=True))
    return path


def add_caption(fig: Any, text: str, *, width: int = 160) -> None:
    """A caption under the axes stating the settings a figure was made with."""
    wrapped = "\n".join(textwrap.wrap(text, width=width))
    fig.text(0.01, -0.01, wrapped, ha="left", va="top", fontsize=7, family="monospace")


def message_panel(ax: Any, title: str, text: str) -> None:
    """An empty panel that says why it is empty and what to do."""
    ax.set_axis_off()
    ax.set_title(title)
    ax.text(
        0.5,
        0.5,
        "\n".join(textwrap.wrap(text, 48)),
        ha="center",
        va="center",
        fontsize=8,
        transform=ax.transAxes,
        bbox={"boxstyle": "round", "fc": "0.95", "ec": "0.6"},
    )
