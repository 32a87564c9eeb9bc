"""The neuron protocol: one pure step function plus the facts needed to build, train and analyse it.

A neuron is a :class:`Neuron` record holding

* ``step(ops, x, state, params) -> (z, new_state)``: the update, written once against an ``ops``
  namespace (:mod:`gradscape.models.ops`). ``x`` is the input current, ``state`` a ``NamedTuple``,
  ``params`` a frozen dataclass; ``z`` the output (spikes, or activity for a rate neuron).
* ``state``: the ``NamedTuple`` class of the state (all fields start at 0).
* ``params``: the frozen-dataclass class of the parameters.
* ``init``: for each *trainable, per-neuron* parameter field, the distribution of its raw initial
  value (e.g. ``{"omega": Uniform(15, 50)}``, :mod:`~gradscape.models.neurons.distributions`); every
  other field of ``params`` is a constant taken from the dataclass default or from ``constants``.

Everything in :mod:`gradscape` (training, the compiled fast path, autograd Jacobians and the sympy
analysis) calls that one ``step``. What the protocol promises is checked in
:mod:`~gradscape.models.neurons.checks` (the record on construction, the step by
:func:`~gradscape.models.neurons.checks.validate_neuron`); a user's neuron *file* is loaded by
:func:`gradscape.models.neurons.files.load_neuron_file`.
"""

from __future__ import annotations

import contextvars
import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from torch import Tensor

from gradscape.errors import UserError
from gradscape.models.neurons.checks import declaration_problems, validate_neuron
from gradscape.models.neurons.distributions import (
    Constant,
    Distribution,
    Normal,
    Uniform,
    parse_distribution,
)

if TYPE_CHECKING:
    from gradscape.models.neurons.files import NeuronFileSpec

# the distributions and validate_neuron are re-exported: neuron modules import them from here
__all__ = [
    "Neuron",
    "StepFn",
    "Uniform",
    "Normal",
    "Constant",
    "Distribution",
    "parse_distribution",
    "validate_neuron",
]

StepFn = Callable[[Any, Any, Any, Any], tuple[Any, Any]]

#: set while a neuron file executes: its ``Neuron(...)`` records are checked afterwards by
#: :func:`~gradscape.models.neurons.files.load_neuron_file`, whose messages can then name the file
#: and the object.
_DEFER_CHECKS: contextvars.ContextVar[bool] = contextvars.ContextVar("gradscape_defer", default=False)


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
    #: the file (with its sha256) this neuron was loaded from; ``None`` for a neuron built in code.
    source: NeuronFileSpec | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if _DEFER_CHECKS.get():
            return
        problem = next(declaration_problems(self), None)
        if problem is not None:
            raise UserError(f"neuron {self.name!r}: {problem}")

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
