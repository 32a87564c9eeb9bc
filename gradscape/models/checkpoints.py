"""Model checkpoints: gradscape's own format and the BRF reference implementation's.

gradscape checkpoint (a plain dict, loadable with ``weights_only=True``)::

    {"format": "gradscape-checkpoint/1", "model": MODEL_CONFIG, "state_dict": {...}, ...extra}

``MODEL_CONFIG`` is :func:`model_config`'s JSON-able dict, enough to rebuild the network with
:func:`build_model`. Reference checkpoints (``epoch``, ``model_state_dict``, ``optimizer_state_dict``,
``loss``) are mapped onto the same network: ``hidden.linear.weight`` → ``hidden.weight`` (acting on
``[input_t ; z_{t−1}]``, input columns first), ``hidden.linear.mask`` → the ``hidden.mask`` buffer,
``out.linear.weight`` → ``out.weight``; the other keys keep their names.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from gradscape.errors import UserError
from gradscape.io import atomic_write
from gradscape.models.network import RecurrentNetwork

__all__ = [
    "FORMAT",
    "BUNDLED",
    "bundled_checkpoint",
    "model_config",
    "build_model",
    "save_checkpoint",
    "read_checkpoint",
    "load_model",
    "atomic_save",
]

FORMAT = "gradscape-checkpoint/1"

#: ``bundled:NAME`` names the reference ECG checkpoints shipped with the package.
BUNDLED = ("brf", "rf", "alif")


def bundled_checkpoint(name: str) -> Path:
    """Path of the bundled reference ECG checkpoint ``name`` (brf, rf or alif)."""
    if name not in BUNDLED:
        raise UserError(f"bundled checkpoints are {', '.join('bundled:' + b for b in BUNDLED)}; not {name!r}")
    return Path(str(importlib.resources.files("gradscape.bundled") / "checkpoints" / f"ecg_{name}.pt"))


def _bundled_name(path: str | Path) -> str | None:
    text = str(path)
    return text.split(":", 1)[1] if text.startswith("bundled:") else None


_REFERENCE_RENAMES = {
    "hidden.linear.weight": "hidden.weight",
    "hidden.linear.mask": "hidden.mask",
    "out.linear.weight": "out.weight",
}


def model_config(model: RecurrentNetwork, neuron_spec: str | None = None) -> dict[str, Any]:
    """JSON-able description from which :func:`build_model` rebuilds ``model`` (weights aside)."""
    return {
        "neuron": neuron_spec or model.neuron.name,
        "input_size": model.input_size,
        "hidden_size": model.hidden_size,
        "output_size": model.output_size,
        "constants": {k: v for k, v in model.neuron.constants.items()},
        "surrogate": model.ops.surrogate.name,
        "mask": hasattr(model.hidden, "mask"),
    }


def build_model(config: Mapping[str, Any], **overrides: Any) -> RecurrentNetwork:
    cfg = {**config, **overrides}
    mask = None
    if cfg.get("mask"):
        gates = 4 if cfg["neuron"] == "lstm" else 1
        mask = torch.ones(gates * cfg["hidden_size"], cfg["input_size"] + cfg["hidden_size"])
    return RecurrentNetwork(
        cfg["neuron"],
        cfg["input_size"],
        cfg["hidden_size"],
        cfg["output_size"],
        constants=cfg.get("constants") or None,
        surrogate=cfg.get("surrogate", "double-gaussian"),
        mask=mask,
    )


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``."""
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def save_checkpoint(
    path: str | Path, model: RecurrentNetwork, neuron_spec: str | None = None, **extra: Any
) -> None:
    """Write a gradscape checkpoint atomically (``extra``: optimizer state, epoch, RNG …)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_save(
        {"format": FORMAT, "model": model_config(model, neuron_spec), "state_dict": state, **extra}, path
    )


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw checkpoint dict, with a clear error for a missing or unreadable file.

    ``path`` is a file, a run folder (its best.pt, else last.pt) or ``bundled:brf|rf|alif``.
    """
    name = _bundled_name(path)
    path = bundled_checkpoint(name) if name is not None else Path(path)
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / name).is_file():
                path = path / name
                break
        else:
            raise UserError(f"{path} is a folder without best.pt or last.pt; give a checkpoint file")
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        detail = (str(exc).strip().splitlines() or [""])[0]
        raise UserError(
            f"cannot read checkpoint {path}: not a PyTorch checkpoint saved with tensors and plain "
            f"containers only ({type(exc).__name__}{': ' + detail if detail else ''}); give a gradscape "
            "run folder or .pt file, or a BRF reference checkpoint"
        ) from None
    if not isinstance(ckpt, dict):
        raise UserError(f"checkpoint {path} holds a {type(ckpt).__name__}, not a dict")
    ckpt["_path"] = str(path)
    return ckpt


