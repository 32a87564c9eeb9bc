"""Figures of landscapes: the paper's Fig. 5 layout, 1-D curves, curvature-ratio maps, plotly HTML.

* 2-D: one column per model, shaded 3-D surfaces of f(α, β) in the top row, filled contour plots in
  the bottom row (centre θ* marked, diverged points crossed out, a trajectory ``path`` drawn when the
  result has one), the measures written under each contour panel.
* 1-D: f(α) with the accuracy on a twin axis, diverged points marked on the top edge.
* ``curvature_ratio`` (Li et al.'s |λ_min/λ_max|) as a heat map when a result holds one.
* plotly: interactive 3-D surfaces as one offline, self-contained HTML file.

Points not computed or diverged (non-finite loss) are masked everywhere. PNG and PDF are written.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from gradscape.io import save_figure

__all__ = [
    "render",
    "plot_surfaces",
    "plot_curves",
    "plot_curvature",
    "surfaces_html",
    "caption",
    "loss_label",
]


def caption(surface: Any) -> str:
    """One line of settings for a figure title."""
    cfg = surface.meta.get("config", {})
    d = surface.meta.get("directions", {})
    what = "f(α, β) = L(θ* + αd + βe)" if surface.grid.dims == 2 else "f(α) = L(θ* + αd)"
    parts = [
        what,
        f"params {', '.join(cfg.get('params', []))}",
        f"{d.get('kind', 'given')} directions"
        + (f", {d['normalization']}-normalised" if d.get("normalization") else "")
        + (", e ⊥ d" if d.get("orthogonalized") else ""),
        f"seed {cfg.get('seed', d.get('seed', '?'))}",
    ]
    if cfg.get("task"):
        parts.append(f"{cfg['task']} {cfg.get('split', '')} ({cfg.get('samples', '?')} samples)")
    if cfg.get("steps"):
        parts.append(f"first {cfg['steps']} steps")
    parts.append(f"grid {surface.grid.spec}")
    return "; ".join(parts)


def _measure_text(m: dict[str, Any] | None) -> str:
    """A few lines from a measures report (:func:`gradscape.landscape.measures.surface_measures`)."""
    if not m:
        return ""
    lines = []

    def num(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v)

    for key, name in (
        ("range", "range"),
        ("roughness", "roughness"),
        ("local_minima", "local minima"),
        ("psd_fraction", "PSD fraction"),
    ):
        if num(m.get(key)):
            lines.append(f"{name}: {m[key]:.3g}")
    pc = m.get("principal_curvatures")
    if (
        isinstance(pc, dict)
        and isinstance(pc.get("centre"), dict)
        and num(pc["centre"].get("abs_min_over_max"))
    ):
        lines.append(f"|κmin/κmax| at θ*: {pc['centre']['abs_min_over_max']:.3g}")
    bw = m.get("basin_width")
    if isinstance(bw, dict):
        vals = [
            f"{ax} {bw[ax]['mean']:.3g}"
            for ax in ("alpha", "beta")
            if isinstance(bw.get(ax), dict) and num(bw[ax].get("mean"))
        ]
        if vals:
            lines.append("basin width: " + ", ".join(vals))
    if num(m.get("diverged")) and m["diverged"]:
        lines.append(f"diverged points: {m['diverged']}")
    return "\n".join(lines)


def _clipped(surface: Any, vmax: float | None) -> np.ndarray:
    f = surface.masked_loss()
    return np.minimum(f, vmax) if vmax is not None else f


def plot_surfaces(
    surfaces: Sequence[Any], measures: Sequence[dict | None] | None = None, *, vmax: float | None = None
) -> plt.Figure:
    """Fig. 5 layout for 2-D results: surfaces (top row), contours (bottom row), measures below."""
    n = len(surfaces)
    fig = plt.figure(figsize=(4.6 * n, 9.6))
    for i, s in enumerate(surfaces):
        a, b = s.alphas, s.betas
        A, B = np.meshgrid(a, b, indexing="ij")
        f = _clipped(s, vmax)
        finite = np.isfinite(f)
        lo = float(np.nanmin(f)) if finite.any() else 0.0
        hi = float(np.nanmax(f)) if finite.any() else 1.0
        ax = fig.add_subplot(2, n, i + 1, projection="3d")
        if finite.any():
            ax.plot_surface(
                A,
                B,
                np.ma.masked_invalid(f).filled(np.nan),
                cmap="viridis",
                vmin=lo,
                vmax=hi,
                rstride=1,
                cstride=1,
                linewidth=0,
                antialiased=True,
                shade=True,
            )
        ax.set_xlabel("α (units of d)")
        ax.set_ylabel("β (units of e)")
        ax.set_zlabel("loss")
        ax.set_title(f"{s.label}: loss surface")
        ax2 = fig.add_subplot(2, n, n + i + 1)
        if finite.any() and hi > lo:
            cs = ax2.contourf(A, B, np.ma.masked_invalid(f), levels=30, cmap="viridis", vmin=lo, vmax=hi)
            ax2.contour(A, B, np.ma.masked_invalid(f), levels=15, colors="k", linewidths=0.4, alpha=0.6)
            fig.colorbar(cs, ax=ax2, label="loss")
        div = s.diverged
        if div.any():
            ax2.plot(A[div], B[div], "rx", ms=4, label=f"diverged ({int(div.sum())})")
        ax2.plot([0], [0], "w*", ms=12, mec="k", label=f"θ* (loss {s.center['loss']:.3g})")
        path = s.extras.get("path")
        if path is not None and np.asarray(path).ndim == 2:
            p = np.asarray(path)
            ax2.plot(p[:, 0], p[:, 1], "r.-", lw=1, label="trajectory")
        ax2.set_xlabel("α (units of d)")
        ax2.set_ylabel("β (units of e)")
        ax2.set_title(f"{s.label}: contours")
        ax2.set_aspect("equal", adjustable="box")
        ax2.legend(loc="upper right", fontsize=7)
        text = _measure_text(measures[i] if measures else None)
        if text:
            ax2.text(0.5, -0.16, text, transform=ax2.transAxes, ha="center", va="top", fontsize=8)
    fig.suptitle(textwrap.fill(caption(surfaces[0]), 60 * n), fontsize=9)
    fig.tight_layout(rect=(0, 0.04, 1, 0.95))
    return fig


def plot_curves(
    surfaces: Sequence[Any], measures: Sequence[dict | None] | None = None, *, vmax: float | None = None
) -> plt.Figure:
    """1-D results: loss f(α) (left axis) and accuracy (right axis), one panel per model."""
    n = len(surfaces)
    fig, axes = plt.subplots(1, n, figsize=(4.8 * n, 4.2), squeeze=False)
    for i, s in enumerate(surfaces):
        ax = axes[0, i]
        a = s.alphas
        f = _clipped(s, vmax)
        ax.plot(a, f, "C0-", label="loss")
        ax.plot([0], [s.center["loss"]], "k*", ms=10, label="θ*")
        div = s.diverged
        if div.any():
            top = np.nanmax(f) if np.isfinite(f).any() else 1.0
            ax.plot(a[div], np.full(int(div.sum()), top), "rx", label="diverged")
        ax.set_xlabel("α (units of d)")
        ax.set_ylabel("loss", color="C0")
        tw = ax.twinx()
        acc = np.where(s.computed & np.isfinite(s.loss), s.accuracy, np.nan)
        tw.plot(a, acc, "C1--", label="accuracy")
        tw.set_ylabel("accuracy (%)", color="C1")
        ax.set_title(s.label)
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = tw.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="upper center")
        text = _measure_text(measures[i] if measures else None)
        if text:
            ax.text(0.5, -0.2, text, transform=ax.transAxes, ha="center", va="top", fontsize=8)
    fig.suptitle(textwrap.fill(caption(surfaces[0]), 70 * n), fontsize=9)
    fig.tight_layout(rect=(0, 0.05, 1, 0.9))
    return fig


def plot_curvature(surfaces: Sequence[Any]) -> plt.Figure | None:
    """Heat maps of |λ_min/λ_max| for results holding ``curvature_ratio`` (None if none do)."""
    have = [s for s in surfaces if "curvature_ratio" in s.extras]
    if not have:
        return None
    fig, axes = plt.subplots(1, len(have), figsize=(4.6 * len(have), 4.2), squeeze=False)
    for ax, s in zip(axes[0], have, strict=True):
        r = np.asarray(s.extras["curvature_ratio"], dtype=float)
        if s.grid.dims == 2:
            im = ax.pcolormesh(s.alphas, s.betas, np.ma.masked_invalid(r).T, cmap="magma", shading="nearest")
            fig.colorbar(im, ax=ax, label="|λmin / λmax|")
            ax.set_ylabel("β (units of e)")
        else:
            ax.plot(s.alphas, r, "C3.-")
            ax.set_ylabel("|λmin / λmax|")
        ax.set_xlabel("α (units of d)")
        ax.set_title(f"{s.label}: Hessian eigenvalue ratio")
    fig.suptitle(textwrap.fill("Li et al.'s convexity map; " + caption(have[0]), 60 * len(have)), fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    return fig


PANEL_WIDTH = 480  # pixels per 3-D panel of surfaces_html


def _metric(surface: Any) -> tuple[str, str]:
    """(name, unit) of the surface's metric: ``meta["metric"]`` / ``meta["metric_unit"]`` when the
    caller recorded them; otherwise read from the recorded objective of
    :func:`gradscape.landscape.api.recurrent_landscape` (the NLL ℓ = −log softmax(o)_y, in nats; see
    :mod:`gradscape.models.objectives`), else ("loss", "")."""
    meta = surface.meta
    if isinstance(meta.get("metric"), str) and meta["metric"]:
        return meta["metric"], str(meta.get("metric_unit") or "")
    obj = meta.get("config", {}).get("objective")
    if not isinstance(obj, dict):
        return "loss", ""
    if obj.get("mode") == "last":
        return "label-last NLL", "nats"
    how = "summed" if obj.get("reduction") == "sum" else "mean"
    start = int(obj.get("sub_seq_length") or 0)
    return f"{how} per-step NLL{f' from step {start}' if start else ''}", "nats"


def loss_label(surface: Any) -> str:
    """The metric's name and unit, e.g. "loss: label-last NLL (nats)" (colour-bar and 1-D axis titles)."""
    name, unit = _metric(surface)
    text = name if name == "loss" else f"loss: {name}"
    return f"{text} ({unit})" if unit else text


