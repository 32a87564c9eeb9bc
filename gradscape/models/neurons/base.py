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

Neuron files
------------
A user's neuron lives in a Python file and is named ``path/to/file.py:Name`` (:class:`NeuronFileSpec`).
:func:`load_neuron_file` is the one place such a file is executed; every command reaches it through
:func:`gradscape.models.neurons.get_neuron`. It checks, once, what the protocol above promises, and
each failure is one :class:`~gradscape.errors.UserError` line naming the file, the object, the field
and what to write instead:

* the file exists, is a ``.py`` file, compiles and imports; ``Name`` is a :class:`Neuron`;
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

The file's sha256 is taken from the very bytes that are executed and kept in ``Neuron.source``, so
that a run folder can record it and refuse a changed file (``expected_sha256``).
"""

from __future__ import annotations

import contextvars
import dataclasses
import hashlib
import inspect
import numbers
import re
import sys
import traceback
import types
from collections.abc import Callable, Iterator, Mapping
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
    "NeuronFileSpec",
    "is_neuron_file_spec",
    "neuron_file_sha256",
    "load_neuron_file",
    "validate_neuron",
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

#: set while a neuron file executes: its ``Neuron(...)`` records are checked afterwards by
#: :func:`load_neuron_file`, whose messages can then name the file and the object.
_DEFER_CHECKS: contextvars.ContextVar[bool] = contextvars.ContextVar("gradscape_defer", default=False)

_SHA256 = re.compile(r"[0-9a-f]{64}")
#: dataclasses' error for a list/dict/set default: "mutable default <class 'list'> for field x is ..."
_MUTABLE_DEFAULT = re.compile(r"mutable default <class '(\w+)'> for field (\w+) is not allowed")


@dataclass(frozen=True)
class NeuronFileSpec:
    """A user's neuron named as ``path/to/file.py:Name``, with the file's sha256 once known.

    ``str(spec)`` gives back ``path:name``; :meth:`to_dict`/:meth:`from_dict` are the form a run
    folder records (plain data: reading it never imports the file).
    """

    path: Path
    name: str
    sha256: str | None = None

    @classmethod
    def parse(cls, text: str) -> NeuronFileSpec:
        """``"path/to/file.py:Name"`` → a spec (the file is not read)."""
        if not isinstance(text, str):
            raise UserError(f"neuron spec {text!r} must be a string path/to/file.py:Name")
        path_s, sep, name = text.rpartition(":")
        if not sep or not path_s or not name:
            raise UserError(f"neuron spec {text!r} must look like path/to/file.py:Name")
        if not path_s.endswith(".py"):
            raise UserError(f"neuron file {path_s} must be a .py file: give path/to/file.py:Name")
        if not name.isidentifier():
            raise UserError(
                f"{name!r} in {text!r} is not a Python name: give path/to/file.py:Name with Name the "
                "variable that holds the Neuron"
            )
        return cls(Path(path_s), name)

    def __str__(self) -> str:
        return f"{self.path}:{self.name}"

    def hashed(self) -> NeuronFileSpec:
        """This spec with the sha256 of the file as it is now."""
        return dataclasses.replace(self, sha256=neuron_file_sha256(self.path))

    def to_dict(self) -> dict[str, str | None]:
        return {"path": str(self.path), "name": self.name, "sha256": self.sha256}

    @classmethod
    def from_dict(cls, record: Any) -> NeuronFileSpec:
        """The inverse of :meth:`to_dict`; a malformed record is a :class:`UserError`."""
        ok = (
            isinstance(record, Mapping)
            and isinstance(record.get("path"), str)
            and isinstance(record.get("name"), str)
            and (record.get("sha256") is None or isinstance(record.get("sha256"), str))
        )
        if not ok:
            raise UserError(
                f"malformed neuron-file record {record!r}: expected "
                '{"path": "file.py", "name": "Name", "sha256": "<64 hex digits>"}'
            )
        spec = cls.parse(f"{record['path']}:{record['name']}")
        sha = record.get("sha256")
        if sha is not None and not _SHA256.fullmatch(sha):
            raise UserError(f"malformed neuron-file record: sha256 {sha!r} is not 64 lowercase hex digits")
        return dataclasses.replace(spec, sha256=sha)


def is_neuron_file_spec(model: Any) -> bool:
    """True when ``model`` names a user's neuron file (``….py:Name`` or a :class:`NeuronFileSpec`)."""
    return isinstance(model, NeuronFileSpec) or (isinstance(model, str) and ".py:" in model)


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
        problem = next(_declaration_problems(self), None)
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


# --------------------------------------------------------------------------- validation
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


def _declaration_problems(n: Neuron) -> Iterator[str]:
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


def _line_in(exc: BaseException, filename: str) -> str:
    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
    return str(lines[-1]) if lines else "?"


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
    problem = next(_declaration_problems(neuron), None) or _probe_step(neuron)
    if problem is not None:
        raise UserError(f"{origin or f'neuron {neuron.name!r}'}: {problem}")


