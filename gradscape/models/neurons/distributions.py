"""The distributions a neuron's trainable parameters are initialised from.

``init={"omega": Uniform(15, 50)}`` in a :class:`~gradscape.models.neurons.base.Neuron` draws each
neuron's raw initial ω from U(15, 50); a config or flag may give the same as text (``"U(15,50)"``,
``"N(20,5)"`` or a number, :func:`parse_distribution`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from gradscape.errors import UserError

__all__ = ["Uniform", "Normal", "Constant", "Distribution", "parse_distribution"]


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
