"""Checking a neuron record against the protocol of :mod:`gradscape.models.neurons.base`.

Each problem is one line saying what is wrong and what to write instead:

* ``step`` is a function of exactly ``(ops, x, state, params)``;
* ``state`` is a ``NamedTuple`` class, ``params`` a dataclass class whose defaults are numbers
  (``int``, ``float`` or ``bool``; a ``str``, ``None`` or list default is rejected);
* the ``init`` keys are parameter fields (not constants, not bool switches), the ``constants``
  are numbers for parameter fields, every field without a default is trainable or a constant;
* the ``membrane`` fields are state fields;
* one call of ``step`` with :class:`~gradscape.models.ops.TorchOps` on the zero state, zero input
  and the sampled initial parameters returns ``(z, new_state)`` with ``new_state`` an instance of
  ``state`` (or a ``NamedTuple`` with exactly its fields in the same order: fields are read by
  position) and ``z`` and every state field tensors of the state's shape. Its values are not
  judged: a step that produces NaN loads (a diverging neuron is a result, not an error).

:func:`declaration_problems` reads the record only (``Neuron(...)`` runs it on construction);
:func:`validate_neuron` adds the one call of ``step``.
"""

from __future__ import annotations

import dataclasses
import inspect
import numbers
import traceback
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from gradscape.errors import UserError
from gradscape.models.neurons.distributions import parse_distribution

if TYPE_CHECKING:
    from gradscape.models.neurons.base import Neuron

__all__ = ["declaration_problems", "validate_neuron"]


def _one_line(text: Any) -> str:
    return " ".join(str(text).split())


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real)


def _fields_text(names: Any) -> str:
    return ", ".join(names) or "none"


def _number_hint(name: str, value: Any) -> str:
    """What to write instead of a non-number default ``value`` of field ``name``."""
    if isinstance(value, str):
        try:
            return f"write {name}: float = {float(value)!r} (a number, not a string)"
        except ValueError:
            pass
    if value is None:
        return (
            f"write {name}: float = <number>, or leave out the default and list {name!r} in init "
            "if it is trainable"
        )
    return f"write {name}: float = <number> (one number per parameter; int, float or bool)"


