""":func:`derive`: trace a neuron's one ``step`` on the sympy backend and differentiate it.

The step runs with :class:`gradscape.models.ops.SympyOps`, so the equations analysed are the ones
that train. A spike comes out as ``Θ(a)`` (:class:`~gradscape.models.ops.Spike`) whose derivative is
the unevaluated surrogate slope ``σ(a) = SG(a)`` (:class:`~gradscape.models.ops.SurrogateSlope`);
piecewise ops (relu, clamp, where …) come out as ``Piecewise`` with PyTorch's derivative at the kink
(the table in :mod:`gradscape.models.ops`). The Jacobian itself is sympy's ``Matrix.jacobian``.
Parameter defaults and membrane indices come from :mod:`gradscape.gradflow.neuron_facts` (their one
owner).
"""

from __future__ import annotations

import dataclasses
import math
import time
import traceback
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import sympy
import torch

from gradscape.errors import UserError
from gradscape.gradflow.neuron_facts import membrane_indices, parameter_defaults
from gradscape.gradflow.symbolic.eigen import cut_surrogate
from gradscape.gradflow.symbolic.jacobian import WHICH, SymbolicJacobian
from gradscape.models.neurons import NEURONS, Neuron, get_neuron
from gradscape.models.ops import SympyOps
from gradscape.models.surrogates import Surrogate, get_surrogate

__all__ = ["derive", "derivation_times"]

# Printed names of well-known parameter fields (the paper's notation); others keep the field name.
_PRETTY = {
    "dt": "delta",
    "b_offset": "b'",
    "tau_mem": "tau_m",
    "tau_adp": "tau_a",
    "theta0": "vartheta_0",
}


