"""Checks of a checkpoint's contents before a network is built from them (issue 13).

A checkpoint is data from anywhere, so every key :func:`~gradscape.models.checkpoints.open_checkpoint`
reads is checked here first: a malformed file is one :class:`~gradscape.errors.UserError` line that
names the key, what it holds and what to do, never a ``KeyError``/``TypeError`` from deep in torch.

The sizes of a model config must also agree with the weights the file holds, ``W`` of shape
``(g·H, I + H)`` (``g`` gates per neuron, at most 4) and ``W_out`` of shape ``(O, H)``, so a forged
config cannot make :func:`~gradscape.models.checkpoints.build_model` allocate more than the file's
own tensors (a ``hidden_size`` of 10^9 next to a 36-neuron ``W`` is refused, not allocated).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

import torch

from gradscape.errors import UserError

__all__ = [
    "RESAVE",
    "REFERENCE_ADVICE",
    "unpickle_refusal",
    "tensor_dict",
    "gradscape_config",
    "reference_config",
]

#: What to do about a malformed checkpoint.
RESAVE = "re-save it with gradscape (save_checkpoint) or give another checkpoint"
#: What to do about a malformed BRF reference checkpoint.
REFERENCE_ADVICE = "give the file as the BRF reference code saved it, or another checkpoint"
_MAX_GATES = 4  # the LSTM's gates; every other neuron has one
_SIZES = ("input_size", "hidden_size", "output_size")


def unpickle_refusal(path: object, message: str) -> str | None:
    """The one-line refusal for a file torch's safe loader rejected as holding pickled objects.

    None when ``message`` is not such a rejection. Deliberately not torch's advice to retry with
    ``weights_only=False``: for an attacker's file that advice is the attack.
    """
    if not message.startswith("Weights only load failed"):
        return None
    found = re.search(r"GLOBAL ([\w.]+)", message)
    what = f"it would call {found.group(1)}" if found else "it holds pickle code beyond plain data"
    return (
        f"cannot read checkpoint {path}: it is not a plain-data checkpoint ({what}), and gradscape will "
        "not unpickle it, since unpickling runs code; give a checkpoint of tensors and plain containers "
        "(a gradscape run folder or .pt file, or a BRF reference checkpoint)"
    )


def tensor_dict(state: Any, where: str, label: str, advice: str = RESAVE) -> dict[str, torch.Tensor]:
    """``state`` as a dict of tensors, else one line naming the first entry that is not one."""
    if not isinstance(state, Mapping):
        raise UserError(f"{where}: {label} is a {type(state).__name__}, not a dict of tensors; {advice}")
    for key, value in state.items():
        if not isinstance(key, str):
            raise UserError(f"{where}: {label} has the non-string key {key!r}; {advice}")
        if not isinstance(value, torch.Tensor):
            raise UserError(f"{where}: {label}[{key!r}] is a {type(value).__name__}, not a tensor; {advice}")
    return dict(state)


def _size(config: Mapping[str, Any], key: str, where: str) -> int:
    if key not in config:
        raise UserError(f"{where}: the model config lacks {key!r}; {RESAVE}")
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"{where}: model config {key} must be an integer >= 1, got {value!r}; {RESAVE}")
    return value


def _matrix(state: Mapping[str, torch.Tensor], key: str, where: str, advice: str = RESAVE) -> torch.Tensor:
    """``state[key]``, a weight matrix, checked to be 2-D."""
    if key not in state:
        raise UserError(f"{where} lacks {key}, a weight matrix of the network; {advice}")
    w = state[key]
    if w.dim() != 2:
        raise UserError(f"{where}: {key} has shape {tuple(w.shape)}, expected a 2-D matrix; {advice}")
    return w


def gradscape_config(ckpt: Mapping[str, Any], where: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The state dict and model config of a gradscape-format checkpoint, checked (see the module)."""
    for key, what in (("model", "the network's neuron and sizes"), ("state_dict", "the weights")):
        if key not in ckpt:
            raise UserError(f"{where} is a gradscape checkpoint without its {key!r} ({what}); {RESAVE}")
    config = ckpt["model"]
    if not isinstance(config, Mapping):
        raise UserError(
            f"{where}: 'model' is a {type(config).__name__}, not the model config dict "
            f"(neuron, input_size, hidden_size, output_size …); {RESAVE}"
        )
    config = dict(config)
    neuron = config.get("neuron")
    if not isinstance(neuron, str) or not neuron:
        raise UserError(f"{where}: model config neuron must be a neuron name, got {neuron!r}; {RESAVE}")
    n_in, hidden, n_out = (_size(config, key, where) for key in _SIZES)
    constants = config.get("constants")
    if constants is not None and not (
        isinstance(constants, Mapping)
        and all(isinstance(k, str) and isinstance(v, bool | int | float | str) for k, v in constants.items())
    ):
        raise UserError(f"{where}: model config constants must map names to numbers, got {constants!r}")
    for key, kind in (("surrogate", str), ("mask", bool)):
        if config.get(key) is not None and not isinstance(config[key], kind):
            raise UserError(f"{where}: model config {key} must be a {kind.__name__}, got {config[key]!r}")
    state = tensor_dict(ckpt["state_dict"], where, "state_dict")
    w, w_out = _matrix(state, "hidden.weight", where), _matrix(state, "out.weight", where)
    shape = f"for the model config's {n_in}-{hidden}-{n_out} network"
    if tuple(w_out.shape) != (n_out, hidden):
        raise UserError(
            f"{where}: out.weight has shape {tuple(w_out.shape)}, expected {(n_out, hidden)} "
            f"{shape}; {RESAVE}"
        )
    rows, cols = w.shape
    if cols != n_in + hidden or rows % hidden or not 1 <= rows // hidden <= _MAX_GATES:
        raise UserError(
            f"{where}: hidden.weight has shape {tuple(w.shape)}, expected (gates·{hidden}, {n_in + hidden}) "
            f"{shape}; {RESAVE}"
        )
    return state, config


def reference_config(ref: Any, kind: str, where: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """State dict (still in the reference's key names) and model config of a BRF reference checkpoint.

    The hidden size ``H`` is the one most of the per-neuron tensors agree on (``W_out``'s columns,
    the 1-D ``hidden.*`` parameters, ``W``'s rows), so a damaged ``W`` is the tensor blamed, not the
    intact parameters next to it.
    """
    state = tensor_dict(ref, where, "model_state_dict", REFERENCE_ADVICE)
    w = _matrix(state, "hidden.linear.weight", where, REFERENCE_ADVICE)
    w_out = _matrix(state, "out.linear.weight", where, REFERENCE_ADVICE)
    per_neuron = [v.shape[0] for k, v in state.items() if k.startswith("hidden.") and v.dim() == 1]
    hidden = Counter([w_out.shape[1], *per_neuron, w.shape[0]]).most_common(1)[0][0]
    if not 0 < hidden < w.shape[1]:
        raise UserError(
            f"{where}: hidden.linear.weight has shape {tuple(w.shape)}, expected "
            f"({hidden}, inputs + {hidden}) for {hidden} neurons; {REFERENCE_ADVICE}"
        )
    config = {
        "neuron": kind,
        "input_size": w.shape[1] - hidden,
        "hidden_size": hidden,
        "output_size": w_out.shape[0],
        "mask": "hidden.linear.mask" in state,
    }
    return state, config
