"""argparse value types that range-check numbers, so a bad flag is one line and exit 2.

Each type names the bound in its message (``--batch-size: must be an integer >= 1, got '0'``);
argparse prefixes the flag and :class:`gradscape.cli._Parser` turns it into one line with exit 2.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

__all__ = ["int_at_least", "finite_float", "positive_float", "threads"]


def int_at_least(low: int) -> Callable[[str], int]:
    """An integer ``>= low``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text!r}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


def finite_float(low: float = -math.inf, high: float = math.inf) -> Callable[[str], float]:
    """A finite number in [low, high]."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and low <= value <= high):
            span = f" in [{low:g}, {high:g}]" if math.isfinite(low) or math.isfinite(high) else ""
            raise argparse.ArgumentTypeError(f"must be a finite number{span}, got {text!r}")
        return value

    parse.__name__ = "finite number"
    return parse


def positive_float(text: str) -> float:
    """A finite number > 0."""
    value = finite_float()(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


#: ``--threads``: torch intra-op threads, at least 1.
threads = int_at_least(1)
