"""`gradscape demo --quick` runs end to end on the bundled data and reports the reference accuracies."""

from __future__ import annotations

import json

from gradscape.cli import main


def test_quick_demo_writes_report_figures_and_numbers(tmp_path, capsys) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    for name in ("REPORT.md", "demo.json", "statistics.png", "statistics.pdf", "spectra.png",
                 "gradient_flow.png", "landscape/landscape.png", "landscape/landscape.html"):  # fmt: skip
        assert (out / name).is_file(), name
    result = json.loads((out / "demo.json").read_text())
    acc = {k: v["accuracy"] for k, v in result["evaluation"].items()}
    # the published accuracies of the bundled checkpoints (86.2 / 85.1 / 70.75 %)
    assert (
        abs(acc["brf"] - 86.22) < 0.05 and abs(acc["rf"] - 85.11) < 0.05 and abs(acc["alif"] - 70.73) < 0.05
    )
    q0 = result["gradflow"]["models"]["brf"]["spectra"]["q0"]["membrane_rho"]
    assert round(q0["median"], 5) == 0.99346 and q0["max"] <= 1.0
    assert set(result["landscape"]["measures"]) == {"brf", "rf", "alif"}
    assert "gradscape_version" in result["provenance"]
    report = (out / "REPORT.md").read_text()
    assert "| BRF | 86.21 |" in report
