"""Where on the plane (or line) a landscape is evaluated: grid specifications like ``-1:1:51``.

An axis spec ``start:stop:num`` is ``num`` evenly spaced coordinates from ``start`` to ``stop``
inclusive (``numpy.linspace``). A 1-D grid has one axis (α); a 2-D grid has two (α, β), written either
as one spec used for both axes or as ``ALPHA,BETA`` (e.g. ``-1:1:51,-0.5:0.5:21``). Grid points are
numbered in C order (β fastest), the order in which they are evaluated, sharded and stored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gradscape.errors import UserError
from gradscape.ranges import parse_range

__all__ = ["Axis", "Grid", "parse_axis", "parse_grid"]


@dataclass(frozen=True)
class Axis:
    """``num`` coordinates from ``start`` to ``stop`` inclusive."""

    start: float
    stop: float
    num: int

    @property
    def values(self) -> np.ndarray:
        return np.linspace(self.start, self.stop, self.num, dtype=np.float64)

    def __str__(self) -> str:
        return f"{self.start:g}:{self.stop:g}:{self.num}"


@dataclass(frozen=True)
class Grid:
    """A 1-D or 2-D grid of direction coefficients (α) or (α, β)."""

    axes: tuple[Axis, ...]

    @property
    def dims(self) -> int:
        return len(self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(a.num for a in self.axes)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def coords(self) -> list[np.ndarray]:
        """Axis coordinate vectors [α] or [α, β]."""
        return [a.values for a in self.axes]

    def points(self) -> np.ndarray:
        """(size, dims) coefficient table, row ``k`` = grid point ``k`` in C order."""
        mesh = np.meshgrid(*self.coords, indexing="ij")
        return np.stack([m.reshape(-1) for m in mesh], axis=1)

    @property
    def spec(self) -> str:
        return ",".join(str(a) for a in self.axes)

    def __str__(self) -> str:
        return self.spec


def parse_axis(spec: str) -> Axis:
    """``"start:stop:num"`` → :class:`Axis` (raises :class:`UserError` on a malformed spec)."""
    start, stop, num = parse_range(
        spec,
        prefix=f"bad grid spec {spec!r}",
        hint="write start:stop:num, e.g. -1:1:51",
        names=("start", "stop", "num"),
        increasing=True,
    )
    return Axis(start, stop, num)


def parse_grid(spec: str, dims: int = 2) -> Grid:
    """A :class:`Grid` of ``dims`` (1 or 2) axes from ``"a:b:n"`` (all axes) or ``"a:b:n,c:d:m"``."""
    if dims not in (1, 2):
        raise UserError(f"--dims must be 1 or 2, not {dims}")
    pieces = [p for p in str(spec).split(",") if p.strip()]
    if len(pieces) == 1:
        pieces = pieces * dims
    if len(pieces) != dims:
        raise UserError(f"bad grid spec {spec!r}: give one axis spec or {dims} separated by commas")
    return Grid(tuple(parse_axis(p) for p in pieces))