def _range_text(f: np.ndarray) -> tuple[float, float, str]:
    """(lowest, highest, "loss lo … hi (range r)") over the finite drawn values."""
    finite = np.isfinite(f)
    if not finite.any():
        return 0.0, 1.0, "no finite loss values"
    lo, hi = float(np.nanmin(f)), float(np.nanmax(f))
    return lo, hi, f"loss {lo:.4g} … {hi:.4g} (range {hi - lo:.3g})"


def surfaces_html(surfaces: Sequence[Any], *, vmax: float | None = None) -> str:
    """Interactive plotly figure of the results as one self-contained HTML page (works offline).

    2-D results: one 3-D surface f(α, β) per model side by side, each panel with its own colour
    scale (cmin/cmax = that surface's finite minimum/maximum) and its own colour bar beside it, axes
    titled α (units of d), β (units of e) and the metric (:func:`loss_label`), explicit axis ranges
    that enclose the whole surface and a camera far enough out to show the whole box; the panel title
    gives the model label and the loss range. 1-D results: f(α) curves. The settings
    (:func:`caption`) are the page title. plotly.js is inlined (no CDN, no MathJax) so the page
    renders without a network.
    """
    import plotly.graph_objects as go

    two_d = [s for s in surfaces if s.grid.dims == 2]
    note = f"; loss clipped at {vmax:g}" if vmax is not None else ""
    if two_d:
        n = len(two_d)
        fig = go.Figure()
        annotations = []
        for i, s in enumerate(two_d):
            f = _clipped(s, vmax)
            lo, hi, rng = _range_text(f)
            pad = 0.03 * (hi - lo) if hi > lo else 0.5
            name = "scene" if i == 0 else f"scene{i + 1}"
            unit = _metric(s)[1]
            z_title = f"loss ({unit})" if unit else "loss"  # short: 3-D text past the scene edge is cut off
            # a panel is 1/n of the page width: the 3-D scene, then its colour bar (about 100 px of a
            # panel's PANEL_WIDTH) so that no bar overlaps the next scene
            w = 1.0 / n
            x0, right = i * w + 0.06 * w, i * w + 0.80 * w
            fig.add_trace(
                go.Surface(
                    x=s.alphas,
                    y=s.betas,
                    z=f.T,
                    scene=name,
                    name=s.label,
                    colorscale="Viridis",
                    cmin=lo if hi > lo else lo - 0.5,
                    cmax=hi if hi > lo else hi + 0.5,
                    showscale=True,
                    colorbar={
                        "x": right + 0.01 * w,
                        "xanchor": "left",
                        "y": 0.45,
                        "len": 0.7,
                        "thickness": 14,
                        "title": {"text": loss_label(s), "side": "right"},
                        "tickformat": ".3~g",
                    },
                    hovertemplate="α %{x:.3g}<br>β %{y:.3g}<br>loss %{z:.4g}<extra>" + s.label + "</extra>",
                )
            )
            fig.update_layout(
                {
                    name: {
                        "domain": {"x": [x0, right], "y": [0.0, 0.9]},
                        "xaxis": {
                            "title": {"text": "α (units of d)"},
                            "range": [float(s.alphas.min()), float(s.alphas.max())],
                        },
                        "yaxis": {
                            "title": {"text": "β (units of e)"},
                            "range": [float(s.betas.min()), float(s.betas.max())],
                        },
                        "zaxis": {"title": {"text": z_title}, "range": [lo - pad, hi + pad]},
                        "aspectmode": "manual",
                        "aspectratio": {"x": 1.0, "y": 1.0, "z": 1.0},
                        # far enough out that the whole box and its axis titles stay inside the scene
                        "camera": {
                            "eye": {"x": 2.1, "y": 2.1, "z": 1.6},
                            "center": {"x": 0, "y": 0, "z": -0.1},
                        },
                    }
                }
            )
            div = int(s.diverged.sum())
            missing = int((~s.computed).sum())
            extra = "".join(
                [f", {div} diverged" if div else "", f", {missing} not computed" if missing else ""]
            )
            annotations.append(
                {
                    "text": f"<b>{s.label}</b><br>{rng}{extra}",
                    "x": (x0 + right) / 2,
                    "y": 0.93,
                    "xref": "paper",
                    "yref": "paper",
                    "xanchor": "center",
                    "yanchor": "bottom",
                    "showarrow": False,
                    "font": {"size": 13},
                }
            )
        # fixed pixels, not the window's width: a gl3d scene fits the box to its height, so a narrower
        # scene (a small window) would cut the box's sides off
        fig.update_layout(
            annotations=annotations,
            width=PANEL_WIDTH * n + 20,
            height=600,
            margin={"l": 10, "r": 10, "t": 110, "b": 10},
        )
        text = caption(two_d[0]) + "; each panel has its own colour scale" + note
    else:
        fig = go.Figure()
        for s in surfaces:
            fig.add_trace(go.Scatter(x=s.alphas, y=_clipped(s, vmax), mode="lines+markers", name=s.label))
        fig.update_layout(xaxis_title="α (units of d)", yaxis_title=loss_label(surfaces[0]))
        text = caption(surfaces[0]) + note
    fig.update_layout(
        title={
            "text": "<br>".join(textwrap.wrap(text, 160)),
            "font": {"size": 11},
            "x": 0.01,
            "xanchor": "left",
        }
    )
    return fig.to_html(include_plotlyjs=True, include_mathjax=False, full_html=True)


def render(
    surfaces: Sequence[Any],
    out_dir: str | Path,
    *,
    measures: Sequence[dict | None] | None = None,
    vmax: float | None = None,
) -> list[Path]:
    """Write ``landscape.png/.pdf/.html`` (and ``curvature.png/.pdf`` when present) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dims = {s.grid.dims for s in surfaces}
    written: list[Path] = []
    groups = [[i for i, s in enumerate(surfaces) if s.grid.dims == d] for d in sorted(dims)]
    for idx in groups:
        group = [surfaces[i] for i in idx]
        ms = [measures[i] for i in idx] if measures else None
        fig = (
            plot_surfaces(group, ms, vmax=vmax)
            if group[0].grid.dims == 2
            else plot_curves(group, ms, vmax=vmax)
        )
        stem = out / ("landscape" if len(groups) == 1 else f"landscape-{group[0].grid.dims}d")
        written += save_figure(fig, stem, tight=False)
    cfig = plot_curvature(surfaces)
    if cfig is not None:
        written += save_figure(cfig, out / "curvature", tight=False)
    html = out / "landscape.html"
    from gradscape.io import atomic_write_text

    atomic_write_text(html, surfaces_html(surfaces, vmax=vmax))
    written.append(html)
    return written
