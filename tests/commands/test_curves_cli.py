"""``gradscape curves`` on the bundled authors' curves, on a tiny hand-written run folder and on bad
input (one line, exit 2)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from gradscape import cli
from gradscape.models.run_folder import METRIC_COLUMNS


@pytest.fixture
def main():
    assert "curves" in cli.COMMANDS
    return cli.main


def _fake_run(root: Path, seed: int, test: list[float], val: list[float]) -> Path:
    d = root / f"run{seed}"
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"config": {"model": "brf", "task": "ecg", "seed": seed}}))
    rows = [
        {
            **{k: "" for k in METRIC_COLUMNS},
            "epoch": e,
            "test_accuracy": t,
            "val_accuracy": v,
            "val_loss": 1.0 / (e + 1),
        }
        for e, (t, v) in enumerate(zip(test, val, strict=True))
    ]
    with open(d / "metrics.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(METRIC_COLUMNS))
        w.writeheader()
        w.writerows(rows)
    (d / "status.json").write_text(json.dumps({"status": "finished", "epoch": len(test) - 1}))
    return d


def _rows(out: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((out / "table2.csv").open(encoding="utf-8")))


def test_curves_on_bundled_and_a_fake_run_folder(
    main, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # run 0: val best at epoch 2 → F = 70; 95 % = 66.5 → step 2 → n95 = 1 (0-based); n100 = 1
    #        (the "last" rule would give F = 45 → step 1 → 0: the default rule is what is tested)
    # run 1: val best at epoch 3 → F = 80; 95 % = 76 → step 3 → n95 = 2; n100 = 2
    r0 = _fake_run(tmp_path, 0, [10.0, 50.0, 70.0, 45.0], [10.0, 40.0, 90.0, 60.0])
    r1 = _fake_run(tmp_path, 1, [10.0, 50.0, 60.0, 80.0], [10.0, 40.0, 50.0, 85.0])
    out = tmp_path / "cmp"
    assert main(["curves", "--bundled", "ecg", str(r0), str(r1), "--out", str(out)]) == 0
    for name in ("table2.csv", "table2.md", "curves.png", "curves.pdf", "table2_rules.md", "result.json"):
        assert (out / name).is_file(), name
    rows = {(r["source"], r["task"], r["model"]): r for r in _rows(out)}
    mine = rows[("run folders", "ecg", "brf")]
    assert mine["runs"] == "2" and mine["rule"] == "best_val_acc/0-based"
    assert float(mine["epochs_to_95_mean"]) == 1.5 and float(mine["epochs_to_100_mean"]) == 1.5
    assert float(mine["epochs_to_95_std"]) == pytest.approx(np.std([1, 2], ddof=1), abs=1e-12)
    authors = rows[("authors (bundled)", "ecg", "brf")]
    assert authors["runs"] == "5" and float(authors["paper_epochs_to_95"]) == 6.0
    result = json.loads((out / "result.json").read_text())
    assert result["config"]["rule"] == "best_val_acc/0-based" and result["config"]["bundled"] == ["ecg"]
    assert result["provenance"]["gradscape_version"]
    assert {(i["source"], i["run"]) for i in result["inputs"] if i["source"] == "run folders"} == {
        ("run folders", 0),
        ("run folders", 1),
    }
    assert "curves: rule best_val_acc/0-based" in capsys.readouterr().out


def test_curves_reads_both_curve_file_formats(main, tmp_path: Path) -> None:
    # the authors' long format (capitalisation varies, */train rows ignored) …
    long = tmp_path / "shd_alif_run_7.csv"
    lines = [",metric,value,step"]
    for e, (t, v) in enumerate([(5.0, 5.0), (40.0, 30.0), (60.0, 70.0), (58.0, 50.0)]):
        lines += [f"{e},Accuracy/test,{t},{e}.0", f"{e},accuracy/VAL,{v},{e}.0", f"{e},Loss/val,1.0,{e}.0"]
        lines += [f"{e},Loss/test,1.0,{e}.0", f"{e},Accuracy/train,99.0,{e}.0"]
    long.write_text("\n".join(lines) + "\n")
    # … and the reduced wide format
    wide = tmp_path / "mine.csv"
    wide.write_text(
        "task,model,run,epoch,val_loss,val_accuracy,test_loss,test_accuracy\n"
        "shd,alif,8,0,1,5,1,5\nshd,alif,8,1,1,80,1,50\nshd,alif,8,2,1,60,1,90\n"
    )
    out = tmp_path / "o"
    assert main(["curves", str(long), str(wide), "--out", str(out), "--rule", "best_val_acc/1"]) == 0
    (row,) = _rows(out)
    # long: F = 60 (val best at 2) → 57 → step 2; wide: F = 50 (val best at 1) → step 1; 1-based
    assert (
        row["runs"] == "2"
        and float(row["epochs_to_95_mean"]) == 1.5
        and row["rule"] == "best_val_acc/1-based"
    )


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--bundled", "mnist"], "mnist"),
        (["{missing}"], "no such curve file"),
        ([], "nothing to read"),
        (["--bundled", "ecg", "--rule", "median/0"], "--rule"),
        (["{notcsv}"], "not a curve file"),
        (["{emptydir}"], "not a gradscape run folder"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    main, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    notcsv = tmp_path / "x.csv"
    notcsv.write_text("a,b\n1,2\n")
    (tmp_path / "empty").mkdir()
    subs = {"missing": str(tmp_path / "nope.csv"), "notcsv": str(notcsv), "emptydir": str(tmp_path / "empty")}
    argv = [a.format(**subs) for a in argv]
    assert main(["curves", *argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
