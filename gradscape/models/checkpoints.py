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

import hashlib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gradscape.errors import UserError
from gradscape.io import atomic_write
from gradscape.models.bundled import BundledModel, bundled_model, bundled_name_of
from gradscape.models.checkpoint_schema import (
    REFERENCE_ADVICE,
    RESAVE,
    gradscape_config,
    reference_config,
    tensor_dict,
    unpickle_refusal,
)
from gradscape.models.network import RecurrentNetwork
from gradscape.models.neurons import (
    Neuron,
    NeuronFileSpec,
    is_neuron_file_spec,
    load_neuron_file,
)

__all__ = [
    "FORMAT",
    "BUNDLED",
    "Checkpoint",
    "open_checkpoint",
    "bundled_checkpoint",
    "model_config",
    "build_model",
    "save_checkpoint",
    "read_checkpoint",
    "load_model",
    "atomic_save",
]

FORMAT = "gradscape-checkpoint/1"

#: The short ``bundled:NAME`` names of the reference ECG checkpoints (all names: ``BUNDLED_MODELS``).
BUNDLED = ("brf", "rf", "alif")


def bundled_checkpoint(name: str) -> Path:
    """Path of the bundled released checkpoint ``name`` (``brf``, ``smnist-brf`` …)."""
    return bundled_model(name).path


_REFERENCE_RENAMES = {
    "hidden.linear.weight": "hidden.weight",
    "hidden.linear.mask": "hidden.mask",
    "out.linear.weight": "out.weight",
}


def model_config(model: RecurrentNetwork, neuron_spec: str | None = None) -> dict[str, Any]:
    """JSON-able description from which :func:`build_model` rebuilds ``model`` (weights aside).

    A neuron from a user's file is recorded as its ``path.py:Name`` and, under ``neuron_file``, the
    path, name and sha256 of the bytes that ran (:class:`~gradscape.models.neurons.NeuronFileSpec`).
    """
    source = getattr(model.neuron, "source", None)
    return {
        "neuron": neuron_spec or (str(source) if source is not None else model.neuron.name),
        **({"neuron_file": source.to_dict()} if source is not None else {}),
        "input_size": model.input_size,
        "hidden_size": model.hidden_size,
        "output_size": model.output_size,
        "constants": {k: v for k, v in model.neuron.constants.items()},
        "surrogate": model.ops.surrogate.name,
        "mask": hasattr(model.hidden, "mask"),
    }


