"""What ``gradscape spectrum`` analyses: :class:`SpectrumJob` and its parts (the inputs of
:func:`gradscape.gradflow.job.run_spectrum`), and the parsers of their command-line spellings."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gradscape.errors import UserError
from gradscape.ranges import parse_range

__all__ = ["MapAxis", "MapSpec", "CheckpointSpec", "SpectrumJob", "parse_assignments"]


def _value(text: str) -> float | bool:
    low = text.strip().lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    value = float(text)
    if not math.isfinite(value):  # NaN/inf parameters give a NaN J: a typo, not a neuron's result
        raise ValueError(text)
    return value


def parse_assignments(items: Sequence[str] | None, what: str) -> dict[str, float | bool]:
    """``["omega=10", "b_offset=0.1"]`` (or comma-joined) → ``{"omega": 10.0, "b_offset": 0.1}``."""
    out: dict[str, float | bool] = {}
    for item in items or ():
        for part in str(item).split(","):
            if not part.strip():
                continue
            name, sep, val = part.partition("=")
            if not sep or not name.strip():
                raise UserError(f"--{what} {part!r}: write NAME=VALUE, e.g. --{what} omega=10")
            try:
                out[name.strip()] = _value(val)
            except ValueError:
                raise UserError(
                    f"--{what} {part!r}: {val.strip()!r} is not a finite number (or true/false); "
                    f"give a value such as {name.strip()}=10"
                ) from None
    return out


@dataclass(frozen=True)
class MapAxis:
    """One axis of a parameter map: ``n`` values from ``lo`` to ``hi`` (inclusive) of ``name``."""

    name: str
    lo: float
    hi: float
    n: int

    @property
    def values(self) -> np.ndarray:
        return np.linspace(self.lo, self.hi, self.n)

    def __str__(self) -> str:
        return f"{self.name}={self.lo:g}:{self.hi:g}:{self.n}"


@dataclass(frozen=True)
class MapSpec:
    """A spectral-radius map over two axes of the ``which`` matrix (membrane, sub or full)."""

    x: MapAxis
    y: MapAxis
    which: str = "membrane"

    @classmethod
    def parse(cls, spec: str, which: str = "membrane") -> MapSpec:
        """``"omega=0:99:200,b=-100:0:201"`` → a map spec (one-line errors say what to write)."""
        axes = []
        for part in spec.split(","):
            name, sep, rng = part.partition("=")
            if not sep:
                raise UserError(f"--map {part!r}: write NAME=LO:HI:N, e.g. omega=0:99:200")
            lo, hi, n = parse_range(
                rng, prefix=f"--map {part!r}", hint="write NAME=LO:HI:N, e.g. omega=0:99:200", min_num=2
            )
            axes.append(MapAxis(name.strip(), lo, hi, n))
        if len(axes) != 2:
            raise UserError(f"--map needs exactly two axes, got {len(axes)}: {spec!r}")
        return cls(axes[0], axes[1], which)

    @property
    def size(self) -> int:
        """Grid points."""
        return self.x.n * self.y.n

    def memory_bytes(self, k: int) -> int:
        """Estimated peak bytes of :func:`~gradscape.gradflow.parameter_map.spectral_radius_map` for
        k × k matrices: per point, float64 the two grid coordinates, about three copies of the k²
        matrix entries (the lambdified entries, the stacked matrices, the finite subset copied for
        ``eigvals``), k complex eigenvalues and their moduli, and ρ."""
        return self.size * 8 * (2 + 3 * k * k + 3 * k + 2)

    def __str__(self) -> str:
        return f"{self.x},{self.y}"


@dataclass(frozen=True)
class CheckpointSpec:
    """A trained model: run folder, .pt file or ``bundled:NAME``; ``model`` names its neuron where the
    file cannot tell (reference BRF vs RF)."""

    spec: str
    model: str | None = None


@dataclass(frozen=True)
class SpectrumJob:
    """What :func:`run_spectrum` analyses and where it writes (module docstring).

    ``neuron``: built-in name, ``path/file.py:Name`` or a Neuron (default: the first checkpoint's).
    ``params``/``state``: values at the evaluation point (``state`` empty: the checked zero state
    below threshold). ``input_current``: x_t there. ``checkpoints`` need ``task`` (its test split,
    ``samples`` a seeded subset, ``steps`` the first steps; ``trust_neuron_file`` opens a checkpoint's
    recorded neuron file without ``model`` naming it again); ``flow_samples`` of them (float64) give
    the gradient norms and ``lyapunov`` exponents unless ``flow`` is False. ``timeout``: sympy limit
    per eigenproblem, s. ``progress``: tqdm bars (None: only on a terminal).
    """

    out: Path
    neuron: Any = None
    params: Mapping[str, float | bool] = field(default_factory=dict)
    state: Mapping[str, float] = field(default_factory=dict)
    input_current: float = 0.0
    symbolic: bool = False
    map: MapSpec | None = None
    checkpoints: Sequence[CheckpointSpec] = ()
    trust_neuron_file: bool = False
    task: str | None = None
    data_dir: str | None = None
    samples: int | None = None
    steps: int | None = None
    flow_samples: int = 4
    lyapunov: int = 5
    flow: bool = True
    seed: int = 0
    timeout: float = 10.0
    device: str = "auto"
    progress: bool | None = None

    def check(self) -> None:
        """One :class:`UserError` line for a value no analysis can use (the command's flag types catch
        these first; this guards library calls)."""
        if self.samples is not None and self.samples < 1:
            raise UserError("--samples must be at least 1")
        if self.steps is not None and self.steps < 1:
            raise UserError("--steps must be at least 1")
        if self.flow_samples < 0 or self.lyapunov < 0:
            raise UserError("--flow-samples and --lyapunov must be 0 or more")
        if not math.isfinite(self.input_current):
            raise UserError(f"--input must be a finite number, got {self.input_current!r}")
        if not (math.isfinite(self.timeout) and self.timeout > 0):
            raise UserError(f"--timeout must be a finite number of seconds > 0, got {self.timeout!r}")
        if self.seed < 0:
            raise UserError(f"--seed must be an integer >= 0, got {self.seed!r}")
        for what, values in (("param", self.params), ("state", self.state)):
            for name, value in values.items():
                if not isinstance(value, bool) and not math.isfinite(value):
                    raise UserError(f"--{what} {name}={value!r}: give a finite number")

    def config(self) -> dict[str, Any]:
        """The resolved job as JSON-able values (recorded in result.json)."""
        neuron = self.neuron if self.neuron is None or isinstance(self.neuron, str) else self.neuron.name
        return {
            "neuron": neuron,
            "params": dict(self.params),
            "state": dict(self.state),
            "input": self.input_current,
            "symbolic": self.symbolic,
            "map": None if self.map is None else str(self.map),
            "map_which": "membrane" if self.map is None else self.map.which,
            "checkpoints": [asdict(c) for c in self.checkpoints],
            "trust_neuron_file": self.trust_neuron_file,
            "task": self.task,
            "data_dir": self.data_dir,
            "samples": self.samples,
            "steps": self.steps,
            "flow_samples": self.flow_samples,
            "lyapunov": self.lyapunov,
            "flow": self.flow,
            "seed": self.seed,
            "timeout": self.timeout,
            "out": str(self.out),
            "device": self.device,
        }
