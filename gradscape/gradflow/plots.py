"""Figures of the gradient-flow analysis: PNG (matplotlib, Agg) and self-contained plotly HTML.

* :func:`plot_parameter_map`: ρ over a grid of two parameters with the ρ = 1 contour and, where it
  applies, the divergence boundary p(ω) = (−1 + sqrt(1 − (δω)²))/δ.
* :func:`plot_rho_distributions`: histograms of per-neuron-step ρ for several trained models.
* :func:`plot_gradient_norms`: ‖∂L/∂s_{T−k}‖ against k (steps back) for several models on one axis.
* :func:`write_html`: the same figures as one interactive offline HTML page.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import TwoSlopeNorm

from gradscape.io import atomic_write, save_figure

__all__ = ["plot_parameter_map", "plot_rho_distributions", "plot_gradient_norms", "write_html"]

_UNITS = {
    "omega": "ω (rad/s)",
    "b_offset": "b′ (1/s)",
    "b": "b (1/s)",
    "tau_mem": "τ_m (steps)",
    "tau_adp": "τ_a (steps)",
    "dt": "δ (s)",
}


def axis_label(name: str) -> str:
    return _UNITS.get(name, name)


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    return save_figure(fig, path.parent / path.stem, formats=("png",), dpi=130)[0]


def plot_parameter_map(
    path: str | Path,
    x_name: str,
    x_values: np.ndarray,
    y_name: str,
    y_values: np.ndarray,
    rho: np.ndarray,
    *,
    title: str,
    boundary: tuple[np.ndarray, np.ndarray] | None = None,
    boundary_label: str = "divergence boundary p(ω)",
) -> Path:
    """Heat map of ρ (rows = y, columns = x), the ρ = 1 contour, and an optional boundary curve."""
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    finite = rho[np.isfinite(rho)]
    vmax = float(np.quantile(finite, 0.99)) if finite.size else 1.0
    vmin = float(np.quantile(finite, 0.01)) if finite.size else 0.0
    # white at ρ = 1: blue where gradients shrink, red where they grow
    norm = TwoSlopeNorm(vcenter=1.0, vmin=min(vmin, 1 - 1e-3), vmax=max(vmax, 1 + 1e-3))
    im = ax.pcolormesh(x_values, y_values, rho, shading="auto", cmap="coolwarm", norm=norm)
    fig.colorbar(im, ax=ax, label="spectral radius ρ")
    if finite.size and finite.min() < 1 < finite.max():
        ax.contour(x_values, y_values, rho, levels=[1.0], colors="k", linewidths=1.0)
    if boundary is not None:
        bx, by = boundary
        ax.plot(bx, by, "w--", lw=1.5, label=boundary_label)
    ax.set_xlim(float(np.min(x_values)), float(np.max(x_values)))
    ax.set_ylim(float(np.min(y_values)), float(np.max(y_values)))
    ax.set_xlabel(axis_label(x_name))
    ax.set_ylabel(axis_label(y_name))
    ax.set_title(title, fontsize=9)
    handles, labels = ax.get_legend_handles_labels()
    from matplotlib.lines import Line2D

    handles.append(Line2D([0], [0], color="k", lw=1))
    labels.append("ρ = 1 (contour)")
    ax.legend(handles, labels, loc="lower left", fontsize=8)
    return _save(fig, path)


def plot_rho_distributions(
    path: str | Path, series: Mapping[str, np.ndarray], *, title: str, xlabel: str = "spectral radius ρ"
) -> Path:
    """Overlaid histograms (density) of ρ per model/quantity, with the ρ = 1 line."""
    fig, ax = plt.subplots(figsize=(7.0, 4.2))
    values = [np.asarray(v, dtype=float).ravel() for v in series.values()]
    allv = np.concatenate([v[np.isfinite(v)] for v in values]) if values else np.array([1.0])
    lo, hi = float(np.quantile(allv, 0.001)), float(max(allv.max(), 1.0))
    bins = np.linspace(lo, hi + 1e-3 * (hi - lo + 1e-9), 120)
    for name, v in zip(series, values, strict=True):
        v = v[np.isfinite(v)]
        ax.hist(
            v, bins=bins, density=True, histtype="step", lw=1.4, label=f"{name} (median {np.median(v):.5f})"
        )
    ax.axvline(1.0, color="k", ls=":", lw=1, label="ρ = 1")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density over neuron-steps")
    ax.set_yscale("log")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    return _save(fig, path)


def plot_gradient_norms(path: str | Path, curves: Mapping[str, np.ndarray], *, title: str) -> Path:
    """‖∂L/∂s_{T−k}‖ against k: median over samples (line) and the inter-quartile band, per model.

    ``curves[name]`` has shape (K+1, B): row k = steps back, column = sample.
    """
    fig, ax = plt.subplots(figsize=(7.0, 4.2))
    for name, c in curves.items():
        c = np.asarray(c, dtype=float)
        k = np.arange(c.shape[0])
        med = np.median(c, axis=1)
        line = ax.plot(k, med, lw=1.4, label=name)[0]
        if c.shape[1] > 1:
            q1, q3 = np.quantile(c, [0.25, 0.75], axis=1)
            ax.fill_between(k, q1, q3, color=line.get_color(), alpha=0.2, lw=0)
    ax.set_yscale("log")
    ax.set_xlabel("steps back k (time steps)")
    ax.set_ylabel("‖∂L/∂s_{T−k}‖₂ (median over samples, IQR band)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    return _save(fig, path)


def write_html(
    path: str | Path,
    *,
    title: str,
    parameter_map: Mapping[str, Any] | None = None,
    rho: Mapping[str, np.ndarray] | None = None,
    gradients: Mapping[str, np.ndarray] | None = None,
    max_points: int = 20000,
    seed: int = 0,
) -> Path:
    """One offline, self-contained plotly page (plotly.js inlined) with the available figures.

    Histogram inputs larger than ``max_points`` are represented by a seeded random subsample (said in
    the trace name) to keep the page small.
    """
    import plotly.graph_objects as go

    figs = []
    if parameter_map is not None:
        m = parameter_map
        fig = go.Figure(
            go.Heatmap(
                x=m["x_values"],
                y=m["y_values"],
                z=m["rho"],
                colorscale="RdBu_r",
                zmid=1.0,
                colorbar={"title": "ρ"},
            )
        )
        fig.add_trace(
            go.Contour(
                x=m["x_values"],
                y=m["y_values"],
                z=m["rho"],
                showscale=False,
                contours={"start": 1, "end": 1, "size": 1, "coloring": "none"},
                line={"color": "black"},
                name="ρ = 1",
            )
        )
        if m.get("boundary") is not None:
            bx, by = m["boundary"]
            fig.add_trace(
                go.Scatter(
                    x=bx,
                    y=by,
                    mode="lines",
                    line={"dash": "dash", "color": "white"},
                    name="divergence boundary p(ω)",
                )
            )
        fig.update_layout(
            title=m["title"], xaxis_title=axis_label(m["x_name"]), yaxis_title=axis_label(m["y_name"])
        )
        figs.append(fig)
    if rho:
        rng = np.random.default_rng(seed)
        fig = go.Figure()
        for name, v in rho.items():
            v = np.asarray(v, dtype=float).ravel()
            v = v[np.isfinite(v)]
            label = name
            if v.size > max_points:
                v = rng.choice(v, max_points, replace=False)
                label += f" (random {max_points} of the neuron-steps)"
            fig.add_trace(
                go.Histogram(x=v, name=label, histnorm="probability density", opacity=0.6, nbinsx=120)
            )
        fig.add_vline(x=1.0, line_dash="dot")
        fig.update_layout(
            barmode="overlay",
            title="ρ of per-neuron J_t",
            xaxis_title="spectral radius ρ",
            yaxis_title="density over neuron-steps",
            yaxis_type="log",
        )
        figs.append(fig)
    if gradients:
        fig = go.Figure()
        for name, c in gradients.items():
            c = np.asarray(c, dtype=float)
            fig.add_trace(
                go.Scatter(x=np.arange(c.shape[0]), y=np.median(c, axis=1), mode="lines", name=name)
            )
        fig.update_layout(
            title="gradient norm against steps back (median over samples)",
            xaxis_title="steps back k",
            yaxis_title="‖∂L/∂s_{T−k}‖₂",
            yaxis_type="log",
        )
        figs.append(fig)
    body = (
        "\n".join(f.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, f in enumerate(figs))
        or "<p>nothing to plot</p>"
    )
    html = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body><h2>{title}</h2>\n{body}\n</body></html>\n"
    )
    return atomic_write(path, lambda p: p.write_text(html, encoding="utf-8"))
