"""The files beside a landscape result: ``measures.json``, and re-rendering saved results.

``measures.json`` (one per model, next to its ``landscape.npz``): label, result file name, the
centre values (key ``center``, as in the result file), point counts, the measures of
:func:`~gradscape.landscape.measures.surface_measures`, the resolved settings, the directions'
description and provenance (and ``curvature_centre`` when the job computed it).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gradscape.errors import UserError
from gradscape.io import atomic_write_json
from gradscape.landscape.surface import Surface, load_surface

__all__ = ["measures_of", "measures_report", "write_measures", "collect_results", "replot"]


def measures_of(surface: Surface, rise: float = 0.10) -> dict[str, Any]:
    """The surface's smoothness and convexity measures (:func:`surface_measures`) with f(θ*) as centre."""
    from gradscape.landscape.measures import surface_measures

    return surface_measures(
        surface.alphas, surface.betas, surface.masked_loss(), rise=rise, centre_loss=surface.centre["loss"]
    )


def measures_report(surface: Surface, measures: dict[str, Any], result: str | Path) -> dict[str, Any]:
    """The content of ``measures.json`` (module docstring) for ``surface`` stored in ``result``."""
    report = {
        "label": surface.label,
        "result": Path(result).name,
        "center": surface.centre,
        "points": int(surface.computed.size),
        "computed": int(surface.computed.sum()),
        "diverged": int(surface.diverged.sum()),
        "measures": measures,
        "settings": surface.meta.get("config", {}),
        "directions": surface.meta.get("directions", {}),
        "provenance": surface.meta.get("provenance", {}),
    }
    if "curvature_centre" in surface.meta:
        report["curvature_centre"] = surface.meta["curvature_centre"]
    return report


def write_measures(path: Path, result: Path, surface: Surface, measures: dict[str, Any]) -> Path:
    """Write :func:`measures_report` to ``path`` (atomically)."""
    atomic_write_json(path, measures_report(surface, measures, result))
    return path


def collect_results(items: Sequence[str | Path]) -> list[Path]:
    """Result files named directly, or found as ``*/landscape.npz`` (or ``landscape.npz``) in folders."""
    paths: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(p.glob("*/landscape.npz")) or sorted(p.glob("landscape.npz"))
            if not found:
                raise UserError(f"{p} holds no landscape results (*/landscape.npz)")
            paths.extend(found)
        elif p.is_file():
            paths.append(p)
        else:
            raise UserError(f"landscape result {p} does not exist")
    return paths


def _stored_measures(path: Path) -> dict[str, Any] | None:
    """The measures in a ``measures.json`` (one line naming a damaged file)."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(
            f"{path} is damaged ({type(exc).__name__}); delete it and the measures are computed afresh"
        ) from None
    if not isinstance(report, dict):
        raise UserError(f"{path} is not a measures report; delete it and the measures are computed afresh")
    return report.get("measures")


def replot(
    items: Sequence[str | Path], out: str | Path | None = None, vmax: float | None = None
) -> list[Path]:
    """Re-render saved results side by side into ``out`` (default: the folder above the first one),
    with the measures stored beside each result (computed afresh where there are none)."""
    from gradscape.io import output_folder
    from gradscape.landscape.plots import render

    if not items:
        raise UserError("landscape plot needs result files or folders: gradscape landscape plot RESULT…")
    paths = collect_results(items)
    surfaces = [load_surface(p) for p in paths]
    folder = output_folder(out) if out else paths[0].parent.parent  # checked before drawing
    measures = []
    for p, s in zip(paths, surfaces, strict=True):
        m = p.parent / "measures.json"
        measures.append(_stored_measures(m) if m.is_file() else measures_of(s))
    return render(surfaces, folder, measures=measures, vmax=vmax)
