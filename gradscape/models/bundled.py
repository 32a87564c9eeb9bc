"""The trained models released with the BRF paper, shipped with the package as ``bundled:NAME``.

Each entry says which file holds the weights, which neuron reads them (the reference format cannot
tell BRF from RF), the task it was trained on, the PS-MNIST pixel order it was trained with and the
accuracy its authors (or an exact re-implementation) report on the task's full test set. The files
are the authors' ``torch.save`` dicts, unchanged (``gradscape/bundled/checkpoints/SOURCE.md``).
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from pathlib import Path

from gradscape.errors import UserError

__all__ = ["BundledModel", "BUNDLED_MODELS", "bundled_model", "bundled_names", "bundled_name_of"]


@dataclass(frozen=True)
class BundledModel:
    """One released model: ``file`` under ``gradscape/bundled/checkpoints``; ``permutation`` the
    file of its PS-MNIST pixel order (None: not a PS-MNIST model, or none was released)."""

    name: str
    file: str
    neuron: str
    task: str
    description: str
    published_accuracy: float | None = None
    permutation: str | None = None

    @property
    def path(self) -> Path:
        return _resource(self.file)

    @property
    def permutation_path(self) -> Path | None:
        return None if self.permutation is None else _resource(self.permutation)


def _resource(name: str) -> Path:
    return Path(str(importlib.resources.files("gradscape.bundled") / "checkpoints" / name))


_ENTRIES = (
    BundledModel("brf", "ecg_brf.pt", "brf", "ecg", "ECG BRF 4-36-6", 86.2),
    BundledModel("rf", "ecg_rf.pt", "rf", "ecg", "ECG vanilla RF 4-36-6", 85.1),
    BundledModel("alif", "ecg_alif.pt", "alif", "ecg", "ECG ALIF 4-36-6", 70.75),
    BundledModel("smnist-brf", "smnist_brf.pt", "brf", "smnist", "S-MNIST BRF 1-256-10, label-last", 99.15),
    BundledModel(
        "smnist-rf", "smnist_rf.pt", "rf", "smnist", "S-MNIST vanilla RF 1-256-10, label-last", 98.68
    ),
    BundledModel(
        "smnist-alif", "smnist_alif.pt", "alif", "smnist", "S-MNIST ALIF 1-256-10, label-last", 92.45
    ),
    BundledModel(
        "psmnist-brf",
        "psmnist_brf.pt",
        "brf",
        "psmnist",
        "PS-MNIST BRF 1-256-10, per-step loss",
        95.21,
        "psmnist_brf_permutation.pt",
    ),
    BundledModel(
        "psmnist-alif",
        "psmnist_alif.pt",
        "alif",
        "psmnist",
        "PS-MNIST ALIF 1-256-10, per-step loss",
        None,
        "psmnist_alif_permutation.pt",
    ),
    # b = +|b'| without the sustain-oscillation term: the paper's diverging RF on PS-MNIST. No pixel
    # order was released with it; the task's default permutation is used (its accuracy is chance).
    BundledModel(
        "psmnist-rf", "psmnist_rf.pt", "rf-posb", "psmnist", "PS-MNIST vanilla RF (b = +|b'|), diverged"
    ),
    BundledModel("shd-brf", "shd_brf.pt", "brf", "shd", "SHD BRF 700-128-20"),
    BundledModel("shd-rf", "shd_rf.pt", "rf", "shd", "SHD vanilla RF 700-128-20"),
    BundledModel("shd-alif", "shd_alif.pt", "alif", "shd", "SHD ALIF 700-128-20"),
)

#: ``bundled:NAME`` → the released model. The ECG names keep their short form (``bundled:brf``).
BUNDLED_MODELS: dict[str, BundledModel] = {m.name: m for m in _ENTRIES}
for _m in _ENTRIES[:3]:
    BUNDLED_MODELS[f"ecg-{_m.name}"] = _m


def bundled_names() -> list[str]:
    """Every ``bundled:NAME`` spelling, for ``--help`` texts and messages."""
    return [f"bundled:{n}" for n in BUNDLED_MODELS]


def bundled_name_of(spec: object) -> str | None:
    """``NAME`` for a ``bundled:NAME`` spec, else None (the name is not checked here)."""
    text = str(spec)
    return text.split(":", 1)[1] if text.startswith("bundled:") else None


def bundled_model(name: str) -> BundledModel:
    """The released model ``name`` (``bundled:`` prefix optional); one line listing the names if unknown."""
    key = bundled_name_of(name) or name
    if key not in BUNDLED_MODELS:
        raise UserError(
            f"unknown bundled model {name!r}; the bundled checkpoints are {', '.join(bundled_names())}"
        )
    return BUNDLED_MODELS[key]
