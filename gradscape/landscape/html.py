"""The interactive landscape page: plotly 3-D surfaces, one panel per model with its own colour
scale and colour bar, titled α / β / loss axes and a camera that shows the whole surface, written as
one offline, self-contained HTML file."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

import numpy as np

from gradscape.landscape.labels import caption
from gradscape.landscape.labels import clipped as _clipped

__all__ = ["surfaces_html", "loss_label"]

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
