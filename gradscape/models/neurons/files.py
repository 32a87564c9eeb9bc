"""A user's neuron file: ``path/to/file.py:Name``, its sha256, and the one place it is executed.

A user's neuron lives in a Python file and is named ``path/to/file.py:Name`` (:class:`NeuronFileSpec`).
:func:`load_neuron_file` is the one place such a file is executed; every command reaches it through
:func:`gradscape.models.neurons.get_neuron`. It checks, once, that the file exists, is a ``.py``
file, compiles and imports and that ``Name`` is a :class:`~gradscape.models.neurons.base.Neuron`,
then validates the neuron against the protocol (:func:`~gradscape.models.neurons.checks.validate_neuron`).
Each failure is one :class:`~gradscape.errors.UserError` line naming the file, the object, the field
and what to write instead.

The file's sha256 is taken from the very bytes that are executed and kept in ``Neuron.source``, so
that a run folder can record it and refuse a changed file (``expected_sha256``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import sys
import traceback
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gradscape.errors import UserError
from gradscape.models.neurons.base import _DEFER_CHECKS, Neuron
from gradscape.models.neurons.checks import _frame_in, _number_hint, _one_line, validate_neuron

__all__ = ["NeuronFileSpec", "is_neuron_file_spec", "neuron_file_sha256", "load_neuron_file"]

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


def _line_in(exc: BaseException, filename: str) -> str:
    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
    return str(lines[-1]) if lines else "?"


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