def declaration_problems(n: Neuron) -> Iterator[str]:
    """What in the record ``n`` contradicts the protocol, as 'what is wrong; what to write' lines."""
    if not callable(n.step):
        yield (
            f"'step' is a {type(n.step).__name__}, not a function; give "
            "step=<a function step(ops, x, state, params) -> (z, new_state)>"
        )
        return
    try:
        sig = inspect.signature(n.step)
    except (TypeError, ValueError):  # a builtin without a signature: the call below decides
        sig = None
    if sig is not None:
        try:
            sig.bind(None, None, None, None)
        except TypeError:
            fn = getattr(n.step, "__name__", "step")
            yield (
                f"step function {fn}{sig} must take exactly four arguments (ops, x, state, params); "
                f"write def {fn}(ops, x, state, params)"
            )
            return
    st = n.state
    if not (isinstance(st, type) and issubclass(st, tuple) and hasattr(st, "_fields")):
        yield f"'state' must be a NamedTuple class (class State(NamedTuple): u: Any), not {_describe(st)}"
        return
    if not st._fields:
        yield f"state {st.__name__} has no fields; give it at least one (u: Any)"
        return
    P = n.params
    if not (isinstance(P, type) and dataclasses.is_dataclass(P)):
        yield (
            "'params' must be a frozen dataclass class (@dataclass(frozen=True) class Params: ...), "
            f"not {_describe(P)}"
        )
        return
    pfields = {f.name: f for f in dataclasses.fields(P)}
    for f in pfields.values():
        if f.default_factory is not dataclasses.MISSING:
            yield (
                f"parameter {P.__name__}.{f.name} has a default_factory; parameter defaults must be "
                f"numbers: {_number_hint(f.name, None)}"
            )
        elif f.default is not dataclasses.MISSING and not _is_number(f.default):
            yield (
                f"parameter default {P.__name__}.{f.name} = {f.default!r} is a "
                f"{type(f.default).__name__}, not a number; {_number_hint(f.name, f.default)}"
            )
    if not isinstance(n.init, Mapping):
        yield f"'init' must be a dict {{field: distribution}}, not a {type(n.init).__name__}"
        return
    if not isinstance(n.constants, Mapping):
        yield f"'constants' must be a dict {{field: number}}, not a {type(n.constants).__name__}"
        return
    for key, dist in n.init.items():
        if key not in pfields:
            where = f" ({key!r} is a state field)" if key in st._fields else ""
            yield (
                f"init key {key!r} is not a field of {P.__name__}{where}; init names the trainable "
                f"parameter fields ({_fields_text(pfields)}): add {key}: Any to {P.__name__} or "
                "remove it from init"
            )
        elif key in n.constants:
            yield (f"{key!r} is both trainable (in init) and a constant (in constants); remove it from one")
        elif isinstance(pfields[key].default, bool):
            yield (
                f"init key {key!r} is the bool switch {P.__name__}.{key}; a switch cannot be trained: "
                "remove it from init"
            )
        else:
            try:
                parse_distribution(dist)
            except UserError:
                yield (
                    f"init[{key!r}] = {dist!r} is not a distribution; write Uniform(low, high), "
                    "Normal(mean, std), Constant(value) or a number"
                )
    for key, value in n.constants.items():
        if key not in pfields:
            yield (
                f"constant {key!r} is not a field of {P.__name__} (fields: {_fields_text(pfields)}); "
                f"add {key}: float = ... to {P.__name__} or remove it from constants"
            )
        elif not _is_number(value):
            yield (
                f"constant {key} = {value!r} is a {type(value).__name__}, not a number; write "
                f"constants={{{key!r}: <number>}} (int, float or bool)"
            )
    for name, f in pfields.items():
        bare = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if bare and name not in n.init and name not in n.constants:
            yield (
                f"parameter {P.__name__}.{name} has no default and is not in init; give it a default "
                f"({name}: float = <number>) or make it trainable (init={{{name!r}: Normal(mean, std)}})"
            )
    mem = n.membrane
    if isinstance(mem, str):
        yield f"membrane={mem!r} is a string; write membrane=({mem!r},) (a tuple of state fields)"
    elif not isinstance(mem, tuple | list) or not all(isinstance(m, str) for m in mem):
        yield f"membrane={mem!r} must be a tuple of state-field names, e.g. membrane=({st._fields[0]!r},)"
    else:
        for m in mem:
            if m not in st._fields:
                yield (
                    f"membrane field {m!r} is not a field of {st.__name__} "
                    f"(fields: {_fields_text(st._fields)}); write membrane=({st._fields[0]!r},) with "
                    "the fields that carry the membrane potential"
                )
    if isinstance(n.gates, bool) or not isinstance(n.gates, int) or n.gates < 1:
        yield f"gates={n.gates!r} must be a positive int (input currents per neuron; 1 for most neurons)"
    if not isinstance(n.spiking, bool):
        yield f"spiking={n.spiking!r} must be True or False"
    for hook in ("validate", "project"):
        value = getattr(n, hook)
        if value is not None and not callable(value):
            yield f"{hook}={value!r} must be a function of the params or None"


def _describe(obj: Any) -> str:
    """``class Name`` for a class, ``a TYPE`` for anything else (no module paths in messages)."""
    if isinstance(obj, type):
        return f"{'dataclass' if dataclasses.is_dataclass(obj) else 'class'} {obj.__name__}"
    return f"a {type(obj).__name__}"


