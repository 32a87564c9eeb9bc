"""The one parser of ``LO:HI:N`` ranges (landscape grid axes, spectrum parameter maps): N values
evenly spaced from LO to HI, both ends included. Each caller keeps its own wording (``prefix``,
the names of the three numbers, an example) so its one-line errors read in its own terms."""

from __future__ import annotations

import math

from gradscape.errors import UserError

__all__ = ["parse_range"]


def parse_range(
    text: str,
    *,
    prefix: str,
    hint: str,
    names: tuple[str, str, str] = ("LO", "HI", "N"),
    min_num: int = 1,
    increasing: bool = False,
) -> tuple[float, float, int]:
    """``"lo:hi:n"`` → (lo, hi, n) with lo, hi finite numbers and n a whole number ≥ ``min_num``
    (``increasing``: lo < hi whenever n > 1). A malformed text raises one :class:`UserError` line,
    ``"{prefix}: …"``, naming the offending number and ending with ``hint`` where the shape is wrong."""
    lo_name, hi_name, num_name = names
    parts = str(text).strip().split(":")
    if len(parts) != 3:
        raise UserError(f"{prefix}: {hint}")
    try:
        lo, hi = float(parts[0]), float(parts[1])
        num = int(parts[2])
    except ValueError:
        raise UserError(
            f"{prefix}: {lo_name} and {hi_name} must be numbers and {num_name} a whole number; {hint}"
        ) from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise UserError(f"{prefix}: {lo_name} and {hi_name} must be finite numbers")
    if num < min_num:
        raise UserError(f"{prefix}: {num_name} must be at least {min_num}")
    if increasing and num > 1 and not lo < hi:
        raise UserError(f"{prefix}: {lo_name} must be smaller than {hi_name}")
    return lo, hi, num
