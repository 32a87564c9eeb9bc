"""What a landscape job is made of: the typed job (:class:`LandscapeJob` and its parts) and its result.

:func:`gradscape.landscape.job.run_landscape` runs a job; the command line, the demo and the Fig. 5
pipeline build one. Every field that defines the result is recorded in the result files' config.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gradscape.landscape.surface import Surface

__all__ = [
    "DIRECTION_KINDS",
    "Resume",
    "ModelEntry",
    "DataSpec",
    "DirectionSpec",
    "CurvatureSpec",
    "LandscapeJob",
    "ModelLandscape",
    "LandscapeResult",
]

DIRECTION_KINDS = ("random", "hessian", "checkpoints", "pca")
#: How an existing result file is treated: ``no`` overwrite it; ``yes`` continue it (a different
#: configuration is refused); ``cache`` reuse a complete one as it is, continue a partial one with the
#: same configuration, start over otherwise (the figures pipeline's cache).
Resume = Literal["no", "yes", "cache"]


@dataclass(frozen=True)
class ModelEntry:
    """One model: a checkpoint (file, run folder or ``bundled:NAME``), the neuron where the file
    cannot tell (reference BRF vs RF) or a neuron file ``path.py:Name``, a label (default the
    checkpoint's: the bundled name, else the neuron's) and, optionally, its own result file instead
    of ``OUT/LABEL/landscape.npz``."""

    checkpoint: str | Path
    model: str | None = None
    label: str | None = None
    result: Path | None = None


@dataclass(frozen=True)
class DataSpec:
    """The data the loss is measured on: a seeded subset of ``samples`` sequences (None = all) of a
    task split, in batches, optionally cut to the first ``steps`` time steps."""

    task: str
    split: Literal["train", "val", "test"] = "train"
    samples: int | None = 1000
    subset_seed: int | None = None  # None: the job's seed
    batch_size: int = 256
    steps: int | None = None
    data_dir: str | Path | None = None
    data_seed: int = 0  # the task's train/val split
    permutation: str | Path | int | None = None  # PS-MNIST pixel order (see load_task)


@dataclass(frozen=True)
class DirectionSpec:
    """Which directions (:data:`DIRECTION_KINDS`) over which parameters (``--params`` globs)."""

    kind: str = "random"
    params: tuple[str, ...] | None = None
    normalization: str = "filter"
    orthogonalize: bool = False
    through: tuple[str, ...] = ()  # kind "checkpoints": 1 (line) or 2 (plane) more checkpoints
    trajectory: tuple[str, ...] = ()  # kind "pca": checkpoints saved along the training run


@dataclass(frozen=True)
class CurvatureSpec:
    """Curvature of the (surrogate) Hessian: ``ratio_map`` = |λ_min/λ_max| at every grid point
    (expensive: two Lanczos runs per point), ``centre`` = λ_max, λ_min at θ* only; ``tol`` None =
    each function's default (1e-4 for the map, 1e-6 at θ*)."""

    ratio_map: bool = False
    centre: bool = False
    method: str = "lanczos"
    tol: float | None = None
    maxiter: int | None = None

    def kwargs(self) -> dict[str, Any]:
        extra = {} if self.tol is None else {"tol": self.tol}
        return {"method": self.method, "maxiter": self.maxiter, **extra}


@dataclass(frozen=True)
class LandscapeJob:
    """Everything that defines a landscape run (recorded in every result file's config)."""

    models: tuple[ModelEntry, ...]
    data: DataSpec
    out: Path
    directions: DirectionSpec = DirectionSpec()
    grid: str = "-1:1:51"
    dims: int = 2
    seed: int = 0  # directions (and the data subset unless data.subset_seed is given)
    curvature: CurvatureSpec = CurvatureSpec()
    device: str = "auto"
    dtype: Literal["float32", "float64"] = "float32"
    chunk_size: int | None = None
    sequential: bool = False
    resume: Resume = "no"
    rise: float = 0.10  # basin width threshold of the measures, a fraction of the range
    write_measures: bool = True
    render: bool = True
    vmax: float | None = None
    config: Mapping[str, Any] = field(default_factory=dict)  # caller's further config (compared)
    meta: Mapping[str, Any] = field(default_factory=dict)  # caller's further metadata
    progress: bool = True
    trust_neuron_file: bool = False  # open checkpoints of neuron files without naming the file again


@dataclass(frozen=True)
class ModelLandscape:
    """One model's surface, measures, curvature (None when not asked for) and written files."""

    label: str
    surface: Surface
    measures: dict[str, Any]
    curvature: dict[str, Any] | None
    files: tuple[Path, ...]


@dataclass(frozen=True)
class LandscapeResult:
    """Every model's landscape, the figures drawn, and all files written (rank 0; empty elsewhere)."""

    models: tuple[ModelLandscape, ...]
    figures: tuple[Path, ...]

    @property
    def surfaces(self) -> dict[str, Surface]:
        return {m.label: m.surface for m in self.models}

    @property
    def measures(self) -> dict[str, dict[str, Any]]:
        return {m.label: m.measures for m in self.models}

    @property
    def curvature(self) -> dict[str, dict[str, Any] | None]:
        return {m.label: m.curvature for m in self.models}

    @property
    def files(self) -> list[Path]:
        return [f for m in self.models for f in m.files] + list(self.figures)
