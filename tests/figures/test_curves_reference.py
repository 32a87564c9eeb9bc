"""The reference Fig. 3 / Fig. 4 bottom / Table 2 files drawn from the bundled authors' curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gradscape.figures.curves import bundled_curves, write_table2_reference
from gradscape.figures.fig3 import make_fig3_reference
from gradscape.figures.fig4 import make_fig4_reference
from gradscape.figures.stats import TABLE2_RULE


def test_reference_figures_and_tables_are_written(tmp_path: Path) -> None:
    paths = [
        *make_fig3_reference(tmp_path),
        *make_fig4_reference(tmp_path),
        *write_table2_reference(tmp_path),
    ]
    names = {p.name for p in paths}
    assert {"fig3.png", "fig3.pdf", "fig4.png", "fig4.pdf"} <= names
    assert {"table2_reference.csv", "table2_reference.md", "table2_rules.csv", "table2_rules.md"} <= names
    for p in paths:
        assert p.stat().st_size > 500, p
    rules = (tmp_path / "table2_rules.md").read_text(encoding="utf-8")
    assert f"{TABLE2_RULE.name} **(chosen)**" in rules and "AdaptiveAILab/brf-neurons" in rules


def test_psmnist_rf_runs_hold_only_epoch_0_and_are_marked_diverged() -> None:
    runs = bundled_curves(["psmnist"])[("psmnist", "rf")]
    assert [c.seed for c in runs] == [0, 1, 2, 3, 4]
    assert all(list(c.epochs) == [0] and c.diverged and c.diverged_epoch == 1 for c in runs)
    # the untrained networks sit at chance (10 classes): every run within 2 points of 10 %
    assert np.all(np.abs([c.test_acc[0] for c in runs] - np.float64(10.0)) < 2.0)
