"""How a number is written in a Markdown table of the report: ``—`` where it is undefined."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["cell", "cell_pm"]


def cell(v: Any, digits: int = 1) -> str:
    """``v`` with ``digits`` decimals (a float), as it is (an int or text), ``—`` for None/NaN/inf."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def cell_pm(m: Any, s: Any, digits: int = 1) -> str:
    """``m ± s``; ``m`` alone when the std is undefined (one run), ``—`` when the mean is."""
    if m is None or (isinstance(m, float) and not math.isfinite(m)):
        return "—"
    if s is None or (isinstance(s, float) and not math.isfinite(s)):
        return cell(m, digits)
    return f"{cell(m, digits)} ± {cell(s, digits)}"