def _exact(value: Any) -> Any:
    """Numbers as exact sympy numbers (a float is taken as the decimal it prints as: 0.01 → 1/100);
    booleans, strings, None and sympy objects unchanged."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise UserError(
                f"a symbolic analysis needs one number per parameter, got shape {tuple(value.shape)}"
            )
        value = value.item()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or value is None or isinstance(value, str | sympy.Basic):
        return value
    if isinstance(value, int):
        return sympy.Integer(value)
    if isinstance(value, float):
        return sympy.Rational(repr(value)) if math.isfinite(value) else sympy.Float(value)
    return value


def _is_number_constant(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _trace_error(neuron: Neuron, exc: BaseException) -> UserError:
    """A UserError naming the neuron and the line of its step that the sympy backend cannot run."""
    where = ""
    step_file = getattr(getattr(neuron.step, "__code__", None), "co_filename", None)
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if f.filename == step_file] or frames[1:]
    if mine:
        f = mine[-1]
        where = f" at {Path(f.filename).name}:{f.lineno} `{(f.line or '').strip()}`"
    hint = ""
    if isinstance(exc, TypeError) and ("Relational" in str(exc) or "truth value" in str(exc)):
        hint = (
            " (Python `if`/`and`/`or`/`min`/`max` on a trainable parameter, a symbolic constant or the "
            "state: use ops.where, ops.maximum, ops.minimum or ops.clamp)"
        )
    elif isinstance(exc, TypeError) and "convert expression to float" in str(exc):
        hint = (
            " (math.* on a trainable parameter, a symbolic constant or the state: use ops.cos, ops.exp, ...)"
        )
    return UserError(
        f"neuron {neuron.name!r} uses a function the sympy backend cannot trace{where}: "
        f"{type(exc).__name__}: {exc}{hint}. Write its step with the ops namespace only "
        f"(ops.exp, ops.cos, ops.sqrt, ops.abs, ops.tanh, ops.relu, ops.where, ops.spike, ...; "
        "see gradscape.models.ops.OPS_NAMES), not torch.*, math.* on parameters, or tensor methods"
    )


def derive(
    neuron: Neuron | str,
    *,
    symbolic_constants: bool | Collection[str] = False,
    params: Mapping[str, Any] | None = None,
    state: Mapping[str, Any] | None = None,
    x: Any = None,
    positive: bool = True,
    surrogate: str | Surrogate = "double-gaussian",
) -> SymbolicJacobian:
    """Trace ``neuron.step`` on the sympy backend and form J = ∂s_t/∂s_{t−1}, J_sub (σ → 0) and the
    membrane block (module docstring).

    ``neuron``: a :class:`Neuron`, a built-in name or ``path/to/file.py:Name``. Trainable
    parameters become symbols (positive ones with ``positive=True``, so |ω| = ω; else real).
    Numeric constants (δ = ``dt``, θ, γ_q, …) are exact numbers (0.01 → 1/100) unless
    ``symbolic_constants=True`` makes them symbols too, or a collection of field names makes only
    those symbols (booleans always stay values: they select the variant; a step that branches on a
    float constant, ``if p.leak > 0``, needs that constant to stay a number, so name the others).
    Constants reach the step as those exact sympy numbers: ``<``/``>`` comparisons, ``if`` on them
    and ``math.cos(p.phase)`` work as with floats, but ``p.dt == 0.01`` is False (1/100 is not the
    binary float 0.01) and ``isinstance(p.dt, float)`` fails: switch on a bool field instead.
    ``params`` fixes any parameter field to a number; ``state`` and ``x`` substitute numbers for
    s_{t−1} fields and the input in the displayed matrices *after* differentiating. ``surrogate``
    is what σ means when a numeric value is needed.

    Raises :class:`UserError` when the step cannot run on sympy (torch.* calls, tensor methods)
    or a parameter name is unknown.
    """
    neuron = get_neuron(neuron)
    params = dict(params or {})
    state = dict(state or {})
    fields = [f.name for f in dataclasses.fields(neuron.params)]
    unknown = set(params) - set(fields)
    if unknown:
        raise UserError(
            f"neuron {neuron.name!r} has no parameter(s) {sorted(unknown)}; its parameters are {fields}"
        )
    state_fields = neuron.state_fields
    unknown = set(state) - set(state_fields)
    if unknown:
        raise UserError(
            f"neuron {neuron.name!r} has no state field(s) {sorted(unknown)}; "
            f"its state is {list(state_fields)}"
        )

    if isinstance(symbolic_constants, bool):
        make_symbolic = set(fields) if symbolic_constants else set()
    else:
        make_symbolic = set(symbolic_constants)
        unknown = make_symbolic - set(fields)
        if unknown:
            raise UserError(
                f"neuron {neuron.name!r} has no parameter(s) {sorted(unknown)}; its parameters are {fields}"
            )
    defaults = parameter_defaults(neuron)
    taken = set(state_fields) | {"x_t"}
    real_syms: dict[str, sympy.Symbol] = {}
    pos_syms: dict[str, sympy.Symbol] = {}
    values: dict[str, Any] = {}
    constants: dict[str, Any] = {}
    for name in fields:
        if name in params:
            values[name] = constants[name] = _exact(params[name])
            continue
        default = defaults.get(name, dataclasses.MISSING)
        symbolic = name in neuron.trainable or (name in make_symbolic and _is_number_constant(default))
        if symbolic:
            pretty = _PRETTY.get(name, name)
            if pretty in taken:
                pretty = name
            taken.add(pretty)
            real_syms[name] = sympy.Symbol(pretty, real=True)
            pos_syms[name] = sympy.Symbol(pretty, positive=True) if positive else real_syms[name]
            values[name] = real_syms[name]
        elif default is dataclasses.MISSING:
            raise UserError(f"neuron {neuron.name!r}: parameter {name!r} has no value; give it in params")
        else:
            values[name] = constants[name] = _exact(default)

    s_syms = tuple(sympy.Symbol(f"{n}_{{t-1}}", real=True) for n in state_fields)
    x_sym = sympy.Symbol("x_t", real=True)
    trainable = {k: v for k, v in values.items() if k in neuron.trainable}
    others = {k: v for k, v in values.items() if k not in neuron.trainable}
    try:
        z, new_state = neuron.step(
            SympyOps(), x_sym, neuron.state(*s_syms), neuron.make_params(trainable, **others)
        )
        next_state = tuple(sympy.sympify(e) for e in new_state)
        z = sympy.sympify(z)
    except UserError:
        raise
    except Exception as exc:
        raise _trace_error(neuron, exc) from None
    if len(next_state) != len(s_syms):
        raise UserError(
            f"neuron {neuron.name!r}: step returned {len(next_state)} state fields, expected {len(s_syms)}"
        )

    J_real = sympy.Matrix(next_state).jacobian(s_syms)
    # Positive symbols (|ω| = ω …) for display and closed forms; numbers for state/x where given.
    to_pos = {real_syms[n]: pos_syms[n] for n in real_syms}
    point = {s: _exact(state[f]) for s, f in zip(s_syms, state_fields, strict=True) if f in state}
    if x is not None:
        point[x_sym] = _exact(x)

    def shown(e: Any) -> Any:
        e = e.xreplace(to_pos)
        return e.subs(point) if point else e

    J = shown(J_real)
    J_sub = cut_surrogate(J)
    idx = membrane_indices(neuron)
    return SymbolicJacobian(
        neuron_name=neuron.name,
        state_symbols=s_syms,
        param_symbols=pos_syms,
        input_symbol=x_sym,
        next_state=tuple(shown(e) for e in next_state),
        spike=shown(z),
        J=J,
        J_sub=J_sub,
        membrane_block=J_sub.extract(idx, idx),
        state_fields=state_fields,
        membrane_fields=tuple(state_fields[i] for i in idx),
        membrane_index=tuple(idx),
        constants=constants,
        positive=positive,
        surrogate=get_surrogate(surrogate),
        J_real=J_real,
        real_param_symbols=real_syms,
        next_state_real=next_state,
        spike_real=z,
    )


def derivation_times(names: Sequence[str] | None = None, *, timeout: float | None = 10.0) -> dict[str, float]:
    """Seconds for the full symbolic derivation of each neuron: :func:`derive`, eigenvalues and ρ of
    the membrane block, J_sub and J, and the LaTeX report (used by the benchmark). Default: every
    built-in spiking neuron (the LSTM's step uses tensor methods and cannot be traced)."""
    names = list(names) if names is not None else [n for n, neu in NEURONS.items() if neu.spiking]
    times: dict[str, float] = {}
    for name in names:
        t0 = time.perf_counter()
        jac = derive(name)
        for which in WHICH:
            jac.spectral_radius(which, timeout)
        jac.to_latex(timeout)
        times[name] = time.perf_counter() - t0
    return times