def _reference_kind(state: Mapping[str, Any], model: str | None, path: str) -> str:
    if "hidden.tau_adp" in state:
        found = "alif"
    elif "hidden.omega" in state:
        if model is None:
            raise UserError(
                f"{path} is a reference RF-family checkpoint; BRF and RF share key names, "
                "so say which with --model brf or --model rf (or another RF variant)"
            )
        found = model
    elif "hidden.tau_mem" in state:
        found = "lif"
    else:
        raise UserError(
            f"{path}: unrecognised reference checkpoint keys {sorted(state)[:6]}…; expected "
            "hidden.omega/hidden.b_offset (RF family) or hidden.tau_mem/hidden.tau_adp (ALIF)"
        )
    if model is not None and model != found and found in ("alif", "lif"):
        raise UserError(f"{path} holds an {found.upper()} model, not {model!r}")
    return model or found


def load_model(path: str | Path, model: str | None = None) -> tuple[RecurrentNetwork, dict[str, Any]]:
    """Load a gradscape or reference checkpoint as a :class:`RecurrentNetwork` (on the CPU).

    Returns the network (eval mode) and the raw checkpoint dict. ``model`` names the neuron where
    the file cannot tell (reference BRF vs RF) or checks it where it can; ``bundled:NAME`` implies
    ``model=NAME``.
    """
    model = model or _bundled_name(path)
    ckpt = read_checkpoint(path)
    where = ckpt["_path"]
    if ckpt.get("format") == FORMAT:
        config = dict(ckpt["model"])
        if model is not None and model != config["neuron"]:
            raise UserError(f"{where} holds a {config['neuron']!r} model, not {model!r}")
        state = ckpt["state_dict"]
    elif "model_state_dict" in ckpt:
        ref = ckpt["model_state_dict"]
        kind = _reference_kind(ref, model, where)
        state = {_REFERENCE_RENAMES.get(k, k): v for k, v in ref.items()}
        w = state.get("hidden.weight")
        wo = state.get("out.weight")
        if w is None or wo is None:
            raise UserError(f"{where}: reference checkpoint lacks hidden.linear.weight or out.linear.weight")
        hidden, outputs = w.shape[0], wo.shape[0]
        config = {
            "neuron": kind,
            "input_size": w.shape[1] - hidden,
            "hidden_size": hidden,
            "output_size": outputs,
            "mask": "hidden.mask" in state,
        }
        ckpt["reference"] = True
    else:
        raise UserError(
            f"{where} is neither a gradscape checkpoint nor a reference checkpoint "
            "(expected a 'format' or a 'model_state_dict' key)"
        )
    net = build_model(config)
    expected = net.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise UserError(
            f"{where} does not fit a {config['neuron']} network: missing {missing or 'nothing'}, "
            f"unexpected {unexpected or 'nothing'}"
        )
    for k, v in state.items():
        if tuple(v.shape) != tuple(expected[k].shape):
            raise UserError(
                f"{where}: {k} has shape {tuple(v.shape)}, expected {tuple(expected[k].shape)} "
                f"for a {config['input_size']}-{config['hidden_size']}-{config['output_size']} network"
            )
    net.load_state_dict(state)
    net.eval()
    ckpt["model_config"] = config
    return net, ckpt
