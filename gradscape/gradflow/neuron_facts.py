"""What the gradient-flow analyses read off a :class:`~gradscape.models.neurons.Neuron` record.

One owner for two facts that the numeric route (:mod:`gradscape.gradflow.jacobians`), the symbolic
route (:mod:`gradscape.gradflow.symbolic`), the parameter maps and the evaluation point all need:

* :func:`membrane_indices`: the positions of ``neuron.membrane`` within the state fields (the rows
  and columns of the membrane block M of J = ∂s_t/∂s_{t−1}); every field when none is declared.
* :func:`parameter_defaults`: the value each parameter field takes when the user gives none, i.e.
  the neuron's ``constants``, else the dataclass default (or default factory). Trainable fields
  without either have no default; :func:`parameter_values` then takes the mean of their initial
  distribution and says so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from gradscape.errors import UserError
from gradscape.models.neurons import Neuron
from gradscape.models.neurons.base import Constant, Normal, Uniform

__all__ = ["membrane_indices", "parameter_defaults", "init_mean", "parameter_values"]


def membrane_indices(neuron: Neuron) -> list[int]:
    """Positions of ``neuron.membrane`` within the state fields (all fields if none declared)."""
    fields = neuron.state_fields
    if not neuron.membrane:
        return list(range(len(fields)))
    missing = [m for m in neuron.membrane if m not in fields]
    if missing:
        raise UserError(f"neuron {neuron.name!r}: membrane fields {missing} are not state fields {fields}")
    return [fields.index(m) for m in neuron.membrane]


def parameter_defaults(neuron: Neuron) -> dict[str, Any]:
    """Field → value for every parameter field that has one without the user: the neuron's
    ``constants`` first, then the dataclass default or default factory. Fields with neither (usually
    the trainable ones) are absent."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(neuron.params):
        if f.name in neuron.constants:
            out[f.name] = neuron.constants[f.name]
        elif f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def init_mean(dist: Any) -> float:
    """The mean of an initial distribution: (low + high)/2 for U, the mean for N, the value itself."""
    if isinstance(dist, Uniform):
        return 0.5 * (dist.low + dist.high)
    if isinstance(dist, Normal):
        return dist.mean
    if isinstance(dist, Constant):
        return dist.value
    return float(dist)


def parameter_values(neuron: Neuron, given: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Every parameter field of ``neuron`` as a value: ``given``, else :func:`parameter_defaults`,
    else (trainable fields) the mean of the initial distribution. Returns the values and the names
    that fell back to the initialisation mean."""
    names = [f.name for f in dataclasses.fields(neuron.params)]
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise UserError(f"{neuron.name} has no parameter(s) {unknown}; its parameters are {names}")
    defaults = parameter_defaults(neuron)
    out: dict[str, Any] = {}
    defaulted = []
    for name in names:
        if name in given:
            out[name] = given[name]
        elif name in defaults:
            out[name] = defaults[name]
        elif name in neuron.init:
            out[name] = init_mean(neuron.init[name])
            defaulted.append(name)
        else:
            raise UserError(
                f"{neuron.name}: parameter {name!r} has no default; give it with --param {name}=VALUE"
            )
    return out, defaulted
