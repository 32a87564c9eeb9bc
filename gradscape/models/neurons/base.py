"""The neuron protocol: one pure step function plus the facts needed to build, train and analyse it.

A neuron is a :class:`Neuron` record holding

* ``step(ops, x, state, params) -> (z, new_state)``: the update, written once against an ``ops``
  namespace (:mod:`gradscape.models.ops`). ``x`` is the input current, ``state`` a ``NamedTuple``,
  ``params`` a frozen dataclass; ``z`` the output (spikes, or activity for a rate neuron).
* ``state``: the ``NamedTuple`` class of the state (all fields start at 0).
* ``params``: the frozen-dataclass class of the parameters.
* ``init``: for each *trainable, per-neuron* parameter field, the distribution of its raw initial
  value (e.g. ``{"omega": Uniform(15, 50)}``); every other field of ``params`` is a constant taken
  from the dataclass default or from ``constants``.

Everything in :mod:`gradscape` (training, the compiled fast path, autograd Jacobians and the sympy
analysis) calls that one ``step``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor

from gradscape.errors import UserError

__all__ = [
    "Neuron",
    "Uniform",
    "Normal",
    "Constant",
    "Distribution",
    "parse_distribution",
]


@dataclass(frozen=True)
class Uniform:
    """U(low, high)."""

    low: float
    high: float

    def sample(self, shape: tuple[int, ...], generator: torch.Generator) -> Tensor:
        return torch.empty(shape).uniform_(self.low, self.high, generator=generator)

    def __str__(self) -> str:
        return f"U({self.low:g},{self.high:g})"


@dataclass(frozen=True)
class Normal:
    """N(mean, std²)."""

    mean: float
    std: float

    def sample(self, shape: tuple[int, ...], generator: torch.Generator) -> Tensor:
        return torch.empty(shape).normal_(self.mean, self.std, generator=generator)

    def __str__(self) -> str:
        return f"N({self.mean:g},{self.std:g})"


@dataclass(frozen=True)
class Constant:
    """A fixed initial value (still trainable)."""

    value: float

    def sample(self, shape: tuple[int, ...], generator: torch.Generator) -> Tensor:
        return torch.full(shape, float(self.value))

    def __str__(self) -> str:
        return f"{self.value:g}"


Distribution = Uniform | Normal | Constant


def parse_distribution(text: str | float | Distribution) -> Distribution:
    """``"U(15,50)"``, ``"N(20,5)"`` or a number → a distribution."""
    if isinstance(text, Uniform | Normal | Constant):
        return text
    if isinstance(text, int | float):
        return Constant(float(text))
    s = str(text).replace(" ", "")
    try:
        if s[:2] in ("U(", "N(") and s.endswith(")"):
            a, b = (float(v) for v in s[2:-1].split(","))
            return Uniform(a, b) if s[0] == "U" else Normal(a, b)
        return Constant(float(s))
    except ValueError:
        raise UserError(
            f"cannot read distribution {text!r}: write U(low,high), N(mean,std) or a number"
        ) from None


StepFn = Callable[[Any, Any, Any, Any], tuple[Any, Any]]


@dataclass(frozen=True)
class Neuron:
    """A neuron model: its step function and what is needed to instantiate it (see module doc)."""

    name: str
    step: StepFn
    state: type
    params: type
    init: Mapping[str, Distribution]
    constants: Mapping[str, Any] = field(default_factory=dict)
    spiking: bool = True
    #: width of the input current per neuron (an LSTM needs 4 gate currents).
    gates: int = 1
    #: the state field that carries the membrane (for gradient-flow analyses).
    membrane: tuple[str, ...] = ()
    #: raises :class:`UserError` when a parameter set is invalid (e.g. δω ≥ 1 with the boundary).
    validate: Callable[[Any], None] | None = None
    #: projects trainable tensors back into the valid set in place; returns the number clamped.
    project: Callable[[Any], Tensor] | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not (isinstance(self.state, type) and issubclass(self.state, tuple)):
            raise UserError(f"neuron {self.name!r}: 'state' must be a NamedTuple class")
        if not dataclasses.is_dataclass(self.params):
            raise UserError(f"neuron {self.name!r}: 'params' must be a frozen dataclass class")
        names = {f.name for f in dataclasses.fields(self.params)}
        unknown = (set(self.init) | set(self.constants)) - names
        if unknown:
            raise UserError(
                f"neuron {self.name!r}: {sorted(unknown)} are not fields of {self.params.__name__}"
            )

    @property
    def state_fields(self) -> tuple[str, ...]:
        return tuple(self.state._fields)

    @property
    def trainable(self) -> tuple[str, ...]:
        return tuple(self.init)

    def replace(self, **changes: Any) -> Neuron:
        return dataclasses.replace(self, **changes)

    def make_params(self, tensors: Mapping[str, Any], **overrides: Any) -> Any:
        """The params dataclass from trainable values ``tensors`` plus constants (and overrides)."""
        return self.params(**{**self.constants, **overrides, **dict(tensors)})

    def initial_state(self, like: Tensor) -> NamedTuple:
        """All-zero state with ``like``'s shape, dtype and device."""
        return self.state(*(torch.zeros_like(like) for _ in self.state_fields))

    def sample_init(
        self,
        size: int,
        generator: torch.Generator,
        overrides: Mapping[str, Distribution] | None = None,
    ) -> dict[str, Tensor]:
        """Raw initial values of the trainable parameters for ``size`` neurons."""
        dists = {**self.init, **(overrides or {})}
        return {k: parse_distribution(d).sample((size,), generator) for k, d in dists.items()}


def load_neuron_file(spec: str) -> Neuron:
    """Load a user's neuron from ``path/to/file.py:Name`` (``Name`` a :class:`Neuron`)."""
    path_s, _, attr = spec.rpartition(":")
    if not path_s or not attr:
        raise UserError(f"neuron file spec {spec!r} must look like path/to/file.py:Name")
    path = Path(path_s)
    if not path.is_file():
        raise UserError(f"neuron file {path} does not exist")
    mod_name = f"gradscape_user_neuron_{abs(hash(path.resolve()))}"
    try:
        module_spec = importlib.util.spec_from_file_location(mod_name, path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[mod_name] = module
        module_spec.loader.exec_module(module)
    except Exception as exc:
        raise UserError(f"neuron file {path} failed to import: {type(exc).__name__}: {exc}") from None
    obj = getattr(module, attr, None)
    if obj is None:
        raise UserError(f"neuron file {path} defines no {attr!r}")
    if not isinstance(obj, Neuron):
        raise UserError(
            f"{attr!r} in {path} is a {type(obj).__name__}, not a gradscape Neuron; "
            "wrap your step function in gradscape.models.Neuron(...)"
        )
    return obj
