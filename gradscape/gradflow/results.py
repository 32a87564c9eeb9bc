"""What :func:`gradscape.gradflow.job.run_spectrum` returns: every number it reported and the files
it wrote (:class:`SpectrumResult`, with :class:`ParameterMap` and one :class:`CheckpointSpectra` per
checkpoint). ``to_dict`` gives result.json, ``summary`` the one-line ``--json`` summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gradscape.gradflow.evaluation_point import PointSpectrum
from gradscape.gradflow.jobspec import MapSpec

__all__ = ["ParameterMap", "CheckpointSpectra", "SpectrumResult"]


@dataclass
class ParameterMap:
    """ρ over the grid: ``rho`` (len(y_values), len(x_values)); ``boundary`` the drawn curve (x, y)."""

    spec: MapSpec
    rho: np.ndarray
    constants: dict[str, Any]
    title: str
    boundary: tuple[np.ndarray, np.ndarray] | None = None
    boundary_label: str | None = None

    def summary(self) -> dict[str, Any]:
        finite = self.rho[np.isfinite(self.rho)]
        return {
            "x": self.spec.x.name,
            "y": self.spec.y.name,
            "which": self.spec.which,
            "shape": list(self.rho.shape),
            "rho_min": float(finite.min()) if finite.size else None,
            "rho_max": float(finite.max()) if finite.size else None,
            "frac_gt_1": float((finite > 1).mean()) if finite.size else None,
            "constants": self.constants,
        }

    def plot_data(self) -> dict[str, Any]:
        """What :func:`gradscape.gradflow.plots.write_html` draws."""
        return {
            "x_name": self.spec.x.name,
            "y_name": self.spec.y.name,
            "x_values": self.spec.x.values,
            "y_values": self.spec.y.values,
            "rho": self.rho,
            "title": self.title,
            "boundary": self.boundary,
        }


@dataclass
class CheckpointSpectra:
    """One checkpoint's per-neuron spectra (``stats``, see ``checkpoint_spectra``) and gradient flow."""

    label: str
    path: str
    model: str
    model_config: dict[str, Any]
    epoch: Any
    stats: dict[str, Any]
    gradient_flow: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "label": self.label,
            "path": self.path,
            "model": self.model,
            "model_config": self.model_config,
            "epoch": self.epoch,
            **self.stats,
        }
        if self.gradient_flow is not None:
            out["gradient_flow"] = self.gradient_flow
        return out

    def brief(self) -> dict[str, Any]:
        tr = self.stats["trajectory"]
        out = {
            "label": self.label,
            "model": self.model,
            "membrane_rho": tr["membrane_rho"],
            "full_rho": tr["full_rho"],
            "sigma_max": tr["sigma_max"],
        }
        if "q0" in self.stats:
            out["membrane_rho_q0"] = self.stats["q0"]["membrane_rho"]
        if self.gradient_flow is not None:
            out["lyapunov_median"] = self.gradient_flow["lyapunov_exponents_per_step"]["median"]
            out["gradient_norm_median_at_k"] = self.gradient_flow["median_norm_at_k"]
        return out


@dataclass
class SpectrumResult:
    """Everything :func:`run_spectrum` computed and wrote (``files`` relative to ``out``)."""

    out: Path
    config: dict[str, Any]
    provenance: dict[str, Any]
    point: PointSpectrum
    symbolic: dict[str, Any]
    parameter_map: ParameterMap | None = None
    data: dict[str, Any] | None = None
    checkpoints: list[CheckpointSpectra] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)

    @property
    def result_path(self) -> Path:
        return self.out / "result.json"

    def to_dict(self) -> dict[str, Any]:
        """The content of result.json."""
        out: dict[str, Any] = {
            "config": self.config,
            "provenance": self.provenance,
            "files": self.files,
            "evaluation_point": self.point.to_dict(),
            "symbolic": self.symbolic,
        }
        if self.parameter_map is not None:
            out["map"] = self.parameter_map.summary()
        if self.data is not None:
            out["data"] = self.data
            out["checkpoints"] = [c.to_dict() for c in self.checkpoints]
        return out

    def summary(self) -> dict[str, Any]:
        """The one-line ``--json`` summary (``spectral_radius`` = the sub-threshold value)."""
        p = self.point
        out: dict[str, Any] = {
            "neuron": p.neuron,
            "point": p.point,
            "spectral_radius": p.spectral_radius_subthreshold,
            "spectral_radius_subthreshold": p.spectral_radius_subthreshold,
            "spectral_radius_at_state": p.spectral_radius_at_state,
            "spectral_radius_full": p.spectral_radius_full_subthreshold,
            "spectral_radius_full_at_state": p.spectral_radius_full_at_state,
            "eigenvalues": p.eigenvalues_subthreshold,
            "eigenvalues_at_state": p.eigenvalues_at_state,
            "eigenvalues_full": p.eigenvalues_full_subthreshold,
            "zero_state_fires": p.zero_state_fires,
            "fires": p.fires,
            "diverged": p.diverged,
            "params": p.params,
            "state": p.state,
        }
        if self.data is not None:
            out["checkpoints"] = [c.brief() for c in self.checkpoints]
        out["result"] = str(self.result_path)
        return out
