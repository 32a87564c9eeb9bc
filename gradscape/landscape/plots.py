"""Figures of landscapes: the paper's Fig. 5 layout, 1-D curves, curvature-ratio maps, plotly HTML.

* 2-D: one column per model, shaded 3-D surfaces of f(α, β) in the top row, filled contour plots in
  the bottom row (centre θ* marked, diverged points crossed out, a trajectory ``path`` drawn when the
  result has one), the measures written under each contour panel.
* 1-D: f(α) with the accuracy on a twin axis, diverged points marked on the top edge.
* ``curvature_ratio`` (Li et al.'s |λ_min/λ_max|) as a heat map when a result holds one.
* plotly: interactive 3-D surfaces as one offline HTML file (:mod:`~gradscape.landscape.html`).

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
from gradscape.landscape.html import loss_label, surfaces_html
from gradscape.landscape.labels import caption
from gradscape.landscape.labels import clipped as _clipped

__all__ = [
    "render",
    "plot_surfaces",
    "plot_curves",
    "plot_curvature",
    "surfaces_html",
    "caption",
    "loss_label",
]


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
        _measures_under(ax2, measures[i] if measures else None, -0.16)
    return _captioned(fig, surfaces, 60 * n, (0, 0.04, 1, 0.95))


def _measures_under(ax: Any, measures: dict | None, y: float) -> None:
    """The panel's smoothness/convexity measures as a line of text under its axes."""
    text = _measure_text(measures)
    if text:
        ax.text(0.5, y, text, transform=ax.transAxes, ha="center", va="top", fontsize=8)


def _captioned(fig: plt.Figure, surfaces: Sequence[Any], width: int, rect: tuple[float, ...]) -> plt.Figure:
    """The settings caption of the first result as the figure's title, wrapped to ``width``."""
    fig.suptitle(textwrap.fill(caption(surfaces[0]), width), fontsize=9)
    fig.tight_layout(rect=rect)
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
        _measures_under(ax, measures[i] if measures else None, -0.2)
    return _captioned(fig, surfaces, 70 * n, (0, 0.05, 1, 0.9))


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
