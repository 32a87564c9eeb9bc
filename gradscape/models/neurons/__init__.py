"""Built-in neurons and the registry that resolves a name or a user's ``file.py:Name``."""

from __future__ import annotations

from gradscape.errors import UserError
from gradscape.models.neurons.alif import ALIF, ALIFParams, ALIFState, alif_step
from gradscape.models.neurons.base import Neuron
from gradscape.models.neurons.checks import validate_neuron
from gradscape.models.neurons.distributions import (
    Constant,
    Distribution,
    Normal,
    Uniform,
    parse_distribution,
)
from gradscape.models.neurons.files import (
    NeuronFileSpec,
    is_neuron_file_spec,
    load_neuron_file,
    neuron_file_sha256,
)
from gradscape.models.neurons.lif import LIF, LIFParams, LIFState, lif_step
from gradscape.models.neurons.lstm import LSTM, LSTMParams, LSTMState, lstm_step
from gradscape.models.neurons.rf import (
    RF_VARIANTS,
    RFParams,
    RFState,
    divergence_boundary,
    rf_step,
    rf_variant,
)

__all__ = [
    "ALIF", "ALIFParams", "ALIFState", "alif_step",
    "LIF", "LIFParams", "LIFState", "lif_step",
    "LSTM", "LSTMParams", "LSTMState", "lstm_step",
    "RF_VARIANTS", "RFParams", "RFState", "divergence_boundary", "rf_step", "rf_variant",
    "Constant", "Distribution", "Neuron", "Normal", "Uniform", "parse_distribution",
    "NeuronFileSpec", "is_neuron_file_spec", "load_neuron_file", "neuron_file_sha256", "validate_neuron",
    "NEURONS", "get_neuron", "neuron_names",
]  # fmt: skip

NEURONS: dict[str, Neuron] = {**RF_VARIANTS, "alif": ALIF, "lif": LIF, "lstm": LSTM}


def _canonical_rf(name: str) -> str | None:
    parts = name.lower().split("+")
    if parts[0] != "rf" or len(set(parts[1:])) != len(parts) - 1:
        return None
    flags = set(parts[1:])
    if not flags <= {"rp", "sr", "db"}:
        return None
    if flags == {"rp", "sr", "db"}:
        return "brf"
    return "+".join(["rf", *(k for k in ("rp", "sr", "db") if k in flags)])


def neuron_names() -> list[str]:
    return list(NEURONS)


def get_neuron(name: str | Neuron | NeuronFileSpec) -> Neuron:
    """A built-in neuron by name (``brf``, ``rf``, ``rf+sr+db`` in any flag order, ``alif``,
    ``lif``, ``lstm``) or a user's neuron from ``path/to/file.py:Name`` (loaded and validated by
    :func:`load_neuron_file`, the only way a neuron file is executed)."""
    if isinstance(name, Neuron):
        return name
    if isinstance(name, NeuronFileSpec):
        return load_neuron_file(name)
    if not isinstance(name, str):
        raise UserError(f"model {name!r} must be a name ({', '.join(NEURONS)}) or path/to/file.py:Name")
    key = name.lower()
    if key in NEURONS:
        return NEURONS[key]
    canon = _canonical_rf(key)
    if canon is not None:
        return NEURONS[canon]
    path_part = name.rpartition(":")[0]
    if is_neuron_file_spec(name) or ("/" in path_part or "." in path_part):
        return load_neuron_file(name)  # a file that is not .py gets its own message there
    if key.endswith(".py"):
        raise UserError(
            f"give the neuron's name after the file: {name}:Name (the variable holding the Neuron)"
        )
    raise UserError(
        f"unknown model {name!r}; choose one of: {', '.join(NEURONS)}, "
        "or give your own neuron as path/to/file.py:Name"
    )
