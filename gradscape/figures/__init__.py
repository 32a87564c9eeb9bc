"""``gradscape figures``: the convergence paper's figures from real runs, Table 2 and a verdict report.

* :mod:`.profiles`: the ``smoke`` / ``quick`` / ``paper`` settings;
* :mod:`.runner`: the run matrix, cached by config hash and resumable, spread over torchrun ranks;
* :mod:`.stats`: convergence statistics (epochs to 95/98/100 % of final accuracy) and Table 2;
* :mod:`.fig1` … :mod:`.fig6`: one module per figure; :mod:`.report`: ``REPORT.md`` verdicts;
* :mod:`.pipeline`: :func:`generate`, what the command runs.

Kept apart from :mod:`gradscape.models`, :mod:`gradscape.gradflow` and :mod:`gradscape.landscape`,
which it only uses.
"""

from gradscape.figures.pipeline import FIGURES, generate
from gradscape.figures.profiles import PROFILES, Profile, get_profile

__all__ = ["FIGURES", "generate", "PROFILES", "Profile", "get_profile"]