def build_model(
    config: Mapping[str, Any], neuron: Neuron | None = None, **overrides: Any
) -> RecurrentNetwork:
    """The network ``config`` describes, untrained. ``neuron`` supplies the neuron object (needed for
    a neuron file: a config never makes this function import one); else ``config["neuron"]`` must
    name a built-in neuron."""
    cfg = {**config, **overrides}
    if neuron is None and is_neuron_file_spec(cfg["neuron"]):
        raise UserError(
            f"the model config names the neuron file {cfg['neuron']}; open it with open_checkpoint(..., "
            "model=PATH.py:NAME) so that loading it is the caller's decision"
        )
    mask = None
    if cfg.get("mask"):
        gates = 4 if cfg["neuron"] == "lstm" else 1
        mask = torch.ones(gates * cfg["hidden_size"], cfg["input_size"] + cfg["hidden_size"])
    return RecurrentNetwork(
        neuron if neuron is not None else cfg["neuron"],
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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _checkpoint_file(spec: str | Path) -> Path:
    """The file ``spec`` names: a file, a run folder (its best.pt, else last.pt) or ``bundled:NAME``."""
    name = bundled_name_of(spec)
    path = bundled_model(name).path if name is not None else Path(spec)
    if path.is_dir():
        for candidate in ("best.pt", "last.pt"):
            if (path / candidate).is_file():
                return path / candidate
        raise UserError(f"{path} is a folder without best.pt or last.pt; give a checkpoint file")
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist; give a .pt file, a run folder or bundled:NAME")
    return path


def _load_dict(path: Path) -> dict[str, Any]:
    try:
        with warnings.catch_warnings():
            # torch warns about the pickle protocol of a file it then refuses; the refusal says it all
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", FutureWarning)
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        refusal = unpickle_refusal(path, str(exc))
        if refusal is not None:
            raise UserError(refusal) from None
        detail = (str(exc).strip().splitlines() or [""])[0]
        raise UserError(
            f"cannot read checkpoint {path}: not a PyTorch checkpoint saved with tensors and plain "
            f"containers only ({type(exc).__name__}{': ' + detail if detail else ''}); give a gradscape "
            "run folder or .pt file, or a BRF reference checkpoint"
        ) from None
    if not isinstance(ckpt, dict):
        raise UserError(f"checkpoint {path} holds a {type(ckpt).__name__}, not a dict")
    return ckpt


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw checkpoint dict (as saved), with a clear error for a missing or unreadable file.

    ``path`` is a file, a run folder (its best.pt, else last.pt) or ``bundled:NAME``.
    """
    return _load_dict(_checkpoint_file(path))


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


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint opened as a network: what every command and analysis receives.

    ``config`` is the resolved model config (:func:`model_config`'s keys); ``reference`` says the
    file is in the BRF reference implementation's format; ``bundled`` is the released model when the
    spec was ``bundled:NAME`` (its task, pixel order and published accuracy); ``permutation`` the
    PS-MNIST pixel order the network was trained with (bundled or recorded by a gradscape run), else
    None; ``raw`` the saved dict (training config, data info, epoch, optimizer state …).
    """

    model: RecurrentNetwork
    config: Mapping[str, Any]
    path: Path
    sha256: str
    reference: bool
    raw: Mapping[str, Any] = field(repr=False)
    bundled: BundledModel | None = None
    permutation: torch.Tensor | None = field(default=None, repr=False)

    @property
    def neuron(self) -> str:
        return str(self.config["neuron"])

    @property
    def task(self) -> str | None:
        """The task the network was trained on, when the checkpoint says (bundled or a gradscape run)."""
        if self.bundled is not None:
            return self.bundled.task
        train = self.raw.get("config")
        return str(train["task"]) if isinstance(train, Mapping) and "task" in train else None

    @property
    def label(self) -> str:
        """A short name for reports and folders: the bundled name, else the neuron kind."""
        return self.bundled.name if self.bundled is not None else self.neuron.split(":")[-1].lower()

    def describe(self) -> dict[str, Any]:
        """JSON-able provenance for result files."""
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "bundled": None if self.bundled is None else f"bundled:{self.bundled.name}",
            "reference": self.reference,
            "model_config": dict(self.config),
        }


def _state_and_config(ckpt: Mapping[str, Any], model: str | None, where: str) -> tuple[dict, dict, bool]:
    if ckpt.get("format") == FORMAT:
        state, config = gradscape_config(ckpt, where)
        file_model = is_neuron_file_spec(config["neuron"])
        if (
            model is not None
            and not (file_model and is_neuron_file_spec(model))
            and model != config["neuron"]
        ):
            raise UserError(f"{where} holds a {config['neuron']!r} model, not {model!r}")
        return state, config, False
    if "model_state_dict" in ckpt:
        ref = tensor_dict(ckpt["model_state_dict"], where, "model_state_dict", REFERENCE_ADVICE)
        kind = _reference_kind(ref, model, where)
        ref, config = reference_config(ref, kind, where)
        return {_REFERENCE_RENAMES.get(k, k): v for k, v in ref.items()}, config, True
    raise UserError(
        f"{where} is neither a gradscape checkpoint nor a reference checkpoint "
        "(expected a 'format' or a 'model_state_dict' key)"
    )


def _permutation(ckpt: Mapping[str, Any], bundled: BundledModel | None) -> torch.Tensor | None:
    if bundled is not None:
        source = bundled.permutation_path
        return None if source is None else torch.load(source, map_location="cpu", weights_only=True).long()
    data = ckpt.get("data")
    if isinstance(data, Mapping) and data.get("permutation") is not None:
        return torch.as_tensor(data["permutation"], dtype=torch.long)
    return None