def _frame_in(exc: BaseException, filename: str | None) -> str:
    """' at FILE:LINE' of the innermost frame of ``exc`` in ``filename`` (else the innermost)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    mine = [f for f in frames if filename is not None and f.filename == filename]
    f = (mine or frames)[-1]
    return f" at {f.filename}:{f.lineno}"


def _probe_step(n: Neuron) -> str | None:
    """Call ``step`` once on the zero state (batch 2, 3 neurons, torch) and check what it returns."""
    # deferred: ops is a sibling module the package imports after this one
    from gradscape.models import ops as ops_module

    TorchOps = ops_module.TorchOps

    S = n.state
    fn = getattr(n.step, "__name__", "step")
    code = getattr(n.step, "__code__", None)
    filename = code.co_filename if code is not None else None
    batch, size = 2, 3
    try:
        params = n.make_params(n.sample_init(size, torch.Generator().manual_seed(0)))
    except UserError:
        raise
    except Exception as exc:
        return f"cannot build {n.params.__name__} from init and constants: {_one_line(exc)}"
    like = torch.zeros(batch, size)
    ops = TorchOps()
    try:
        with torch.no_grad():
            out = n.step(ops, torch.zeros(batch, n.gates * size), n.initial_state(like), params)
    except UserError:
        raise
    except Exception as exc:
        msg = _one_line(exc)
        if isinstance(exc, AttributeError) and getattr(exc, "obj", None) is ops:
            return (
                f"step function {fn}() calls ops.{exc.name}{_frame_in(exc, filename)}, which the ops "
                f"namespace does not have; use one of: {', '.join(getattr(ops_module, 'OPS_NAMES', ()))}"
            )
        if "Boolean value of Tensor" in msg:
            return (
                f"step function {fn}() branches on a tensor's value{_frame_in(exc, filename)} ({msg}); "
                "Python if/and/or may depend on constants only: write ops.where(cond, a, b) instead"
            )
        if isinstance(exc, TypeError) and "__new__()" in msg:
            return (
                f"step function {fn}() builds a state with the wrong number of fields ({msg}"
                f"{_frame_in(exc, filename)}); {S.__name__} has fields ({_fields_text(S._fields)}): "
                f"return {S.__name__}({', '.join(f'{k}=...' for k in S._fields)})"
            )
        return (
            f"step function {fn}() raised {type(exc).__name__}{_frame_in(exc, filename)} when called "
            f"once on the zero state with torch ops: {msg}; it must run on tensors of shape (batch, neurons) "
            "using only ops.* functions"
        )
    want = f"return (z, {S.__name__}({', '.join(S._fields)}))"
    if hasattr(out, "_fields"):
        return (
            f"step function {fn}() returned a {type(out).__name__} alone; it must return two values: {want}"
        )
    if not isinstance(out, tuple | list):
        return f"step function {fn}() returned a {type(out).__name__}; it must return two values: {want}"
    if len(out) != 2:
        return (
            f"step function {fn}() returned {len(out)} values; it must return exactly two, {want} "
            "(anything else a neuron carries belongs in its state)"
        )
    z, new = out
    if hasattr(z, "_fields"):
        return f"step function {fn}() returned the state first; return the output first: {want}"
    if not hasattr(new, "_fields"):
        kind = (
            f"a plain {type(new).__name__} of length {len(new)}"
            if isinstance(new, tuple | list)
            else f"a {type(new).__name__}"
        )
        return (
            f"step function {fn}() returned {kind} as the new state; return the declared NamedTuple: {want}"
        )
    got = tuple(new._fields)
    if type(new) is not S and got != S._fields:
        other = f"{type(new).__name__}({', '.join(got)})"
        decl = f"{S.__name__}({', '.join(S._fields)})"
        if set(got) == set(S._fields):
            return (
                f"step function {fn}() returned {other}, whose fields are those of the declared state "
                f"{decl} in another order; states are read by position, so this would be silently "
                f"wrong: {want}"
            )
        missing = [k for k in S._fields if k not in got]
        extra = [k for k in got if k not in S._fields]
        return (
            f"step function {fn}() returned {other} but the declared state is {decl} (missing: "
            f"{_fields_text(missing)}; extra: {_fields_text(extra)}): {want}"
        )
    for label, value in (
        ("its output z", z),
        *((f"state field {k!r}", v) for k, v in zip(got, new, strict=True)),
    ):
        if not isinstance(value, Tensor):
            return (
                f"step function {fn}(): {label} is a {type(value).__name__}, not a tensor; build it from the "
                "inputs (e.g. ops.zeros_like(x) for a constant 0) so that it has one value per neuron"
            )
        if tuple(value.shape) != (batch, size):
            return (
                f"step function {fn}(): {label} has shape {tuple(value.shape)} for a state of shape "
                f"{(batch, size)}; it must have one value per sample and neuron"
            )
    return None


def validate_neuron(neuron: Neuron, *, origin: str | None = None) -> None:
    """Check ``neuron`` against the protocol (module doc), calling its step once; raise the first
    problem as one :class:`UserError` line prefixed by ``origin`` (default ``neuron 'name'``)."""
    problem = next(declaration_problems(neuron), None) or _probe_step(neuron)
    if problem is not None:
        raise UserError(f"{origin or f'neuron {neuron.name!r}'}: {problem}")