# --------------------------------------------------------------------------- files
def _read_neuron_file(path: Path) -> bytes:
    if not path.exists():
        raise UserError(f"neuron file {path} does not exist: give path/to/file.py:Name of an existing file")
    if not path.is_file():
        raise UserError(f"neuron file {path} is not a file: give path/to/file.py:Name")
    if path.suffix != ".py":
        raise UserError(f"neuron file {path} must be a .py file: give path/to/file.py:Name")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read neuron file {path}: {_one_line(exc.strerror or exc)}") from None


def neuron_file_sha256(path: str | Path) -> str:
    """The sha256 (64 lowercase hex digits) of the neuron file's bytes; :class:`UserError` if
    the file is missing or unreadable."""
    return hashlib.sha256(_read_neuron_file(Path(path))).hexdigest()


#: executed neuron files by (resolved path, sha256): a file runs once per process, so its classes
#: (state NamedTuple, params dataclass) are the same objects for every command that loads it.
_MODULES: dict[tuple[str, str], types.ModuleType] = {}
_LOADED: dict[tuple[str, str, str], Neuron] = {}


def _execute(path: Path, data: bytes, digest: str) -> types.ModuleType:
    key = (str(path.resolve()), digest)
    if key in _MODULES:
        return _MODULES[key]
    try:
        # dont_inherit: this module's ``from __future__`` flags must not leak into the user's code
        code = compile(data, str(path), "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise UserError(
            f"neuron file {path} failed to import: SyntaxError at line {exc.lineno}: "
            f"{_one_line(exc.msg)}; fix the file"
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"neuron file {path} failed to import: {_one_line(exc)}; fix the file") from None
    mod_name = f"gradscape_user_neuron_{hashlib.sha256(key[0].encode()).hexdigest()[:10]}_{digest[:10]}"
    module = types.ModuleType(mod_name)
    module.__file__ = str(path)
    # dataclasses and typing look their module up in sys.modules while the file runs
    sys.modules[mod_name] = module
    token = _DEFER_CHECKS.set(True)
    try:
        exec(code, module.__dict__)
    except (Exception, SystemExit) as exc:
        sys.modules.pop(mod_name, None)
        mutable = _MUTABLE_DEFAULT.search(str(exc)) if isinstance(exc, ValueError) else None
        if mutable is not None:  # dataclasses' own advice (default_factory) is not what a parameter needs
            raise UserError(
                f"neuron file {path}, line {_line_in(exc, str(path))}: parameter default {mutable[2]} is a "
                f"{mutable[1]}, not a number; {_number_hint(mutable[2], [])}"
            ) from None
        raise UserError(
            f"neuron file {path} failed to import: its top-level code raised {type(exc).__name__}"
            f"{_frame_in(exc, str(path))}: {_one_line(exc)}; fix the file so that importing it "
            "does not raise"
        ) from None
    finally:
        _DEFER_CHECKS.reset(token)
    _MODULES[key] = module
    return module


def load_neuron_file(spec: str | NeuronFileSpec, expected_sha256: str | None = None) -> Neuron:
    """Load and validate a user's neuron from ``path/to/file.py:Name`` (module doc).

    ``expected_sha256`` (or ``spec.sha256`` when not given) is the hash a run folder recorded: if
    the file's bytes now hash differently the file is not executed and the error names both hashes.
    The returned neuron's ``source`` is the spec with the sha256 of the bytes that ran.
    """
    s = spec if isinstance(spec, NeuronFileSpec) else NeuronFileSpec.parse(spec)
    expected = expected_sha256 if expected_sha256 is not None else s.sha256
    if expected is not None and not (isinstance(expected, str) and _SHA256.fullmatch(expected.lower())):
        raise UserError(f"the recorded sha256 {expected!r} of {s} is not 64 hex digits")
    data = _read_neuron_file(s.path)
    digest = hashlib.sha256(data).hexdigest()
    if expected is not None and digest != expected.lower():
        raise UserError(
            f"neuron file {s.path} has changed since it was recorded: its sha256 is {digest}, the "
            f"record says {expected.lower()}; restore the recorded file or start a new run with this one"
        )
    key = (str(s.path.resolve()), digest, s.name)
    if key in _LOADED:
        return _LOADED[key]
    module = _execute(s.path, data, digest)
    if s.name not in vars(module):
        found = [k for k, v in vars(module).items() if isinstance(v, Neuron)]
        hint = f" (its Neurons: {', '.join(found)})" if found else " (it defines no Neuron at all)"
        raise UserError(f"neuron file {s.path} defines no {s.name!r}{hint}")
    obj = vars(module)[s.name]
    if not isinstance(obj, Neuron):
        raise UserError(
            f"{s.name!r} in {s.path} is a {type(obj).__name__}, not a gradscape Neuron; "
            f"write {s.name} = Neuron(name=..., step=..., state=..., params=..., init=...) "
            "(from gradscape.models import Neuron)"
        )
    validate_neuron(obj, origin=f"neuron {s.name} in {s.path}")
    neuron = obj.replace(source=dataclasses.replace(s, sha256=digest))
    _LOADED[key] = neuron
    return neuron