def _neuron_of(config: Mapping[str, Any], model: str | None, trust: bool, where: str) -> Neuron | None:
    """The neuron object for a config that names a neuron file (None for a built-in neuron).

    A checkpoint is data: the file it names is executed only when the caller names that neuron
    again (``model``, checked against the recorded sha256) or trusts the record explicitly.
    """
    recorded = config["neuron"]
    if not is_neuron_file_spec(recorded):
        return None
    record = config.get("neuron_file")
    sha = None
    if record is not None:
        spec = NeuronFileSpec.from_dict(record)
        sha = spec.sha256
    else:
        spec = NeuronFileSpec.parse(str(recorded))
    if model is not None and is_neuron_file_spec(model):
        return load_neuron_file(str(model), expected_sha256=sha)
    if trust:
        return load_neuron_file(spec, expected_sha256=sha)
    raise UserError(
        f"{where} was trained with the neuron file {recorded}"
        + (f" (sha256 {sha[:12]}…)" if sha else "")
        + "; loading it runs that file's code, so pass the neuron again with --model "
        f"{recorded} (checked against the recorded hash), or --trust-neuron-file to run the recorded file"
    )


def open_checkpoint(
    spec: str | Path, model: str | None = None, *, trust_neuron_file: bool = False
) -> Checkpoint:
    """Open a gradscape or reference checkpoint as a :class:`Checkpoint` (network on the CPU, eval mode).

    ``spec``: a .pt file, a run folder (best.pt, else last.pt) or ``bundled:NAME``. ``model`` names
    the neuron where the file cannot tell (reference BRF vs RF) or checks it where it can; a bundled
    name implies its neuron. Opening a checkpoint never imports a file: one trained with a neuron file
    (``path.py:Name``) needs that neuron passed again as ``model`` (its sha256 must match the
    record) or ``trust_neuron_file=True``.
    """
    bundled = bundled_model(str(spec)) if bundled_name_of(spec) is not None else None
    if bundled is not None and model is not None and model != bundled.neuron:
        raise UserError(f"bundled:{bundled.name} is a {bundled.neuron!r} model, not {model!r}")
    path = _checkpoint_file(spec)
    ckpt = _load_dict(path)
    where = str(path)
    state, config, reference = _state_and_config(ckpt, model or (bundled and bundled.neuron), where)
    neuron = _neuron_of(config, model, trust_neuron_file, where)
    try:
        net = build_model(config, neuron)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:  # constants a neuron cannot take
        detail = (str(exc).strip().splitlines() or [""])[0]
        raise UserError(
            f"{where}: its model config does not build a {config['neuron']} network "
            f"({type(exc).__name__}: {detail}); {RESAVE}"
        ) from None
    expected = net.state_dict()
    # the reference format's own key names in messages, so the user finds the tensor in the file
    named = {v: k for k, v in _REFERENCE_RENAMES.items()} if reference else {}
    missing = sorted(named.get(k, k) for k in set(expected) - set(state))
    unexpected = sorted(named.get(k, k) for k in set(state) - set(expected))
    if missing or unexpected:
        raise UserError(
            f"{where} does not fit a {config['neuron']} network: missing {missing or 'nothing'}, "
            f"unexpected {unexpected or 'nothing'}"
        )
    for k, v in state.items():
        if tuple(v.shape) != tuple(expected[k].shape):
            raise UserError(
                f"{where}: {named.get(k, k)} has shape {tuple(v.shape)}, expected {tuple(expected[k].shape)} "
                f"for a {config['input_size']}-{config['hidden_size']}-{config['output_size']} network; "
                + (REFERENCE_ADVICE if reference else RESAVE)
            )
    net.load_state_dict(state)
    net.eval()
    return Checkpoint(
        model=net,
        config=config,
        path=path,
        sha256=_sha256(path),
        reference=reference,
        raw=ckpt,
        bundled=bundled,
        permutation=_permutation(ckpt, bundled),
    )


def load_model(
    path: str | Path, model: str | None = None, *, trust_neuron_file: bool = False
) -> tuple[RecurrentNetwork, dict[str, Any]]:
    """Compatibility form of :func:`open_checkpoint`: the network and the raw dict with ``_path``,
    ``model_config`` and ``reference`` keys added. New code takes the :class:`Checkpoint`."""
    ck = open_checkpoint(path, model, trust_neuron_file=trust_neuron_file)
    raw = {**ck.raw, "_path": str(ck.path), "model_config": dict(ck.config)}
    if ck.reference:
        raw["reference"] = True
    return ck.model, raw
